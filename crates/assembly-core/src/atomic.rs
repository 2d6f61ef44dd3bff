//! Atomic output files: write to a temp file beside the destination, then rename into place.
//!
//! Nothing partial ever appears under the final name. [`AtomicFile`] creates a uniquely named
//! temp file (`.<name>.tmp-<pid>-<n>`) **in the destination folder** (so the final rename never
//! crosses file systems), hands out a buffered `Write + Seek` handle, and on
//! [`commit`](AtomicFile::commit) flushes, fsyncs, renames and (on unix) fsyncs the folder.
//! Dropping it without `commit` removes the temp file. Encoders, sidecars and checkpoints all
//! write through it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Buffer size of the write handle, in bytes.
const BUFFER_BYTES: usize = 256 * 1024;

/// How many differently named temp files to try before giving up.
const CREATE_ATTEMPTS: u32 = 64;

/// Per-process counter that makes temp names unique among threads.
static NEXT_TEMP_ID: AtomicU64 = AtomicU64::new(0);

/// A file being written under a temp name, renamed to its final name on [`commit`](Self::commit).
///
/// Implements [`Write`] and [`Seek`] (buffered). Dropping it without `commit` deletes the temp
/// file, so a failed or cancelled run leaves nothing behind.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use assembly_core::AtomicFile;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("report.json");
/// let mut f = AtomicFile::create(&path).unwrap();
/// f.write_all(b"{}").unwrap();
/// assert!(!path.exists()); // not visible before commit
/// f.commit().unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{}");
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    /// `None` once committed (or while dropping).
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates a new, empty temp file in `final_path`'s folder.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `final_path` has no file name; [`Error::Io`] naming
    /// `final_path` if the temp file cannot be created (missing folder, no permission, …).
    pub fn create(final_path: impl AsRef<Path>) -> Result<Self> {
        let final_path = final_path.as_ref().to_path_buf();
        let Some(name) = final_path.file_name() else {
            return Err(Error::invalid_input(
                "path",
                format!("{} has no file name", final_path.display()),
            ));
        };
        let dir = parent_dir(&final_path);
        let pid = std::process::id();
        let mut last_err = None;
        for _ in 0..CREATE_ATTEMPTS {
            let n = NEXT_TEMP_ID.fetch_add(1, Ordering::Relaxed);
            let mut temp_name = std::ffi::OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(".tmp-{pid}-{n}"));
            let temp_path = dir.join(temp_name);
            match OpenOptions::new().write(true).read(true).create_new(true).open(&temp_path) {
                Ok(file) => {
                    return Ok(Self {
                        final_path,
                        temp_path,
                        writer: Some(BufWriter::with_capacity(BUFFER_BYTES, file)),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(Error::io("create temporary file for", &final_path, e)),
            }
        }
        Err(Error::io(
            "create temporary file for",
            &final_path,
            last_err.unwrap_or_else(|| io::Error::other("no unique temporary name found")),
        ))
    }

    /// The path the file will have after [`commit`](Self::commit).
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// The temp file's path (in the same folder as the final path).
    pub fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    /// A second, unbuffered handle to the same temp file (shared offset), for writers that must
    /// own their output (hound). Flush this handle's buffer before using the clone.
    pub(crate) fn try_clone_file(&mut self) -> Result<File> {
        let w = self.writer_mut()?;
        w.flush().map_err(|e| Error::io("write", &self.temp_path, e))?;
        let file = self.writer_ref()?.get_ref();
        file.try_clone().map_err(|e| Error::io("duplicate handle of", &self.temp_path, e))
    }

    /// Flushes, fsyncs, renames the temp file to the final path and (on unix) fsyncs the folder
    /// (best effort: a folder fsync the file system refuses is ignored, the file is in place).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the path if flushing, fsyncing or renaming fails; the temp file is
    /// then removed and the final path is left as it was.
    pub fn commit(mut self) -> Result<()> {
        let writer = self.writer.take().ok_or_else(|| Error::internal("atomic file reused"))?;
        let file = writer
            .into_inner()
            .map_err(|e| Error::io("write", &self.final_path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io("sync", &self.final_path, e))?;
        drop(file);
        std::fs::rename(&self.temp_path, &self.final_path)
            .map_err(|e| Error::io("rename temporary file to", &self.final_path, e))?;
        // The temp name is gone now: make sure Drop doesn't try to remove it.
        self.temp_path = PathBuf::new();
        // Best effort: the complete file is already in place, and some file systems (network
        // mounts) refuse fsync on a folder. Failing here would report an error for a file that
        // exists, breaking the "error means no output" contract.
        let _ = sync_dir(&parent_dir(&self.final_path));
        Ok(())
    }

    fn writer_mut(&mut self) -> Result<&mut BufWriter<File>> {
        self.writer.as_mut().ok_or_else(|| Error::internal("atomic file used after commit"))
    }

    fn writer_ref(&self) -> Result<&BufWriter<File>> {
        self.writer.as_ref().ok_or_else(|| Error::internal("atomic file used after commit"))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().ok_or_else(committed_err)?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.as_mut().ok_or_else(committed_err)?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().ok_or_else(committed_err)?.flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.writer.as_mut().ok_or_else(committed_err)?.seek(pos)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Close the handle first (Windows cannot delete an open file), then remove the temp.
        drop(self.writer.take());
        if !self.temp_path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

fn committed_err() -> io::Error {
    io::Error::other("atomic file used after commit")
}

/// The folder a path lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` atomically: temp file in the same folder, fsync, rename.
///
/// # Errors
///
/// [`Error::Io`] naming `path` if the file cannot be written; `path` is then unchanged and no
/// temp file is left behind.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("plan.json");
/// assembly_core::write_atomic(&path, b"{\"v\":1}").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{\"v\":1}");
/// ```
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| Error::io("write", path, e))?;
    f.commit()
}

/// Removes temp files an earlier, killed writer of `final_path` left behind
/// (`.<name>.tmp-*` in its folder). Best effort: errors are ignored.
pub(crate) fn remove_stale_temps(final_path: &Path) {
    let (Some(dir), Some(name)) = (final_path.parent(), final_path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn temp_lives_in_destination_folder_and_commit_renames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&path).unwrap();
        assert_eq!(f.temp_path().parent(), Some(dir.path()));
        let temp_name = f.temp_path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(temp_name.starts_with(".out.bin.tmp-"), "{temp_name}");
        f.write_all(&[1, 2, 3, 4]).unwrap();
        f.seek(SeekFrom::Start(1)).unwrap();
        f.write_all(&[9]).unwrap();
        assert_eq!(names(dir.path()), vec![temp_name]);
        f.commit().unwrap();
        assert_eq!(names(dir.path()), vec!["out.bin".to_string()]);
        assert_eq!(std::fs::read(&path).unwrap(), [1, 9, 3, 4]);
    }

    #[test]
    fn drop_without_commit_leaves_nothing_and_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(&vec![7u8; 1 << 20]).unwrap();
        }
        assert_eq!(names(dir.path()), vec!["out.bin".to_string()]);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), vec!["out.bin".to_string()]);
    }

    #[test]
    fn temp_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let a = AtomicFile::create(&path).unwrap();
        let b = AtomicFile::create(&path).unwrap();
        assert_ne!(a.temp_path(), b.temp_path());
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-folder").join("out.mp3");
        let err = AtomicFile::create(&path).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("missing-folder/out.mp3"), "{err}");
        let err = write_atomic(dir.path().join("a").join("b"), b"x").unwrap_err();
        assert!(err.to_string().contains("a/b"), "{err}");
        assert!(matches!(AtomicFile::create("/"), Err(Error::InvalidInput { .. })));
    }
}
