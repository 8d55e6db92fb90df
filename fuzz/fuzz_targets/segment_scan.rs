//! Arbitrary bytes as a whole segment file, first or last in the log: scanning returns
//! records, a torn tail, or an error naming an offset inside the file; never panics.
#![no_main]

use bytes::Bytes;
use evenire_server::store::segment;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    for is_last in [false, true] {
        if let Ok(scan) = segment::scan(Path::new("segment-fuzz.log"), 0, &bytes, is_last) {
            assert!(scan.valid_len <= data.len() as u64);
            assert!(
                scan.torn.is_none() || is_last,
                "only the last segment has a torn tail"
            );
        }
    }
});
