//! Arbitrary bytes as one framed record: the decoder returns an error or a record,
//! never panics, and a record it accepts encodes back to the same bytes.
#![no_main]

use bytes::Bytes;
use evenire_server::store::EventData;
use evenire_server::store::record::{self, AppendHeader, Entry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = record::decode_frame(Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut again = Vec::new();
    match entry {
        Entry::Append(r) => {
            let events: Vec<EventData> = r
                .events
                .iter()
                .map(|e| EventData {
                    id: e.id,
                    event_type: e.event_type.clone(),
                    data: e.data.clone(),
                    metadata: e.metadata.clone(),
                })
                .collect();
            let header = AppendHeader {
                first_position: r.first_position,
                first_version: r.first_version,
                created_micros: r.created_micros,
                stream: &r.stream,
            };
            record::encode_append(&mut again, header, &events);
        }
        Entry::Delete(d) => record::encode_delete(&mut again, &d),
        Entry::SyncMark(mark) => record::encode_sync_mark(&mut again, &mark),
        Entry::Snapshot(snapshot) => record::encode_snapshot(&mut again, &snapshot),
        Entry::Rules(rules) => record::encode_rules(&mut again, &rules),
    }
    assert_eq!(
        again, data,
        "an accepted record re-encodes to its own bytes"
    );
});
