//! Printing results: aligned tables for people, JSON (one object per line for lists)
//! for scripts. Event data is shown as JSON when it parses as JSON, else as base64.

use base64::Engine;
use evenire_client::{
    AppendResult, RecordedEvent, ServerInfo, ServerState, StoreFigures, StreamId, StreamInfo,
    StreamState,
};
use serde_json::{Value, json};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// `println!` for results: when whoever reads them has gone (`evenire tail | head -1`),
/// the program ends quietly with status 0, as Unix tools do, rather than panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}

/// One line of results on stdout; see [`say!`].
pub fn write_line(line: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("evenire: cannot write the results: {e}");
            std::process::exit(1);
        }
    }
}

/// Prints in the chosen style.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub json: bool,
}

/// Rows printed as they come (JSON) or aligned at the end (tables).
pub struct Table<T> {
    json: bool,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    render: fn(&T) -> (Vec<String>, Value),
    /// Live output: the column widths so far, and whether the header is out.
    widths: Vec<usize>,
    header_printed: bool,
}

impl<T> Table<T> {
    /// Adds a row for `item`.
    pub fn row(&mut self, item: &T) {
        let (cells, value) = (self.render)(item);
        if self.json {
            say!("{value}");
        } else {
            self.rows.push(cells);
        }
    }

    /// Prints what is buffered now, for live output: the header once, before the
    /// first row; columns widen as wider cells come.
    pub fn flush(&mut self) {
        if !self.json && !self.rows.is_empty() {
            let header = (!self.header_printed).then_some(self.header.as_slice());
            print_aligned(header, &self.rows, &mut self.widths);
            self.header_printed = true;
            self.rows.clear();
        }
        let _ = std::io::stdout().flush();
    }

    /// Prints the table.
    pub fn finish(mut self) {
        if !self.json {
            if self.rows.is_empty() {
                eprintln!("(none)");
            } else {
                print_aligned(Some(&self.header), &self.rows, &mut self.widths);
            }
            self.rows.clear();
        }
    }
}

/// Prints `rows` (under `header`, when given) with columns at least `widths` wide,
/// which grow to fit them.
fn print_aligned(header: Option<&[&str]>, rows: &[Vec<String>], widths: &mut Vec<usize>) {
    let columns = header.map_or_else(|| rows.first().map_or(0, Vec::len), <[_]>::len);
    widths.resize(widths.len().max(columns), 0);
    for (width, cell) in widths.iter_mut().zip(header.unwrap_or_default()) {
        *width = (*width).max(cell.len());
    }
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let widths = &*widths;
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == widths.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        say!("{}", out.trim_end());
    };
    if let Some(header) = header {
        line(&mut header.iter().copied());
    }
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

fn stream_name(stream: &StreamId) -> String {
    format!("{}/{}", stream.stream_type, stream.key)
}

fn state_name(state: StreamState) -> &'static str {
    match state {
        StreamState::Live => "live",
        StreamState::Deleted => "deleted",
        StreamState::Tombstoned => "tombstoned",
    }
}

fn or_dash(value: Option<u64>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

fn info_json(info: &StreamInfo) -> Value {
    json!({
        "stream": stream_name(&info.stream),
        "version": info.version,
        "event_count": info.event_count,
        "first_position": info.first_position,
        "last_position": info.last_position,
        "created": rfc3339(info.created),
        "last_appended": rfc3339(info.last_appended),
        "state": state_name(info.state),
        "rules": rules_json(&info.rules),
        "rules_revision": info.rules_revision,
        "rules_are_type_default": info.rules_are_type_default,
    })
}

fn rules_json(rules: &evenire_client::StreamRules) -> Value {
    json!({
        "max_count": rules.max_count,
        "truncate_before": rules.truncate_before,
        "max_age_seconds": rules.max_age_seconds,
    })
}

/// A stream's rules as one line: `max count 3, truncate before 10, max age 30d`, or
/// `none`.
fn rules_text(rules: &evenire_client::StreamRules) -> String {
    let mut parts = Vec::new();
    if let Some(count) = rules.max_count {
        parts.push(format!("max count {count}"));
    }
    if let Some(version) = rules.truncate_before {
        parts.push(format!("truncate before {version}"));
    }
    if let Some(seconds) = rules.max_age_seconds {
        parts.push(format!("max age {}", age_text(seconds)));
    }
    match parts.is_empty() {
        true => "none".to_string(),
        false => parts.join(", "),
    }
}

/// Seconds in the largest unit that divides them: `30d`, `90m`, `45s`.
fn age_text(seconds: u64) -> String {
    let (unit, size) = [("d", 86_400), ("h", 3_600), ("m", 60)]
        .into_iter()
        .find(|(_, size)| seconds.is_multiple_of(*size))
        .unwrap_or(("s", 1));
    format!("{}{unit}", seconds / size)
}

fn render_stream(info: &StreamInfo) -> (Vec<String>, Value) {
    let cells = vec![
        stream_name(&info.stream),
        info.version.to_string(),
        info.event_count.to_string(),
        state_name(info.state).to_string(),
        rfc3339(info.last_appended),
    ];
    (cells, info_json(info))
}

/// Data or metadata as JSON when it parses, else as base64 (tables mark it so).
fn payload(bytes: &[u8]) -> (String, Option<Value>) {
    if bytes.is_empty() {
        return (String::new(), Some(Value::Null));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => (value.to_string(), Some(value)),
        Err(_) => (
            format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ),
            None,
        ),
    }
}

fn render_event(event: &RecordedEvent) -> (Vec<String>, Value) {
    let (data_text, data_json) = payload(&event.data);
    let mut value = json!({
        "stream": stream_name(&event.stream),
        "version": event.version,
        "position": event.position,
        "id": event.id.to_string(),
        "type": event.event_type,
        "created": rfc3339(event.created),
    });
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match data_json {
        Some(data) => value["data"] = data,
        None => value["data_base64"] = Value::String(encode(&event.data)),
    }
    match payload(&event.metadata).1 {
        Some(metadata) => value["metadata"] = metadata,
        None => value["metadata_base64"] = Value::String(encode(&event.metadata)),
    }
    let cells = vec![
        stream_name(&event.stream),
        event.version.to_string(),
        event.position.to_string(),
        event.event_type.clone(),
        rfc3339(event.created),
        data_text,
    ];
    (cells, value)
}

impl Printer {
    /// A table of streams.
    pub fn streams_table(self) -> Table<StreamInfo> {
        Table {
            json: self.json,
            header: vec!["STREAM", "VERSION", "EVENTS", "STATE", "LAST APPENDED"],
            rows: Vec::new(),
            render: render_stream,
            widths: Vec::new(),
            header_printed: false,
        }
    }

    /// A table of events.
    pub fn events_table(self) -> Table<RecordedEvent> {
        Table {
            json: self.json,
            header: vec!["STREAM", "VERSION", "POSITION", "TYPE", "CREATED", "DATA"],
            rows: Vec::new(),
            render: render_event,
            widths: Vec::new(),
            header_printed: false,
        }
    }

    /// One stream's info.
    pub fn info(self, info: &StreamInfo) {
        if self.json {
            say!("{}", info_json(info));
            return;
        }
        let rows = [
            ("stream", stream_name(&info.stream)),
            ("state", state_name(info.state).to_string()),
            ("version", info.version.to_string()),
            ("events", info.event_count.to_string()),
            ("first position", or_dash(info.first_position)),
            ("last position", or_dash(info.last_position)),
            ("created", rfc3339(info.created)),
            ("last appended", rfc3339(info.last_appended)),
            (
                "rules",
                format!(
                    "{} ({})",
                    rules_text(&info.rules),
                    match info.rules_are_type_default {
                        true => "its type's default".to_string(),
                        false => format!("revision {}", info.rules_revision),
                    }
                ),
            ),
        ];
        for (name, value) in rows {
            say!("{name:<15} {value}");
        }
    }

    /// What an append did.
    pub fn appended(self, stream: &StreamId, count: usize, result: &AppendResult) {
        if self.json {
            let value = json!({"stream": stream_name(stream), "events": count,
                "version": result.version, "position": result.position});
            say!("{value}");
        } else {
            say!(
                "appended {count} event(s) to {}: version {}, position {}",
                stream_name(stream),
                result.version,
                result.position
            );
        }
    }

    /// What a delete did.
    pub fn deleted(self, stream: &StreamId, tombstone: bool, through: u64) {
        let how = if tombstone { "tombstoned" } else { "deleted" };
        if self.json {
            let value = json!({"stream": stream_name(stream), "state": how, "deleted_through_version": through});
            say!("{value}");
        } else {
            say!("{how} {} through version {through}", stream_name(stream));
        }
    }

    /// What a backup did.
    pub fn backed_up(self, dir: &std::path::Path, report: &evenire_client::backup::BackupReport) {
        if self.json {
            let value = json!({
                "dir": dir.display().to_string(),
                "position": report.position,
                "files": report.files,
                "bytes": report.bytes,
                "fetched": report.fetched,
            });
            say!("{value}");
        } else {
            say!(
                "backed up to {}: positions below {}, {} file(s), {} bytes; fetched {} bytes",
                dir.display(),
                report.position,
                report.files,
                report.bytes,
                report.fetched
            );
        }
    }

    /// A scavenge's report after a segment: on stderr, so that stdout has only the
    /// outcome.
    pub fn scavenge_progress(self, report: &evenire_client::ScavengeReport) {
        if report.done {
            return;
        }
        eprintln!(
            "segment {}/{}: {} bytes read, {} freed{}",
            report.segments_done,
            report.segments_total,
            report.bytes_read,
            report.bytes_freed,
            if report.dry_run { " (dry run)" } else { "" }
        );
    }

    /// A scavenge's outcome, by stream type.
    pub fn scavenged(self, report: &evenire_client::ScavengeReport) {
        if self.json {
            let by_type: Vec<_> = report
                .by_type
                .iter()
                .map(
                    |t| json!({"stream_type": t.stream_type, "events": t.events, "bytes": t.bytes}),
                )
                .collect();
            let value = json!({
                "dry_run": report.dry_run,
                "segments": report.segments_total,
                "segments_rewritten": report.segments_rewritten,
                "segments_skipped": report.segments_skipped,
                "bytes_read": report.bytes_read,
                "bytes_freed": report.bytes_freed,
                "events_reclaimed": report.events_reclaimed,
                "by_type": by_type,
            });
            say!("{value}");
            return;
        }
        let (verb, rewritten) = match report.dry_run {
            true => ("would free", "would rewrite"),
            false => ("freed", "rewrote"),
        };
        say!(
            "{verb} {} bytes and {} events; {rewritten} {} of {} segments{}",
            report.bytes_freed,
            report.events_reclaimed,
            report.segments_rewritten,
            report.segments_total,
            match report.segments_skipped {
                0 => String::new(),
                n => format!(" ({n} left for next time: rules changed meanwhile)"),
            }
        );
        for t in &report.by_type {
            say!(
                "  {}: {} events, {} bytes",
                t.stream_type,
                t.events,
                t.bytes
            );
        }
    }

    /// Rules set.
    pub fn rules_set(self, stream: &StreamId, rules: &evenire_client::StreamRules, revision: u64) {
        if self.json {
            let value = json!({
                "stream": stream_name(stream),
                "rules": rules_json(rules),
                "rules_revision": revision,
            });
            say!("{value}");
        } else {
            say!(
                "rules of {}: {} (revision {revision})",
                stream_name(stream),
                rules_text(rules)
            );
        }
    }

    /// A snapshot saved.
    pub fn snapshot_saved(self, stream: &StreamId, version: u64) {
        if self.json {
            say!(
                "{}",
                json!({"stream": stream_name(stream), "snapshot_version": version})
            );
        } else {
            say!(
                "saved a snapshot of {} at version {version}",
                stream_name(stream)
            );
        }
    }

    /// A stream read from its latest snapshot: the snapshot's line, then the events.
    pub fn snapshot(self, snapshot: Option<&evenire_client::Snapshot>, events: &[RecordedEvent]) {
        match (snapshot, self.json) {
            (Some(snapshot), true) => {
                let mut value = json!({
                    "snapshot": stream_name(&snapshot.stream),
                    "version": snapshot.version,
                    "type": snapshot.snapshot_type,
                    "created": rfc3339(snapshot.created),
                });
                match payload(&snapshot.data).1 {
                    Some(data) => value["data"] = data,
                    None => {
                        let encoded =
                            base64::engine::general_purpose::STANDARD.encode(&snapshot.data);
                        value["data_base64"] = Value::String(encoded);
                    }
                }
                say!("{value}");
            }
            (Some(snapshot), false) => say!(
                "snapshot at version {} ({}, {}): {}",
                snapshot.version,
                snapshot.snapshot_type,
                rfc3339(snapshot.created),
                payload(&snapshot.data).0
            ),
            (None, false) => say!("no snapshot: every event follows"),
            (None, true) => {}
        }
        let mut table = self.events_table();
        for event in events {
            table.row(event);
        }
        table.finish();
    }

    /// What the server is and how it stands.
    pub fn server_info(self, info: &ServerInfo) {
        let state = match info.state {
            ServerState::Starting => "starting",
            ServerState::Serving => "serving",
            ServerState::RefusingWrites => "refusing writes",
            ServerState::Stopping => "stopping",
        };
        let store = info.store.as_ref();
        if self.json {
            let value = json!({
                "version": info.version,
                "backend": info.backend,
                "started": rfc3339(info.started),
                "state": state,
                "write_refusal": info.write_refusal,
                "store": store.map(|store| json!({
                    "streams": store.streams,
                    "events": store.events,
                    "log_bytes": store.log_bytes,
                    "log_segments": store.log_segments,
                })),
            });
            say!("{value}");
            return;
        }
        let figure = |pick: fn(&StoreFigures) -> Option<u64>| or_dash(store.and_then(pick));
        let rows = [
            ("version", info.version.clone()),
            ("backend", info.backend.clone()),
            ("started", rfc3339(info.started)),
            ("state", state.to_string()),
            (
                "write refusal",
                info.write_refusal.clone().unwrap_or_else(|| "-".into()),
            ),
            ("streams", figure(|s| Some(s.streams))),
            ("events", figure(|s| Some(s.events))),
            ("log bytes", figure(|s| s.log_bytes)),
            ("log segments", figure(|s| s.log_segments)),
        ];
        for (name, value) in rows {
            say!("{name:<15} {value}");
        }
    }

    /// The health check's answer.
    pub fn health(self, server: &str, status: &str) {
        if self.json {
            say!("{}", json!({"server": server, "status": status}));
        } else {
            say!("{server}: {status}");
        }
    }
}

/// A time as RFC 3339 in UTC with milliseconds, e.g. 2026-11-26T05:53:12.662Z.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}
