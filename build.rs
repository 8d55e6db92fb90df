//! Compiles proto/ into Rust with protox, a pure-Rust protobuf compiler, so a fresh
//! machine needs no system `protoc`. The encoded descriptor set is written next to the
//! generated code: the server's reflection service serves it to `grpcurl`.
//!
//! The contract is generated three times, over one wire format:
//! - `evenire.v1.rs`: every message and a client of them all, for tests and for what
//!   the Rust client does not wrap;
//! - `server/evenire.v1.rs`: the service trait the server implements, over the same
//!   messages except the responses that carry events, which it sends as bytes it
//!   encoded itself (`proto/encoded.rs` says why);
//! - `client/evenire.v1.rs`: the client the Rust client wraps, which reads those
//!   responses into `EventBatch`es (`proto/event_batch.rs` says why).

use prost::Message;
use prost_types::FileDescriptorSet;
use std::path::{Path, PathBuf};

const PROTOS: &[&str] = &["proto/evenire/v1/evenire.proto"];

/// Responses the server encodes itself: the ones that carry events.
const SERVER_ENCODED: &[&str] = &["ReadResponse", "ReadAllResponse", "SubscribeResponse"];
/// Responses the Rust client decodes into `EventBatch`es.
const CLIENT_BATCHES: &[&str] = &["ReadResponse", "ReadAllResponse"];

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
        .build_client(false);
    variant(
        server,
        &out_dir,
        "server",
        SERVER_ENCODED,
        "crate::Encoded",
        &descriptors,
    )?;
    let client = tonic_prost_build::configure()
        .build_server(false)
        .build_client(true);
    variant(
        client,
        &out_dir,
        "client",
        CLIENT_BATCHES,
        "crate::EventBatch",
        &descriptors,
    )?;
    Ok(())
}

/// Generates the service into `out_dir/dir` over the messages of `crate::v1`, with the
/// messages named in `replaced` standing for `with`.
fn variant(
    builder: tonic_prost_build::Builder,
    out_dir: &Path,
    dir: &str,
    replaced: &[&str],
    with: &str,
    descriptors: &FileDescriptorSet,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = out_dir.join(dir);
    std::fs::create_dir_all(&dir)?;
    let mut builder = builder
        .out_dir(&dir)
        .extern_path(".evenire.v1", "crate::v1");
    for message in replaced {
        builder = builder.extern_path(format!(".evenire.v1.{message}"), with);
    }
    builder.compile_fds(descriptors.clone())?;
    Ok(())
}
