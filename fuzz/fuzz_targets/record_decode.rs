//! Arbitrary bytes as one framed record: the decoder returns an error or a record,
//! never panics, and a record it accepts encodes back to the same bytes.
#![no_main]

use bytes::Bytes;
use evenire_server::store::record::{self, Entry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = record::decode_frame(Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut again = Vec::new();
    match entry {
        Entry::Append(r) => record::encode_record_from(&mut again, &r, 0),
        Entry::Delete(d) => record::encode_delete(&mut again, &d),
        Entry::SyncMark(mark) => record::encode_sync_mark(&mut again, &mark),
        Entry::Snapshot(snapshot) => record::encode_snapshot(&mut again, &snapshot),
        Entry::Rules(rules) => record::encode_rules(&mut again, &rules),
        Entry::Rewritten(rewritten) => record::encode_rewritten(&mut again, &rewritten),
    }
    assert_eq!(
        again, data,
        "an accepted record re-encodes to its own bytes"
    );
});
