//! The messages whose bytes Evenire writes or reads by hand, and their fields as that
//! code knows them.
//!
//! Generated code follows `evenire.proto` by itself; the hand-written encoders and
//! decoders (`outgoing.rs`, `incoming_append.rs`, `event_batch.rs`, `read_fields.rs`)
//! each handle a fixed list of fields, and a field
//! added to the contract would silently never be sent or read. The test below reads the
//! compiled descriptor set and fails, naming the message, the field and the files to
//! update, when any of these messages differs from the table. After teaching the code
//! the change, update the table.

/// A message whose fields some hand-written code writes or reads.
#[derive(Debug, Clone, Copy)]
pub struct HandHandled {
    /// The fully qualified name, without the leading dot.
    pub message: &'static str,
    /// The files that write or read its fields.
    pub code: &'static [&'static str],
    /// Every field, as `[optional |repeated ]TYPE NAME = NUMBER[ (oneof ONEOF)]`, with
    /// message types fully qualified: what [`field_signatures`] makes of the descriptor.
    pub fields: &'static [&'static str],
}

const EVENT_WRITERS: &[&str] = &[
    "proto/outgoing.rs (the server's read and subscription responses)",
    "proto/event_batch.rs and proto/read_fields.rs (the Rust client's reads)",
];
const APPEND_CODE: &[&str] =
    &["proto/incoming_append.rs and proto/read_fields.rs (the server's appends)"];

/// Every hand-handled message. `AppendRequest.expected_version` and the cases of
/// `SubscribeResponse` other than `events` go through prost, but those messages are
/// listed whole so that any change shows.
pub const HAND_HANDLED: &[HandHandled] = &[
    HandHandled {
        message: "evenire.v1.AppendRequest",
        code: APPEND_CODE,
        fields: &[
            "evenire.v1.StreamId stream = 1",
            "evenire.v1.ExpectedVersion expected_version = 2",
            "repeated evenire.v1.EventData events = 3",
        ],
    },
    HandHandled {
        message: "evenire.v1.EventData",
        code: APPEND_CODE,
        fields: &[
            "string id = 1",
            "string type = 2",
            "bytes data = 3",
            "bytes metadata = 4",
        ],
    },
    HandHandled {
        message: "evenire.v1.StreamId",
        code: &[
            "proto/outgoing.rs",
            "proto/event_batch.rs",
            "proto/incoming_append.rs",
        ],
        fields: &["string key = 1", "string type = 2"],
    },
    HandHandled {
        message: "evenire.v1.ReadResponse",
        code: EVENT_WRITERS,
        fields: &["repeated evenire.v1.RecordedEvent events = 1"],
    },
    HandHandled {
        message: "evenire.v1.ReadAllResponse",
        code: EVENT_WRITERS,
        fields: &["repeated evenire.v1.RecordedEvent events = 1"],
    },
    HandHandled {
        message: "evenire.v1.ReadFromSnapshotResponse",
        code: &["proto/outgoing.rs (the messages with events; the snapshot goes through prost)"],
        fields: &[
            "repeated evenire.v1.RecordedEvent events = 1",
            "evenire.v1.Snapshot snapshot = 2",
        ],
    },
    HandHandled {
        message: "evenire.v1.SubscribeResponse",
        code: &["proto/outgoing.rs (the `events` case; the others go through prost)"],
        fields: &[
            "evenire.v1.SubscribeEvents events = 1 (oneof message)",
            "evenire.v1.CaughtUp caught_up = 2 (oneof message)",
            "evenire.v1.Checkpoint checkpoint = 3 (oneof message)",
        ],
    },
    HandHandled {
        message: "evenire.v1.SubscribeEvents",
        code: &["proto/outgoing.rs"],
        fields: &["repeated evenire.v1.RecordedEvent events = 1"],
    },
    HandHandled {
        message: "evenire.v1.RecordedEvent",
        code: EVENT_WRITERS,
        fields: &[
            "string id = 1",
            "string type = 2",
            "bytes data = 3",
            "bytes metadata = 4",
            "evenire.v1.StreamId stream = 5",
            "uint64 version = 6",
            "uint64 position = 7",
            "google.protobuf.Timestamp created = 8",
        ],
    },
    HandHandled {
        message: "google.protobuf.Timestamp",
        code: &["proto/outgoing.rs", "proto/event_batch.rs"],
        fields: &["int64 seconds = 1", "int32 nanos = 2"],
    },
];

/// The fields of `message` in the descriptor set, in declaration order, written as
/// [`HandHandled::fields`] writes them.
pub fn field_signatures(
    descriptors: &prost_types::FileDescriptorSet,
    message: &str,
) -> Option<Vec<String>> {
    let found = descriptors.file.iter().find_map(|file| {
        let package = file.package();
        file.message_type
            .iter()
            .find(|m| qualified(package, m.name()) == message)
    })?;
    Some(found.field.iter().map(|f| signature(found, f)).collect())
}

fn qualified(package: &str, name: &str) -> String {
    match package {
        "" => name.to_string(),
        p => format!("{p}.{name}"),
    }
}

fn signature(
    message: &prost_types::DescriptorProto,
    field: &prost_types::FieldDescriptorProto,
) -> String {
    use prost_types::field_descriptor_proto::{Label, Type};
    let label = match (field.label(), field.proto3_optional()) {
        (Label::Repeated, _) => "repeated ",
        (_, true) => "optional ",
        (Label::Required, _) => "required ",
        (Label::Optional, false) => "",
    };
    let kind = match field.r#type() {
        Type::Message | Type::Enum | Type::Group => {
            field.type_name().trim_start_matches('.').to_string()
        }
        scalar => scalar
            .as_str_name()
            .trim_start_matches("TYPE_")
            .to_ascii_lowercase(),
    };
    // A proto3 `optional` field sits in a synthetic oneof of its own: not a real one.
    let oneof = match field.oneof_index {
        Some(i) if !field.proto3_optional() => message
            .oneof_decl
            .get(usize::try_from(i).unwrap_or(usize::MAX))
            .map(|o| format!(" (oneof {})", o.name())),
        _ => None,
    };
    format!(
        "{label}{kind} {} = {}{}",
        field.name(),
        field.number(),
        oneof.unwrap_or_default()
    )
}

/// What differs between the table's `entry` and the contract's fields (`None`: the
/// message is gone), as a message for whoever changed the contract; `None` if nothing.
pub fn mismatch(entry: &HandHandled, contract: Option<&[String]>) -> Option<String> {
    let files = entry.code.join("; ");
    let Some(contract) = contract else {
        return Some(format!(
            "{} is no longer in proto/evenire/v1/evenire.proto, but its bytes are \
             handled by hand in {files}: change that code, then the table in proto/contract.rs",
            entry.message
        ));
    };
    let mut problems = Vec::new();
    for field in contract {
        if !entry.fields.contains(&field.as_str()) {
            problems.push(format!("field `{field}` is new or changed"));
        }
    }
    for field in entry.fields {
        if !contract.iter().any(|c| c == field) {
            problems.push(format!(
                "field `{field}` is no longer in the contract as the code knows it"
            ));
        }
    }
    if problems.is_empty() && entry.fields.iter().ne(contract.iter()) {
        problems.push("its fields are in another order".to_string());
    }
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "{} changed in proto/evenire/v1/evenire.proto: {}. Its bytes are written or read \
         by hand in {files}: teach that code the change (and its tests against prost), \
         then update the table in proto/contract.rs",
        entry.message,
        problems.join("; ")
    ))
}

/// The compiled contract's descriptors.
pub fn descriptors() -> prost_types::FileDescriptorSet {
    // Built by build.rs from the same files: a failure here is a broken build.
    prost::Message::decode(crate::FILE_DESCRIPTOR_SET).unwrap_or_default()
}

/// A `message` with every field its descriptor lists filled from `seed`: for tests that
/// compare the hand-written code with prost on whatever the contract holds, so that a
/// field added to the contract is sent and expected without anyone writing it into a
/// test. Values are as Evenire sends them: `id` and `key` strings are UUIDs, nested
/// messages are present, enums are never 0 (unspecified), timestamps are whole
/// microseconds; strings, bytes, numbers, repeated counts and the case of each oneof
/// vary. With `unknown`, fields the contract does not know are mixed in at every level,
/// which every reader must skip. Empty when `message` is not in `descriptors`.
pub fn sample(
    descriptors: &prost_types::FileDescriptorSet,
    message: &str,
    seed: u64,
    unknown: bool,
) -> Vec<u8> {
    let mut sampler = Sampler {
        descriptors,
        state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        unknown,
    };
    let mut out = Vec::new();
    sampler.message(message, 0, &mut out);
    out
}

struct Sampler<'a> {
    descriptors: &'a prost_types::FileDescriptorSet,
    state: u64,
    unknown: bool,
}

impl Sampler<'_> {
    fn next(&mut self) -> u64 {
        // xorshift64: a fixed sequence per seed.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn find(&self, name: &str) -> Option<&prost_types::DescriptorProto> {
        self.descriptors.file.iter().find_map(|file| {
            file.message_type
                .iter()
                .find(|m| qualified(file.package(), m.name()) == name)
        })
    }

    fn first_enum_value(&mut self, name: &str) -> i32 {
        let values: Vec<i32> = self
            .descriptors
            .file
            .iter()
            .flat_map(|file| {
                file.enum_type
                    .iter()
                    .filter(move |e| qualified(file.package(), e.name()) == name)
            })
            .flat_map(|e| e.value.iter().map(|v| v.number()))
            .filter(|v| *v != 0)
            .collect();
        match values.len() {
            0 => 1,
            n => values[self.below(n as u64) as usize],
        }
    }

    fn message(&mut self, name: &str, depth: usize, out: &mut Vec<u8>) {
        use prost::encoding::{WireType, encode_key, encode_varint};
        let Some(message) = self.find(name).cloned() else {
            return;
        };
        // One case of each real oneof; each proto3 `optional` field half the time.
        let chosen: Vec<Option<i32>> = (0..message.oneof_decl.len())
            .map(|i| {
                let members: Vec<i32> = message
                    .field
                    .iter()
                    .filter(|f| f.oneof_index == Some(i as i32))
                    .map(|f| f.number())
                    .collect();
                let synthetic = message
                    .field
                    .iter()
                    .any(|f| f.oneof_index == Some(i as i32) && f.proto3_optional());
                match (synthetic, members.len()) {
                    (_, 0) => None,
                    (true, _) => (self.below(2) == 0).then(|| members[0]),
                    (false, n) => Some(members[self.below(n as u64) as usize]),
                }
            })
            .collect();
        for field in &message.field {
            if let Some(i) = field.oneof_index
                && chosen.get(i as usize).copied().flatten() != Some(field.number())
            {
                continue;
            }
            if self.unknown && self.below(3) == 0 {
                self.unknown_field(out);
            }
            let count = match field.label() {
                prost_types::field_descriptor_proto::Label::Repeated => match depth {
                    0 => self.below(5),
                    _ => self.below(3),
                },
                _ => 1,
            };
            let number = u32::try_from(field.number()).unwrap_or(1);
            for _ in 0..count {
                use prost_types::field_descriptor_proto::Type;
                match field.r#type() {
                    Type::String => {
                        let text = self.text(field.name());
                        encode_key(number, WireType::LengthDelimited, out);
                        encode_varint(text.len() as u64, out);
                        out.extend_from_slice(text.as_bytes());
                    }
                    Type::Bytes => {
                        let len = [0, 1, 5, 100, 300][self.below(5) as usize];
                        encode_key(number, WireType::LengthDelimited, out);
                        encode_varint(len, out);
                        for _ in 0..len {
                            out.push(self.next() as u8);
                        }
                    }
                    Type::Message => {
                        let mut inner = Vec::new();
                        if depth < 4 {
                            self.message(
                                field.type_name().trim_start_matches('.'),
                                depth + 1,
                                &mut inner,
                            );
                        }
                        encode_key(number, WireType::LengthDelimited, out);
                        encode_varint(inner.len() as u64, out);
                        out.extend_from_slice(&inner);
                    }
                    Type::Enum => {
                        let value =
                            self.first_enum_value(field.type_name().trim_start_matches('.'));
                        encode_key(number, WireType::Varint, out);
                        encode_varint(i64::from(value) as u64, out);
                    }
                    Type::Bool => {
                        encode_key(number, WireType::Varint, out);
                        encode_varint(self.below(2), out);
                    }
                    scalar => {
                        let value = self.number(scalar, field.name());
                        encode_key(number, WireType::Varint, out);
                        encode_varint(value, out);
                    }
                }
            }
        }
        if self.unknown && self.below(2) == 0 {
            self.unknown_field(out);
        }
    }

    /// A value of a varint scalar, as its wire form.
    fn number(&mut self, scalar: prost_types::field_descriptor_proto::Type, name: &str) -> u64 {
        use prost_types::field_descriptor_proto::Type;
        let magnitude = [0, 1, 127, 128, 1 << 20, 1 << 35, u64::MAX][self.below(7) as usize];
        let value = self.next() % magnitude.max(1);
        match (scalar, name) {
            // Whole microseconds, as the store keeps time.
            (Type::Int32, "nanos") => match self.below(4) {
                0 => 0,
                _ => self.below(1_000_000) * 1_000,
            },
            (Type::Int64, "seconds") => ((self.below(1 << 41) as i64) - (1 << 40)) as u64,
            // int32 is sent sign-extended to 64 bits.
            (Type::Int32, _) => i64::from(value as i32) as u64,
            (Type::Uint32, _) => u64::from(value as u32),
            _ => value,
        }
    }

    fn text(&mut self, field: &str) -> String {
        if field == "id" || field == "key" {
            return uuid::Uuid::from_u64_pair(self.next(), self.next()).to_string();
        }
        const PIECES: [&str; 6] = ["Order", "placed", "ä", "€", "🦀", "-"];
        (0..self.below(12))
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }

    /// A field numbered past anything the contract uses, of any wire type.
    fn unknown_field(&mut self, out: &mut Vec<u8>) {
        use prost::encoding::{WireType, encode_key, encode_varint};
        let number = 1_000 + self.below(1_000) as u32;
        match self.below(4) {
            0 => {
                encode_key(number, WireType::Varint, out);
                encode_varint(self.next(), out);
            }
            1 => {
                encode_key(number, WireType::ThirtyTwoBit, out);
                out.extend_from_slice(&(self.next() as u32).to_le_bytes());
            }
            2 => {
                encode_key(number, WireType::SixtyFourBit, out);
                out.extend_from_slice(&self.next().to_le_bytes());
            }
            _ => {
                let len = self.below(20);
                encode_key(number, WireType::LengthDelimited, out);
                encode_varint(len, out);
                for _ in 0..len {
                    out.push(self.next() as u8);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn contract() -> prost_types::FileDescriptorSet {
        prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET)
            .expect("the compiled descriptor set decodes")
    }

    #[test]
    fn every_hand_handled_message_matches_the_contract() {
        let descriptors = contract();
        let problems: Vec<String> = HAND_HANDLED
            .iter()
            .filter_map(|entry| {
                let fields = field_signatures(&descriptors, entry.message);
                mismatch(entry, fields.as_deref())
            })
            .collect();
        assert!(problems.is_empty(), "\n{}\n", problems.join("\n\n"));
    }

    /// The guard itself: a field added, renumbered, retyped, moved into a oneof, made
    /// repeated, or a message removed, each is reported with the message, the field and
    /// the files.
    #[test]
    fn the_guard_names_what_changed() {
        let entry = HAND_HANDLED
            .iter()
            .find(|e| e.message == "evenire.v1.RecordedEvent")
            .expect("RecordedEvent is hand-handled");
        let fields: Vec<String> = entry.fields.iter().map(|f| f.to_string()).collect();
        let changed = |edit: &dyn Fn(&mut Vec<String>)| {
            let mut fields = fields.clone();
            edit(&mut fields);
            mismatch(entry, Some(&fields)).expect("the change is reported")
        };
        let added = changed(&|f| f.push("string correlation_id = 9".into()));
        assert!(added.contains("evenire.v1.RecordedEvent"), "{added}");
        assert!(
            added.contains("`string correlation_id = 9` is new"),
            "{added}"
        );
        assert!(added.contains("proto/outgoing.rs"), "{added}");
        assert!(added.contains("proto/contract.rs"), "{added}");
        let renumbered = changed(&|f| f[2] = "bytes data = 10".into());
        assert!(renumbered.contains("`bytes data = 10`"), "{renumbered}");
        assert!(
            renumbered.contains("`bytes data = 3` is no longer"),
            "{renumbered}"
        );
        let retyped = changed(&|f| f[5] = "uint32 version = 6".into());
        assert!(retyped.contains("`uint32 version = 6`"), "{retyped}");
        let reordered = changed(&|f| f.swap(0, 1));
        assert!(reordered.contains("another order"), "{reordered}");
        let removed = mismatch(entry, None).expect("a removed message is reported");
        assert!(removed.contains("no longer in proto/evenire/v1/evenire.proto"));
        assert_eq!(mismatch(entry, Some(&fields)), None);
    }

    #[test]
    fn signatures_show_labels_oneofs_and_optional_fields() {
        let descriptors = contract();
        let read = field_signatures(&descriptors, "evenire.v1.ReadRequest").expect("ReadRequest");
        assert!(
            read.contains(&"optional uint64 max_count = 5".to_string()),
            "{read:?}"
        );
        assert!(read.iter().any(|f| f.ends_with("(oneof from)")), "{read:?}");
        let filter = field_signatures(&descriptors, "evenire.v1.SubscriptionFilter")
            .expect("SubscriptionFilter");
        assert_eq!(filter[0], "repeated string stream_types = 1");
        assert_eq!(
            field_signatures(&descriptors, "evenire.v1.NoSuchMessage"),
            None
        );
    }
}
