//! The one place lshrec memory-maps files.
//!
//! # Safety contract
//! A memory map is only sound while nobody truncates or rewrites the file underneath it. lshrec
//! never modifies a file in place: every writer goes through [`super::atomic::write_atomic`],
//! which writes a new file and renames it over the old one, so a reader's mapping keeps the old
//! inode alive and unchanged. Before any mapped byte is trusted, the reader checks the file's
//! length against the length its header promises and verifies its checksum (see `read.rs`), so a
//! short file is an error rather than a SIGBUS. Editing a model file in place with another tool
//! while lshrec serves it is outside this contract.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// Maps `path` read-only.
pub fn map(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::corrupt(path, "the file is empty"));
    }
    // SAFETY: see the module's safety contract: lshrec files are replaced by rename, never
    // modified in place, and callers validate length and checksum before using the bytes.
    unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))
}
