//! Parallel MP3 decoding, bit-identical to the sequential engine.
//!
//! The calling thread reads packets (MPEG frames) with symphonia's own MP3 reader, exactly as
//! the sequential engine does, and cuts them into ranges of consecutive packets. Workers (one
//! per thread, scoped) each decode whole ranges with their own decoder. A decoder's output
//! depends on earlier frames through three pieces of state, so each range starts a few packets
//! EARLY and drops what those warm-up packets decode to:
//!
//! - the bit reservoir: a frame's main data may start up to 511 bytes (MPEG-1; 255 for
//!   MPEG-2/2.5) before its own main-data slot, in the slots of earlier frames;
//! - the IMDCT overlap: each granule adds the second half of the previous granule's IMDCT;
//! - the polyphase synthesis filter: 16 blocks of 64 values of history, less than a granule.
//!
//! So a granule's output is exact once it, the granule before and the one before that decode
//! from the right main data. The warm-up therefore is: enough packets that their main-data slots
//! hold 511 (255) bytes, so every later frame finds its reservoir bytes, plus the packets of two
//! granules (one MPEG-1 packet, two MPEG-2 packets). Measured on LAME files (see the tests):
//! at 128 kbit/s one packet of reservoir plus the granule packets is the minimum that gives
//! identical output, one packet less differs; the rule computes exactly that from the packet
//! sizes, so low bitrates (small slots) get more warm-up automatically.
//!
//! The calling thread hands the decoded packets, in order, to the same accumulator the
//! sequential engine uses (priming, limits, store or sink), one sink block per packet as the
//! sequential engine delivers them. Anything the parallel path cannot reproduce exactly — a
//! packet that fails to decode (also as warm-up), a change of rate or channels, a reader error,
//! a stuck stream, a warm-up the kept history cannot cover — ends it: the caller decodes again
//! sequentially, skipping the frames the sink already got. Output is therefore always what the
//! sequential engine produces.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, mpsc};

use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::packet::Packet;

use super::{
    Acc, BlockSink, Container, DecodeOptions, Decoded, Input, MAX_EMPTY_PACKETS_IN_A_ROW, Mode,
    Opened, Report, finish,
};
use crate::mp3::{self, Header};
use crate::{CancelToken, Error, Result};

/// Packets per range, at most (a range of 1000 MPEG-1 packets is 26 s of audio).
const MAX_RANGE_PACKETS: usize = 1000;
/// Packets per range, at least; files under two ranges decode sequentially.
const MIN_RANGE_PACKETS: usize = 256;
/// Ranges each worker may have in flight (queued, decoding, or waiting to be consumed).
const RANGES_PER_WORKER: usize = 2;
/// Packets kept from before a range for its warm-up. The rule needs at most ~10 (MPEG-2.5 at
/// 8 kbit/s has 35-byte slots: 8 for 255 bytes, plus 2); more is never needed for valid input.
const MAX_WARMUP_PACKETS: usize = 48;

/// How a file is split: threads, packets per range, warm-up rule.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    threads: usize,
    range_packets: usize,
    warmup: Warmup,
}

/// Warm-up packets per range.
#[derive(Clone, Copy, Debug)]
enum Warmup {
    /// Computed from the packets before the range (see the module docs).
    Auto,
    /// A fixed count, to measure what the rule needs (tests only).
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed(usize),
}

/// How the parallel path ended.
pub(super) enum Outcome {
    /// Decoded completely and identically to the sequential engine.
    Done(Decoded),
    /// Could not guarantee identical output from here on; the first `delivered` frames were
    /// already handed to the sink (always 0 unless streaming).
    Fallback { delivered: u64 },
}

#[cfg(test)]
thread_local! {
    /// Tests force a plan (threads, range length, warm-up) for decodes on this thread.
    static FORCED: std::cell::Cell<Option<Plan>> = const { std::cell::Cell::new(None) };
    /// How the last parallel decode on this thread ended: `(completed, ranges dispatched)`.
    static LAST: std::cell::Cell<Option<(bool, u64)>> = const { std::cell::Cell::new(None) };
}

/// Threads `opts` asks for: its `threads`, else every core the system reports.
fn threads(opts: &DecodeOptions) -> usize {
    opts.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        NonZeroUsize::get,
    )
}

/// Whether and how to decode this input in parallel: only MP3 (Layer III) in its own container,
/// more than one thread, and at least two ranges of packets by the header's count.
pub(super) fn plan(opened: &Opened<'_>, _input: &Input<'_>, opts: &DecodeOptions) -> Option<Plan> {
    if opened.container != Container::Mp3 || opened.info.codec != "mp3" {
        return None;
    }
    #[cfg(test)]
    if let Some(forced) = FORCED.with(std::cell::Cell::get) {
        return Some(forced);
    }
    let threads = threads(opts);
    if threads < 2 {
        return None;
    }
    let per_packet = mp3::samples_per_frame(opened.info.sample_rate) as u64;
    let packets = usize::try_from(opened.header_frames? / per_packet).ok()?;
    if packets < 2 * MIN_RANGE_PACKETS {
        return None;
    }
    let range_packets = (packets / (4 * threads)).clamp(MIN_RANGE_PACKETS, MAX_RANGE_PACKETS);
    let threads = threads.min(packets.div_ceil(range_packets));
    Some(Plan { threads, range_packets, warmup: Warmup::Auto })
}

/// A range to decode: `packets[..warmup]` only prime the decoder.
struct Job {
    seq: u64,
    warmup: usize,
    packets: Vec<Packet>,
}

/// How decoding a range ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Every packet decoded.
    Complete,
    /// A packet failed or changed format after `frames.len()` packets; fall back from there.
    Failed,
    /// The token was cancelled.
    Cancelled,
}

/// A decoded range: frames per payload packet and the samples, planar, concatenated.
struct RangeOut {
    seq: u64,
    frames: Vec<u32>,
    /// `(rate, channels)` of every packet that decoded to audio.
    spec: Option<(u32, usize)>,
    planes: Vec<Vec<f32>>,
    status: Status,
}

impl RangeOut {
    fn new(seq: u64, status: Status) -> Self {
        Self { seq, frames: Vec::new(), spec: None, planes: Vec::new(), status }
    }
}

/// Decodes the opened MP3 input in parallel per `plan`.
///
/// # Errors
///
/// Limit and sink errors exactly where the sequential engine raises them, and
/// [`Error::Cancelled`]. Everything else becomes [`Outcome::Fallback`].
pub(super) fn decode(
    mut opened: Opened<'_>,
    input: &Input<'_>,
    opts: &DecodeOptions,
    mode: Mode,
    sink: Option<BlockSink<'_>>,
    cancel: &CancelToken,
    plan: &Plan,
) -> Result<Outcome> {
    let label = input.label;
    let report = Report::new(std::mem::take(&mut opened.warnings));
    let mut acc = Acc::new(label, &opts.limits, &opened, mode, input.len, sink);
    let params = opened.decoder.codec_params().clone();
    let dec_opts = AudioDecoderOptions::default().gapless(opts.gapless);
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<RangeOut>();
    // Sample buffers of consumed ranges, reused: fresh ones would be page-faulted in again.
    let spare: Mutex<Vec<Vec<Vec<f32>>>> = Mutex::new(Vec::new());

    let complete = std::thread::scope(|scope| -> Result<bool> {
        // Owned here so workers see the queue close whenever this returns.
        let job_tx = job_tx;
        for _ in 0..plan.threads {
            let done_tx = done_tx.clone();
            let (job_rx, params, spare) = (&job_rx, &params, &spare);
            scope.spawn(move || worker(job_rx, &done_tx, spare, params, dec_opts, cancel));
        }
        drop(done_tx);
        let mut driver = Driver {
            reader: &mut opened,
            plan,
            history: VecDeque::new(),
            read: 0,
            ended: false,
            max_packets: input.len.saturating_add(1024),
            ranges: 0,
            packets: 0,
            empty_run: 0,
        };
        let complete = driver.run(&job_tx, &done_rx, &spare, &mut acc, cancel);
        #[cfg(test)]
        LAST.with(|c| c.set(Some((complete.as_ref().is_ok_and(|c| *c), driver.ranges))));
        complete
    })?;

    if !complete {
        let delivered = if mode == Mode::Stream { acc.frames } else { 0 };
        return Ok(Outcome::Fallback { delivered });
    }
    finish(label, mode, opened, acc, report).map(Outcome::Done)
}

/// The calling thread's side: reads packets, hands out ranges, consumes results in order.
struct Driver<'r, 's> {
    reader: &'r mut Opened<'s>,
    plan: &'r Plan,
    /// The last packets read, for the next range's warm-up.
    history: VecDeque<Packet>,
    /// Packets read so far.
    read: u64,
    /// The reader reported the end of the stream.
    ended: bool,
    max_packets: u64,
    /// Ranges handed out.
    ranges: u64,
    /// Packets consumed, and consumed packets in a row without audio (as the sequential engine
    /// counts them).
    packets: u64,
    empty_run: u32,
}

impl Driver<'_, '_> {
    /// Runs to the end. `Ok(false)` means: fall back to the sequential engine.
    fn run(
        &mut self,
        jobs: &mpsc::Sender<Job>,
        done: &mpsc::Receiver<RangeOut>,
        spare: &Mutex<Vec<Vec<Vec<f32>>>>,
        acc: &mut Acc<'_, '_>,
        cancel: &CancelToken,
    ) -> Result<bool> {
        let max_in_flight = self.plan.threads * RANGES_PER_WORKER;
        let mut next_seq = 0u64;
        let mut next_consume = 0u64;
        let mut waiting: BTreeMap<u64, RangeOut> = BTreeMap::new();
        loop {
            while !self.ended && next_seq - next_consume < max_in_flight as u64 {
                cancel.check()?;
                let Some(job) = self.next_job(next_seq) else { return Ok(false) };
                if job.packets.len() > job.warmup {
                    if jobs.send(job).is_err() {
                        return Ok(false);
                    }
                    next_seq += 1;
                    self.ranges += 1;
                }
            }
            if next_consume == next_seq {
                return Ok(true);
            }
            let mut out = loop {
                if let Some(out) = waiting.remove(&next_consume) {
                    break out;
                }
                match done.recv() {
                    Ok(out) => {
                        waiting.insert(out.seq, out);
                    }
                    // Every worker is gone (they only stop early if something broke).
                    Err(_) => return Ok(false),
                }
            };
            next_consume += 1;
            if !self.consume(&out, acc, cancel)? {
                return Ok(false);
            }
            if let Ok(mut spare) = spare.lock()
                && spare.len() < max_in_flight
            {
                spare.push(std::mem::take(&mut out.planes));
            }
        }
    }

    /// Reads the next range and picks its warm-up. `None`: fall back (reader error, an
    /// unexpected track, or a warm-up the history cannot cover).
    fn next_job(&mut self, seq: u64) -> Option<Job> {
        let range = self.plan.range_packets;
        // History that reaches back to the first packet may be used whole: decoding from the
        // start of the stream is the sequential decode itself.
        let whole = self.read == self.history.len() as u64;
        let warmup = match self.plan.warmup {
            Warmup::Auto => warmup_len(&self.history, whole)?,
            Warmup::Fixed(n) => n.min(self.history.len()),
        };
        let mut packets: Vec<Packet> =
            self.history.iter().skip(self.history.len() - warmup).cloned().collect();
        packets.reserve(range);
        while packets.len() - warmup < range {
            match self.reader.reader.next_packet() {
                Ok(Some(p)) if p.track_id == self.reader.track_id => packets.push(p),
                Ok(Some(_)) | Err(_) => return None,
                Ok(None) => {
                    self.ended = true;
                    break;
                }
            }
        }
        let payload = packets.len() - warmup;
        self.read += payload as u64;
        let keep = payload.min(MAX_WARMUP_PACKETS);
        for p in &packets[packets.len() - keep..] {
            if self.history.len() == MAX_WARMUP_PACKETS {
                self.history.pop_front();
            }
            self.history.push_back(p.clone());
        }
        Some(Job { seq, warmup, packets })
    }

    /// Hands one decoded range to the accumulator packet by packet, with the sequential
    /// engine's checks. `Ok(false)`: fall back.
    fn consume(
        &mut self,
        out: &RangeOut,
        acc: &mut Acc<'_, '_>,
        cancel: &CancelToken,
    ) -> Result<bool> {
        let mut offset = 0;
        let mut block: Vec<&[f32]> = Vec::with_capacity(out.planes.len());
        for &n in &out.frames {
            cancel.check()?;
            self.packets += 1;
            if self.packets > self.max_packets {
                return Ok(false);
            }
            let n = n as usize;
            if n == 0 {
                self.empty_run += 1;
                if self.empty_run > MAX_EMPTY_PACKETS_IN_A_ROW {
                    return Ok(false);
                }
                continue;
            }
            self.empty_run = 0;
            let Some((rate, channels)) = out.spec else { return Ok(false) };
            if rate != acc.rate || channels == 0 || acc.channels.is_some_and(|c| c != channels) {
                return Ok(false);
            }
            block.clear();
            block.extend(out.planes.iter().map(|p| &p[offset..offset + n]));
            acc.push_planes(&block)?;
            offset += n;
        }
        match out.status {
            Status::Complete => Ok(true),
            Status::Failed => Ok(false),
            Status::Cancelled => Err(Error::Cancelled),
        }
    }
}

/// A worker: decodes ranges until the queue closes.
fn worker(
    jobs: &Mutex<mpsc::Receiver<Job>>,
    done: &mpsc::Sender<RangeOut>,
    spare: &Mutex<Vec<Vec<Vec<f32>>>>,
    params: &AudioCodecParameters,
    opts: AudioDecoderOptions,
    cancel: &CancelToken,
) {
    let mut decoder: Option<Box<dyn AudioDecoder>> = None;
    loop {
        let job = {
            let Ok(queue) = jobs.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let seq = job.seq;
        let out = catch_unwind(AssertUnwindSafe(|| {
            let decoder = match &mut decoder {
                Some(d) => {
                    d.reset();
                    d
                }
                empty => match crate::load::codecs::codecs().make_audio_decoder(params, &opts) {
                    Ok(d) => empty.insert(d),
                    Err(_) => return RangeOut::new(seq, Status::Failed),
                },
            };
            let planes = spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default();
            decode_range(decoder.as_mut(), &job, planes, cancel)
        }))
        .unwrap_or_else(|_| {
            // A decoder that panicked is not reused.
            decoder = None;
            RangeOut::new(seq, Status::Failed)
        });
        if done.send(out).is_err() {
            return;
        }
    }
}

/// Decodes one range with a freshly reset decoder, dropping the warm-up's output.
/// `planes` are buffers to reuse.
fn decode_range(
    decoder: &mut dyn AudioDecoder,
    job: &Job,
    mut planes: Vec<Vec<f32>>,
    cancel: &CancelToken,
) -> RangeOut {
    let payload = job.packets.len() - job.warmup;
    let mut out = RangeOut::new(job.seq, Status::Complete);
    out.frames.reserve(payload);
    for (i, packet) in job.packets.iter().enumerate() {
        if cancel.is_cancelled() {
            out.status = Status::Cancelled;
            break;
        }
        let buf = match decoder.decode(packet) {
            Ok(buf) => buf,
            Err(_) => {
                // Also in the warm-up: a decoder that failed there may have cleared its bit
                // reservoir, so what follows could differ from the sequential decode.
                out.status = Status::Failed;
                break;
            }
        };
        if i < job.warmup {
            continue;
        }
        let n = buf.frames();
        if n > 0 {
            let spec = (buf.spec().rate(), buf.num_planes());
            match out.spec {
                None => {
                    out.spec = Some(spec);
                    planes.resize_with(spec.1, Vec::new);
                    for p in &mut planes {
                        p.clear();
                        p.reserve(payload * n);
                    }
                    out.planes = std::mem::take(&mut planes);
                }
                Some(s) if s != spec => {
                    out.status = Status::Failed;
                    break;
                }
                Some(_) => {}
            }
            let mut dst: Vec<&mut [f32]> = out
                .planes
                .iter_mut()
                .map(|p| {
                    let start = p.len();
                    p.resize(start + n, 0.0);
                    &mut p[start..]
                })
                .collect();
            buf.copy_to_slice_planar(&mut dst);
        }
        out.frames.push(u32::try_from(n).unwrap_or(u32::MAX));
    }
    out
}

/// Warm-up packets for a range that follows `history` (the packets just before it): the
/// packets of two granules, plus enough before them that their main-data slots hold the
/// largest `main_data_begin`. `None` if the history is too short, unless it is `whole` (reaches
/// back to the stream's first packet).
fn warmup_len(history: &VecDeque<Packet>, whole: bool) -> Option<usize> {
    let Some(last) = history.back() else { return Some(0) };
    // Conservative if the header does not parse: MPEG-1's reach, MPEG-2's granule count.
    let (granule_packets, reach) = match Header::parse(&last.data) {
        Some(h) => (2 / h.version.granules(), h.version.max_main_data_begin()),
        None => (2, 511),
    };
    let mut bytes = 0;
    let mut count = granule_packets;
    for p in history.iter().rev().skip(granule_packets) {
        if bytes >= reach {
            break;
        }
        // The packet is one frame: its main-data slot follows the side information.
        bytes +=
            Header::parse(&p.data).map_or(0, |h| p.data.len().saturating_sub(h.main_data_start()));
        count += 1;
    }
    if count <= history.len() && bytes >= reach {
        Some(count)
    } else if whole {
        Some(history.len())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::*;
    use crate::encode::{Mp3Bitrate, OutputFormat, Tags, write_file};
    use crate::load::{decode_bytes, decode_file, decode_file_streaming};
    use crate::{Limits, synth};

    fn rate(hz: u32) -> NonZeroU32 {
        NonZeroU32::new(hz).unwrap()
    }

    /// Speech-like content (different seed per channel) encoded to MP3 in `dir`.
    fn mp3_file(
        dir: &Path,
        hz: u32,
        channels: usize,
        frames: usize,
        format: &OutputFormat,
    ) -> PathBuf {
        let r = rate(hz);
        let planes: Vec<Vec<f32>> =
            (0..channels).map(|c| synth::speech_like(r, 7 + c as u64, -18.0, frames)).collect();
        let buf = crate::AudioBuffer::from_planar(r, planes).unwrap();
        let path = dir.join(format!("{hz}-{channels}-{frames}.mp3"));
        write_file(&path, &buf, format, &Tags::default()).unwrap();
        path
    }

    fn vbr(quality: u8) -> OutputFormat {
        OutputFormat::Mp3 { bitrate: Mp3Bitrate::Vbr { quality }, quality: 5 }
    }

    fn one_thread() -> DecodeOptions {
        DecodeOptions { threads: NonZeroUsize::new(1), ..DecodeOptions::default() }
    }

    /// Runs `f` with the parallel path forced to `plan`; returns its result and how the
    /// parallel decode ended.
    fn forced<T>(plan: Plan, f: impl FnOnce() -> T) -> (T, Option<(bool, u64)>) {
        FORCED.with(|c| c.set(Some(plan)));
        LAST.with(|c| c.set(None));
        let out = f();
        FORCED.with(|c| c.set(None));
        (out, LAST.with(std::cell::Cell::take))
    }

    fn auto(threads: usize, range_packets: usize) -> Plan {
        Plan { threads, range_packets, warmup: Warmup::Auto }
    }

    /// Bit-level equality of everything a decode returns.
    fn assert_identical(seq: &Decoded, par: &Decoded, what: &str) {
        assert_eq!(seq.info, par.info, "{what}: info");
        assert_eq!(seq.corrupt_packets, par.corrupt_packets, "{what}: corrupt packets");
        assert_eq!(seq.warnings, par.warnings, "{what}: warnings");
        assert_eq!(seq.audio.channel_count(), par.audio.channel_count(), "{what}: channels");
        assert_eq!(seq.audio.frames(), par.audio.frames(), "{what}: frames");
        for c in 0..seq.audio.channel_count() {
            let (a, b) = (seq.audio.channel(c), par.audio.channel(c));
            if let Some(i) = a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits()) {
                panic!("{what}: channel {c} differs first at frame {i}: {} vs {}", a[i], b[i]);
            }
        }
    }

    /// Index of the first differing sample over all channels, if any.
    fn first_difference(a: &Decoded, b: &Decoded) -> Option<usize> {
        (0..a.audio.channel_count())
            .filter_map(|c| {
                a.audio
                    .channel(c)
                    .iter()
                    .zip(b.audio.channel(c))
                    .position(|(x, y)| x.to_bits() != y.to_bits())
            })
            .min()
    }

    #[test]
    fn ranges_join_bit_identically_across_formats_and_thread_counts() {
        let dir = tempfile::tempdir().unwrap();
        // 20 s plus 333 frames: not a multiple of 1152, and of 576.
        let cases = [
            (44_100, 1, OutputFormat::mp3_cbr(128)),
            (44_100, 2, OutputFormat::mp3_cbr(128)),
            (48_000, 1, vbr(4)),
            (48_000, 2, vbr(2)),
            (48_000, 1, OutputFormat::mp3_cbr(32)),
            (22_050, 2, OutputFormat::mp3_cbr(64)),
        ];
        for (hz, channels, format) in cases {
            let frames = 20 * hz as usize + 333;
            let path = mp3_file(dir.path(), hz, channels, frames, &format);
            let bytes = std::fs::read(&path).unwrap();
            let seq = decode_bytes(&bytes, &one_thread(), &CancelToken::new()).unwrap();
            // LAME's tag makes the decoded length exact.
            assert_eq!(seq.audio.frames(), frames, "{hz} Hz {channels} ch {format:?}");
            let packets = bytes.len() / 100;
            for threads in [1, 2, 3, 8] {
                let what = format!("{hz} Hz {channels} ch {format:?} {threads} threads");
                let (par, last) = forced(auto(threads, 40), || {
                    decode_bytes(&bytes, &DecodeOptions::default(), &CancelToken::new()).unwrap()
                });
                assert_identical(&seq, &par, &what);
                let (done, ranges) = last.unwrap();
                assert!(done, "{what}: fell back");
                assert!(ranges >= 10 && ranges as usize <= packets, "{what}: {ranges} ranges");
            }
        }
    }

    /// Byte ranges of the Layer III frames in an MP3 file without ID3v2 tag.
    fn frames_of(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(h) = bytes.get(pos..).and_then(Header::parse) {
            out.push(pos..pos + h.frame_len());
            pos += h.frame_len();
        }
        out
    }

    #[test]
    fn warmup_rule_is_the_measured_minimum() {
        let dir = tempfile::tempdir().unwrap();
        // (rate, channels, format, fewest fixed warm-up packets measured to give identical
        // output, warm-up the rule gives)
        let cases = [
            // 128 kbit/s MPEG-1: 381/396-byte slots, 2 hold 511 bytes; plus 1 for 2 granules.
            (44_100, 2, OutputFormat::mp3_cbr(128), 3, 3),
            (44_100, 1, OutputFormat::mp3_cbr(128), 3, 3),
            // 32 kbit/s at 48 kHz: 75-byte slots, 7 for 511 bytes, plus 1. LAME's reservoir
            // never reached back the full 511 bytes here, so 7 was enough in this file.
            (48_000, 1, OutputFormat::mp3_cbr(32), 7, 8),
            // MPEG-2 (22.05 kHz, one granule per packet): 187-byte slots, 2 for 255 bytes,
            // plus 2 for 2 granules.
            (22_050, 2, OutputFormat::mp3_cbr(64), 4, 4),
        ];
        for (hz, channels, format, measured, rule) in cases {
            let what = format!("{hz} Hz {channels} ch {format:?}");
            let path = mp3_file(dir.path(), hz, channels, 10 * hz as usize, &format);
            let bytes = std::fs::read(&path).unwrap();
            let seq = decode_bytes(&bytes, &one_thread(), &CancelToken::new()).unwrap();
            let mut need = None;
            for n in 0..=rule {
                let plan = Plan { threads: 2, range_packets: 25, warmup: Warmup::Fixed(n) };
                let (par, _) = forced(plan, || {
                    decode_bytes(&bytes, &DecodeOptions::default(), &CancelToken::new()).unwrap()
                });
                if let Some(at) = first_difference(&seq, &par) {
                    // Too little warm-up corrupts the start of a range (after the first).
                    assert!(
                        need.is_none(),
                        "{what}: warm-up {n} differs after a smaller one did not"
                    );
                    assert!(at > 20 * 576, "{what}: warm-up {n} differs at frame {at}");
                } else {
                    need.get_or_insert(n);
                }
            }
            assert_eq!(need, Some(measured), "{what}");
            // The rule, on the file's own frames (a range starting at frame 100).
            let frames = frames_of(&bytes);
            let history: VecDeque<Packet> = frames[50..100]
                .iter()
                .map(|r| {
                    Packet::new(
                        0,
                        Default::default(),
                        Default::default(),
                        bytes[r.clone()].to_vec(),
                    )
                })
                .collect();
            assert_eq!(warmup_len(&history, false), Some(rule), "{what}");
            // And the automatic warm-up decodes identically.
            let (par, last) = forced(auto(2, 25), || {
                decode_bytes(&bytes, &DecodeOptions::default(), &CancelToken::new()).unwrap()
            });
            assert_identical(&seq, &par, &what);
            // Every packet but LAME's Xing frame is audio.
            assert_eq!(last, Some((true, (frames.len() as u64 - 1).div_ceil(25))), "{what}");
        }
    }

    /// Every block a streaming decode hands to the sink, copied.
    fn stream_blocks(
        path: &Path,
        opts: &DecodeOptions,
        cancel: &CancelToken,
        stop_after: Option<usize>,
    ) -> (crate::Result<Decoded>, Vec<Vec<Vec<f32>>>) {
        let mut blocks = Vec::new();
        let d = decode_file_streaming(path, opts, cancel, &mut |hz, planes| {
            assert!(hz > 0);
            blocks.push(planes.iter().map(|p| p.to_vec()).collect());
            if stop_after == Some(blocks.len()) {
                cancel.cancel();
            }
            Ok(())
        });
        (d, blocks)
    }

    fn bits(blocks: &[Vec<Vec<f32>>]) -> Vec<Vec<Vec<u32>>> {
        blocks
            .iter()
            .map(|b| b.iter().map(|p| p.iter().map(|x| x.to_bits()).collect()).collect())
            .collect()
    }

    #[test]
    fn store_and_stream_from_a_file_match_the_sequential_decode() {
        let dir = tempfile::tempdir().unwrap();
        let path = mp3_file(dir.path(), 44_100, 2, 30 * 44_100 + 17, &OutputFormat::mp3_cbr(128));
        let cancel = CancelToken::new();
        let seq = decode_file(&path, &one_thread(), &cancel).unwrap();
        let (par, last) =
            forced(auto(2, 50), || decode_file(&path, &DecodeOptions::default(), &cancel).unwrap());
        assert_identical(&seq, &par, "decode_file");
        // 30 s = 1149 packets after the Xing frame: 23 ranges of 50.
        assert_eq!(last, Some((true, 23)));

        let (seq_d, seq_blocks) = stream_blocks(&path, &one_thread(), &cancel, None);
        let ((par_d, par_blocks), last) =
            forced(auto(3, 50), || stream_blocks(&path, &DecodeOptions::default(), &cancel, None));
        assert_eq!(last, Some((true, 23)));
        let (seq_d, par_d) = (seq_d.unwrap(), par_d.unwrap());
        assert_eq!(seq_d.info, par_d.info);
        assert_eq!(par_d.info.frames, 30 * 44_100 + 17);
        // The same blocks, one per packet, with the same samples.
        assert_eq!(seq_blocks.len(), par_blocks.len());
        assert_eq!(bits(&seq_blocks), bits(&par_blocks));
        let streamed: usize = par_blocks.iter().map(|b| b[0].len()).sum();
        assert_eq!(streamed, 30 * 44_100 + 17);
    }

    #[test]
    fn a_corrupt_frame_in_the_middle_falls_back_to_the_same_result() {
        let dir = tempfile::tempdir().unwrap();
        let path = mp3_file(dir.path(), 44_100, 2, 20 * 44_100, &OutputFormat::mp3_cbr(128));
        let mut bytes = std::fs::read(&path).unwrap();
        let frames = frames_of(&bytes);
        // LAME's Xing frame, then the audio with its 1105-frame delay, padded to a frame.
        assert_eq!(frames.len(), 1 + (20 * 44_100 + 1105usize).div_ceil(1152));
        // Smash the side information of frame 400 (the 8th range of 50): big_values out of
        // range, the decoder rejects the packet.
        let at = frames[400].start;
        bytes[at + 4..at + 13].fill(0xFF);
        let broken = dir.path().join("broken.mp3");
        std::fs::write(&broken, &bytes).unwrap();
        let cancel = CancelToken::new();

        let seq = decode_bytes(&bytes, &one_thread(), &cancel).unwrap();
        assert_eq!(seq.corrupt_packets, 1);
        assert_eq!(seq.audio.frames(), 20 * 44_100, "the packet became silence of its length");
        for threads in [2, 3] {
            let (par, last) = forced(auto(threads, 50), || {
                decode_bytes(&bytes, &DecodeOptions::default(), &cancel).unwrap()
            });
            assert_identical(&seq, &par, "corrupt frame, store");
            let (done, ranges) = last.unwrap();
            assert!(!done && ranges >= 8, "fell back after dispatching {ranges} ranges");
        }

        // Streaming: the parallel attempt delivered the first 399 packets, the sequential
        // rerun continues exactly after them.
        let (seq_d, seq_blocks) = stream_blocks(&broken, &one_thread(), &cancel, None);
        let ((par_d, par_blocks), last) = forced(auto(2, 50), || {
            stream_blocks(&broken, &DecodeOptions::default(), &cancel, None)
        });
        assert_eq!(last.map(|l| l.0), Some(false));
        let (seq_d, par_d) = (seq_d.unwrap(), par_d.unwrap());
        assert_eq!((seq_d.info, seq_d.warnings), (par_d.info, par_d.warnings));
        assert_eq!(par_d.corrupt_packets, 1);
        assert_eq!(bits(&seq_blocks), bits(&par_blocks));
    }

    #[test]
    fn cancelling_mid_decode_returns_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let path = mp3_file(dir.path(), 44_100, 1, 20 * 44_100, &OutputFormat::mp3_cbr(128));
        let cancel = CancelToken::new();
        let ((d, blocks), last) = forced(auto(2, 50), || {
            stream_blocks(&path, &DecodeOptions::default(), &cancel, Some(120))
        });
        assert!(matches!(d, Err(Error::Cancelled)), "{:?}", d.map(|d| d.info));
        assert_eq!(blocks.len(), 120, "no block after the cancel");
        assert_eq!(last.map(|l| l.0), Some(false));

        let cancelled = CancelToken::new();
        cancelled.cancel();
        let (d, _) =
            forced(auto(2, 50), || decode_file(&path, &DecodeOptions::default(), &cancelled));
        assert!(matches!(d, Err(Error::Cancelled)));
    }

    #[test]
    fn limits_stop_the_parallel_decode_where_they_stop_the_sequential_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = mp3_file(dir.path(), 44_100, 2, 20 * 44_100, &OutputFormat::mp3_cbr(128));
        let bytes = std::fs::read(&path).unwrap();
        // Without gapless trimming the header's count is not exact, so the cap is found while
        // decoding, 5 s in.
        let opts = DecodeOptions {
            limits: Limits { max_duration_s: 5.0, ..Limits::default() },
            gapless: false,
            threads: None,
        };
        let seq = decode_bytes(
            &bytes,
            &DecodeOptions { threads: NonZeroUsize::new(1), ..opts.clone() },
            &CancelToken::new(),
        )
        .unwrap_err();
        let (par, last) =
            forced(auto(2, 40), || decode_bytes(&bytes, &opts, &CancelToken::new()).unwrap_err());
        assert!(matches!(&par, Error::LimitExceeded { what: "duration_s", .. }), "{par}");
        assert_eq!(seq.to_string(), par.to_string());
        assert!(last.is_some());

        // Untrimmed decodes match too, priming and padding included.
        let untrimmed = DecodeOptions { gapless: false, ..DecodeOptions::default() };
        let seq = decode_bytes(
            &bytes,
            &DecodeOptions { threads: NonZeroUsize::new(1), ..untrimmed.clone() },
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(seq.audio.frames(), 767 * 1152);
        let (par, last) =
            forced(auto(2, 40), || decode_bytes(&bytes, &untrimmed, &CancelToken::new()).unwrap());
        assert_identical(&seq, &par, "gapless off");
        assert_eq!(last.map(|l| l.0), Some(true));
    }

    #[test]
    fn short_files_decode_sequentially_or_as_one_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = mp3_file(dir.path(), 48_000, 2, 5 * 48_000 + 1, &vbr(4));
        let bytes = std::fs::read(&path).unwrap();
        let seq = decode_bytes(&bytes, &one_thread(), &CancelToken::new()).unwrap();
        assert_eq!(seq.audio.frames(), 5 * 48_000 + 1);
        // The real plan: 5 s is under two minimum ranges, so no parallel decode at all.
        LAST.with(|c| c.set(None));
        let eight = DecodeOptions { threads: NonZeroUsize::new(8), ..DecodeOptions::default() };
        let d = decode_bytes(&bytes, &eight, &CancelToken::new()).unwrap();
        assert_eq!(LAST.with(std::cell::Cell::get), None);
        assert_identical(&seq, &d, "short, planned");
        // Forced through the parallel path: one range holds the whole file.
        let (par, last) = forced(auto(8, 1000), || {
            decode_bytes(&bytes, &DecodeOptions::default(), &CancelToken::new()).unwrap()
        });
        assert_identical(&seq, &par, "short, one range");
        assert_eq!(last, Some((true, 1)));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

        #[test]
        fn any_length_channels_and_threads_decode_identically(
            frames in 1usize..150_000,
            channels in 1usize..=2,
            threads in 1usize..=4,
            range in 4usize..40,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = mp3_file(dir.path(), 44_100, channels, frames, &OutputFormat::mp3_cbr(128));
            let bytes = std::fs::read(&path).unwrap();
            let seq = decode_bytes(&bytes, &one_thread(), &CancelToken::new()).unwrap();
            prop_assert_eq!(seq.audio.frames(), frames);
            let (par, last) = forced(auto(threads, range), || {
                decode_bytes(&bytes, &DecodeOptions::default(), &CancelToken::new()).unwrap()
            });
            assert_identical(&seq, &par, &format!("{frames} frames {channels} ch"));
            prop_assert_eq!(last.map(|l| l.0), Some(true));
        }
    }
}
