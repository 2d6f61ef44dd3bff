//! Stage checkpoints in a work folder: atomic, keyed by a hash of the job, verified on load.
//!
//! A checkpoint file is one header line of JSON, a newline, then the payload (JSON). The header
//! names the format, the library version, the job key, the stage, and the payload's length
//! and SHA-256. Loading checks all of them: a corrupt, truncated or foreign checkpoint is
//! ignored (and the caller recomputes the stage with a warning); it is never trusted.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::progress::Stage;
use crate::warning::{Warning, WarningCode};

const MAGIC: &str = "podcast-assembly-checkpoint";
const FORMAT: u32 = 1;
/// The parts stages store beside their JSON results.
pub(crate) const PARTS: [(Stage, &str); 1] = [(Stage::Analyze, CLEANED_CONTENT)];
/// The cleaned content (`analyze::clean`), as `CompactAudio`'s bytes.
pub(crate) const CLEANED_CONTENT: &str = "cleaned-content";

/// Hex-encoded SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A file's length and the SHA-256 of its content.
fn file_digest(path: &Path) -> Result<(u64, [u8; 32])> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        len += n as u64;
        h.update(&buf[..n]);
    }
    Ok((len, h.finalize().into()))
}

/// Builds a job key: a SHA-256 over labelled parts (library version first).
pub(crate) struct KeyHasher(Sha256, FileDigests);

/// Each file's length and content hash, by canonical path: a file named by many asset ids is
/// read once.
type FileDigests = std::collections::HashMap<PathBuf, (u64, [u8; 32])>;

impl KeyHasher {
    pub(crate) fn new() -> Self {
        let mut h = Sha256::new();
        h.update(MAGIC.as_bytes());
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        Self(h, FileDigests::new())
    }

    /// Adds a labelled part; the length prefix keeps `("ab","c")` and `("a","bc")` apart.
    pub(crate) fn part(&mut self, label: &str, bytes: &[u8]) {
        for piece in [label.as_bytes(), bytes] {
            self.0.update((piece.len() as u64).to_le_bytes());
            self.0.update(piece);
        }
    }

    /// Adds a file's path, length and full content hash.
    pub(crate) fn file(&mut self, label: &str, path: &Path) -> Result<()> {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let (len, digest) = match self.1.get(&canonical) {
            Some(&known) => known,
            None => {
                let fresh = file_digest(path)?;
                self.1.insert(canonical, fresh);
                fresh
            }
        };
        self.part(label, path.to_string_lossy().as_bytes());
        self.part("len", &len.to_le_bytes());
        self.part("sha256", &digest);
        Ok(())
    }

    pub(crate) fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    magic: String,
    format: u32,
    library_version: String,
    job_key: String,
    stage: Stage,
    /// A part beside the stage's JSON result (`None` for the result itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    part: Option<String>,
    payload_len: u64,
    payload_sha256: String,
}

/// What loading a checkpoint found.
#[derive(Debug)]
pub(crate) enum Loaded<T> {
    /// A valid checkpoint for this job and stage.
    Hit(T),
    /// No checkpoint file.
    Missing,
    /// A file was there but unusable; the reason is a warning for the report.
    Rejected(Warning),
}

/// The checkpoints of one job in a work folder.
pub(crate) struct CheckpointStore {
    dir: PathBuf,
    job_key: String,
}

impl CheckpointStore {
    /// Opens (creating if needed) `work_dir` for the job with key `job_key`, and removes the
    /// temp files a killed earlier run left while writing a checkpoint.
    pub(crate) fn open(work_dir: &Path, job_key: String) -> Result<Self> {
        std::fs::create_dir_all(work_dir).map_err(|e| Error::io("create", work_dir, e))?;
        let store = Self { dir: work_dir.to_path_buf(), job_key };
        for stage in Stage::ALL {
            crate::atomic::remove_stale_temps(&store.path(stage));
        }
        for (stage, part) in PARTS {
            crate::atomic::remove_stale_temps(&store.part_path(stage, part));
        }
        Ok(store)
    }

    fn path(&self, stage: Stage) -> PathBuf {
        self.dir.join(format!("{}.checkpoint", stage.name()))
    }

    fn part_path(&self, stage: Stage, part: &str) -> PathBuf {
        self.dir.join(format!("{}.{part}.checkpoint", stage.name()))
    }

    /// Stores `value` as `stage`'s result, atomically.
    pub(crate) fn save<T: Serialize>(&self, stage: Stage, value: &T) -> Result<()> {
        let payload = serde_json::to_vec(value)
            .map_err(|e| Error::internal(format!("cannot serialize {stage} checkpoint: {e}")))?;
        self.write(self.path(stage), stage, None, &payload)
    }

    /// Stores `bytes` as part `part` of `stage`'s result (audio a stage produced, kept
    /// beside its JSON checkpoint), atomically.
    pub(crate) fn save_bytes(&self, stage: Stage, part: &str, bytes: &[u8]) -> Result<()> {
        self.write(self.part_path(stage, part), stage, Some(part), bytes)
    }

    fn write(&self, path: PathBuf, stage: Stage, part: Option<&str>, payload: &[u8]) -> Result<()> {
        let header = Header {
            magic: MAGIC.into(),
            format: FORMAT,
            library_version: env!("CARGO_PKG_VERSION").into(),
            job_key: self.job_key.clone(),
            stage,
            part: part.map(str::to_owned),
            payload_len: payload.len() as u64,
            payload_sha256: sha256_hex(payload),
        };
        let mut bytes = serde_json::to_vec(&header)
            .map_err(|e| Error::internal(format!("cannot serialize checkpoint header: {e}")))?;
        bytes.push(b'\n');
        bytes.extend_from_slice(payload);
        crate::atomic::write_atomic(path, &bytes)
    }

    /// Loads `stage`'s result if a valid checkpoint for this job exists.
    pub(crate) fn load<T: DeserializeOwned>(&self, stage: Stage) -> Loaded<T> {
        let path = self.path(stage);
        match self.read(&path, stage, None) {
            Loaded::Hit(payload) => match serde_json::from_slice(&payload) {
                Ok(v) => Loaded::Hit(v),
                Err(_) => rejected(&path, "payload does not match the expected shape"),
            },
            Loaded::Missing => Loaded::Missing,
            Loaded::Rejected(w) => Loaded::Rejected(w),
        }
    }

    /// Loads part `part` of `stage`'s result, checked like [`load`](Self::load); `parse`
    /// turns its bytes into the value (`None`: the payload has the wrong shape).
    pub(crate) fn load_bytes<T>(
        &self,
        stage: Stage,
        part: &str,
        parse: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Loaded<T> {
        let path = self.part_path(stage, part);
        match self.read(&path, stage, Some(part)) {
            Loaded::Hit(payload) => match parse(&payload) {
                Some(v) => Loaded::Hit(v),
                None => rejected(&path, "payload does not match the expected shape"),
            },
            Loaded::Missing => Loaded::Missing,
            Loaded::Rejected(w) => Loaded::Rejected(w),
        }
    }

    /// A checkpoint file's verified payload.
    fn read(&self, path: &Path, stage: Stage, part: Option<&str>) -> Loaded<Vec<u8>> {
        let mut bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
            Err(e) => return recompute(format!("cannot read {}: {e}", path.display())),
        };
        let reject = |why: &str| rejected(path, why);
        let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
            return reject("no header");
        };
        let Ok(h) = serde_json::from_slice::<Header>(&bytes[..nl]) else {
            return reject("unreadable header");
        };
        let payload = &bytes[nl + 1..];
        if h.magic != MAGIC || h.format != FORMAT {
            return reject("not a checkpoint of this format");
        }
        if h.library_version != env!("CARGO_PKG_VERSION") {
            return reject("written by another library version");
        }
        if h.job_key != self.job_key || h.stage != stage || h.part.as_deref() != part {
            return reject("belongs to another job or stage");
        }
        if h.payload_len != payload.len() as u64 || h.payload_sha256 != sha256_hex(payload) {
            return reject("corrupt (length or checksum mismatch)");
        }
        bytes.drain(..=nl);
        Loaded::Hit(bytes)
    }
}

fn rejected<T>(path: &Path, why: &str) -> Loaded<T> {
    recompute(format!("checkpoint {} ignored: {why}; recomputing", path.display()))
}

/// A rejected checkpoint: the stage is recomputed, and `message` says why.
fn recompute<T>(message: String) -> Loaded<T> {
    Loaded::Rejected(Warning::new(WarningCode::CheckpointRecomputed, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Plan {
        cuts: Vec<(u64, u64)>,
    }

    #[test]
    fn a_file_named_by_many_ids_is_read_once_and_keys_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bed.wav");
        std::fs::write(&p, b"original").unwrap();
        let expected = {
            // the key as it was built before: every part, each file's content hashed
            let mut k = KeyHasher::new();
            for id in ["a", "b"] {
                k.part(id, p.to_string_lossy().as_bytes());
                k.part("len", &8u64.to_le_bytes());
                k.part("sha256", &Sha256::digest(b"original"));
            }
            k.finish()
        };
        let mut k = KeyHasher::new();
        k.file("a", &p).unwrap();
        // the content changes between the two ids: the second reads nothing (one read per file)
        std::fs::write(&p, b"replaced").unwrap();
        k.file("b", &p).unwrap();
        assert_eq!(k.finish(), expected);
    }

    #[test]
    fn parts_round_trip_and_are_not_confused_with_results() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path(), "k1".into()).unwrap();
        let parse = |b: &[u8]| (b.len() == 5).then(|| b.to_vec());
        assert!(matches!(store.load_bytes(Stage::Analyze, "a", parse), Loaded::Missing));
        store.save_bytes(Stage::Analyze, "a", b"hello").unwrap();
        match store.load_bytes(Stage::Analyze, "a", parse) {
            Loaded::Hit(v) => assert_eq!(v, b"hello"),
            other => panic!("{other:?}"),
        }
        // The wrong shape for the parser, another part's file, another job: rejected.
        assert!(matches!(
            store.load_bytes(Stage::Analyze, "a", |_| None::<()>),
            Loaded::Rejected(_)
        ));
        std::fs::copy(store.part_path(Stage::Analyze, "a"), store.part_path(Stage::Analyze, "b"))
            .unwrap();
        assert!(matches!(store.load_bytes(Stage::Analyze, "b", parse), Loaded::Rejected(_)));
        std::fs::copy(store.part_path(Stage::Analyze, "a"), store.path(Stage::Analyze)).unwrap();
        assert!(matches!(store.load::<Plan>(Stage::Analyze), Loaded::Rejected(_)));
        let other = CheckpointStore::open(dir.path(), "k2".into()).unwrap();
        assert!(matches!(other.load_bytes(Stage::Analyze, "a", parse), Loaded::Rejected(_)));
    }

    #[test]
    fn round_trip_and_rejections() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path(), "k1".into()).unwrap();
        assert!(matches!(store.load::<Plan>(Stage::Edit), Loaded::Missing));
        let plan = Plan { cuts: vec![(1, 2), (10, 20)] };
        store.save(Stage::Edit, &plan).unwrap();
        match store.load::<Plan>(Stage::Edit) {
            Loaded::Hit(p) => assert_eq!(p, plan),
            other => panic!("{other:?}"),
        }
        // Another job's key: rejected.
        let other = CheckpointStore::open(dir.path(), "k2".into()).unwrap();
        assert!(matches!(other.load::<Plan>(Stage::Edit), Loaded::Rejected(_)));
        // Flip one payload byte: rejected by the checksum.
        let path = store.path(Stage::Edit);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(store.load::<Plan>(Stage::Edit), Loaded::Rejected(_)));
        // Truncated: rejected.
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(store.load::<Plan>(Stage::Edit), Loaded::Rejected(_)));
    }

    // A run killed while writing a checkpoint leaves `.<stage>.checkpoint.tmp-*`; the next
    // open removes it and keeps everything else.
    #[test]
    fn open_removes_a_killed_writers_temp() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path(), "k".into()).unwrap();
        store.save(Stage::Edit, &Plan { cuts: vec![(1, 2)] }).unwrap();
        std::fs::write(dir.path().join(".analyze.checkpoint.tmp-6417-0"), b"{half").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        let _ = CheckpointStore::open(dir.path(), "k".into()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["edit.checkpoint", "notes.txt"]);
    }

    #[test]
    fn key_depends_on_every_part_and_on_file_content() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.bin");
        std::fs::write(&f, b"hello").unwrap();
        let key = |label: &str| {
            let mut k = KeyHasher::new();
            k.part(label, b"spec");
            k.file("content", &f).unwrap();
            k.finish()
        };
        let a = key("x");
        assert_eq!(a, key("x"));
        assert_ne!(a, key("y"));
        std::fs::write(&f, b"hellp").unwrap();
        assert_ne!(a, key("x"));
    }
}
