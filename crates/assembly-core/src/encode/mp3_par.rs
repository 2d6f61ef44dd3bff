//! Parallel CBR MP3 encoding: fixed chunks encoded by worker threads, joined into one seamless
//! stream with a valid bit reservoir (design and measurements in `docs/encoding.md`).
//!
//! - The input is cut into chunks of `chunk_frames` MP3 frames, counted from the start of the
//!   input (so the cut points, and hence the output bytes, do not depend on the thread count).
//! - Chunk `k` is encoded by a fresh LAME encoder whose input starts `pre_roll` frames before
//!   the chunk and ends `post_roll` frames after it. The input offset is a whole number of
//!   frames, so the encoder's frame `i` codes the same input samples as frame
//!   `offset / samples_per_frame + i` of a single encoder over the whole input (LAME's frame
//!   grid, including its 576-sample delay, is relative to the input start).
//! - Joining chunk `k-1` (stream A) and chunk `k` (stream B) at global frame `j`: A's frames
//!   before `j` and B's frames from `j` on are kept. `j` is chosen in the overlap so that the
//!   granules around the join are long blocks in both streams (consistent MDCT windows, so the
//!   decoder's overlap-add cancels aliasing across the join) and B's frame `j` finds its bit
//!   reservoir: its `main_data_begin` bytes (copied from B's preceding frames) fit in the free
//!   main-data space after A's last kept frame's data; the rest of that space is zeroed.
//! - If no frame in the overlap qualifies, chunks `k-1` and `k` are encoded again as one
//!   stream by a single encoder that starts where A's did (LAME is deterministic, so its frames
//!   up to A's join-in point are A's, which is checked) — never a broken frame.
//! - Joined frames are written as soon as they are final; the caller's `write` only queues
//!   work, so rendering and encoding overlap. The info tag (frames, bytes, TOC, encoder delay,
//!   padding, CRCs) is built for the joined stream.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Seek, SeekFrom, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mp3lame_encoder::{DualPcm, FlushGap, MonoPcm};

use super::chunk_cache::{
    CacheKey, CacheWriter, ChunkCache, ChunkStats, Previous, Reuse, input_hash,
};
use super::lame::{LAME_ENCODER_DELAY, MpegLayout, OwnTag, build_lame, lame_call, lame_cbr_scale};
use super::{Mp3Bitrate, Tags, sanitize_clamped, tags};
use crate::atomic::AtomicFile;
use crate::error::{Error, Result};
use crate::mp3::{Stream, crc16_update, samples_per_frame};

/// Chunk layout and threading. Only `threads` may vary without changing the output bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct ParConfig {
    /// Chunk length in MP3 frames.
    pub chunk_frames: u64,
    /// Frames encoded before each chunk (from the previous chunk's input).
    pub pre_roll: u64,
    /// Frames encoded after each chunk.
    pub post_roll: u64,
    /// A join is never in the first `warm` frames of the later stream.
    pub warm: u64,
    /// A join is never in the last `tail` frames of the earlier stream (flush zeros).
    pub tail: u64,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Test hook: `false` makes every join fall back to a merged re-encode.
    pub joins: bool,
}

impl ParConfig {
    /// The production layout: ~26.7 s chunks (1,179,648 samples), 16 frames of pre-roll and
    /// 12 of post-roll (~2.4 % extra encoding), one worker per core (at most 8).
    pub fn new(rate: u32) -> Self {
        let spf = samples_per_frame(rate) as u64;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        Self {
            chunk_frames: 1024 * 1152 / spf,
            pre_roll: 16,
            post_roll: 12,
            warm: 6,
            tail: 4,
            threads,
            joins: true,
        }
    }
}

/// The input frames each job of a CBR MP3 encode of `frames` frames at `rate` reads (its
/// chunk with the pre- and post-roll), in order: a change inside one of these ranges changes
/// that job's stream, and nothing else does.
pub(super) fn job_inputs(rate: u32, frames: u64) -> Vec<std::ops::Range<u64>> {
    let cfg = ParConfig::new(rate);
    let spf = samples_per_frame(rate) as u64;
    let cs = cfg.chunk_frames * spf;
    let mut out = Vec::new();
    let mut k = 0u64;
    while k == 0 || k * cs < frames {
        let start = (k * cs).saturating_sub(cfg.pre_roll * spf);
        let end = ((k + 1) * cs + cfg.post_roll * spf).min(frames);
        out.push(start..end);
        k += 1;
    }
    out
}

/// What a worker needs to build its LAME encoder.
#[derive(Clone, Copy)]
struct LameSetup {
    kbps: u16,
    quality: u8,
    rate: u32,
    channels: usize,
}

/// One chunk's input: global start sample and the (already scaled) planes.
#[derive(Clone)]
struct ChunkInput {
    start: u64,
    planes: Arc<Vec<Vec<f32>>>,
}

impl ChunkInput {
    fn end(&self) -> u64 {
        self.start + self.planes[0].len() as u64
    }
}

struct Job {
    index: usize,
    input: ChunkInput,
    /// Hash the input (the encode keeps its chunks).
    hash: bool,
    /// The earlier encode's stream for this chunk, used when the input hash matches.
    reuse: Option<Reuse>,
}

/// A worker's result for one job.
struct Encoded {
    bytes: Vec<u8>,
    /// The input's hash, when asked for.
    hash: Option<u128>,
    /// Taken from the earlier encode rather than encoded.
    reused: bool,
}

type Done = (usize, std::result::Result<Encoded, String>);

/// The worker threads; dropping it cancels running encodes and joins every thread.
struct Pool {
    jobs: Option<Sender<Job>>,
    results: Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
    cancel: Arc<AtomicBool>,
}

impl Pool {
    fn new(setup: LameSetup, threads: usize) -> std::result::Result<Self, String> {
        let (job_tx, job_rx) = channel::<Job>();
        let (done_tx, done_rx) = channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let cancel = Arc::new(AtomicBool::new(false));
        let mut pool = Self { jobs: Some(job_tx), results: done_rx, threads: Vec::new(), cancel };
        for n in 0..threads.max(1) {
            let (jobs, done, cancel) = (job_rx.clone(), done_tx.clone(), pool.cancel.clone());
            let handle = std::thread::Builder::new()
                .name(format!("mp3-encode-{n}"))
                .spawn(move || worker(&jobs, &done, setup, &cancel))
                .map_err(|e| format!("cannot start an encoder thread: {e}"))?;
            pool.threads.push(handle);
        }
        Ok(pool)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.jobs = None; // idle workers see the closed queue and exit
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>, setup: LameSetup, cancel: &AtomicBool) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let planes = &job.input.planes;
            let hash = (job.hash || job.reuse.is_some()).then(|| input_hash(planes));
            if let (Some(h), Some(reuse)) = (hash, &job.reuse)
                && let Some(bytes) = reuse.take(h)?
            {
                return Ok(Encoded { bytes, hash, reused: true });
            }
            let bytes = encode_planes(setup, planes, cancel)?;
            Ok(Encoded { bytes, hash, reused: false })
        }))
        .unwrap_or_else(|_| Err("the LAME worker panicked".to_string()));
        if done.send((job.index, res)).is_err() {
            return;
        }
    }
}

/// Encodes one chunk with a fresh encoder (no info tag), flushed as a standalone stream.
fn encode_planes(
    setup: LameSetup,
    planes: &[Vec<f32>],
    cancel: &AtomicBool,
) -> std::result::Result<Vec<u8>, String> {
    const BLOCK: usize = 8192;
    let bitrate = Mp3Bitrate::Cbr { kbps: setup.kbps };
    let mut lame = build_lame(bitrate, setup.quality, setup.rate, setup.channels, false)?;
    let n = planes[0].len();
    let mut all = Vec::with_capacity(n / 4 * usize::from(setup.kbps) / 1000 + 8192);
    let mut out = Vec::new();
    for start in (0..n).step_by(BLOCK) {
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".to_string());
        }
        let end = (start + BLOCK).min(n);
        let left = &planes[0][start..end];
        let res = if setup.channels == 1 {
            lame_call(&mut out, end - start, false, |o| lame.encode_to_vec(MonoPcm(left), o))
        } else {
            let input = DualPcm { left, right: &planes[1][start..end] };
            lame_call(&mut out, end - start, false, |o| lame.encode_to_vec(input, o))
        };
        res.map_err(|e| format!("LAME encode failed: {e}"))?;
        all.extend_from_slice(&out);
    }
    lame_call(&mut out, 0, true, |o| lame.flush_to_vec::<FlushGap>(o))
        .map_err(|e| format!("LAME flush failed: {e}"))?;
    all.extend_from_slice(&out);
    Ok(all)
}

/// One chunk's encoded stream, kept from frame `keep_from` on.
struct Chunk {
    index: usize,
    input: ChunkInput,
    bytes: Vec<u8>,
    stream: Stream,
    /// Global frame index of the stream's frame 0.
    first_frame: u64,
    keep_from: usize,
}

/// A frame of the joined output not yet written (its reservoir tail may still be patched).
struct PendingFrame {
    bytes: Vec<u8>,
    side_len: usize,
}

/// Parallel CBR MP3 output.
pub(super) struct ParOut {
    file: AtomicFile,
    path: PathBuf,
    cfg: ParConfig,
    setup: LameSetup,
    spf: u64,
    gain: f32,
    /// Scaled input not yet handed to a job, from global sample `buf_start`.
    buf: Vec<Vec<f32>>,
    buf_start: u64,
    samples: u64,
    next_job: usize,
    pool: Option<Pool>,
    /// Inputs of dispatched jobs whose streams are not joined yet.
    sent: BTreeMap<usize, ChunkInput>,
    done: BTreeMap<usize, Encoded>,
    /// The earlier encode's chunks to reuse where the input is unchanged.
    previous: Option<Previous>,
    /// Where this encode's chunks are kept (when asked to).
    record: Option<CacheWriter>,
    stats: ChunkStats,
    cur: Option<Chunk>,
    pending: VecDeque<PendingFrame>,
    /// Main-data slot position (over the whole output) where `pending`'s first frame starts.
    pending_slot: usize,
    /// Slot position after the last pending frame.
    slot_total: usize,
    /// Slot position after the last appended frame's main data.
    data_end: usize,
    tag_offset: u64,
    tag: OwnTag,
    frames_out: u64,
    bytes_out: u64,
    /// Joins that needed the merged re-encode (for tests and docs).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) fallbacks: usize,
    /// Global frame index of every join made.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) joins: Vec<u64>,
    /// Joins made where the streams switch windows (not long blocks) around the join.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) switched_joins: usize,
}

impl ParOut {
    pub(super) fn new(
        mut file: AtomicFile,
        kbps: u16,
        quality: u8,
        rate: NonZeroU32,
        channels: usize,
        tags: &Tags,
        cfg: ParConfig,
    ) -> Result<Self> {
        let path = file.final_path().to_path_buf();
        let rate = rate.get();
        let setup = LameSetup { kbps, quality, rate, channels };
        // Fail on a bad configuration now, not in a worker.
        build_lame(Mp3Bitrate::Cbr { kbps }, quality, rate, channels, false)
            .map_err(|detail| Error::encode(&path, detail))?;
        let tag = MpegLayout::new(rate, channels).cbr_tag(kbps);
        let id3 = tags::id3_bytes(tags, &path)?;
        file.write_all(&id3).map_err(|e| Error::io("write", &path, e))?;
        file.write_all(&vec![0u8; tag.frame_len]).map_err(|e| Error::io("write", &path, e))?;
        let pool = Pool::new(setup, cfg.threads).map_err(|d| Error::encode(&path, d))?;
        Ok(Self {
            file,
            path,
            cfg,
            setup,
            spf: samples_per_frame(rate) as u64,
            gain: 1.0 / lame_cbr_scale(kbps),
            buf: vec![Vec::new(); channels],
            buf_start: 0,
            samples: 0,
            next_job: 0,
            pool: Some(pool),
            sent: BTreeMap::new(),
            done: BTreeMap::new(),
            previous: None,
            record: None,
            stats: ChunkStats::default(),
            cur: None,
            pending: VecDeque::new(),
            pending_slot: 0,
            slot_total: 0,
            data_end: 0,
            tag_offset: id3.len() as u64,
            tag,
            frames_out: 0,
            bytes_out: 0,
            fallbacks: 0,
            joins: Vec::new(),
            switched_joins: 0,
        })
    }

    /// Keeps this encode's chunks in the scratch file `spill` and reuses `previous`'s chunks
    /// whose input is unchanged (a cache made with other settings or layout is ignored).
    /// Before the first write only.
    pub(super) fn keep_chunks(&mut self, spill: &Path, previous: Option<ChunkCache>) -> Result<()> {
        if self.samples > 0 || self.next_job > 0 {
            return Err(Error::internal("keep_chunks after the first write"));
        }
        let key = self.cache_key();
        self.previous = previous.and_then(|c| Previous::matching(c, key));
        self.record = Some(CacheWriter::create(spill, key)?);
        Ok(())
    }

    fn cache_key(&self) -> CacheKey {
        let LameSetup { kbps, quality, rate, channels } = self.setup;
        let ParConfig { chunk_frames, pre_roll, post_roll, .. } = self.cfg;
        let gain_bits = self.gain.to_bits();
        CacheKey { kbps, quality, rate, channels, chunk_frames, pre_roll, post_roll, gain_bits }
    }

    fn chunk_samples(&self) -> u64 {
        self.cfg.chunk_frames * self.spf
    }

    /// Global sample range `[start, end)` job `k` encodes (end unclamped).
    fn job_range(&self, k: usize) -> (u64, u64) {
        let cs = self.chunk_samples();
        let k = k as u64;
        let start = (k * cs).saturating_sub(self.cfg.pre_roll * self.spf);
        (start, (k + 1) * cs + self.cfg.post_roll * self.spf)
    }

    pub(super) fn write(&mut self, planes: &[&[f32]]) -> Result<()> {
        let gain = self.gain;
        for (buf, plane) in self.buf.iter_mut().zip(planes) {
            buf.extend(plane.iter().map(|&s| sanitize_clamped(s) * gain));
        }
        self.samples += planes.first().map_or(0, |p| p.len()) as u64;
        while self.job_range(self.next_job).1 <= self.samples {
            self.dispatch(false)?;
        }
        self.collect(false)
    }

    /// Hands the next job to the workers (its end clamped to the input when `last`), first
    /// waiting for results if too many chunks are in flight (bounded memory).
    fn dispatch(&mut self, last: bool) -> Result<()> {
        let max_in_flight = 2 * self.cfg.threads.max(1);
        while self.sent.len() >= max_in_flight {
            self.collect(true)?;
        }
        let k = self.next_job;
        let (start, end) = self.job_range(k);
        let end = if last { self.samples } else { end };
        let (a, b) = ((start - self.buf_start) as usize, (end - self.buf_start) as usize);
        let planes: Vec<Vec<f32>> = self.buf.iter().map(|p| p[a..b].to_vec()).collect();
        let input = ChunkInput { start, planes: Arc::new(planes) };
        self.sent.insert(k, input.clone());
        let reuse = self.previous.as_ref().and_then(|p| p.reuse(k, start, end - start));
        let job = Job { index: k, input, hash: self.record.is_some(), reuse };
        let sender = self.pool.as_ref().and_then(|p| p.jobs.as_ref());
        sender
            .and_then(|tx| tx.send(job).ok())
            .ok_or_else(|| Error::internal("MP3 encoder threads stopped"))?;
        self.next_job += 1;
        // The next job starts `pre_roll` frames before its chunk: drop what no job needs.
        let keep = self.job_range(self.next_job).0.min(self.samples);
        let drop = (keep - self.buf_start) as usize;
        for p in &mut self.buf {
            p.drain(..drop);
        }
        self.buf_start = keep;
        Ok(())
    }

    /// Receives finished chunks (blocking for one when `wait`) and joins those now in order.
    fn collect(&mut self, wait: bool) -> Result<()> {
        let pool = self.pool.as_ref().ok_or_else(|| Error::internal("MP3 pool gone"))?;
        let mut got = Vec::new();
        if wait {
            let r = pool.results.recv().map_err(|_| Error::internal("MP3 encoder threads died"))?;
            got.push(r);
        }
        while let Ok(r) = pool.results.try_recv() {
            got.push(r);
        }
        for (k, res) in got {
            let encoded = res.map_err(|d| Error::encode(&self.path, d))?;
            self.done.insert(k, encoded);
        }
        while let Some(bytes) = self.next_done() {
            self.accept(bytes)?;
        }
        Ok(())
    }

    fn next_done(&mut self) -> Option<(usize, Encoded)> {
        let want = self.cur.as_ref().map_or(0, |c| c.index + 1);
        self.done.remove(&want).map(|b| (want, b))
    }

    /// Joins chunk `k`'s stream onto the output.
    fn accept(&mut self, (k, encoded): (usize, Encoded)) -> Result<()> {
        let input = self.sent.remove(&k).ok_or_else(|| Error::internal("unknown MP3 chunk"))?;
        let Encoded { bytes, hash, reused } = encoded;
        if reused {
            self.stats.reused += 1;
        } else {
            self.stats.encoded += 1;
        }
        if let (Some(rec), Some(h)) = (self.record.as_mut(), hash) {
            rec.add(k, input.start, input.end() - input.start, h, &bytes);
        }
        let stream = Stream::parse(&bytes)
            .map_err(|d| Error::internal(format!("LAME output of chunk {k}: {d}")))?;
        let chunk = Chunk {
            index: k,
            first_frame: input.start / self.spf,
            input,
            bytes,
            stream,
            keep_from: 0,
        };
        match self.cur.take() {
            None => self.cur = Some(chunk),
            Some(a) => {
                let joined = if self.cfg.joins { self.find_join(&a, &chunk) } else { None };
                match joined {
                    Some(j) => {
                        let (ia, ib) =
                            ((j - a.first_frame) as usize, (j - chunk.first_frame) as usize);
                        let (fa, fb) = (&a.stream.frames, &chunk.stream.frames);
                        if !(fa[ia - 1].all_long
                            && fa[ia].all_long
                            && fb[ib - 1].all_long
                            && fb[ib].all_long)
                        {
                            self.switched_joins += 1;
                        }
                        self.join(a, chunk, j)?
                    }
                    None => {
                        self.fallbacks += 1;
                        self.cur = Some(self.merge(a, chunk)?);
                    }
                }
            }
        }
        self.write_final_frames(false)
    }

    /// The join frame (global index) for streams `a` then `b`, if any frame qualifies: the
    /// one nearest the nominal cut whose reservoir fits, preferring frames where both streams
    /// code long blocks around the join, else frames where both code the same windows (block
    /// types and mixed flags of every granule and channel of frames `j - 1` and `j`), so the
    /// window sequence stays valid across the join. Speech with sharp onsets (and LAME's
    /// attack detection) can keep every frame of an overlap switching windows; requiring long
    /// blocks there sent a quarter of the joins of a synthesized-voice episode to the merged
    /// re-encode.
    fn find_join(&self, a: &Chunk, b: &Chunk) -> Option<u64> {
        let (fa, fb) = (&a.stream.frames, &b.stream.frames);
        let lo = (b.first_frame + self.cfg.warm.max(1)).max(a.first_frame + a.keep_from as u64 + 1);
        let hi_a = (a.first_frame + fa.len() as u64).saturating_sub(self.cfg.tail.max(1));
        let hi = hi_a.min(b.first_frame + fb.len() as u64).checked_sub(1)?;
        let nominal = b.index as u64 * self.cfg.chunk_frames;
        let mut cands: Vec<u64> = (lo..=hi).collect();
        cands.sort_by_key(|&j| (j.abs_diff(nominal), j));
        let at = |j: u64| ((j - a.first_frame) as usize, (j - b.first_frame) as usize);
        let fits = |j: u64| {
            let (ia, ib) = at(j);
            let m = fb[ib].main_data_begin;
            let free = a.stream.data_end(ia - 1).map(|e| a.stream.slot_start[ia].saturating_sub(e));
            b.stream.slot_start[ib] >= m && free.is_some_and(|f| m <= f)
        };
        let long = |j: u64| {
            let (ia, ib) = at(j);
            fa[ia - 1].all_long && fa[ia].all_long && fb[ib - 1].all_long && fb[ib].all_long
        };
        let same_windows = |j: u64| {
            let (ia, ib) = at(j);
            fa[ia - 1].windows == fb[ib - 1].windows && fa[ia].windows == fb[ib].windows
        };
        cands
            .iter()
            .copied()
            .find(|&j| long(j) && fits(j))
            .or_else(|| cands.iter().copied().find(|&j| same_windows(j) && fits(j)))
    }

    /// Appends `a`'s frames before global frame `j`, then moves `b`'s reservoir bytes for
    /// frame `j` into the free space at the end, and makes `b` the current stream.
    fn join(&mut self, a: Chunk, mut b: Chunk, j: u64) -> Result<()> {
        let (ia, ib) = ((j - a.first_frame) as usize, (j - b.first_frame) as usize);
        self.append(&a, a.keep_from, ia)?;
        let m = b.stream.frames[ib].main_data_begin;
        let from = b.stream.slot_start[ib] - m;
        let mut reservoir = Vec::with_capacity(m);
        for p in from..from + m {
            let at = b.stream.byte_at(p).ok_or_else(|| Error::internal("bad reservoir"))?;
            reservoir.push(b.bytes[at]);
        }
        let start = self.slot_total.checked_sub(m).filter(|&s| s >= self.data_end);
        let start = start.ok_or_else(|| Error::internal("MP3 join: reservoir does not fit"))?;
        // Unused bytes become zero ancillary data (older ones may already be written).
        let zero_from = self.data_end.max(self.pending_slot);
        self.set_slots(zero_from, &vec![0u8; start.saturating_sub(zero_from)])?;
        self.set_slots(start, &reservoir)?;
        self.data_end = start;
        b.keep_from = ib;
        self.cur = Some(b);
        self.joins.push(j);
        Ok(())
    }

    /// Re-encodes `a`'s input extended by `b`'s as one stream (the no-join fallback).
    fn merge(&mut self, a: Chunk, b: Chunk) -> Result<Chunk> {
        let skip = (a.input.end() - b.input.start) as usize;
        let planes: Vec<Vec<f32>> = a
            .input
            .planes
            .iter()
            .zip(b.input.planes.iter())
            .map(|(pa, pb)| pa.iter().chain(&pb[skip.min(pb.len())..]).copied().collect())
            .collect();
        let cancel = AtomicBool::new(false);
        let bytes = encode_planes(self.setup, &planes, &cancel)
            .map_err(|d| Error::encode(&self.path, d))?;
        let stream = Stream::parse(&bytes)
            .map_err(|d| Error::internal(format!("LAME output of merged chunk: {d}")))?;
        // Everything up to and including the join-in frame must be exactly `a`'s.
        let upto = a.keep_from + 1;
        let prefix = |s: &Stream| s.frames.get(upto - 1).map(|f| f.offset + f.len);
        let (new_end, old_end) = (prefix(&stream), prefix(&a.stream));
        if new_end.is_none()
            || new_end != old_end
            || new_end.map(|e| &bytes[..e]) != old_end.map(|e| &a.bytes[..e])
        {
            return Err(Error::internal("MP3 re-encode differs from the first encode"));
        }
        Ok(Chunk {
            index: b.index,
            input: ChunkInput { start: a.input.start, planes: Arc::new(planes) },
            bytes,
            stream,
            first_frame: a.first_frame,
            keep_from: a.keep_from,
        })
    }

    /// Appends frames `[from, to)` of `c` to the pending output.
    fn append(&mut self, c: &Chunk, from: usize, to: usize) -> Result<()> {
        for f in &c.stream.frames[from..to] {
            let start = self.slot_total.checked_sub(f.main_data_begin);
            match start {
                Some(s) if s >= self.data_end => self.data_end = s + f.data_len,
                _ => return Err(Error::internal("MP3 join: main data overlaps")),
            }
            self.slot_total += f.slot();
            if self.data_end > self.slot_total {
                return Err(Error::internal("MP3 join: main data past its frame"));
            }
            let bytes = c.bytes[f.offset..f.offset + f.len].to_vec();
            self.pending.push_back(PendingFrame { bytes, side_len: f.side_len });
        }
        Ok(())
    }

    /// Overwrites main-data slot positions `[at, at + src.len())` in the pending frames.
    fn set_slots(&mut self, at: usize, src: &[u8]) -> Result<()> {
        if at < self.pending_slot {
            return Err(Error::internal("MP3 join: reservoir reaches written frames"));
        }
        let mut pos = self.pending_slot;
        for f in &mut self.pending {
            let slot = f.bytes.len() - f.side_len;
            let (lo, hi) = (at.max(pos), (at + src.len()).min(pos + slot));
            if lo < hi {
                let dst = f.side_len + lo - pos;
                f.bytes[dst..dst + hi - lo].copy_from_slice(&src[lo - at..hi - at]);
            }
            pos += slot;
        }
        Ok(())
    }

    /// Writes pending frames that no later join can touch (all of them when `all`).
    fn write_final_frames(&mut self, all: bool) -> Result<()> {
        // A join patches at most 511 bytes before the end of the pending slots.
        const KEEP: usize = 4096;
        while let Some(f) = self.pending.front() {
            let slot = f.bytes.len() - f.side_len;
            if !all && self.slot_total - (self.pending_slot + slot) < KEEP {
                break;
            }
            let Some(f) = self.pending.pop_front() else { break };
            self.tag.music_crc = crc16_update(self.tag.music_crc, &f.bytes);
            self.file.write_all(&f.bytes).map_err(|e| Error::io("write", &self.path, e))?;
            self.pending_slot += slot;
            self.frames_out += 1;
            self.bytes_out += f.bytes.len() as u64;
        }
        Ok(())
    }

    /// Finishes the stream; returns the file, its length, and the kept chunks when
    /// [`keep_chunks`](Self::keep_chunks) asked for them.
    pub(super) fn finish(mut self) -> Result<(AtomicFile, u64, Option<ChunkCache>)> {
        let end = self.finish_stream()?;
        let cache = self.record.take().map(CacheWriter::finish).transpose()?;
        let cache = cache.map(|c| c.with_stats(self.stats));
        Ok((self.file, end, cache))
    }

    /// Encodes the rest, joins and writes everything, fills in the info tag; returns the
    /// file length.
    fn finish_stream(&mut self) -> Result<u64> {
        // The last job always runs to the end of the input (job 0 even for empty input).
        let total = self.samples;
        while self.next_job == 0 || (self.next_job as u64) * self.chunk_samples() < total {
            self.dispatch(true)?;
        }
        while !self.sent.is_empty() {
            self.collect(true)?;
        }
        let cur = self.cur.take().ok_or_else(|| Error::internal("no MP3 chunk encoded"))?;
        self.append(&cur, cur.keep_from, cur.stream.frames.len())?;
        self.write_final_frames(true)?;
        self.pool = None;
        let kbps = self.setup.kbps;
        let tag = self.tag.build(self.frames_out, self.bytes_out, total, kbps, self.spf)?;
        let path = &self.path;
        let end = self.file.seek(SeekFrom::End(0)).map_err(|e| Error::io("seek", path, e))?;
        self.file.seek(SeekFrom::Start(self.tag_offset)).map_err(|e| Error::io("seek", path, e))?;
        self.file.write_all(&tag).map_err(|e| Error::io("write", path, e))?;
        self.file.seek(SeekFrom::End(0)).map_err(|e| Error::io("seek", path, e))?;
        debug_assert!(self.frames_out * self.spf >= LAME_ENCODER_DELAY + total);
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::super::mp3::SeqOut;
    use super::*;
    use crate::load::{DecodeOptions, decode_bytes};
    use crate::mp3::frame_info;
    use crate::{AudioBuffer, CancelToken, synth};
    use proptest::prelude::*;

    /// Small chunks (40 frames, ~1 s at 44.1 kHz) so a few seconds of audio has many joins.
    fn small(threads: usize) -> ParConfig {
        ParConfig { chunk_frames: 40, threads, ..ParConfig::new(44_100) }
    }

    struct Out {
        bytes: Vec<u8>,
        fallbacks: usize,
        joins: Vec<u64>,
        switched_joins: usize,
    }

    fn write_blocks(buf: &AudioBuffer, mut w: impl FnMut(&[&[f32]])) {
        let n = buf.frames();
        for start in (0..n).step_by(3000) {
            let end = (start + 3000).min(n);
            let planes: Vec<&[f32]> = buf.planes().iter().map(|p| &p[start..end]).collect();
            w(&planes);
        }
    }

    fn par(buf: &AudioBuffer, kbps: u16, cfg: ParConfig) -> Out {
        let dir = tempfile::tempdir().unwrap();
        let file = AtomicFile::create(dir.path().join("p.mp3")).unwrap();
        let (rate, ch) = (buf.sample_rate(), buf.channel_count());
        let mut p = ParOut::new(file, kbps, 5, rate, ch, &Tags::default(), cfg).unwrap();
        write_blocks(buf, |planes| p.write(planes).unwrap());
        let end = p.finish_stream().unwrap();
        let bytes = std::fs::read(p.file.temp_path()).unwrap();
        assert_eq!(bytes.len() as u64, end);
        Out {
            bytes,
            fallbacks: p.fallbacks,
            joins: p.joins.clone(),
            switched_joins: p.switched_joins,
        }
    }

    fn seq(buf: &AudioBuffer, kbps: u16) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let file = AtomicFile::create(dir.path().join("s.mp3")).unwrap();
        let (rate, ch) = (buf.sample_rate(), buf.channel_count());
        let bitrate = Mp3Bitrate::Cbr { kbps };
        let mut s = SeqOut::new(file, bitrate, 5, rate, ch, &Tags::default()).unwrap();
        write_blocks(buf, |planes| s.write(planes).unwrap());
        let (file, _) = s.finish().unwrap();
        std::fs::read(file.temp_path()).unwrap()
    }

    /// The audio frames after the info-tag frame (no ID3 tag: default tags).
    fn audio(bytes: &[u8]) -> &[u8] {
        let (tag_len, _) = frame_info(bytes[..4].try_into().unwrap()).unwrap();
        &bytes[tag_len..]
    }

    fn decode(bytes: &[u8]) -> AudioBuffer {
        decode_bytes(bytes, &DecodeOptions::default(), &CancelToken::new()).unwrap().audio
    }

    /// Parses the output, checks every frame's reservoir reference, decodes it and checks
    /// the length to the sample.
    fn check_valid(bytes: &[u8], src: &AudioBuffer) -> AudioBuffer {
        let stream = Stream::parse(audio(bytes)).unwrap();
        stream.check_reservoir().unwrap();
        let dec = decode(bytes);
        assert_eq!(dec.frames(), src.frames());
        assert_eq!(dec.channel_count(), src.channel_count());
        dec
    }

    fn stereo(rate: u32, l: Vec<f32>, r: Vec<f32>) -> AudioBuffer {
        AudioBuffer::from_planar(NonZeroU32::new(rate).unwrap(), vec![l, r]).unwrap()
    }

    fn nz(r: u32) -> NonZeroU32 {
        NonZeroU32::new(r).unwrap()
    }

    /// Encodes `buf` keeping its chunks in `spill`, reusing `previous`'s.
    fn par_kept(
        buf: &AudioBuffer,
        cfg: ParConfig,
        spill: &Path,
        previous: Option<ChunkCache>,
    ) -> (Vec<u8>, ChunkCache) {
        let dir = tempfile::tempdir().unwrap();
        let file = AtomicFile::create(dir.path().join("p.mp3")).unwrap();
        let (rate, ch) = (buf.sample_rate(), buf.channel_count());
        let mut p = ParOut::new(file, 128, 5, rate, ch, &Tags::default(), cfg).unwrap();
        p.keep_chunks(spill, previous).unwrap();
        write_blocks(buf, |planes| p.write(planes).unwrap());
        let (file, end, cache) = p.finish().unwrap();
        let bytes = std::fs::read(file.temp_path()).unwrap();
        assert_eq!(bytes.len() as u64, end);
        (bytes, cache.unwrap())
    }

    #[test]
    fn a_second_encode_reuses_the_unchanged_chunks_and_equals_a_full_encode() {
        let rate = nz(44_100);
        let n = 44_100 * 8; // 8 s: 8 chunks of 40 frames (~1.04 s)
        let l = synth::speech_like(rate, 3, -18.0, n);
        let r = synth::speech_like(rate, 4, -18.0, n);
        let first = stereo(44_100, l.clone(), r.clone());
        // A change confined to 0.1 s in chunk 4 (frames 160..200), at frames 170..174: chunk
        // 3's job reads 12 frames past its end (to frame 172), chunk 5's starts 16 frames
        // before it (frame 184).
        let spf = 1152;
        let (a, b) = (spf * 170, spf * 170 + 4410);
        let mut l2 = l;
        l2[a..b].iter_mut().for_each(|s| *s *= 0.5);
        let second = stereo(44_100, l2, r);
        let dir = tempfile::tempdir().unwrap();
        for threads in [1, 2] {
            let cfg = small(threads);
            let (s1, s2) = (dir.path().join("1.chunks"), dir.path().join("2.chunks"));
            let (bytes1, cache1) = par_kept(&first, cfg, &s1, None);
            assert_eq!(cache1.stats(), ChunkStats { encoded: 8, reused: 0 });
            assert_eq!(bytes1, par(&first, 128, cfg).bytes, "keeping chunks changes nothing");
            let (bytes2, cache2) = par_kept(&second, cfg, &s2, Some(cache1));
            // Chunk 3's job (its post-roll) and chunk 4's saw the change.
            assert_eq!(cache2.stats(), ChunkStats { encoded: 2, reused: 6 });
            assert_eq!(bytes2, par(&second, 128, cfg).bytes, "reuse gives the full encode");
            assert!(!s1.exists(), "the first cache's file is removed with it");
            // A cache from another layout is not used.
            let other = ParConfig { chunk_frames: 50, ..cfg };
            let (bytes3, cache3) = par_kept(&second, other, &s1, Some(cache2));
            assert_eq!(cache3.stats().reused, 0);
            assert_eq!(bytes3, par(&second, 128, other).bytes);
            drop(cache3);
            assert!(!s1.exists() && !s2.exists());
        }
    }

    #[test]
    fn output_is_identical_for_any_thread_count() {
        let r = nz(44_100);
        let n = 44_100 * 8 + 777;
        let src =
            stereo(44_100, synth::speech_like(r, 3, -18.0, n), synth::music_like(r, 4, -20.0, n));
        let one = par(&src, 128, small(1));
        assert!(one.joins.len() >= 6, "joins {:?}", one.joins);
        assert_eq!(one.fallbacks, 0);
        for threads in [2, 3] {
            let other = par(&src, 128, small(threads));
            assert!(other.bytes == one.bytes, "{threads} threads differ from 1");
        }
        check_valid(&one.bytes, &src);
    }

    #[test]
    fn fallback_reproduces_the_sequential_stream() {
        // With every join refused, the chunks are re-encoded as one stream: byte for byte
        // the audio frames of one LAME encoder (proves LAME is deterministic across encoders
        // and the frame grid is the same).
        let r = nz(44_100);
        let n = 44_100 * 3 + 5;
        let src = stereo(
            44_100,
            synth::chirp(r, 100.0, 8000.0, 0.3, n),
            synth::speech_like(r, 1, -20.0, n),
        );
        let out = par(&src, 128, ParConfig { joins: false, ..small(2) });
        assert_eq!(out.fallbacks, 2); // 3 chunks
        let reference = seq(&src, 128);
        assert!(audio(&out.bytes) == audio(&reference));
        check_valid(&out.bytes, &src);
    }

    #[test]
    fn lengths_at_and_near_chunk_boundaries_decode_exactly() {
        let cs = 40 * 1152;
        let roll = 12 * 1152;
        for (rate, ch) in [(44_100u32, 2usize), (48_000, 1), (22_050, 2)] {
            let spf = if rate >= 32_000 { 1152 } else { 576 };
            let cfg = ParConfig { chunk_frames: cs as u64 / spf, ..small(2) };
            for n in [1, 1151, 1152, cs - 1, cs, cs + 1, cs + roll, cs + roll + 1, 2 * cs + 3] {
                let r = nz(rate);
                let src = synth::multi(r, synth::speech_like(r, n as u64, -20.0, n), ch);
                let out = par(&src, 64, cfg);
                let dec = check_valid(&out.bytes, &src);
                assert_eq!(dec.frames(), n, "{rate} Hz {ch} ch {n}");
            }
        }
    }

    /// Error energy and high-passed (first difference) error energy over `[a, b)`.
    fn err(src: &AudioBuffer, dec: &AudioBuffer, a: usize, b: usize) -> (f64, f64, f64) {
        let (mut sig, mut e, mut hp) = (0.0, 0.0, 0.0);
        for (x, y) in src.planes().iter().zip(dec.planes()) {
            for i in a.max(1)..b.min(x.len()) {
                let (d, d1) = (f64::from(x[i] - y[i]), f64::from(x[i - 1] - y[i - 1]));
                sig += f64::from(x[i]).powi(2);
                e += d * d;
                hp += (d - d1) * (d - d1);
            }
        }
        (sig, e, hp)
    }

    fn db(x: f64) -> f64 {
        10.0 * x.max(1e-30).log10()
    }

    #[test]
    fn joins_are_seamless() {
        let r = nz(44_100);
        let n = 44_100 * 10;
        let signals: Vec<(&str, AudioBuffer)> = vec![
            (
                "speech",
                stereo(
                    44_100,
                    synth::speech_like(r, 7, -18.0, n),
                    synth::speech_like(r, 8, -24.0, n),
                ),
            ),
            ("chirp", synth::multi(r, synth::chirp(r, 50.0, 12_000.0, 0.25, n), 2)),
            (
                "music",
                stereo(
                    44_100,
                    synth::music_like(r, 1, -16.0, n),
                    synth::music_like(r, 2, -18.0, n),
                ),
            ),
            ("bursts", synth::multi(r, synth::noise_bursts(5, 0.3, 3000, 7000, n), 2)),
            ("sine", synth::multi(r, synth::sine(r, 997.0, 0.4, n), 2)),
            // 3 ms clicks every 40 ms over quiet speech: LAME switches to short blocks around
            // nearly every frame, so the joins are made on matching switched windows.
            ("clicks", {
                let speech = synth::speech_like(r, 9, -30.0, n);
                let clicks = synth::noise_bursts(6, 0.5, 130, 1634, n);
                let x: Vec<f32> = speech.iter().zip(&clicks).map(|(a, b)| a + b).collect();
                synth::multi(r, x, 2)
            }),
        ];
        for (name, src) in signals {
            let out = par(&src, 128, small(2));
            let dec_p = check_valid(&out.bytes, &src);
            let dec_s = decode(&seq(&src, 128));
            assert!(out.joins.len() >= 8, "{name}: {} joins", out.joins.len());
            // Windows of ±2 granules around the first sample of each join frame.
            let (mut jp, mut js) = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0));
            for &j in &out.joins {
                let c = (j * 1152).saturating_sub(576) as usize;
                let (a, b) = (c.saturating_sub(1152), c + 1152);
                let (p, s) = (err(&src, &dec_p, a, b), err(&src, &dec_s, a, b));
                jp = (jp.0 + p.0, jp.1 + p.1, jp.2 + p.2);
                js = (js.0 + s.0, js.1 + s.1, js.2 + s.2);
            }
            let all_p = err(&src, &dec_p, 0, n);
            let all_s = err(&src, &dec_s, 0, n);
            let snr = |e: (f64, f64, f64)| db(e.0 / e.1);
            // Click energy: high-passed error per sample at joins vs median 2304-sample window.
            let mut hp_windows: Vec<f64> =
                (0..n / 2304).map(|w| err(&src, &dec_p, w * 2304, w * 2304 + 2304).2).collect();
            hp_windows.sort_by(f64::total_cmp);
            let hp_median = hp_windows[hp_windows.len() / 2];
            let hp_join = jp.2 / out.joins.len() as f64;
            eprintln!(
                "{name}: {} joins ({} on switched windows), {} fallbacks",
                out.joins.len(),
                out.switched_joins,
                out.fallbacks
            );
            if name == "clicks" {
                assert_eq!(out.fallbacks, 0, "{name}");
                assert!(
                    out.switched_joins * 2 >= out.joins.len(),
                    "{name}: {}",
                    out.switched_joins
                );
            }
            let lp = crate::analyze::loudness::measure(&dec_p).unwrap().integrated_lufs;
            let ls = crate::analyze::loudness::measure(&dec_s).unwrap().integrated_lufs;
            eprintln!(
                "{name}: SNR joins par {:.2} seq {:.2} dB; overall par {:.2} seq {:.2} dB; \
                 join HP err {:.2} dB vs median window {:.2} dB (seq at joins {:.2}); \
                 loudness par {lp:.3} seq {ls:.3}",
                snr(jp),
                snr(js),
                snr(all_p),
                snr(all_s),
                db(hp_join),
                db(hp_median),
                db(js.2 / out.joins.len() as f64),
            );
            assert!(snr(jp) > snr(js) - 1.0, "{name}: worse at joins than one encoder");
            assert!((snr(all_p) - snr(all_s)).abs() < 0.5, "{name}: overall SNR differs");
            assert!(jp.2 < 1.5 * js.2, "{name}: more high-passed error (clicks) at joins");
            assert!((lp - ls).abs() < 0.05, "{name}: loudness {lp} vs {ls}");
        }
    }

    #[test]
    fn ffmpeg_decodes_without_errors() {
        let Ok(probe) = std::process::Command::new("ffmpeg").arg("-version").output() else {
            eprintln!("ffmpeg not installed; skipped");
            return;
        };
        assert!(probe.status.success());
        let r = nz(48_000);
        let n = 48_000 * 5 + 99;
        let src = stereo(
            48_000,
            synth::speech_like(r, 9, -18.0, n),
            synth::chirp(r, 80.0, 9000.0, 0.2, n),
        );
        let out = par(&src, 128, ParConfig { chunk_frames: 40, ..small(2) });
        assert!(out.joins.len() >= 4);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.mp3");
        std::fs::write(&path, &out.bytes).unwrap();
        let run = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "s16le", "-"])
            .output()
            .unwrap();
        assert!(run.status.success());
        assert_eq!(String::from_utf8_lossy(&run.stderr), "");
        // ffmpeg honours the LAME tag's delay and padding too.
        assert_eq!(run.stdout.len(), n * 2 * 2);
    }

    #[test]
    fn dropping_an_unfinished_encoder_stops_the_workers() {
        let r = nz(44_100);
        let src = synth::multi(r, synth::music_like(r, 2, -18.0, 44_100 * 6), 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.mp3");
        let file = AtomicFile::create(&path).unwrap();
        let temp = file.temp_path().to_path_buf();
        let mut p = ParOut::new(file, 128, 5, r, 2, &Tags::default(), small(2)).unwrap();
        write_blocks(&src, |planes| p.write(planes).unwrap());
        assert!(p.next_job >= 4, "jobs in flight: {}", p.next_job);
        drop(p); // returns only after every worker thread has been joined
        assert!(!temp.exists() && !path.exists());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
        #[test]
        fn any_length_and_chunk_size_parses_and_decodes_exactly(
            n in 0usize..200_000,
            chunk in 30u64..80,
            seed in 0u64..1000,
            mono in any::<bool>(),
        ) {
            let r = nz(44_100);
            let ch = if mono { 1 } else { 2 };
            let src = synth::multi(r, synth::music_like(r, seed, -18.0, n), ch);
            let out = par(&src, 96, ParConfig { chunk_frames: chunk, ..small(2) });
            let dec = check_valid(&out.bytes, &src);
            prop_assert_eq!(dec.frames(), n);
        }
    }
}
