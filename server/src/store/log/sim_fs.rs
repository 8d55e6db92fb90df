//! A simulated file system for durability tests, behind the [`Fs`] seam.
//!
//! It keeps, for each file, what was written and what was synced, and which files the
//! directory durably holds. [`SimFs::power_loss`] throws away everything not synced (a
//! file whose creation was not followed by a directory sync vanishes), optionally
//! keeping a torn prefix of the last unsynced write, as a real disk may;
//! [`SimFs::power_loss_scattered`] keeps any unsynced sectors, in no order. It can also
//! fail writes (a full disk) and syncs on demand, and freeze: every operation fails
//! until the simulated machine "reboots", which is how a test stops a running store
//! abruptly.

use super::fs::{Fs, LogFile, ReadAt};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default, Clone)]
struct SimFile {
    /// What a read sees now.
    data: Vec<u8>,
    /// What survives a power loss.
    synced: Vec<u8>,
    /// Whether the directory durably lists it.
    durable_entry: bool,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<PathBuf, SimFile>,
    /// Files removed but whose removal is not durable yet.
    removed: HashMap<PathBuf, SimFile>,
    /// Bytes that may still be written before writes fail with "no space".
    space_left: Option<u64>,
    /// The next data sync fails.
    fail_next_sync: bool,
    /// The next truncate fails.
    fail_next_truncate: bool,
    /// Every operation fails.
    frozen: bool,
    /// Operations left before the machine freezes by itself.
    ops_before_freeze: Option<u64>,
    /// How long a data sync takes before it takes its snapshot of the file.
    sync_time: std::time::Duration,
}

/// The simulated file system. Clones share one disk.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn frozen() -> io::Error {
    io::Error::other("simulated machine is down")
}

impl SimFs {
    /// An empty disk.
    pub fn new() -> Self {
        SimFs::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn live(&self) -> io::Result<MutexGuard<'_, State>> {
        let mut state = self.state();
        match state.ops_before_freeze {
            Some(0) => {
                state.frozen = true;
                state.ops_before_freeze = None;
            }
            Some(left) => state.ops_before_freeze = Some(left - 1),
            None => {}
        }
        if state.frozen {
            return Err(frozen());
        }
        Ok(state)
    }

    /// Makes every operation fail, as if the machine stopped: the store above it can
    /// no longer write or sync anything.
    pub fn freeze(&self) {
        self.state().frozen = true;
    }

    /// Freezes the machine once `ops` more operations have run (reads, writes, syncs,
    /// renames: every call): how a test stops the store at each step of a long
    /// operation in turn.
    pub fn freeze_after(&self, ops: u64) {
        self.state().ops_before_freeze = Some(ops);
    }

    /// Whether the machine froze (by [`SimFs::freeze`] or [`SimFs::freeze_after`]).
    pub fn is_frozen(&self) -> bool {
        self.state().frozen
    }

    /// The power goes: each file falls back to what was synced, keeping
    /// `torn_bytes(unsynced_len)` bytes of what was written after (a torn write); files
    /// not durably in the directory vanish, removals not made durable are undone. The
    /// machine then comes back up.
    pub fn power_loss(&self, mut torn_bytes: impl FnMut(usize) -> usize) {
        self.lose_power(|file| {
            let mut survives = file.synced.clone();
            if file.data.len() > file.synced.len() && file.data.starts_with(&file.synced) {
                let extra = &file.data[file.synced.len()..];
                survives.extend_from_slice(&extra[..torn_bytes(extra.len()).min(extra.len())]);
            }
            survives
        });
    }

    /// The power goes while the disk writes unsynced sectors in any order, as it may
    /// over space a file already has: each 512-byte sector written since the last sync
    /// keeps its new bytes if `keep()` says so and its synced ones (zeros past the
    /// synced end) if not, and a file that grew keeps its new length if `keep()` says
    /// so. Otherwise as [`power_loss`](SimFs::power_loss).
    pub fn power_loss_scattered(&self, mut keep: impl FnMut() -> bool) {
        const SECTOR: usize = 512;
        self.lose_power(|file| {
            let grew = file.data.len() > file.synced.len() && keep();
            let len = if grew {
                file.data.len()
            } else {
                file.synced.len()
            };
            let mut survives = file.synced.clone();
            survives.resize(len, 0);
            for start in (0..len.min(file.data.len())).step_by(SECTOR) {
                let end = (start + SECTOR).min(len).min(file.data.len());
                if survives[start..end] != file.data[start..end] && keep() {
                    survives[start..end].copy_from_slice(&file.data[start..end]);
                }
            }
            survives
        });
    }

    fn lose_power(&self, mut survivor: impl FnMut(&SimFile) -> Vec<u8>) {
        let mut state = self.state();
        // Entries not made durable vanish; then removals (and names renamed over) not
        // made durable come back, in place of whatever took their name since.
        state.files.retain(|_, f| f.durable_entry);
        let removed: Vec<_> = state.removed.drain().collect();
        for (path, file) in removed {
            state.files.insert(path, file);
        }
        for file in state.files.values_mut() {
            let survives = survivor(file);
            file.data = survives.clone();
            file.synced = survives;
        }
        state.frozen = false;
        state.ops_before_freeze = None;
        state.fail_next_sync = false;
        state.fail_next_truncate = false;
    }

    /// Writes fail with "no space left" once `bytes` more have been written; None lifts
    /// the limit.
    pub fn set_space_left(&self, bytes: Option<u64>) {
        self.state().space_left = bytes;
    }

    /// Makes every data sync take `time` before it snapshots the file, as a disk's
    /// does: the writer writes the next group meanwhile, and a freeze then fails the
    /// sync, leaving two groups unsynced.
    pub fn set_sync_time(&self, time: std::time::Duration) {
        self.state().sync_time = time;
    }

    /// The next data sync fails with an I/O error.
    pub fn fail_next_sync(&self) {
        self.state().fail_next_sync = true;
    }

    /// The next truncate fails with an I/O error, as when the writer cuts a failed
    /// write off and the disk refuses that too.
    pub fn fail_next_truncate(&self) {
        self.state().fail_next_truncate = true;
    }

    /// Flips bits of the byte at `offset` of a file, in what is written and in what is
    /// synced alike: damage to the medium, not a torn write.
    pub fn damage(&self, path: &Path, offset: usize, bits: u8) {
        if let Some(file) = self.state().files.get_mut(path) {
            for bytes in [&mut file.data, &mut file.synced] {
                if let Some(byte) = bytes.get_mut(offset) {
                    *byte ^= bits;
                }
            }
        }
    }

    /// The paths of the files on the disk, sorted.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<_> = self.state().files.keys().cloned().collect();
        paths.sort();
        paths
    }

    /// A file's current bytes, for tests that look at the disk.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        self.state().files.get(path).map(|f| f.data.clone())
    }
}

#[derive(Debug)]
struct SimHandle {
    fs: SimFs,
    path: PathBuf,
}

impl SimHandle {
    fn with<T>(&self, f: impl FnOnce(&mut State, &Path) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.fs.live()?;
        f(&mut state, &self.path)
    }
}

fn missing(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} does not exist", path.display()),
    )
}

impl LogFile for SimHandle {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with(|state, path| {
            let mut allowed = buf.len();
            if let Some(left) = state.space_left {
                allowed = allowed.min(usize::try_from(left).unwrap_or(usize::MAX));
                state.space_left = Some(left - allowed as u64);
            }
            let file = state.files.get_mut(path).ok_or_else(|| missing(path))?;
            let start = usize::try_from(offset).map_err(io::Error::other)?;
            let end = start + allowed;
            if file.data.len() < end {
                file.data.resize(end, 0);
            }
            file.data[start..end].copy_from_slice(&buf[..allowed]);
            if allowed < buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "simulated disk full",
                ));
            }
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        let time = self.fs.state().sync_time;
        if !time.is_zero() {
            std::thread::sleep(time);
        }
        self.with(|state, path| {
            if std::mem::take(&mut state.fail_next_sync) {
                return Err(io::Error::other("simulated fsync failure"));
            }
            let file = state.files.get_mut(path).ok_or_else(|| missing(path))?;
            file.synced = file.data.clone();
            Ok(())
        })
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.with(|state, path| {
            if std::mem::take(&mut state.fail_next_truncate) {
                return Err(io::Error::other("simulated truncate failure"));
            }
            let file = state.files.get_mut(path).ok_or_else(|| missing(path))?;
            let len = usize::try_from(len).map_err(io::Error::other)?;
            let freed = file.data.len().saturating_sub(len) as u64;
            file.data.resize(len, 0);
            if let Some(left) = &mut state.space_left {
                *left += freed;
            }
            file.synced = file.data.clone();
            Ok(())
        })
    }
}

impl ReadAt for SimHandle {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with(|state, path| {
            let file = state.files.get(path).ok_or_else(|| missing(path))?;
            let start = usize::try_from(offset).map_err(io::Error::other)?;
            let bytes = file
                .data
                .get(start..start + buf.len())
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
            buf.copy_from_slice(bytes);
            Ok(())
        })
    }

    fn file_len(&self) -> io::Result<u64> {
        self.with(|state, path| {
            let file = state.files.get(path).ok_or_else(|| missing(path))?;
            Ok(file.data.len() as u64)
        })
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        self.live().map(|_| ())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let state = self.live()?;
        Ok(state
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.live()?;
        state
            .files
            .get(path)
            .map(|f| f.data.clone())
            .ok_or_else(|| missing(path))
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        let mut state = self.live()?;
        if state.files.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        state.files.insert(path.to_path_buf(), SimFile::default());
        Ok(Box::new(SimHandle {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        let state = self.live()?;
        if !state.files.contains_key(path) {
            return Err(missing(path));
        }
        Ok(Box::new(SimHandle {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadAt>> {
        let state = self.live()?;
        if !state.files.contains_key(path) {
            return Err(missing(path));
        }
        Ok(Arc::new(SimHandle {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.live()?;
        let file = state.files.remove(path).ok_or_else(|| missing(path))?;
        if file.durable_entry {
            state.removed.insert(path.to_path_buf(), file);
        }
        Ok(())
    }

    /// Until the directory is synced, a power loss undoes it: the old file comes back
    /// under `to`, and so does `from`. Handles are by path here, unlike a real file
    /// system's: one opened on `to` before reads the new file after.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.live()?;
        let mut file = state.files.remove(from).ok_or_else(|| missing(from))?;
        if file.durable_entry {
            state.removed.insert(from.to_path_buf(), file.clone());
        }
        if let Some(replaced) = state.files.remove(to)
            && replaced.durable_entry
        {
            state.removed.insert(to.to_path_buf(), replaced);
        }
        file.durable_entry = false;
        state.files.insert(to.to_path_buf(), file);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.live()?;
        for (path, file) in state.files.iter_mut() {
            if path.parent() == Some(dir) {
                file.durable_entry = true;
            }
        }
        state.removed.retain(|path, _| path.parent() != Some(dir));
        Ok(())
    }

    fn lock(&self, _dir: &Path) -> io::Result<Option<std::fs::File>> {
        // A simulated disk belongs to one test.
        self.live().map(|_| None)
    }
}
