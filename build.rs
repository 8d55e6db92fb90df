//! Compiles proto/ into Rust with protox, a pure-Rust protobuf compiler, so a fresh
//! machine needs no system `protoc`. The encoded descriptor set is written next to the
//! generated code: the server's reflection service serves it to `grpcurl`.
//!
//! The contract is generated three times, over one wire format:
//! - `evenire.v1.rs`: every message and a client of them all, for tests and for what
//!   the Rust client does not wrap;
//! - `server/evenire.v1.rs`: the service trait the server implements, over the same
//!   messages except appends, which it reads in place (`proto/incoming_append.rs` says
//!   why), and the responses that carry events, which it writes itself straight into
//!   tonic's buffer (`proto/outgoing.rs` and `proto/codec.rs` say why);
//! - `client/evenire.v1.rs`: the client the Rust client wraps, which reads responses
//!   carrying events into `EventBatch`es (`proto/event_batch.rs` says why).
//!
//! docs/wire.md has the A/B that keeps each of these.

use prost::Message;
use prost_types::FileDescriptorSet;
use std::path::{Path, PathBuf};

const PROTOS: &[&str] = &["proto/evenire/v1/evenire.proto"];

/// What the server's trait uses in place of generated messages: appends, which it
/// decodes itself, and the responses that carry events, which it encodes itself.
const SERVER: &[(&str, &str)] = &[
    ("AppendRequest", "crate::IncomingAppend"),
    ("ReadResponse", "crate::Outgoing"),
    ("ReadAllResponse", "crate::Outgoing"),
    ("SubscribeResponse", "crate::Outgoing"),
    ("ReadFromSnapshotResponse", "crate::Outgoing"),
];
/// What the Rust client's stub uses in place of generated messages: reads it decodes
/// into batches.
const CLIENT: &[(&str, &str)] = &[
    ("ReadResponse", "crate::EventBatch"),
    ("ReadAllResponse", "crate::EventBatch"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("evenire_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        // Event payloads as `Bytes`: responses hand out slices of the message received
        // instead of copies.
        .bytes(".")
        .compile_fds(descriptors.clone())?;

    let server = tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .codec_path("crate::SizedCodec");
    variant(server, &out_dir, "server", SERVER, &descriptors)?;
    let client = tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .codec_path("crate::SizedCodec");
    variant(client, &out_dir, "client", CLIENT, &descriptors)?;
    Ok(())
}

/// Generates the service into `out_dir/dir` over the messages of `crate::v1`, with
/// each message of `replaced` standing for the Rust type beside it.
fn variant(
    builder: tonic_prost_build::Builder,
    out_dir: &Path,
    dir: &str,
    replaced: &[(&str, &str)],
    descriptors: &FileDescriptorSet,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = out_dir.join(dir);
    std::fs::create_dir_all(&dir)?;
    let mut builder = builder
        .out_dir(&dir)
        .extern_path(".evenire.v1", "crate::v1");
    for (message, with) in replaced {
        builder = builder.extern_path(format!(".evenire.v1.{message}"), *with);
    }
    builder.compile_fds(descriptors.clone())?;
    Ok(())
}
