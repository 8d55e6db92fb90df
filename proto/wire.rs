//! Writing protobuf fields by hand, for the messages Evenire encodes itself: the
//! server's responses that carry events ([`Outgoing`](crate::Outgoing)). Every field
//! they write is numbered 1 to 15, so its key is one byte.
//! Each writer is tested byte for byte against prost's encoding of the generated types.

use prost::bytes::BufMut;
use prost::encoding::encoded_len_varint;
use uuid::Uuid;

/// Length of a UUID's canonical text, the form every id takes on the wire.
pub const UUID_TEXT_LEN: usize = 36;

/// The key of field `number` (1 to 15) with a varint value. Any other number has no
/// one-byte key: refused, at compile time where the key is a constant.
pub const fn varint_key(number: u8) -> u8 {
    one_byte_key(number, 0)
}

/// The key of field `number` (1 to 15) with a length-delimited value; refuses any
/// other number as [`varint_key`] does.
pub const fn len_key(number: u8) -> u8 {
    one_byte_key(number, 2)
}

const fn one_byte_key(number: u8, wire_type: u8) -> u8 {
    assert!(
        number >= 1 && number <= 15,
        "only fields 1 to 15 have one-byte keys: the hand-written encoders write no other"
    );
    number << 3 | wire_type
}

/// Bytes a length-delimited field of `len` bytes takes, key included: a nested message,
/// which is written even when empty.
pub fn len_field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// Bytes a string or bytes field of `len` bytes takes: none when empty, as proto3
/// leaves it out.
pub fn bytes_field_len(len: usize) -> usize {
    match len {
        0 => 0,
        n => len_field_len(n),
    }
}

/// Bytes a varint field takes: none when zero, as proto3 leaves it out.
pub fn varint_field_len(value: u64) -> usize {
    match value {
        0 => 0,
        v => 1 + encoded_len_varint(v),
    }
}

/// The key and length of a nested message of `len` bytes, which follows.
pub fn put_len_prefix(key: u8, len: usize, buf: &mut impl BufMut) {
    buf.put_u8(key);
    put_raw_varint(len as u64, buf);
}

/// A varint on its own: the one-byte ones (most lengths here) as one byte, the others
/// made on the stack and put in one piece. prost's `encode_varint` puts each byte on
/// its own, through `BufMut`'s checks for room: a read's response has a version, a
/// position and a timestamp of several bytes per event, and in a profile of a cached
/// read of one stream (100-byte events) that was a tenth of the server's samples.
#[inline]
fn put_raw_varint(value: u64, buf: &mut impl BufMut) {
    if value < 0x80 {
        buf.put_u8(value as u8);
        return;
    }
    let mut bytes = [0; 10];
    let mut rest = value;
    let mut len = 0;
    while rest >= 0x80 {
        bytes[len] = rest as u8 | 0x80;
        rest >>= 7;
        len += 1;
    }
    bytes[len] = rest as u8;
    buf.put_slice(&bytes[..=len]);
}

/// A string or bytes field; nothing when empty.
pub fn put_bytes(key: u8, value: &[u8], buf: &mut impl BufMut) {
    if !value.is_empty() {
        put_len_prefix(key, value.len(), buf);
        buf.put_slice(value);
    }
}

/// A UUID as a string field, in its canonical text.
pub fn put_uuid(key: u8, id: Uuid, buf: &mut impl BufMut) {
    let mut text = [0; UUID_TEXT_LEN];
    put_bytes(key, id.hyphenated().encode_lower(&mut text).as_bytes(), buf);
}

/// A varint field; nothing when zero.
pub fn put_varint(key: u8, value: u64, buf: &mut impl BufMut) {
    if value != 0 {
        buf.put_u8(key);
        put_raw_varint(value, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_what_prost_writes_for_fields_1_to_15() {
        for number in 1..=15u8 {
            let (mut varint, mut len) = (Vec::new(), Vec::new());
            prost::encoding::encode_key(
                number.into(),
                prost::encoding::WireType::Varint,
                &mut varint,
            );
            prost::encoding::encode_key(
                number.into(),
                prost::encoding::WireType::LengthDelimited,
                &mut len,
            );
            assert_eq!(
                [varint_key(number)],
                varint[..],
                "varint key of field {number}"
            );
            assert_eq!(
                [len_key(number)],
                len[..],
                "length-delimited key of field {number}"
            );
        }
    }

    #[test]
    fn keys_of_fields_without_a_one_byte_key_are_refused() {
        for number in [0u8, 16, 31, 255] {
            assert!(
                std::panic::catch_unwind(|| len_key(number)).is_err(),
                "{number}"
            );
            assert!(
                std::panic::catch_unwind(|| varint_key(number)).is_err(),
                "{number}"
            );
        }
    }

    #[test]
    fn varints_are_what_prost_writes() {
        let values =
            (0..64).flat_map(|shift| [1u64 << shift, (1u64 << shift) - 1, u64::MAX >> shift]);
        for value in values {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            put_raw_varint(value, &mut ours);
            prost::encoding::encode_varint(value, &mut theirs);
            assert_eq!(ours, theirs, "{value}");
            assert_eq!(ours.len(), encoded_len_varint(value));
        }
    }
}
