//! The log on disk, the truth the rest is derived from: the record codec, segment
//! files, the file-system seam, recovery at start, offline repair, and restoring a
//! backup.

pub mod fs;
pub mod lost;
pub mod record;
pub mod recovery;
pub mod repair;
pub mod restore;
pub mod segment;
pub mod sim_fs;
pub mod skip;
