//! Reading protobuf fields in place, for the messages Evenire decodes itself
//! ([`EventBatch`](crate::EventBatch), [`IncomingAppend`](crate::IncomingAppend)): a
//! field's value is found as a range of the message's bytes, not copied out of them.
//! Every error is prost's own, for the same input (the decoders' tests check it).

use prost::bytes::{Buf, Bytes};
use prost::encoding::{
    DecodeContext, WireType, check_wire_type, decode_key, decode_varint, skip_field,
};
use std::ops::Range;

/// A length-delimited field's bytes, as a message's `merge_field` meets it, without
/// copying them: a slice of the message received.
pub(crate) fn length_delimited(
    wire_type: WireType,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<Bytes, prost::DecodeError> {
    let mut bytes = Bytes::new();
    prost::encoding::bytes::merge(wire_type, &mut bytes, buf, ctx)?;
    Ok(bytes)
}

/// Reads the event encoded in `all`: fields 1 to 4, which `RecordedEvent` and
/// `EventData` share (`id`, `type`, `data`, `metadata`), as ranges of it (empty when
/// absent), and any other through `other`.
pub(crate) fn event_fields(
    all: &[u8],
    mut other: impl FnMut(u32, WireType, &mut &[u8]) -> Result<(), prost::DecodeError>,
) -> Result<[Range<usize>; 4], prost::DecodeError> {
    let mut shared: [Range<usize>; 4] = Default::default();
    let mut rest = all;
    while !rest.is_empty() {
        let (tag, wire_type) = key(&mut rest)?;
        match tag {
            1..=4 => shared[tag as usize - 1] = value(all, &mut rest, tag, wire_type)?,
            _ => other(tag, wire_type, &mut rest)?,
        }
    }
    Ok(shared)
}

/// Calls `field` on each field of the message at `range` of `all`, with `all` up to
/// the message's end, of which the rest of the message is the end (for [`value`]).
pub(crate) fn for_each_field(
    all: &[u8],
    range: Range<usize>,
    mut field: impl FnMut(&[u8], u32, WireType, &mut &[u8]) -> Result<(), prost::DecodeError>,
) -> Result<(), prost::DecodeError> {
    let upto = &all[..range.end];
    let mut rest = &upto[range.start..];
    while !rest.is_empty() {
        let (tag, wire_type) = key(&mut rest)?;
        field(upto, tag, wire_type, &mut rest)?;
    }
    Ok(())
}

/// The length-delimited value at the front of `rest` as a range of `all` (of which
/// `rest` is the end), moving `rest` past it.
pub(crate) fn value(
    all: &[u8],
    rest: &mut &[u8],
    tag: u32,
    wire_type: WireType,
) -> Result<Range<usize>, prost::DecodeError> {
    check_wire_type(WireType::LengthDelimited, wire_type)?;
    let mut after_len = *rest;
    let len = short_varint(&mut after_len)?;
    match usize::try_from(len)
        .ok()
        .and_then(|len| after_len.get(len..))
    {
        Some(tail) => {
            *rest = tail;
            let end = all.len() - tail.len();
            Ok(end - len as usize..end)
        }
        // The value runs past the end: this fails with prost's own error.
        None => skip(rest, tag, wire_type).map(|()| 0..0),
    }
}

pub(crate) fn varint(rest: &mut &[u8], wire_type: WireType) -> Result<u64, prost::DecodeError> {
    check_wire_type(WireType::Varint, wire_type)?;
    short_varint(rest)
}

/// A varint, read in place: one byte (every key here, most lengths) without a loop,
/// and up to nine without a call. Longer or malformed ones go to prost, for its errors.
#[inline]
pub(crate) fn short_varint(rest: &mut &[u8]) -> Result<u64, prost::DecodeError> {
    match nine_byte_varint(rest) {
        Some(value) => Ok(value),
        None => decode_varint(rest),
    }
}

/// A field's key, without a call for the one-byte ones (fields 1 to 15).
#[inline]
pub(crate) fn key(rest: &mut &[u8]) -> Result<(u32, WireType), prost::DecodeError> {
    if let [byte @ 0x08..0x80, tail @ ..] = *rest
        && let Ok(wire_type) = WireType::try_from(u64::from(byte & 7))
    {
        *rest = tail;
        return Ok((u32::from(*byte >> 3), wire_type));
    }
    decode_key(rest)
}

/// A field's value as [`plain_field`] reads it.
#[derive(Debug, PartialEq)]
pub(crate) enum Plain {
    /// A length-delimited value, as a range of the message.
    Bytes(Range<usize>),
    /// A varint.
    Varint(u64),
}

/// The field at `*at` of `all`, moving `at` past it, when it is as the encoders here
/// write every field: a one-byte key (fields 1 to 15), a varint or a length-delimited
/// value, every varint (the length too) at most nine bytes, the value within `all`.
/// `None` for anything else (and at the end), for the general decoder to read: it reads
/// whatever prost reads and fails as prost fails. The decoders try this first since
/// it reads a field in a few instructions, where the general one spends tens of
/// nanoseconds a field in checks that such fields never need.
#[inline]
pub(crate) fn plain_field(all: &[u8], at: &mut usize) -> Option<(u8, Plain)> {
    let (&key, mut rest) = all.get(*at..)?.split_first()?;
    if !(0x08..0x80).contains(&key) {
        return None;
    }
    let value = nine_byte_varint(&mut rest)?;
    let start = all.len() - rest.len();
    match key & 7 {
        0 => {
            *at = start;
            Some((key >> 3, Plain::Varint(value)))
        }
        2 => {
            let end = start.checked_add(usize::try_from(value).ok()?)?;
            if end > all.len() {
                return None;
            }
            *at = end;
            Some((key >> 3, Plain::Bytes(start..end)))
        }
        _ => None,
    }
}

/// A varint of at most nine bytes (63 bits), read as prost reads it; `None` past nine
/// bytes or at the end.
#[inline]
fn nine_byte_varint(rest: &mut &[u8]) -> Option<u64> {
    let mut value = 0;
    for (i, byte) in rest.iter().take(9).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if *byte < 0x80 {
            *rest = &rest[i + 1..];
            return Some(value);
        }
    }
    None
}

pub(crate) fn skip(
    rest: &mut &[u8],
    tag: u32,
    wire_type: WireType,
) -> Result<(), prost::DecodeError> {
    skip_field(wire_type, tag, rest, DecodeContext::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_read_as_prost_reads_them() {
        let mut cases: Vec<Vec<u8>> = (0..64)
            .flat_map(|shift| [1u64 << shift, (1u64 << shift) - 1, u64::MAX >> shift])
            .map(|value| {
                let mut bytes = Vec::new();
                prost::encoding::encode_varint(value, &mut bytes);
                bytes.push(0x55);
                bytes
            })
            .collect();
        // Over-long, truncated, and past 64 bits.
        cases.extend([
            vec![0x80, 0x00],
            vec![0xff; 9],
            vec![0xff; 12],
            [vec![0xff; 9], vec![0x02]].concat(),
            vec![],
        ]);
        for case in cases {
            let (mut ours, mut theirs) = (&case[..], &case[..]);
            let expected = decode_varint(&mut theirs).ok();
            assert_eq!(short_varint(&mut ours).ok(), expected, "{case:x?}");
            if expected.is_some() {
                assert_eq!(ours, theirs, "{case:x?}");
            }
        }
    }
}
