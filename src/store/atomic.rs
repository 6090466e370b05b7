//! Atomic file writes: every file lshrec writes goes to a temporary file in the same directory,
//! is flushed and synced, and is then renamed over the destination. A crash leaves either the old
//! file or the new one, never half of either.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary name used while writing `path`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// The data files this process has read (canonical paths): never replaced by a write, so
/// that `data split ratings/train.tsv --out ratings/` cannot overwrite its own input. A set,
/// not a list: a long-lived process (a server, a test suite) reads thousands of files, and
/// each read and each write looks its path up here.
static INPUTS: std::sync::LazyLock<std::sync::Mutex<HashSet<PathBuf>>> =
    std::sync::LazyLock::new(Default::default);

/// The temporary files being written now: what [`remove_unfinished`] removes when the process
/// is interrupted, since no destructor runs then.
static UNFINISHED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// One of the path collections above, locked (a panic elsewhere does not make it unusable).
fn paths<T>(list: &'static std::sync::Mutex<T>) -> std::sync::MutexGuard<'static, T> {
    list.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary file this process is still writing; returns how many there were.
/// For an interrupt (Ctrl-C, or the SIGTERM of a cancelled Slurm or Kubernetes job) just
/// before the process exits: the destinations keep their previous contents, and no
/// half-written `.NAME.tmp-PID` stays behind to fill the disk.
pub fn remove_unfinished() -> usize {
    let tmps = std::mem::take(&mut *paths(&UNFINISHED));
    tmps.iter().filter(|t| fs::remove_file(t).is_ok()).count()
}

/// Records `path` as an input of this process: [`write_atomic`] refuses to replace it.
pub fn protect_input(path: &Path) {
    if let Ok(p) = fs::canonicalize(path) {
        paths(&INPUTS).insert(p);
    }
}

/// Refuses to replace a file this process read as input.
fn check_not_input(path: &Path) -> Result<()> {
    let Ok(p) = fs::canonicalize(path) else {
        return Ok(()); // not there yet: nothing to overwrite
    };
    if paths(&INPUTS).contains(&p) {
        return Err(Error::invalid(
            "--out",
            format!(
                "writing {} would overwrite an input of this command; choose another output",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// Creates `dir` and its parents; a file standing where one of them must go is named as such.
pub fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| match dir_target(dir) {
        Err(in_the_way) => in_the_way,
        Ok(()) => Error::io(dir, e),
    })
}

/// Checks that `dir` can be made a directory (no file stands at it or above it), so that a
/// command finds a wrong `--out` before its work, not after.
pub fn dir_target(dir: &Path) -> Result<()> {
    match dir.ancestors().find(|a| a.is_file()) {
        Some(file) => Err(Error::io(
            file,
            std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "is a file; a directory is needed here",
            ),
        )),
        None => Ok(()),
    }
}

/// Writes `path` atomically with the bytes `f` produces.
pub fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    f(&mut file).map_err(|e| Error::io(path, e))?;
    file.commit()
}

/// A file written piece by piece and renamed into place by [`AtomicFile::commit`]; dropped
/// without a commit (an error, a panic), it removes its temporary file and leaves `path` as it
/// was.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    w: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `path` (creating its directory), refusing to replace an input of this
    /// process.
    pub fn create(path: &Path) -> Result<Self> {
        check_not_input(path)?;
        if path.is_dir() {
            // Found now, not by the rename after all the work.
            let e = std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory; expected the name of a file to write",
            );
            return Err(Error::io(path, e));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir(dir)?;
        }
        let tmp = temp_path(path);
        let file = File::create(&tmp).map_err(|e| Error::io(path, e))?;
        paths(&UNFINISHED).push(tmp.clone());
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            w: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        self.sync()?;
        self.rename()
    }

    /// Flushes and syncs the temporary file, leaving it uncommitted.
    fn sync(&mut self) -> Result<()> {
        let Some(w) = self.w.take() else {
            return Ok(());
        };
        (w.into_inner().map_err(|e| e.into_error()))
            .and_then(|file| file.sync_all())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Renames the (synced) temporary file into place.
    fn rename(self) -> Result<()> {
        fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

/// Commits files that are only right together (an array and the files naming its rows), so
/// that no crash or failure leaves `main` beside companions from another run. Every file is
/// synced first, and any failure there leaves all the destinations as they were. Then the old
/// `main` is removed, the companions are renamed into place, and `main` last: a crash in
/// between leaves no `main` (plainly missing) rather than an old one that mismatches them.
pub fn commit_together(mut main: AtomicFile, mut companions: Vec<AtomicFile>) -> Result<()> {
    main.sync()?;
    companions.iter_mut().try_for_each(AtomicFile::sync)?;
    match fs::remove_file(&main.path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&main.path, e)),
        _ => {}
    }
    companions.into_iter().try_for_each(AtomicFile::rename)?;
    main.rename()
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.as_mut().expect("an uncommitted file").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.as_mut().expect("an uncommitted file").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // An abandoned temporary file must not linger (a committed one was renamed away, so
        // there is nothing to remove). The writer goes first: its drop flushes into the file.
        drop(self.w.take());
        let _ = fs::remove_file(&self.tmp);
        paths(&UNFINISHED).retain(|t| *t != self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, |w| w.write_all(b"old")).unwrap();
        let err = write_atomic(&p, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("crash"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_uncommitted_file_leaves_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, |w| w.write_all(b"old")).unwrap();
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"half of a new").unwrap();
        drop(f);
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn files_committed_together_never_mix_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (main, side) = (dir.path().join("a.npy"), dir.path().join("a.ids.txt"));
        let put = |p: &Path, bytes: &[u8]| {
            let mut f = AtomicFile::create(p).unwrap();
            f.write_all(bytes).unwrap();
            f
        };
        commit_together(put(&main, b"old"), vec![put(&side, b"old ids")]).unwrap();
        commit_together(put(&main, b"new"), vec![put(&side, b"new ids")]).unwrap();
        assert_eq!(fs::read(&main).unwrap(), b"new");
        assert_eq!(fs::read(&side).unwrap(), b"new ids");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        // A companion that cannot be renamed into place (its name is taken by a directory): the
        // old main must not stay beside it, and no temporary file lingers.
        let blocked = dir.path().join("a.more.txt");
        let more = put(&blocked, b"more");
        fs::create_dir(&blocked).unwrap(); // after the start, which refuses a directory
        let err = commit_together(put(&main, b"newer"), vec![put(&side, b"newer ids"), more])
            .unwrap_err();
        assert!(err.to_string().contains("a.more.txt"), "{err}");
        assert!(
            !main.exists(),
            "the old main survived beside new companions"
        );
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a.ids.txt", "a.more.txt"]);
    }

    #[test]
    fn an_input_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ratings.tsv");
        write_atomic(&p, |w| w.write_all(b"data")).unwrap();
        protect_input(&p);
        let err = write_atomic(&dir.path().join(".").join("ratings.tsv"), |w| {
            w.write_all(b"other")
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("would overwrite an input"),
            "{err}"
        );
        assert_eq!(fs::read(&p).unwrap(), b"data");
        write_atomic(&dir.path().join("other.tsv"), |w| w.write_all(b"x")).unwrap();
    }
}
