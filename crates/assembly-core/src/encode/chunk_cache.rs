//! Chunk reuse for the parallel MP3 encoder.
//!
//! Every chunk's input (its hash) and LAME's stream for it are kept in a scratch file while
//! the output is encoded. A later encode of mostly the same audio (the verify loop's local
//! repair, which lowers the limiter's ceiling only around the overs) hands that cache in:
//! a worker hashes its chunk's input and, when it equals the cached chunk's, takes the cached
//! stream instead of encoding. LAME is deterministic, so the result is byte for byte the
//! full encode's, and only the chunks whose input changed cost encoding time.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};

/// How many chunks an encode encoded and how many it took from an earlier encode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkStats {
    /// Chunks LAME encoded.
    pub encoded: u32,
    /// Chunks whose input was unchanged, taken from the earlier encode.
    pub reused: u32,
}

/// The chunks of a finished parallel (CBR) MP3 encode, kept in a scratch file, for a later
/// encode of mostly the same audio to reuse ([`Encoder::keep_chunks`]). Dropping it removes
/// the file.
///
/// [`Encoder::keep_chunks`]: super::Encoder::keep_chunks
#[derive(Debug)]
pub struct ChunkCache {
    file: Arc<CacheFile>,
    key: CacheKey,
    entries: Vec<Entry>,
    stats: ChunkStats,
}

impl ChunkCache {
    pub(super) fn with_stats(mut self, stats: ChunkStats) -> Self {
        self.stats = stats;
        self
    }

    /// How many chunks the encode that made this cache encoded and reused.
    pub fn stats(&self) -> ChunkStats {
        self.stats
    }

    /// Chunks in the cache.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds no chunk.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The encoder settings and chunk layout a cache is valid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CacheKey {
    pub kbps: u16,
    pub quality: u8,
    pub rate: u32,
    pub channels: usize,
    pub chunk_frames: u64,
    pub pre_roll: u64,
    pub post_roll: u64,
    /// The input scale's bits.
    pub gain_bits: u32,
}

/// One job's input and where its stream is in the file.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    start: u64,
    frames: u64,
    hash: u128,
    offset: u64,
    len: u64,
}

/// The scratch file, removed when the last holder drops it.
#[derive(Debug)]
struct CacheFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl Drop for CacheFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a worker needs to take one chunk from an earlier encode.
pub(super) struct Reuse {
    file: Arc<CacheFile>,
    entry: Entry,
}

impl Reuse {
    /// The cached stream when `hash` is the cached chunk's input hash.
    pub(super) fn take(&self, hash: u128) -> std::result::Result<Option<Vec<u8>>, String> {
        if hash != self.entry.hash {
            return Ok(None);
        }
        let mut file = self.file.file.lock().map_err(|_| "chunk cache lock poisoned")?;
        let mut bytes = vec![0u8; self.entry.len as usize];
        file.seek(SeekFrom::Start(self.entry.offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| format!("cannot read {}: {e}", self.file.path.display()))?;
        Ok(Some(bytes))
    }
}

/// The hash of one job's (scaled) input planes.
pub(super) fn input_hash(planes: &[Vec<f32>]) -> u128 {
    let mut h = Xxh3::new();
    for p in planes {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(bytemuck::cast_slice(p));
    }
    h.digest128()
}

/// The earlier encode's chunks, as an encode with layout `key` can use them.
pub(super) struct Previous {
    file: Arc<CacheFile>,
    entries: Vec<Entry>,
}

impl Previous {
    /// `cache` when it was made with the same settings and layout.
    pub(super) fn matching(cache: ChunkCache, key: CacheKey) -> Option<Self> {
        (cache.key == key).then_some(Self { file: cache.file, entries: cache.entries })
    }

    /// What job `k` (input frames `start..start + frames`) can reuse.
    pub(super) fn reuse(&self, k: usize, start: u64, frames: u64) -> Option<Reuse> {
        let entry = *self.entries.get(k)?;
        (entry.start == start && entry.frames == frames)
            .then(|| Reuse { file: self.file.clone(), entry })
    }
}

/// Writes each finished chunk's stream to the scratch file, in job order.
pub(super) struct CacheWriter {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    /// The first write error (then `out` is gone).
    error: Option<std::io::Error>,
    key: CacheKey,
    entries: Vec<Entry>,
    offset: u64,
}

impl CacheWriter {
    /// Creates (or truncates) the scratch file at `path`.
    pub(super) fn create(path: &Path, key: CacheKey) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io("create", path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: Some(BufWriter::new(file)),
            error: None,
            key,
            entries: Vec::new(),
            offset: 0,
        })
    }

    /// Records job `k`'s stream (jobs arrive in order).
    pub(super) fn add(&mut self, k: usize, start: u64, frames: u64, hash: u128, bytes: &[u8]) {
        debug_assert_eq!(k, self.entries.len());
        self.entries.push(Entry {
            start,
            frames,
            hash,
            offset: self.offset,
            len: bytes.len() as u64,
        });
        self.offset += bytes.len() as u64;
        if let Some(out) = self.out.as_mut()
            && let Err(e) = out.write_all(bytes)
        {
            // Reported by `finish`.
            self.error = Some(e);
            self.out = None;
        }
    }

    /// The finished cache.
    pub(super) fn finish(mut self) -> Result<ChunkCache> {
        if let Some(e) = self.error.take() {
            return Err(Error::io("write", &self.path, e));
        }
        let out = self.out.take().ok_or_else(|| Error::internal("chunk cache finished twice"))?;
        let file = out.into_inner().map_err(|e| Error::io("write", &self.path, e.into_error()))?;
        let file =
            Arc::new(CacheFile { path: std::mem::take(&mut self.path), file: Mutex::new(file) });
        Ok(ChunkCache {
            file,
            key: self.key,
            entries: std::mem::take(&mut self.entries),
            stats: ChunkStats::default(),
        })
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        // Not finished (or already handed on, when `path` is empty): remove the scratch file.
        if !self.path.as_os_str().is_empty() {
            self.out = None;
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
