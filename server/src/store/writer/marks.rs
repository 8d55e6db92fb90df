//! Sync marks: durable statements, written into the log itself, of how far the active
//! segment is known to be synced, so that recovery can tell a torn write (never
//! acknowledged, safe to cut) from damage to synced records (perhaps acknowledged: the
//! start must stop), even at the very end of the log (`segment::scan_each`).
//!
//! A mark costs no sync of its own while appends flow: each group's write carries one
//! for the groups synced before it, made durable by that group's own sync. The last
//! groups before a pause have no group after them, so once the writer has been idle for
//! [`IDLE_MARK_DELAY`] it writes and syncs a mark alone. What stays uncovered is what
//! was acknowledged in the last moments before a crash: the groups synced since the
//! last mark, during load one or two groups, and after load stops, at most
//! `IDLE_MARK_DELAY` of them.

use crate::store::log::record::SyncMark;
use std::time::Duration;

/// How long the writer waits, idle with synced groups not yet marked, before it writes
/// and syncs a mark of its own. Long enough that an append arriving right after the
/// last one never waits behind a mark's sync; short enough that little stays uncovered.
pub const IDLE_MARK_DELAY: Duration = Duration::from_millis(50);

/// What the writer knows of the active segment's syncs and marks.
#[derive(Debug)]
pub struct Marks {
    /// Marks are written only when every group is synced (`--fsync always`).
    enabled: bool,
    segment: u32,
    /// Every byte of the segment before this offset is synced.
    synced_end: u64,
    /// The furthest a mark written to the log claims.
    marked_end: u64,
}

impl Marks {
    /// For `segment`, of which nothing is known synced yet: the first group's sync
    /// covers whatever recovery found before it.
    pub fn new(enabled: bool, segment: u32) -> Self {
        Marks {
            enabled,
            segment,
            synced_end: 0,
            marked_end: 0,
        }
    }

    /// A sync of `segment` up to `end` succeeded.
    pub fn synced(&mut self, segment: u32, end: u64) {
        if segment == self.segment {
            self.synced_end = self.synced_end.max(end);
        }
    }

    /// Whether synced bytes are not yet claimed by a mark.
    pub fn pending(&self) -> bool {
        self.enabled && self.synced_end > self.marked_end
    }

    /// A mark to write with a group stamped `created_micros`, if synced bytes are not
    /// yet claimed by one.
    pub fn due(&self, created_micros: i64) -> Option<SyncMark> {
        self.pending().then_some(SyncMark {
            created_micros,
            segment: self.segment,
            synced_end: self.synced_end,
        })
    }

    /// `mark` is in the log (written; its group's sync makes it durable).
    pub fn written(&mut self, mark: &SyncMark) {
        if mark.segment == self.segment {
            self.marked_end = self.marked_end.max(mark.synced_end);
        }
    }

    /// The writer moved to a new segment, synced up to its header.
    pub fn rotated(&mut self, segment: u32) {
        *self = Marks::new(self.enabled, segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_due_once_per_synced_advance_and_only_for_its_segment() {
        let mut marks = Marks::new(true, 3);
        assert_eq!(marks.due(1), None, "nothing synced yet");
        marks.synced(3, 100);
        let mark = marks.due(2).expect("due");
        assert_eq!((mark.segment, mark.synced_end), (3, 100));
        marks.written(&mark);
        assert_eq!(marks.due(3), None, "claimed already");
        marks.synced(2, 500);
        assert_eq!(
            marks.due(4),
            None,
            "another segment's sync says nothing of this one"
        );
        marks.synced(3, 180);
        assert_eq!(marks.due(5).map(|m| m.synced_end), Some(180));
        marks.rotated(4);
        assert_eq!(marks.due(6), None);
        assert_eq!(Marks::new(false, 0).due(1), None);
        let mut off = Marks::new(false, 0);
        off.synced(0, 10);
        assert_eq!(off.due(1), None, "no marks without --fsync always");
    }
}
