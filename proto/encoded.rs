//! A message sent as bytes encoded beforehand.
//!
//! The server sends events by the million; building a generated `RecordedEvent` for
//! each (four strings, a nested message, a timestamp) and then walking it twice to
//! encode it cost more CPU than the rest of a read. So the server writes the wire bytes
//! of its streaming responses itself (server/src/service/encode.rs, tested byte for
//! byte against the generated types) and hands them to tonic as an `Encoded`, which the
//! server's generated trait uses in place of those responses.

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType, skip_field};

/// A protobuf message as its encoded fields, without a length prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded(pub Bytes);

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    /// An `Encoded` is only ever sent: decoding one skips every field, as prost does
    /// with unknown fields. Readers decode the generated types.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}
