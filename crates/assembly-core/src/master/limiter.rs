//! An oversampled (4×) lookahead true-peak limiter with smooth release, stereo-linked.
//!
//! # How it works
//!
//! 1. **Detector.** For every input frame `n` the peak `p[n]` is the largest magnitude over
//!    all channels of the sample itself and of the three points interpolated between `n` and
//!    `n + 1` by a 4× polyphase FIR (48-tap Hann-windowed sinc: the interpolator BS.1770
//!    suggests and `ebur128` uses, so the detector sees exactly what the meter measures). A
//!    cheap bound (`max |x|` over a 64-frame chunk times the filter's absolute tap sum) skips
//!    the FIR where no point can reach the ceiling.
//! 2. **Required gain** `r[n] = min(1, T / p[n])`, with `T` the ceiling less a small safety
//!    margin ([`SAFETY_MARGIN_DB`]).
//! 3. **Hold.** `h[k]` is the minimum of `r` over a window reaching `W` frames beyond the
//!    smoothing span on both sides (`W` covers the interpolator's reach), so that every gain
//!    applied within `W` frames of a peak is at most that peak's required gain.
//! 4. **Release.** A one-pole recovery toward slightly above the held value (so it arrives in
//!    finite time), never above it: `h'[k] <= h[k]`.
//! 5. **Attack smoothing.** Two cascaded moving averages (together `lookahead_ms` long) over
//!    the future of `h'`: the gain starts falling before a peak and reaches the required
//!    value when the peak arrives, with no corner in the gain curve.
//!
//! The output is the input delayed by [`TruePeakLimiter::latency_frames`] times the gain.
//! Nothing is ever clipped: the gain alone keeps samples and inter-sample peaks under the
//! ceiling. [`LimiterStream`] removes the latency so that output length equals input length.

use std::collections::VecDeque;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::AudioBuffer;
use crate::buffer::{check_planes, max_abs};
use crate::dsp::true_peak::{AHEAD, TAPS, interpolator, interpolator_bound};
use crate::dsp::{db_to_gain, gain_to_db};
use crate::error::{Error, Result};

/// The limiter aims this far below the ceiling, in dB, to absorb the small inter-sample
/// overshoot that the gain's own movement can cause around a peak.
pub const SAFETY_MARGIN_DB: f64 = 0.02;

/// The linear level the limiter holds peaks to for a ceiling of `ceiling_dbtp`: the ceiling
/// less [`SAFETY_MARGIN_DB`]. The limiter and the render passes that predict it share it.
pub(crate) fn ceiling_target(ceiling_dbtp: f64) -> f32 {
    db_to_gain(ceiling_dbtp - SAFETY_MARGIN_DB) as f32
}

/// The lowest of `target` and the `dips` over frames `[from, to)`, and whether a dip
/// reaches them (`dips` sorted by start).
fn target_over(dips: &[(i64, i64, f32)], target: f32, from: i64, to: i64) -> (f32, bool) {
    let mut t = target;
    let mut any = false;
    for &(s, e, dt) in dips {
        if s >= to {
            break;
        }
        if e > from {
            t = t.min(dt);
            any = true;
        }
    }
    (t, any)
}

/// Guard around each peak over which the gain is kept at or below the peak's requirement.
const GUARD: usize = 8;
/// Detector chunk (the skip test is per chunk).
const CHUNK: usize = 64;

/// Limiter timing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimiterOptions {
    /// Lookahead (= attack) in ms: the gain starts falling this long before a peak.
    /// 1..=50. Default: `5`.
    pub lookahead_ms: u32,
    /// Release time constant in ms: how fast the gain recovers after a peak. 1..=5000.
    /// Default: `100`.
    pub release_ms: u32,
}

impl Default for LimiterOptions {
    fn default() -> Self {
        Self { lookahead_ms: 5, release_ms: 100 }
    }
}

impl LimiterOptions {
    /// Checks the ranges.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `limiter.lookahead_ms` or `limiter.release_ms`.
    pub fn validate(&self) -> Result<()> {
        if !(1..=50).contains(&self.lookahead_ms) {
            return Err(Error::invalid_input(
                "limiter.lookahead_ms",
                format!("must be in 1..=50 ms, got {}", self.lookahead_ms),
            ));
        }
        if !(1..=5000).contains(&self.release_ms) {
            return Err(Error::invalid_input(
                "limiter.release_ms",
                format!("must be in 1..=5000 ms, got {}", self.release_ms),
            ));
        }
        Ok(())
    }
}

/// A stretch of the stream where the limiter holds peaks to a lower ceiling than its own
/// (a local repair: the verify loop lowers the ceiling only where the decoded output went
/// over, so the rest of the programme, and its encoded chunks, stay as they were).
///
/// Frames count from the first frame pushed into the limiter. Outside every dip the
/// limiter's own ceiling holds; where dips overlap, the lowest ceiling holds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeilingDip {
    /// First frame of the stretch.
    pub start_frame: u64,
    /// Frame after the stretch.
    pub end_frame: u64,
    /// The ceiling over the stretch, dBTP (-60..=0).
    pub ceiling_dbtp: f64,
}

/// What the limiter did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimiterStats {
    /// Largest gain reduction applied, in dB (positive; 0 when it never acted).
    pub max_reduction_db: f64,
    /// Frames output with a gain below unity.
    pub limited_frames: u64,
}

/// A fixed-size ring of `f32` with a running sum, for a moving average.
#[derive(Debug)]
struct BoxAverage {
    ring: Vec<f32>,
    pos: usize,
    sum: f64,
    /// How many of the most recent values were exactly 1.0 (saturating).
    ones: usize,
}

impl BoxAverage {
    fn new(len: usize) -> Self {
        Self { ring: vec![1.0; len], pos: 0, sum: len as f64, ones: len }
    }

    fn push(&mut self, v: f32) -> f32 {
        let old = std::mem::replace(&mut self.ring[self.pos], v);
        self.pos += 1;
        if self.pos == self.ring.len() {
            self.pos = 0;
        }
        self.sum += f64::from(v) - f64::from(old);
        if v == 1.0 {
            self.ones = (self.ones + 1).min(self.ring.len());
            if self.ones == self.ring.len() {
                // Every value is 1.0: resynchronise the sum exactly.
                self.sum = self.ring.len() as f64;
                return 1.0;
            }
        } else {
            self.ones = 0;
        }
        (self.sum / self.ring.len() as f64) as f32
    }

    fn idle(&self) -> bool {
        self.ones == self.ring.len()
    }
}

/// The limiter core: in-place block processing, output delayed by
/// [`latency_frames`](Self::latency_frames).
///
/// Use [`LimiterStream`] or [`limit`] for latency-compensated output.
#[derive(Debug)]
pub struct TruePeakLimiter {
    channels: usize,
    coef: [[f32; TAPS]; 3],
    /// Absolute tap sum bound: no interpolated point exceeds `bound * max |x|` over its taps.
    bound: f32,
    /// Target peak (linear) the gain aims for.
    target: f32,
    /// Lower targets over stretches of frames `[start, end)`, sorted by start.
    dips: Vec<(i64, i64, f32)>,
    latency: usize,
    /// Hold window length: `r` indices `[n - hold + 1, n]`.
    hold: i64,
    release_coef: f32,
    /// Input history per channel; `buf[ch][0]` is absolute frame `base`.
    buf: Vec<Vec<f32>>,
    base: i64,
    /// Next absolute input frame.
    n_in: i64,
    /// Sliding minimum of `r < 1` values: (frame, r).
    mins: VecDeque<(i64, f32)>,
    held: f32,
    box1: BoxAverage,
    box2: BoxAverage,
    /// Scratch.
    peaks: Vec<f32>,
    gains: Vec<f32>,
    stats: LimiterStats,
    min_gain: f32,
}

impl TruePeakLimiter {
    /// A limiter for `channels` channels at `rate` keeping every sample and inter-sample peak
    /// at or below `ceiling_dbtp`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `channels` is 0, the ceiling is not in `-60..=0` dBTP, or
    /// the options are out of range.
    pub fn new(
        channels: usize,
        rate: NonZeroU32,
        ceiling_dbtp: f64,
        options: &LimiterOptions,
    ) -> Result<Self> {
        options.validate()?;
        if channels == 0 {
            return Err(Error::invalid_input("channels", "channel count must be at least 1"));
        }
        if !ceiling_dbtp.is_finite() || !(-60.0..=0.0).contains(&ceiling_dbtp) {
            return Err(Error::invalid_input(
                "ceiling_dbtp",
                format!("must be in -60..=0 dBTP, got {ceiling_dbtp}"),
            ));
        }
        let sr = f64::from(rate.get());
        let look = ((f64::from(options.lookahead_ms) * sr / 1000.0).round() as usize).max(2);
        let l1 = look.div_ceil(2);
        let l2 = look + 1 - l1; // l1 + l2 - 1 == look
        let latency = look - 1 + GUARD + AHEAD;
        let hold = (look + 2 * GUARD) as i64;
        let tau = f64::from(options.release_ms) * sr / 1000.0;
        let release_coef = (1.0 - (-1.0 / tau).exp()) as f32;
        let coef = interpolator();
        let bound = interpolator_bound() * 1.0001;
        let target = ceiling_target(ceiling_dbtp);
        // History starts with zeros for the frames before the stream (frame < 0).
        let pre = latency + TAPS;
        let base = -(pre as i64);
        let buf = vec![vec![0.0f32; pre]; channels];
        Ok(Self {
            channels,
            coef,
            bound,
            target,
            dips: Vec::new(),
            latency,
            hold,
            release_coef,
            buf,
            base,
            n_in: 0,
            mins: VecDeque::new(),
            held: 1.0,
            box1: BoxAverage::new(l1),
            box2: BoxAverage::new(l2),
            peaks: vec![0.0; CHUNK],
            gains: vec![0.0; CHUNK],
            stats: LimiterStats::default(),
            min_gain: 1.0,
        })
    }

    /// Holds peaks to a lower ceiling over the given stretches of frames (counted from the
    /// first frame pushed); replaces any earlier dips. A dip's ceiling at or above the
    /// limiter's own changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `ceiling_dips` for a ceiling outside `-60..=0` dBTP or
    /// an empty or reversed stretch.
    pub fn set_ceiling_dips(&mut self, dips: &[CeilingDip]) -> Result<()> {
        let mut out = Vec::with_capacity(dips.len());
        for (i, d) in dips.iter().enumerate() {
            if !d.ceiling_dbtp.is_finite() || !(-60.0..=0.0).contains(&d.ceiling_dbtp) {
                return Err(Error::invalid_input(
                    format!("ceiling_dips[{i}].ceiling_dbtp"),
                    format!("must be in -60..=0 dBTP, got {}", d.ceiling_dbtp),
                ));
            }
            if d.end_frame <= d.start_frame || d.end_frame > i64::MAX as u64 {
                return Err(Error::invalid_input(
                    format!("ceiling_dips[{i}]"),
                    format!("empty or reversed stretch {}..{}", d.start_frame, d.end_frame),
                ));
            }
            let t = ceiling_target(d.ceiling_dbtp).min(self.target);
            out.push((d.start_frame as i64, d.end_frame as i64, t));
        }
        out.sort_by_key(|&(s, e, _)| (s, e));
        self.dips = out;
        Ok(())
    }

    /// Frames by which the output lags the input.
    pub fn latency_frames(&self) -> usize {
        self.latency
    }

    /// Number of channels.
    pub fn channel_count(&self) -> usize {
        self.channels
    }

    /// What the limiter did so far.
    pub fn stats(&self) -> LimiterStats {
        self.stats
    }

    fn idle(&self) -> bool {
        self.mins.is_empty() && self.held == 1.0 && self.box1.idle() && self.box2.idle()
    }

    /// Limits `planes` in place: on return they hold the output delayed by
    /// [`latency_frames`](Self::latency_frames) (zeros at first). Non-finite input samples
    /// are treated as zero.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the number of planes differs from the channel count or the
    /// planes differ in length.
    pub fn process(&mut self, planes: &mut [&mut [f32]]) -> Result<()> {
        let frames = check_planes(planes, self.channels, "limiter")?;
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(CHUNK);
            self.push_input(planes, done, n);
            self.run_chunk(planes, done, n);
            done += n;
        }
        Ok(())
    }

    /// Appends `n` frames from `planes[..][at..]` to the history.
    fn push_input(&mut self, planes: &[&mut [f32]], at: usize, n: usize) {
        // Keep what the detector (5 frames back) and the output (latency back) still need.
        let keep_from = self.n_in - (self.latency + TAPS) as i64;
        let drop = (keep_from - self.base).max(0) as usize;
        if drop >= 8192 {
            for b in &mut self.buf {
                b.drain(..drop);
            }
            self.base += drop as i64;
        }
        for (b, p) in self.buf.iter_mut().zip(planes.iter()) {
            b.extend(p[at..at + n].iter().map(|&s| if s.is_finite() { s } else { 0.0 }));
        }
        self.n_in += n as i64;
    }

    /// Detects frames `[n_in - n - AHEAD, n_in - AHEAD)`, advances the gain pipeline and
    /// writes the output frames `[n_in - n - latency, n_in - latency)` into `planes[..][at..]`.
    fn run_chunk(&mut self, planes: &mut [&mut [f32]], at: usize, n: usize) {
        let det0 = self.n_in - n as i64 - AHEAD as i64;
        // Start of the taps of the first detected frame, as a buffer index.
        let tap0 = (det0 - (AHEAD as i64 - 1) - self.base) as usize;
        let span = n + TAPS - 1;
        let mut mx = 0.0f32;
        for b in &self.buf {
            mx = mx.max(max_abs(&b[tap0..tap0 + span]));
        }
        let (chunk_target, dipped) = target_over(&self.dips, self.target, det0, det0 + n as i64);
        let quiet = mx * self.bound <= chunk_target;
        let idle = self.idle();
        if quiet && idle {
            // Nothing to detect and nothing pending: unity gain, output = delayed input.
            let out0 = (self.n_in - n as i64 - self.latency as i64 - self.base) as usize;
            for (b, p) in self.buf.iter().zip(planes.iter_mut()) {
                p[at..at + n].copy_from_slice(&b[out0..out0 + n]);
            }
            return;
        }
        let peaks = &mut self.peaks[..n];
        if quiet {
            peaks.fill(0.0);
        } else {
            peaks.fill(0.0);
            let mut acc = [0.0f32; CHUNK];
            for b in &self.buf {
                let x = &b[tap0..tap0 + span];
                for phase in &self.coef {
                    let acc = &mut acc[..n];
                    acc.fill(0.0);
                    for (t, &c) in phase.iter().enumerate() {
                        for (a, &s) in acc.iter_mut().zip(&x[t..t + n]) {
                            *a += c * s;
                        }
                    }
                    for (p, a) in peaks.iter_mut().zip(acc.iter()) {
                        *p = p.max(a.abs());
                    }
                }
                for (p, &s) in peaks.iter_mut().zip(&x[AHEAD - 1..AHEAD - 1 + n]) {
                    *p = p.max(s.abs());
                }
            }
            if idle && peaks.iter().all(|&p| p <= chunk_target) {
                // Nothing reaches the ceiling and nothing is pending: unity gain.
                let out0 = (self.n_in - n as i64 - self.latency as i64 - self.base) as usize;
                for (b, p) in self.buf.iter().zip(planes.iter_mut()) {
                    p[at..at + n].copy_from_slice(&b[out0..out0 + n]);
                }
                return;
            }
        }
        // Gain pipeline, one frame at a time.
        for (i, g_out) in self.gains[..n].iter_mut().enumerate() {
            let frame = det0 + i as i64;
            let p = peaks[i];
            let target = if dipped {
                target_over(&self.dips, self.target, frame, frame + 1).0
            } else {
                self.target
            };
            let r = if p > target { target / p } else { 1.0 };
            if r < 1.0 {
                while self.mins.back().is_some_and(|&(_, v)| v >= r) {
                    self.mins.pop_back();
                }
                self.mins.push_back((frame, r));
            }
            while self.mins.front().is_some_and(|&(f, _)| f <= frame - self.hold) {
                self.mins.pop_front();
            }
            let h = self.mins.front().map_or(1.0, |&(_, v)| v);
            self.held = if h < self.held {
                h
            } else {
                let next = self.held + self.release_coef * (h * 1.02 - self.held);
                next.min(h)
            };
            let a = self.box1.push(self.held);
            *g_out = self.box2.push(a);
        }
        let out0 = (self.n_in - n as i64 - self.latency as i64 - self.base) as usize;
        let gains = &self.gains[..n];
        for (b, p) in self.buf.iter().zip(planes.iter_mut()) {
            for ((o, &s), &g) in p[at..at + n].iter_mut().zip(&b[out0..out0 + n]).zip(gains) {
                *o = s * g;
            }
        }
        for &g in gains {
            if g < 1.0 {
                self.stats.limited_frames += 1;
                self.min_gain = self.min_gain.min(g);
            }
        }
        self.stats.max_reduction_db = (-gain_to_db(f64::from(self.min_gain))).max(0.0);
    }
}

/// A [`TruePeakLimiter`] with its latency removed: every frame pushed comes out exactly once,
/// in order, and [`finish`](Self::finish) flushes the tail, so output length == input length.
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{analyze::loudness::measure, synth, AudioBuffer};
/// use assembly_core::master::{LimiterOptions, LimiterStream};
///
/// let rate = NonZeroU32::new(48_000).unwrap();
/// // A 997 Hz sine at +6 dBFS: far over a -1 dBTP ceiling.
/// let loud = synth::multi(rate, synth::sine(rate, 997.0, 2.0, 48_000), 2);
/// let mut lim = LimiterStream::new(2, rate, -1.0, &LimiterOptions::default()).unwrap();
/// let mut out: Option<AudioBuffer> = None;
/// let mut sink = |b: &AudioBuffer| -> assembly_core::Result<()> {
///     match &mut out { Some(o) => o.append(b), None => { out = Some(b.clone()); Ok(()) } }
/// };
/// for block in [0..10_000usize, 10_000..48_000] {
///     let planes = loud.planes().iter().map(|c| c[block.clone()].to_vec()).collect();
///     lim.push(&AudioBuffer::from_planar(rate, planes).unwrap(), &mut sink).unwrap();
/// }
/// lim.finish(&mut sink).unwrap();
/// let out = out.unwrap();
/// assert_eq!(out.frames(), 48_000);
/// assert!(measure(&out).unwrap().true_peak_dbtp <= -1.0);
/// ```
#[derive(Debug)]
pub struct LimiterStream {
    limiter: TruePeakLimiter,
    rate: NonZeroU32,
    /// Leading output frames still to drop (the latency).
    skip: usize,
    scratch: Vec<Vec<f32>>,
    /// Output planes, reused between blocks.
    out: Vec<Vec<f32>>,
}

impl LimiterStream {
    /// See [`TruePeakLimiter::new`].
    ///
    /// # Errors
    ///
    /// As [`TruePeakLimiter::new`].
    pub fn new(
        channels: usize,
        rate: NonZeroU32,
        ceiling_dbtp: f64,
        options: &LimiterOptions,
    ) -> Result<Self> {
        let limiter = TruePeakLimiter::new(channels, rate, ceiling_dbtp, options)?;
        let skip = limiter.latency_frames();
        Ok(Self {
            limiter,
            rate,
            skip,
            scratch: vec![Vec::new(); channels],
            out: vec![Vec::new(); channels],
        })
    }

    /// What the limiter did so far.
    pub fn stats(&self) -> LimiterStats {
        self.limiter.stats()
    }

    /// The limiter's lookahead, frames: output frame `t` depends on input up to `t` plus
    /// this.
    pub fn latency_frames(&self) -> usize {
        self.limiter.latency_frames()
    }

    /// See [`TruePeakLimiter::set_ceiling_dips`] (frames count from the first frame pushed,
    /// as the output's do: the latency is already removed here).
    ///
    /// # Errors
    ///
    /// As [`TruePeakLimiter::set_ceiling_dips`].
    pub fn set_ceiling_dips(&mut self, dips: &[CeilingDip]) -> Result<()> {
        self.limiter.set_ceiling_dips(dips)
    }

    /// Limits `block` and hands the output that is ready (after the start, as many frames as
    /// went in) to `sink`. Empty outputs are not passed on.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the block's channel count or rate differs; any error of
    /// `sink`.
    pub fn push(
        &mut self,
        block: &AudioBuffer,
        sink: &mut dyn FnMut(&AudioBuffer) -> Result<()>,
    ) -> Result<()> {
        if block.sample_rate() != self.rate {
            return Err(Error::invalid_input(
                "block",
                format!("limiter runs at {} Hz, block is {} Hz", self.rate, block.sample_rate()),
            ));
        }
        // `push_scaled` checks the channel count.
        let planes: Vec<&[f32]> = block.planes().iter().map(Vec::as_slice).collect();
        self.push_scaled(&planes, 1.0, sink)
    }

    /// Like [`push`](Self::push) for planar slices (one per channel, equal lengths), each
    /// sample multiplied by `gain` on the way in.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the number of planes differs from the channel count or the
    /// planes differ in length; any error of `sink`.
    pub fn push_scaled(
        &mut self,
        planes: &[&[f32]],
        gain: f32,
        sink: &mut dyn FnMut(&AudioBuffer) -> Result<()>,
    ) -> Result<()> {
        check_planes(planes, self.limiter.channel_count(), "limiter")?;
        for (s, p) in self.scratch.iter_mut().zip(planes) {
            s.clear();
            s.extend(p.iter().map(|&x| x * gain));
        }
        self.run(sink)
    }

    fn run(&mut self, sink: &mut dyn FnMut(&AudioBuffer) -> Result<()>) -> Result<()> {
        let mut planes: Vec<&mut [f32]> =
            self.scratch.iter_mut().map(|v| v.as_mut_slice()).collect();
        self.limiter.process(&mut planes)?;
        let frames = self.scratch[0].len();
        let drop = self.skip.min(frames);
        self.skip -= drop;
        if drop == frames {
            return Ok(());
        }
        let mut out = std::mem::take(&mut self.out);
        for (o, s) in out.iter_mut().zip(&self.scratch) {
            o.clear();
            o.extend_from_slice(&s[drop..]);
        }
        let buffer = AudioBuffer::from_planar(self.rate, out)?;
        let result = sink(&buffer);
        self.out = buffer.into_planes();
        result
    }

    /// Flushes the frames still inside the limiter to `sink`.
    ///
    /// # Errors
    ///
    /// Any error of `sink`.
    pub fn finish(mut self, sink: &mut dyn FnMut(&AudioBuffer) -> Result<()>) -> Result<()> {
        // Frames still owed: the latency, minus what was never output because the stream was
        // shorter than the latency (those are in `skip` and come out of the zeros we push).
        let owed = self.limiter.latency_frames();
        for s in &mut self.scratch {
            s.clear();
            s.resize(owed, 0.0);
        }
        self.run(sink)
    }
}

/// Limits a whole buffer (latency-compensated, same length) to `ceiling_dbtp`.
///
/// # Errors
///
/// As [`TruePeakLimiter::new`].
pub fn limit(
    buffer: &AudioBuffer,
    ceiling_dbtp: f64,
    options: &LimiterOptions,
) -> Result<(AudioBuffer, LimiterStats)> {
    let mut stream =
        LimiterStream::new(buffer.channel_count(), buffer.sample_rate(), ceiling_dbtp, options)?;
    let mut planes: Vec<Vec<f32>> =
        vec![Vec::with_capacity(buffer.frames()); buffer.channel_count()];
    let mut sink = |b: &AudioBuffer| -> Result<()> {
        for (o, p) in planes.iter_mut().zip(b.planes()) {
            o.extend_from_slice(p);
        }
        Ok(())
    };
    const BLOCK: usize = 8192;
    let mut start = 0;
    while start < buffer.frames() {
        let end = (start + BLOCK).min(buffer.frames());
        let block = AudioBuffer::from_planar(
            buffer.sample_rate(),
            buffer.planes().iter().map(|c| c[start..end].to_vec()).collect(),
        )?;
        stream.push(&block, &mut sink)?;
        start = end;
    }
    let stats = stream.stats();
    stream.finish(&mut sink)?;
    for p in &mut planes {
        p.truncate(buffer.frames());
    }
    Ok((AudioBuffer::from_planar(buffer.sample_rate(), planes)?, stats))
}
