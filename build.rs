//! Compiles proto/ into Rust with protox, a pure-Rust protobuf compiler, so a fresh
//! machine needs no system `protoc`. The encoded descriptor set is written next to the
//! generated code: the server's reflection service serves it to `grpcurl`.

use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &["proto/evenire/v1/evenire.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("evenire_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Event payloads as `Bytes`: the server hands cached payloads to responses
        // without copying them.
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
