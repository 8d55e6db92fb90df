//! Arbitrary bytes as Append, Read and Subscribe request messages: whatever decodes is
//! accepted or refused with INVALID_ARGUMENT, never a panic. Appends are decoded as the
//! server decodes them (`IncomingAppend`), which must accept whatever the generated
//! type accepts.
#![no_main]

use evenire_proto::IncomingAppend;
use evenire_proto::v1 as pb;
use evenire_server::service::{self, Limits};
use libfuzzer_sys::fuzz_target;
use prost::Message;

const LIMITS: Limits = Limits {
    max_event_size: 4 << 20,
    max_events_per_append: 10_000,
    max_open_reads: 512,
    max_open_reads_per_connection: 256,
    max_open_reads_per_ip: 384,
    backup_bytes_per_second: 0,
    scavenge_bytes_per_second: 0,
};

fuzz_target!(|data: &[u8]| {
    match IncomingAppend::decode(data) {
        Ok(request) => {
            if let Err(status) = service::check_append(request, &LIMITS) {
                assert_eq!(status.code(), tonic::Code::InvalidArgument);
            }
        }
        Err(_) => assert!(pb::AppendRequest::decode(data).is_err()),
    }
    if let Ok(request) = pb::ReadRequest::decode(data) {
        if let Err(status) = service::check_read(request) {
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
        }
    }
    if let Ok(request) = pb::SubscribeRequest::decode(data) {
        if let Err(status) = service::check_subscribe(request) {
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
        }
    }
});
