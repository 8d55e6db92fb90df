//! The fuzz targets' seed corpora (fuzz/corpus/) stay meaningful: the record and
//! segment seeds are valid log data this server wrote, and the request seeds decode.
//! The fuzzing itself runs with `cargo fuzz` (fuzz/README.md).

use bytes::Bytes;
use evenire_server::store::record::{self, Entry};
use evenire_server::store::segment;
use std::path::{Path, PathBuf};

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).expect("seed");
            (path, bytes)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "{} has seeds", dir.display());
    seeds
}

#[test]
fn record_seeds_are_records_of_both_kinds() {
    let entries: Vec<_> = seeds("record_decode")
        .into_iter()
        .map(|(path, bytes)| {
            record::decode_frame(Bytes::from(bytes))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect();
    assert!(entries.iter().any(|e| matches!(e, Entry::Append(_))));
    assert!(entries.iter().any(|e| matches!(e, Entry::Delete(_))));
}

#[test]
fn segment_seeds_scan_whole_or_with_a_torn_tail() {
    for (path, bytes) in seeds("segment_scan") {
        let scan = segment::scan(&path, 0, &Bytes::from(bytes), true)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!scan.records.is_empty(), "{}", path.display());
    }
}

#[test]
fn request_seeds_decode_as_requests() {
    use prost::Message;
    for (path, bytes) in seeds("request_validation") {
        let decodes = evenire_proto::v1::AppendRequest::decode(&bytes[..]).is_ok()
            || evenire_proto::v1::ReadRequest::decode(&bytes[..]).is_ok()
            || evenire_proto::v1::SubscribeRequest::decode(&bytes[..]).is_ok();
        assert!(decodes, "{}", path.display());
    }
}
