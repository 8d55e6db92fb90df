//! Backups into a directory: `Client::backup_to(dir)`, what `evenire backup DIR` runs.
//!
//! The directory becomes a data directory (the server's segment files) plus a manifest,
//! `evenire-backup.json`, written last: a directory without one holds a backup that did
//! not finish, whatever its files. The manifest of an earlier backup is removed before
//! any file is touched (once the server has sent its plan: a refused call changes
//! nothing), so an interrupted run never leaves an old manifest beside new files. Run again, a backup sends the caller's files' lengths and tails to the server,
//! which sends only what they lack: an incremental backup, and the resumption of an
//! interrupted one, are the same thing.
//!
//! What the server sends is trusted no further than it must be: every chunk's CRC-32C
//! is checked, every file name must be a segment's (no paths), chunks must follow the
//! plan in order, and each file must end at the plan's length. Every file is synced, and
//! the directory, before the manifest is written; the manifest is written to a temporary
//! name, synced and renamed.

use crate::client::Client;
use crate::error::Error;
use evenire_proto::v1 as pb;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tokio_stream::StreamExt;

/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "evenire-backup.json";

/// What a backup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The backup holds every event at a position below this.
    pub position: u64,
    /// Files in the backup.
    pub files: usize,
    /// Bytes in the backup.
    pub bytes: u64,
    /// Bytes this run fetched: all of them the first time, what is new after that.
    pub fetched: u64,
}

/// A backup directory's manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// 1.
    pub format: u32,
    /// Every event at a position below this is in the backup.
    pub position: u64,
    /// The server's version that sent it.
    pub server_version: String,
    /// When it finished, in seconds since the Unix epoch.
    pub finished_unix_seconds: u64,
    /// The files, in log order.
    pub files: Vec<ManifestFile>,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub name: String,
    pub length: u64,
    /// CRC-32C (Castagnoli) of the whole file.
    pub crc32c: u32,
}

impl Manifest {
    /// Reads `dir`'s manifest; None when there is none.
    pub fn read(dir: &Path) -> Result<Option<Manifest>, Error> {
        let path = dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Local(format!("{} is not a backup manifest: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(local(format!("reading {}", path.display()), e)),
        }
    }
}

/// Whether `name` is a segment file's name: what the server may ask us to write.
pub fn is_segment_name(name: &str) -> bool {
    name.strip_prefix("segment-")
        .and_then(|rest| rest.strip_suffix(".log"))
        .is_some_and(|digits| digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
}

fn local(context: String, e: std::io::Error) -> Error {
    Error::Local(format!("{context}: {e}"))
}

impl Client {
    /// Backs the store up into `dir` (created if missing): all of it the first time,
    /// what is new after that, and the rest of an interrupted run. Needs the `admin`
    /// role. Returns once the manifest is written and synced.
    pub async fn backup_to(&self, dir: impl AsRef<Path>) -> Result<BackupReport, Error> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| local(format!("creating {}", dir.display()), e))?;
        let earlier = Manifest::read(dir)?;
        let held = held_files(dir)?;
        let request = pb::BackupRequest {
            held: held.values().cloned().collect(),
        };
        let mut responses = self.inner.clone().backup(request).await?.into_inner();
        let plan = match responses.next().await {
            Some(Ok(pb::BackupResponse {
                item: Some(pb::backup_response::Item::Plan(plan)),
            })) => plan,
            Some(Err(status)) => return Err(status.into()),
            _ => return Err(bad("the backup did not start with its plan")),
        };
        // The server has begun: from here files change, so the earlier backup no longer
        // stands complete. A refused call leaves it as it was.
        if earlier.is_some() {
            let path = dir.join(MANIFEST);
            std::fs::remove_file(&path)
                .and_then(|()| sync_dir(dir))
                .map_err(|e| local(format!("removing {}", path.display()), e))?;
        }
        let mut writing = Writing::new(dir, &plan)?;
        while let Some(response) = responses.next().await {
            match response?.item {
                Some(pb::backup_response::Item::Chunk(chunk)) => writing.write(chunk)?,
                _ => return Err(bad("a second plan in one backup")),
            }
        }
        let fetched = writing.finish()?;
        let files = manifest_files(dir, &plan, earlier.as_ref(), &writing.touched)?;
        let bytes = files.iter().map(|f| f.length).sum();
        let manifest = Manifest {
            format: 1,
            position: plan.position,
            server_version: plan.server_version.clone(),
            finished_unix_seconds: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            files,
        };
        write_manifest(dir, &manifest)?;
        Ok(BackupReport {
            position: plan.position,
            files: manifest.files.len(),
            bytes,
            fetched,
        })
    }
}

fn bad(what: &str) -> Error {
    Error::BadResponse(what.to_string())
}

/// The segment files in `dir`, each with its length and tail checksum.
fn held_files(dir: &Path) -> Result<BTreeMap<String, pb::BackupHeldFile>, Error> {
    let mut held = BTreeMap::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| local(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| local(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_segment_name(&name) {
            continue;
        }
        let path = entry.path();
        let mut file =
            std::fs::File::open(&path).map_err(|e| local(format!("opening {name}"), e))?;
        let length = file
            .metadata()
            .map_err(|e| local(format!("reading {name}"), e))?
            .len();
        let tail = evenire_proto::backup_tail(length);
        let mut bytes = vec![0; (tail.end - tail.start) as usize];
        file.seek(SeekFrom::Start(tail.start))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| local(format!("reading {name}"), e))?;
        let tail_crc32c = crc32c::crc32c(&bytes);
        held.insert(
            name.clone(),
            pb::BackupHeldFile {
                name,
                length,
                tail_crc32c,
            },
        );
    }
    Ok(held)
}

/// The files of a backup being written, in the plan's order.
struct Writing<'a> {
    dir: &'a Path,
    files: Vec<pb::BackupFile>,
    /// The file chunks go to now, with where the next one starts.
    current: usize,
    next_offset: u64,
    open: Option<std::fs::File>,
    /// Files written to this run.
    touched: Vec<String>,
    fetched: u64,
}

impl<'a> Writing<'a> {
    fn new(dir: &'a Path, plan: &pb::BackupPlan) -> Result<Self, Error> {
        for file in &plan.files {
            if !is_segment_name(&file.name) {
                return Err(bad(&format!(
                    "the plan names `{}`, not a segment",
                    file.name
                )));
            }
            if file.fetch_from > file.length {
                return Err(bad(&format!("the plan starts {} past its end", file.name)));
            }
        }
        let mut writing = Writing {
            dir,
            files: plan.files.clone(),
            current: 0,
            next_offset: 0,
            open: None,
            touched: Vec::new(),
            fetched: 0,
        };
        writing.settle()?;
        Ok(writing)
    }

    /// Moves past the files that need nothing more, opening the next that does.
    fn settle(&mut self) -> Result<(), Error> {
        while let Some(file) = self.files.get(self.current) {
            if self.open.is_none() {
                self.next_offset = file.fetch_from;
                if file.fetch_from == file.length && self.file_len(&file.name)? == file.length {
                    self.current += 1;
                    continue;
                }
                self.open = Some(self.open_at(&file.name, file.fetch_from)?);
                self.touched.push(file.name.clone());
            }
            if self.next_offset < file.length {
                return Ok(());
            }
            self.close()?;
            self.current += 1;
        }
        Ok(())
    }

    fn file_len(&self, name: &str) -> Result<u64, Error> {
        match std::fs::metadata(self.dir.join(name)) {
            Ok(metadata) => Ok(metadata.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(local(format!("reading {name}"), e)),
        }
    }

    /// `name`, cut (or extended) to `len`, for writing from there.
    fn open_at(&self, name: &str, len: u64) -> Result<std::fs::File, Error> {
        let path = self.dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| local(format!("opening {}", path.display()), e))?;
        file.set_len(len)
            .and_then(|()| file.seek(SeekFrom::Start(len)).map(|_| ()))
            .map_err(|e| local(format!("preparing {}", path.display()), e))?;
        Ok(file)
    }

    fn close(&mut self) -> Result<(), Error> {
        if let Some(file) = self.open.take() {
            let name = &self.files[self.current].name;
            file.sync_all()
                .map_err(|e| local(format!("syncing {name}"), e))?;
        }
        Ok(())
    }

    fn write(&mut self, chunk: pb::BackupChunk) -> Result<(), Error> {
        let Some(file) = self.files.get(self.current) else {
            return Err(bad(&format!(
                "a chunk of {} past the plan's end",
                chunk.name
            )));
        };
        if chunk.name != file.name || chunk.offset != self.next_offset {
            return Err(bad(&format!(
                "a chunk of {} at {} where {} at {} was due",
                chunk.name, chunk.offset, file.name, self.next_offset
            )));
        }
        let end = chunk.offset + chunk.data.len() as u64;
        if end > file.length || chunk.data.is_empty() {
            return Err(bad(&format!("a chunk of {} past its length", file.name)));
        }
        if crc32c::crc32c(&chunk.data) != chunk.crc32c {
            return Err(bad(&format!(
                "the chunk of {} at {} failed its checksum",
                file.name, chunk.offset
            )));
        }
        let open = self
            .open
            .as_mut()
            .ok_or_else(|| bad("a chunk of no open file"))?;
        open.write_all(&chunk.data)
            .map_err(|e| local(format!("writing {}", file.name), e))?;
        self.next_offset = end;
        self.fetched += chunk.data.len() as u64;
        self.settle()
    }

    /// Checks every file was completed, removes the segments the backup does not hold,
    /// and syncs the directory; returns the bytes fetched.
    fn finish(&mut self) -> Result<u64, Error> {
        if let Some(file) = self.files.get(self.current) {
            return Err(bad(&format!(
                "the backup ended with {} at {} of {} bytes",
                file.name, self.next_offset, file.length
            )));
        }
        let wanted: HashMap<&str, ()> = self.files.iter().map(|f| (f.name.as_str(), ())).collect();
        for name in held_files(self.dir)?.into_keys() {
            if !wanted.contains_key(name.as_str()) {
                std::fs::remove_file(self.dir.join(&name))
                    .map_err(|e| local(format!("removing {name}"), e))?;
            }
        }
        sync_dir(self.dir).map_err(|e| local(format!("syncing {}", self.dir.display()), e))?;
        Ok(self.fetched)
    }
}

/// Each file's length and CRC-32C: from the earlier manifest for files this run did not
/// touch and whose length it gives, else read from the file.
fn manifest_files(
    dir: &Path,
    plan: &pb::BackupPlan,
    earlier: Option<&Manifest>,
    touched: &[String],
) -> Result<Vec<ManifestFile>, Error> {
    let known: HashMap<&str, &ManifestFile> = earlier
        .map(|m| m.files.iter().map(|f| (f.name.as_str(), f)).collect())
        .unwrap_or_default();
    plan.files
        .iter()
        .map(|file| match known.get(file.name.as_str()) {
            Some(known) if known.length == file.length && !touched.contains(&file.name) => {
                Ok((*known).clone())
            }
            _ => Ok(ManifestFile {
                name: file.name.clone(),
                length: file.length,
                crc32c: file_crc32c(&dir.join(&file.name))?,
            }),
        })
        .collect()
}

/// CRC-32C of a whole file.
pub fn file_crc32c(path: &PathBuf) -> Result<u32, Error> {
    let mut file =
        std::fs::File::open(path).map_err(|e| local(format!("opening {}", path.display()), e))?;
    let mut crc = 0;
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| local(format!("reading {}", path.display()), e))?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), Error> {
    let temporary = dir.join(format!("{MANIFEST}.partial"));
    let text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Local(format!("writing the manifest: {e}")))?;
    let written = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(&text)?;
        file.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&temporary, dir.join(MANIFEST)))
        .and_then(|()| sync_dir(dir))
        .map_err(|e| local(format!("writing {}", dir.join(MANIFEST).display()), e))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
