//! Files on disk, for tests that damage or copy what a server left.

use std::path::{Path, PathBuf};

/// Every file under `dir`, in its subdirectories too.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list a directory").flatten() {
        let path = entry.path();
        match path.is_dir() {
            true => files.extend(files_under(&path)),
            false => files.push(path),
        }
    }
    files
}
