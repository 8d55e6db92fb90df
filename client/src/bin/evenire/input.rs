//! Reading what the user typed: stream names, expected versions, events.

use crate::Failure;
use evenire_client::{EventData, ExpectedVersion, StreamId};
use std::io::BufRead;

/// `TYPE/KEY`. The key is a UUID, so the type is everything before the last `/`.
pub fn stream_id(text: &str) -> Result<StreamId, Failure> {
    let (stream_type, key) = text.rsplit_once('/').ok_or_else(|| {
        Failure::Usage(format!("`{text}` is not a stream: write it as TYPE/KEY, e.g. order/7d0c3a4e-8a5f-4b44-9f0e-1f6d2a3b4c5d"))
    })?;
    let key = uuid::Uuid::try_parse(key)
        .map_err(|_| Failure::Usage(format!("`{key}` in `{text}` is not a UUID")))?;
    if stream_type.is_empty() {
        return Err(Failure::Usage(format!(
            "`{text}` has no stream type before the /"
        )));
    }
    Ok(StreamId::new(key, stream_type))
}

/// `any`, `no-stream`, `exists`, or a version number.
pub fn expected_version(text: &str) -> Result<ExpectedVersion, Failure> {
    match text {
        "any" => Ok(ExpectedVersion::Any),
        "no-stream" => Ok(ExpectedVersion::NoStream),
        "exists" => Ok(ExpectedVersion::StreamExists),
        number => number.parse().map(ExpectedVersion::Exact).map_err(|_| {
            Failure::Usage(format!(
                "--expect {text}: use any, no-stream, exists, or a version number"
            ))
        }),
    }
}

/// Inline text, or a file's bytes for `@FILE`.
/// The bytes `argument` gives `flag`: a file's for `@FILE`; else the text, which must
/// parse as JSON when it looks like JSON (starts with `{` or `[`) unless `raw`: a typo
/// in a JSON payload is a usage error, not stored bytes.
pub fn bytes_of(argument: &str, flag: &str, raw: bool) -> Result<Vec<u8>, Failure> {
    if let Some(path) = argument.strip_prefix('@') {
        return std::fs::read(path)
            .map_err(|e| Failure::Usage(format!("{flag} @{path}: cannot read it: {e}")));
    }
    let looks_like_json = argument.trim_start().starts_with(['{', '[']);
    if looks_like_json && !raw {
        serde_json::from_str::<serde_json::Value>(argument).map_err(|e| {
            Failure::Usage(format!(
                "{flag} looks like JSON but does not parse ({e}); give --raw to store the \
                 text as it is"
            ))
        })?;
    }
    Ok(argument.as_bytes().to_vec())
}

/// One event from the command line.
pub fn event(
    event_type: &str,
    data: Option<&str>,
    metadata: Option<&str>,
    raw: bool,
) -> Result<EventData, Failure> {
    let data = data
        .map(|d| bytes_of(d, "--data", raw))
        .transpose()?
        .unwrap_or_default();
    let mut event = EventData::new(event_type, data);
    if let Some(metadata) = metadata {
        event = event.with_metadata(bytes_of(metadata, "--metadata", raw)?);
    }
    Ok(event)
}

/// Events from JSON Lines in a file, or stdin for `-`.
pub fn json_lines(source: &str) -> Result<Vec<EventData>, Failure> {
    let reader: Box<dyn BufRead> = if source == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(source)
            .map_err(|e| Failure::Usage(format!("--jsonl {source}: cannot open it: {e}")))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut events = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let at = || format!("--jsonl {source} line {}", number + 1);
        let line = line.map_err(|e| Failure::Usage(format!("{}: {e}", at())))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| Failure::Usage(format!("{}: not JSON: {e}", at())))?;
        let event_type = value
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or_else(|| Failure::Usage(format!("{}: needs a \"type\" string", at())))?;
        let data = value.get("data").map(|d| d.to_string()).unwrap_or_default();
        let mut event = EventData::new(event_type, data);
        if let Some(metadata) = value.get("metadata") {
            event = event.with_metadata(metadata.to_string());
        }
        if let Some(id) = value.get("id") {
            let id = id
                .as_str()
                .and_then(|i| uuid::Uuid::try_parse(i).ok())
                .ok_or_else(|| Failure::Usage(format!("{}: \"id\" is not a UUID", at())))?;
            event = event.with_id(id);
        }
        events.push(event);
    }
    if events.is_empty() {
        return Err(Failure::Usage(format!("--jsonl {source}: no events")));
    }
    Ok(events)
}

/// A duration in seconds such as `30d`, `12h`, `90m`, `45s` or `45`.
pub fn seconds(text: &str) -> Result<u64, Failure> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || {
        Failure::Usage(format!(
            "`{text}` is not a duration: use a whole number with s, m, h or d, as in `30d`"
        ))
    };
    let multiplier: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(bad)
}

/// A size such as `50MiB`, `512KiB`, `1GB` or a number of bytes.
pub fn byte_size(text: &str) -> Result<u64, Failure> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(bad_size(text)),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| bad_size(text))
}

fn bad_size(text: &str) -> Failure {
    Failure::Usage(format!(
        "`{text}` is not a size: use a number of bytes, or one with KiB, MiB, GiB, KB, MB or GB"
    ))
}
