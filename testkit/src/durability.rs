//! The check of a whole log against what its clients sent and were told, after a
//! crash or a power loss: the kill -9 harness (through gRPC) and the power-loss
//! simulation (on the store) read their logs their own way and hand them here.

use evenire_client::{Client, Direction, ReadAllFrom, RecordedEvent};
use std::collections::{HashMap, HashSet};
use tokio_stream::StreamExt;
use uuid::Uuid;

/// The whole log a server holds, through `ReadAll` from the start; panics if any event
/// fails to read (a served event is never damaged).
pub async fn read_log(client: &Client) -> Vec<RecordedEvent> {
    let mut events = client
        .read_all(ReadAllFrom::Start, Direction::Forward, None)
        .await
        .expect("read_all");
    let mut out = Vec::new();
    while let Some(event) = events.next().await {
        out.push(event.expect("every stored event reads back undamaged"));
    }
    out
}

/// An event as found in the log.
#[derive(Debug, Clone, Copy)]
pub struct Logged<'a> {
    pub id: Uuid,
    /// The stream's name, as its `Display` writes it.
    pub stream: &'a str,
    pub version: u64,
    pub position: u64,
    pub data: &'a [u8],
}

/// One append as a client sent it, and what it heard back.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The stream's name, as its `Display` writes it.
    pub stream: String,
    pub ids: Vec<Uuid>,
    pub data: Vec<Vec<u8>>,
    /// Version and position of the last event, if the append was acknowledged.
    pub acked: Option<(u64, u64)>,
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Appends acknowledged: every one of them is in the log, where it was told.
    pub acknowledged: usize,
    /// Appends found in the log, acknowledged or not, each whole and unchanged.
    pub verified: usize,
}

/// Checks `log` (the whole log, in position order) against everything `sent`: positions
/// gapless from 0, each stream's versions contiguous from 0, no event twice or never
/// sent, every append whole or absent, every acknowledged one present where it was told,
/// contiguous in its stream and unchanged. The error names the first violation.
pub fn verify(log: &[Logged<'_>], sent: &[Sent]) -> Result<Checked, String> {
    if let Some((i, e)) = log
        .iter()
        .enumerate()
        .find(|(i, e)| e.position != *i as u64)
    {
        return Err(format!(
            "$all positions are not gapless: event {} is at position {} where {i} was due",
            e.id, e.position
        ));
    }
    verify_streams(log, sent)
}

/// [`verify`] for a log some of whose events were deleted and may have been reclaimed
/// by a scavenge (`log` holds the rest): positions only rise, with gaps where reclaimed
/// events were; the rest as `verify` checks it.
pub fn verify_with_gaps(log: &[Logged<'_>], sent: &[Sent]) -> Result<Checked, String> {
    if let Some(pair) = log.windows(2).find(|w| w[1].position <= w[0].position) {
        return Err(format!(
            "$all positions do not rise: {} at {} follows {} at {}",
            pair[1].id, pair[1].position, pair[0].id, pair[0].position
        ));
    }
    verify_streams(log, sent)
}

fn verify_streams(log: &[Logged<'_>], sent: &[Sent]) -> Result<Checked, String> {
    let mut next_version: HashMap<&str, u64> = HashMap::new();
    let mut stored: HashMap<Uuid, &Logged<'_>> = HashMap::new();
    for event in log {
        let expected = next_version.entry(event.stream).or_insert(0);
        if event.version != *expected {
            return Err(format!(
                "versions of {} are not contiguous: {} where {expected} was due",
                event.stream, event.version
            ));
        }
        *expected += 1;
        if stored.insert(event.id, event).is_some() {
            return Err(format!("event {} is stored twice", event.id));
        }
    }
    let all_sent: HashSet<Uuid> = sent.iter().flat_map(|s| s.ids.iter().copied()).collect();
    if let Some(id) = stored.keys().find(|id| !all_sent.contains(id)) {
        return Err(format!("event {id}, never sent, is in the log"));
    }
    let mut checked = Checked {
        acknowledged: 0,
        verified: 0,
    };
    for append in sent {
        let found: Vec<_> = append.ids.iter().filter_map(|id| stored.get(id)).collect();
        if !found.is_empty() && found.len() != append.ids.len() {
            return Err(format!("half of a batch is in the log: {append:?}"));
        }
        if let Some((version, position)) = append.acked {
            checked.acknowledged += 1;
            let Some(last) = found.last() else {
                return Err(format!("an acknowledged append was lost: {append:?}"));
            };
            if (last.version, last.position) != (version, position) {
                return Err(format!(
                    "an acknowledged append moved to version {}, position {}: {append:?}",
                    last.version, last.position
                ));
            }
        }
        if let Some(first) = found.first() {
            for (i, (event, data)) in found.iter().zip(&append.data).enumerate() {
                if event.stream != append.stream || event.version != first.version + i as u64 {
                    return Err(format!(
                        "a batch is not contiguous in its stream: {append:?}"
                    ));
                }
                if event.data != data.as_slice() {
                    return Err(format!("event {} changed: {append:?}", event.id));
                }
            }
            checked.verified += 1;
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(stream: &str, ids: &[Uuid], acked: Option<(u64, u64)>) -> Sent {
        Sent {
            stream: stream.into(),
            ids: ids.to_vec(),
            data: ids.iter().map(|id| id.as_bytes().to_vec()).collect(),
            acked,
        }
    }

    fn logged<'a>(sent: &'a Sent, first_position: u64, first_version: u64) -> Vec<Logged<'a>> {
        (0..sent.ids.len())
            .map(|i| Logged {
                id: sent.ids[i],
                stream: &sent.stream,
                version: first_version + i as u64,
                position: first_position + i as u64,
                data: &sent.data[i],
            })
            .collect()
    }

    #[test]
    fn a_log_that_kept_its_promises_passes_and_each_broken_promise_is_named() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        let a = sent("s/a", &ids[..2], Some((1, 1)));
        let b = sent("s/b", &ids[2..4], None);
        let c = sent("s/a", &ids[4..], None);
        let mut log = logged(&a, 0, 0);
        log.extend(logged(&b, 2, 0));
        let all = [a.clone(), b.clone(), c.clone()];
        assert_eq!(
            verify(&log, &all),
            Ok(Checked {
                acknowledged: 1,
                verified: 2
            })
        );

        let lost = verify(&log[2..], &all).expect_err("an acknowledged append is missing");
        assert!(lost.contains("positions"), "{lost}");
        let mut half = log.clone();
        half.pop();
        assert!(
            verify(&half, &all)
                .expect_err("half")
                .contains("half of a batch")
        );
        let mut changed = log.clone();
        changed[1].data = b"other";
        assert!(
            verify(&changed, &all)
                .expect_err("changed")
                .contains("changed")
        );
        let mut acked_c = all.clone();
        acked_c[2].acked = Some((2, 4));
        assert!(
            verify(&log, &acked_c)
                .expect_err("lost")
                .contains("was lost")
        );
        let mut moved = all.clone();
        moved[0].acked = Some((1, 7));
        assert!(verify(&log, &moved).expect_err("moved").contains("moved"));
        assert!(
            verify(&log, &all[..1])
                .expect_err("stray")
                .contains("never sent")
        );
    }
}
