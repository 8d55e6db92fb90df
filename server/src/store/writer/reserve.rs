//! Space written ahead of the log, so that a small group's `fdatasync` writes its data
//! and nothing else.
//!
//! An append that grows the file makes its `fdatasync` write the inode too (the new
//! size, and on ext4 the new blocks), a second I/O on the path of every acknowledgement.
//! So the writer keeps zeros written past the end of the log: a group that fits in them
//! overwrites blocks the file already has, and its sync writes only those. Zeros are
//! written 256 KiB at a time (one group in hundreds of small ones pays for writing
//! them) and only for groups under 16 KiB: past that, writing every byte twice costs
//! more than the inode write it saves (BENCHMARKS.md has the trials), so a larger group
//! grows the file itself.
//!
//! Overwriting space means the disk may keep the pages of an unsynced group in any
//! order at a power loss; `segment::scan_each` has the rule that tells that outcome
//! from damage. The zeros never outlive the writer that wrote them: rotation and a
//! clean shutdown cut the segment back to its records, and recovery cuts what a crash
//! left, so the log on disk ends with its last record whenever no writer runs.

use crate::store::log::fs::LogFile;
use std::io;

/// Zeros written past the end of a small group when it would not fit in those already
/// there.
pub const RESERVE_AHEAD: usize = 256 << 10;

/// Groups at least this large grow the file instead.
pub const SMALL_GROUP: usize = 16 << 10;

/// Enough for the most one call writes: a small group's bytes past the written space,
/// and the space ahead of it.
static ZEROS: [u8; SMALL_GROUP + RESERVE_AHEAD] = [0; SMALL_GROUP + RESERVE_AHEAD];

/// Makes room in written space for a group of `len` bytes at `at`, in a file whose
/// written space ends at `reserved_end`; returns where it ends now.
pub fn make_room(file: &dyn LogFile, at: u64, len: usize, reserved_end: u64) -> io::Result<u64> {
    let end = at + len as u64;
    if end <= reserved_end {
        return Ok(reserved_end);
    }
    if len >= SMALL_GROUP {
        return Ok(end);
    }
    // From the end of what is written, so that no hole is left before the group.
    let from = reserved_end.max(at);
    let new_end = end + RESERVE_AHEAD as u64;
    let zeros = &ZEROS[..(new_end - from) as usize];
    if file.write_all_at(zeros, from).is_err() {
        // A disk with room for the group but not for the zeros still takes the group:
        // it grows the file, as without space written ahead.
        file.truncate(from)?;
        return Ok(end);
    }
    Ok(new_end)
}
