//! Arbitrary bytes as a `ReadResponse` from a server: the client's one-pass decoder
//! (`EventBatch`) returns an error or events, never panics, and whatever the generated
//! types accept it accepts too, with the same fields.
#![no_main]

use evenire_proto::EventBatch;
use evenire_proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let batch = EventBatch::decode(data);
    let Ok(generated) = pb::ReadResponse::decode(data) else {
        return;
    };
    let batch = batch.expect("what the generated types decode, the batch decodes");
    assert_eq!(batch.events.len(), generated.events.len());
    for (wire, event) in batch.events.iter().zip(&generated.events) {
        assert_eq!(wire.field(&wire.id), event.id.as_bytes());
        assert_eq!(wire.field(&wire.event_type), event.r#type.as_bytes());
        assert_eq!(wire.field(&wire.data), &event.data[..]);
        assert_eq!(wire.field(&wire.metadata), &event.metadata[..]);
        let stream = wire.stream.as_ref().map(|(key, stream_type)| {
            (wire.field(key).to_vec(), wire.field(stream_type).to_vec())
        });
        let expected = event
            .stream
            .as_ref()
            .map(|s| (s.key.as_bytes().to_vec(), s.r#type.as_bytes().to_vec()));
        assert_eq!(stream, expected);
        assert_eq!((wire.version, wire.position), (event.version, event.position));
        assert_eq!(wire.created, event.created.map(|t| (t.seconds, t.nanos)));
    }
});
