//! Sample-rate conversion with rubato 5: exact output length, delay-compensated, chunked.
//!
//! Two algorithms, chosen from the rates alone (see `docs/resampling.md`):
//!
//! - **FFT** (`rubato::Fft`, synchronous): for every rate pair whose reduced ratio
//!   `from/g : to/g` (`g = gcd(from, to)`) has both terms at most [`FFT_MAX_TERM`]. That is
//!   every pair of standard rates (8, 11.025, 16, 22.05, 32, 44.1, 48, 88.2, 96, 176.4,
//!   192 kHz …). One FFT block of about 4,096 frames per call; the anti-aliasing filter is as
//!   long as the block, so the transition band is narrow and the delay is an exact integer.
//! - **Async sinc** (`rubato::Async::new_sinc`, 256-tap windowed sinc, 256× oversampled
//!   table, cubic interpolation between table points): for the rare pairs whose reduced terms
//!   are large (44,100 → 44,101 Hz), where an exact FFT block would be tens of thousands of
//!   frames long.
//!
//! Both run on `f32` planar data, take the input in fixed chunks and never see the whole
//! buffer at once, so [`Resampler`] streams and [`resample`] is a thin loop over it.

use std::num::NonZeroU32;

use rubato::audioadapter::Adapter;
use rubato::audioadapter_buffers::direct::{SequentialSliceOfSlices, SequentialSliceOfVecs};
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Indexing, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

use crate::error::{Error, Result};
use crate::{AudioBuffer, CancelToken};

/// The largest supported ratio between the two rates, either way (`to/from` and `from/to`).
///
/// 64 covers 8 kHz ↔ 384 kHz with room to spare; beyond it the output of a modest input
/// would be unreasonably large, or the input would be mostly discarded.
pub const MAX_RATE_RATIO: u32 = 64;

/// Reduced ratio terms up to this use the FFT resampler; larger ones use the async sinc one.
const FFT_MAX_TERM: u64 = 8192;

/// Target FFT block length (frames, on the larger side of the ratio).
const FFT_TARGET_BLOCK: u64 = 4096;

/// Input chunk of the async sinc resampler, in frames.
const SINC_CHUNK: usize = 4096;

/// Most zero frames fed ahead of the input to align the async sinc path (see `sinc_alignment`).
const MAX_PREROLL: usize = 1 << 17;

/// Windowed-sinc length of the async resampler, in input frames (a multiple of 8).
const SINC_LEN: usize = 256;

/// Frames per channel of the output, for `frames` input frames, when converting `from` → `to`.
///
/// Defined as `round(frames × to / from)` with halves rounded up, computed in integer maths
/// (`(frames·to + ⌊from/2⌋) / from` in 128 bits), so it never drifts, whatever the length.
/// Results beyond `u64::MAX` saturate (they cannot be allocated anyway).
///
/// Output frame `m` stands for the instant `m / to` seconds, as input frame `n` stands for
/// `n / from`; the output is long enough to cover the input's whole span and no longer.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::load::resampled_len;
///
/// let hz = |r| NonZeroU32::new(r).unwrap();
/// assert_eq!(resampled_len(44_100, hz(44_100), hz(48_000)), 48_000);
/// assert_eq!(resampled_len(1, hz(44_100), hz(48_000)), 1); // 1.088 → 1
/// assert_eq!(resampled_len(3, hz(48_000), hz(16_000)), 1); // exactly 1
/// assert_eq!(resampled_len(1, hz(32_000), hz(16_000)), 1); // 0.5 rounds up
/// assert_eq!(resampled_len(0, hz(8_000), hz(48_000)), 0);
/// ```
pub fn resampled_len(frames: u64, from: NonZeroU32, to: NonZeroU32) -> u64 {
    let from = u128::from(from.get());
    let to = u128::from(to.get());
    let n = (u128::from(frames) * to + from / 2) / from;
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Resamples `buf` to `to_rate`, with exactly [`resampled_len`] output frames.
///
/// The resampler's own delay is compensated: an event at input frame `n` appears at output
/// time `n × to / from` (exactly on the FFT path; on the async sinc path within a small
/// fraction of a frame, at most `1/(2·from/gcd)` for ordinary rates), so its nearest output
/// frame is `round(n × to / from)`. The first and last few milliseconds carry the filter's edge transient,
/// as with any band-limited resampler (the signal is treated as silent outside the buffer).
///
/// When the rates are equal, the result is a copy of `buf`. Work runs in chunks of about
/// 4,096 frames and `cancel` is checked before each; the output is allocated once, at its
/// final size.
///
/// # Errors
///
/// - [`Error::InvalidInput`] (field `to_rate`) if the rates differ by more than
///   [`MAX_RATE_RATIO`] either way, or the output would not fit in memory.
/// - [`Error::Cancelled`] if `cancel` fires.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{CancelToken, load, synth};
///
/// let hz = |r| NonZeroU32::new(r).unwrap();
/// let tone = synth::mono(hz(44_100), synth::sine(hz(44_100), 1000.0, 0.5, 44_100));
/// let out = load::resample(&tone, hz(48_000), &CancelToken::new()).unwrap();
/// assert_eq!(out.sample_rate().get(), 48_000);
/// assert_eq!(out.frames(), 48_000);
/// // Time-aligned: output frame 24_012 is 500.25 periods in, a positive crest of 0.5.
/// assert!((out.channel(0)[24_012] - 0.5).abs() < 1e-4);
/// ```
pub fn resample(
    buf: &AudioBuffer,
    to_rate: NonZeroU32,
    cancel: &CancelToken,
) -> Result<AudioBuffer> {
    cancel.check()?;
    let from = buf.sample_rate();
    if from == to_rate {
        return Ok(buf.clone());
    }
    let channels = buf.channel_count();
    let expected = output_capacity(buf.frames() as u64, from, to_rate, channels)?;
    let mut resampler = Resampler::new(from, to_rate, channels)?;
    let mut planes: Vec<Vec<f32>> = (0..channels).map(|_| Vec::with_capacity(expected)).collect();
    let frames = buf.frames();
    let mut part: Vec<&[f32]> = Vec::with_capacity(channels);
    let mut start = 0;
    while start < frames {
        cancel.check()?;
        // Whole chunks (after topping up any staged pre-roll) go straight from `buf`.
        let end = frames.min(start + resampler.frames_to_fill_chunk());
        part.clear();
        part.extend(buf.planes().iter().map(|p| &p[start..end]));
        resampler.push(&part, &mut planes)?;
        start = end;
    }
    cancel.check()?;
    resampler.finish(&mut planes)?;
    AudioBuffer::from_planar(to_rate, planes)
}

/// Checks that `resampled_len(frames)` × `channels` `f32` samples can be allocated.
fn output_capacity(
    frames: u64,
    from: NonZeroU32,
    to: NonZeroU32,
    channels: usize,
) -> Result<usize> {
    let len = resampled_len(frames, from, to);
    let bytes = u128::from(len) * channels as u128 * 4;
    if bytes > isize::MAX as u128 {
        return Err(Error::invalid_input(
            "to_rate",
            format!("{len} output frames × {channels} channels would not fit in memory"),
        ));
    }
    usize::try_from(len).map_err(|_| Error::invalid_input("to_rate", "output too long"))
}

/// Which algorithm a [`Resampler`] uses (decided by the two rates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResampleMethod {
    /// Equal rates: samples pass through unchanged.
    Identity,
    /// Synchronous FFT resampling (exact rational ratio with small terms).
    Fft,
    /// Asynchronous windowed-sinc interpolation (any ratio).
    Sinc,
}

/// A streaming resampler for one rate pair and channel count.
///
/// Feed planar blocks of any length with [`push`](Self::push); it appends converted frames to
/// your per-channel output `Vec`s as they become available. [`finish`](Self::finish) flushes
/// the filter so that the total output is exactly [`resampled_len`] of the total input, time
/// aligned as described for [`resample`]. Blocks of [`input_block_frames`](Self::input_block_frames)
/// frames are processed without an extra copy.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{load::Resampler, synth};
///
/// let hz = |r| NonZeroU32::new(r).unwrap();
/// let noise = synth::white_noise(7, 0.5, 10_000);
/// let mut r = Resampler::new(hz(48_000), hz(16_000), 1).unwrap();
/// let mut out = vec![Vec::new()];
/// for block in noise.chunks(777) {
///     r.push(&[block], &mut out).unwrap();
/// }
/// r.finish(&mut out).unwrap();
/// assert_eq!(out[0].len(), 3_333); // round(10_000 / 3)
/// ```
pub struct Resampler {
    from: NonZeroU32,
    to: NonZeroU32,
    channels: usize,
    method: ResampleMethod,
    /// `None` for [`ResampleMethod::Identity`].
    inner: Option<Box<dyn rubato::Resampler<f32>>>,
    /// Input frames per rubato call (fixed: both engines run with a fixed input size).
    chunk_in: usize,
    /// Staged input when a block does not fill a whole chunk.
    pending: Vec<Vec<f32>>,
    /// One call's output.
    scratch: Vec<Vec<f32>>,
    /// Leading output frames still to drop (the resampler's delay).
    skip: u64,
    frames_in: u64,
    frames_out: u64,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("channels", &self.channels)
            .field("method", &self.method)
            .field("chunk_in", &self.chunk_in)
            .field("frames_in", &self.frames_in)
            .field("frames_out", &self.frames_out)
            .finish_non_exhaustive()
    }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz for `channels` channels.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `channels` is zero or the rates differ by more than
    /// [`MAX_RATE_RATIO`].
    pub fn new(from: NonZeroU32, to: NonZeroU32, channels: usize) -> Result<Self> {
        if channels == 0 {
            return Err(Error::invalid_input("channels", "channel count must be at least 1"));
        }
        let (f, t) = (u64::from(from.get()), u64::from(to.get()));
        if t > f * u64::from(MAX_RATE_RATIO) || f > t * u64::from(MAX_RATE_RATIO) {
            return Err(Error::invalid_input(
                "to_rate",
                format!("cannot resample {f} Hz to {t} Hz: ratio over {MAX_RATE_RATIO}"),
            ));
        }
        let g = gcd(f, t);
        let (a, b) = (f / g, t / g);
        let construction = |e: rubato::ResamplerConstructionError| {
            Error::invalid_input("to_rate", format!("cannot resample {f} Hz to {t} Hz: {e}"))
        };
        let (method, inner, skip, preroll): (
            _,
            Option<Box<dyn rubato::Resampler<f32>>>,
            u64,
            usize,
        ) = if a == b {
            (ResampleMethod::Identity, None, 0, 0)
        } else if a.max(b) <= FFT_MAX_TERM {
            // Blocks of c·a input / c·b output frames, c even: the filter is then centred on
            // input frame c·a/2, i.e. output frame c·b/2, an exact integer delay. c has no
            // prime factor over 7, so the FFT lengths factor into cheap radices (8 → 48 kHz
            // would otherwise get c = 684 = 2²·3²·19).
            let c = smooth_even_at_least(FFT_TARGET_BLOCK.div_ceil(a.max(b)));
            let fft = Fft::<f32>::new_custom(
                f as usize,
                t as usize,
                (c * a) as usize,
                1,
                channels,
                WindowFunction::BlackmanHarris2,
                FixedSync::Both,
            )
            .map_err(construction)?;
            if fft.fft_size_in() as u64 != c * a || fft.fft_size_out() as u64 != c * b {
                return Err(Error::internal(format!(
                    "fft resampler {f}->{t} Hz chose blocks {}/{}, expected {}/{}",
                    fft.fft_size_in(),
                    fft.fft_size_out(),
                    c * a,
                    c * b
                )));
            }
            (ResampleMethod::Fft, Some(Box::new(fft)), c * b / 2, 0)
        } else {
            let params =
                SincInterpolationParameters::new(SINC_LEN, WindowFunction::BlackmanHarris2)
                    .oversampling_factor(256)
                    .interpolation(SincInterpolationType::Cubic);
            let sinc = Async::<f32>::new_sinc(
                t as f64 / f as f64,
                1.0,
                &params,
                SINC_CHUNK,
                channels,
                FixedAsync::Input,
            )
            .map_err(construction)?;
            let (preroll, skip) = sinc_alignment(a, b);
            (ResampleMethod::Sinc, Some(Box::new(sinc)), skip, preroll)
        };
        let (chunk_in, out_max) = match &inner {
            Some(r) => (r.input_frames_next(), r.output_frames_max()),
            None => (SINC_CHUNK, 0),
        };
        let pending: Vec<Vec<f32>> = (0..channels).map(|_| Vec::with_capacity(chunk_in)).collect();
        let mut this = Self {
            from,
            to,
            channels,
            method,
            inner,
            chunk_in,
            pending,
            scratch: vec![vec![0.0; out_max]; channels],
            skip,
            frames_in: 0,
            frames_out: 0,
        };
        // The pre-roll: whole chunks of silence now (their output all falls in `skip`), the
        // rest staged in front of the first input.
        let mut sink = vec![Vec::new(); channels];
        for _ in 0..preroll / chunk_in {
            this.process_pending(&mut sink, 0)?;
        }
        for p in &mut this.pending {
            p.resize(preroll % chunk_in, 0.0);
        }
        Ok(this)
    }

    /// The algorithm in use.
    pub fn method(&self) -> ResampleMethod {
        self.method
    }

    /// Input rate in Hz.
    pub fn from_rate(&self) -> NonZeroU32 {
        self.from
    }

    /// Output rate in Hz.
    pub fn to_rate(&self) -> NonZeroU32 {
        self.to
    }

    /// Number of channels.
    pub fn channel_count(&self) -> usize {
        self.channels
    }

    /// The block length (frames) processed per internal step; blocks of exactly this length
    /// are resampled straight from the caller's slices.
    pub fn input_block_frames(&self) -> usize {
        self.chunk_in
    }

    /// Input frames pushed so far.
    pub fn frames_in(&self) -> u64 {
        self.frames_in
    }

    /// Output frames produced so far.
    pub fn frames_out(&self) -> u64 {
        self.frames_out
    }

    /// Resamples one planar block (one slice per channel, equal lengths), appending the
    /// output frames that are ready to `out` (one `Vec` per channel).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `input` or `out` does not have one entry per channel, or the
    /// input slices differ in length; [`Error::Internal`] if the resampler fails.
    pub fn push(&mut self, input: &[&[f32]], out: &mut [Vec<f32>]) -> Result<()> {
        self.check_out(out)?;
        if input.len() != self.channels {
            return Err(Error::invalid_input(
                "input",
                format!("resampler has {} channels, block has {}", self.channels, input.len()),
            ));
        }
        let n = input[0].len();
        if let Some((i, s)) = input.iter().enumerate().find(|(_, s)| s.len() != n) {
            return Err(Error::invalid_input(
                "input",
                format!("channel {i} has {} frames, channel 0 has {n}", s.len()),
            ));
        }
        self.frames_in += n as u64;
        if self.inner.is_none() {
            for (o, i) in out.iter_mut().zip(input) {
                o.extend_from_slice(i);
            }
            self.frames_out += n as u64;
            return Ok(());
        }
        let mut pos = 0;
        if !self.pending[0].is_empty() {
            let take = (self.chunk_in - self.pending[0].len()).min(n);
            for (p, i) in self.pending.iter_mut().zip(input) {
                p.extend_from_slice(&i[..take]);
            }
            pos = take;
            if self.pending[0].len() == self.chunk_in {
                self.process_pending(out, u64::MAX)?;
            }
        }
        while n - pos >= self.chunk_in {
            let adapter = SequentialSliceOfSlices::new(input, self.channels, n)
                .map_err(|e| Error::internal(format!("resampler input: {e}")))?;
            self.process(&adapter, pos, None, out, u64::MAX)?;
            pos += self.chunk_in;
        }
        for (p, i) in self.pending.iter_mut().zip(input) {
            p.extend_from_slice(&i[pos..]);
        }
        Ok(())
    }

    /// Flushes the filter: appends the remaining output to `out`, so that the total output
    /// is exactly [`resampled_len`]`(frames_in)` frames.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `out` does not have one `Vec` per channel;
    /// [`Error::Internal`] if the resampler fails.
    pub fn finish(mut self, out: &mut [Vec<f32>]) -> Result<()> {
        self.check_out(out)?;
        if self.inner.is_none() {
            return Ok(());
        }
        let target = resampled_len(self.frames_in, self.from, self.to);
        // Each call yields at least one output frame (the ratio is bounded), and the delay plus
        // one chunk is all there is to flush; the bound only guards against a rubato bug.
        let mut calls = 0u32;
        while self.frames_out < target {
            calls += 1;
            if calls > 1_000 {
                return Err(Error::internal(format!(
                    "resampler flush stalled at {} of {target} frames",
                    self.frames_out
                )));
            }
            self.process_pending(out, target)?;
        }
        Ok(())
    }

    /// Input frames that complete the chunk being staged (a whole chunk when none is).
    fn frames_to_fill_chunk(&self) -> usize {
        self.chunk_in - self.pending[0].len()
    }

    fn check_out(&self, out: &[Vec<f32>]) -> Result<()> {
        if out.len() == self.channels {
            Ok(())
        } else {
            Err(Error::invalid_input(
                "out",
                format!("resampler has {} channels, output has {}", self.channels, out.len()),
            ))
        }
    }

    /// Runs one chunk from `pending` (zero-padded when short) and empties it.
    fn process_pending(&mut self, out: &mut [Vec<f32>], limit: u64) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let len = pending[0].len();
        let result = SequentialSliceOfVecs::new(&pending, self.channels, len)
            .map_err(|e| Error::internal(format!("resampler input: {e}")))
            .and_then(|adapter| {
                let partial = (len < self.chunk_in).then_some(len);
                self.process(&adapter, 0, partial, out, limit)
            });
        self.pending = pending;
        for p in &mut self.pending {
            p.clear();
        }
        result
    }

    /// One rubato call; appends its output minus the frames still to skip, up to `limit`
    /// frames in total.
    fn process(
        &mut self,
        input: &dyn Adapter<f32>,
        offset: usize,
        partial: Option<usize>,
        out: &mut [Vec<f32>],
        limit: u64,
    ) -> Result<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Err(Error::internal("identity resampler has no engine"));
        };
        let frames = self.scratch[0].len();
        let mut scratch = SequentialSliceOfVecs::new_mut(&mut self.scratch, self.channels, frames)
            .map_err(|e| Error::internal(format!("resampler output: {e}")))?;
        let indexing = Indexing {
            input_offset: offset,
            output_offset: 0,
            partial_len: partial,
            active_channels_mask: None,
        };
        let (_, produced) = inner
            .process_into_buffer(input, &mut scratch, Some(&indexing))
            .map_err(|e| Error::internal(format!("resampler: {e}")))?;
        let produced = produced as u64;
        let dropped = self.skip.min(produced);
        self.skip -= dropped;
        let keep = (produced - dropped).min(limit.saturating_sub(self.frames_out));
        let (start, end) = (dropped as usize, (dropped + keep) as usize);
        for (o, s) in out.iter_mut().zip(&self.scratch) {
            o.extend_from_slice(&s[start..end]);
        }
        self.frames_out += keep;
        Ok(())
    }
}

/// Pre-roll (zero input frames fed first) and leading output frames to drop for the async
/// sinc path, for the reduced ratio `a : b` (input : output).
///
/// rubato's sinc resampler computes output frame `k` at input time
/// `(k + 1)·a/b − L/2 + 1/F` (`L` = [`SINC_LEN`], `F` = the 256× table oversampling: its read
/// index starts at `1 − L`, steps before reading, and table entry `s` sits at `(s + 1)/F`).
/// After `q` zero frames of pre-roll, input frame `n` therefore lands at output frame
/// `n·b/a + D(q)` with `D(q) = (L/2 + q − 1/F)·b/a − 1`. Dropping `round(D(q))` frames aligns
/// the output to within the fractional part of `D(q)`. Trying every `q < a` makes
/// `(L/2 + q)·F·b mod a·F` take every multiple of `F`, so the best one leaves a fraction of at
/// most `1/(2a)` frame. To bound the work, `q` and its output `q·b/a` are both capped at
/// [`MAX_PREROLL`] frames (≈ 3 s at 44.1 kHz); only odd pairs far from 1:1 reach the cap
/// and then get the best `q` below it.
fn sinc_alignment(a: u64, b: u64) -> (usize, u64) {
    const F: u128 = 256;
    let (a, b) = (u128::from(a), u128::from(b));
    let den = a * F;
    let half = (SINC_LEN / 2) as u128;
    let mut best = (0u128, u128::MAX);
    let cap = MAX_PREROLL as u128;
    let q_max = a.min(cap).min(cap * a / b).max(1);
    for q in 0..q_max {
        let num = ((half + q) * F - 1) * b; // (D(q) + 1)·a·F
        let rem = num % den;
        let dist = rem.min(den - rem);
        if dist < best.1 {
            best = (q, dist);
        }
    }
    let q = best.0;
    let num = ((half + q) * F - 1) * b;
    let d_plus_1 = (num + den / 2) / den; // round(D(q) + 1) ≥ 1 since b/a ≥ 1/64
    (q as usize, (d_plus_1 - 1) as u64)
}

/// The smallest even number `≥ n` with no prime factor over 7.
fn smooth_even_at_least(n: u64) -> u64 {
    let smooth = |mut x: u64| {
        for p in [2, 3, 5, 7] {
            while x.is_multiple_of(p) {
                x /= p;
            }
        }
        x == 1
    };
    let mut c = n.max(2).next_multiple_of(2);
    while !smooth(c) {
        c += 2;
    }
    c
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

    fn hz(r: u32) -> NonZeroU32 {
        NonZeroU32::new(r).unwrap()
    }

    #[test]
    fn picks_fft_for_standard_rates_and_sinc_otherwise() {
        for (f, t) in [(44_100, 48_000), (48_000, 8_000), (22_050, 192_000), (11_025, 96_000)] {
            assert_eq!(Resampler::new(hz(f), hz(t), 2).unwrap().method(), ResampleMethod::Fft);
        }
        assert_eq!(
            Resampler::new(hz(44_100), hz(44_101), 1).unwrap().method(),
            ResampleMethod::Sinc
        );
        assert_eq!(
            Resampler::new(hz(48_000), hz(48_000), 1).unwrap().method(),
            ResampleMethod::Identity
        );
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(Resampler::new(hz(8_000), hz(8_000 * 65), 1).is_err());
        assert!(Resampler::new(hz(8_000 * 65), hz(8_000), 1).is_err());
        assert!(Resampler::new(hz(8_000), hz(8_000 * 64), 1).is_ok());
        assert!(Resampler::new(hz(8_000), hz(16_000), 0).is_err());
        let mut r = Resampler::new(hz(8_000), hz(16_000), 2).unwrap();
        let a = [0.0f32; 10];
        let b = [0.0f32; 9];
        let mut out = vec![Vec::new(), Vec::new()];
        assert!(r.push(&[&a, &b], &mut out).is_err());
        assert!(r.push(&[&a], &mut out).is_err());
        assert!(r.push(&[&a, &a], &mut out[..1]).is_err());
        let buf = synth::mono(hz(1), vec![0.0; 4]);
        let e = resample(&buf, hz(u32::MAX), &CancelToken::new()).unwrap_err();
        assert!(e.to_string().contains("to_rate"), "{e}");
    }

    #[test]
    fn extreme_odd_ratios_stay_bounded_and_exact() {
        // Sinc path at almost 64x either way: the pre-roll cap keeps construction cheap.
        for (f, t) in [(6_007, 384_001), (384_001, 6_007)] {
            let r = Resampler::new(hz(f), hz(t), 1).unwrap();
            assert_eq!(r.method(), ResampleMethod::Sinc);
            let buf = synth::mono(hz(f), synth::white_noise(5, 0.5, 3_000));
            let out = resample(&buf, hz(t), &CancelToken::new()).unwrap();
            assert_eq!(out.frames() as u64, resampled_len(3_000, hz(f), hz(t)));
        }
    }

    #[test]
    fn cancel_stops_resampling() {
        let buf = synth::mono(hz(44_100), synth::white_noise(1, 0.5, 100_000));
        let token = CancelToken::new();
        token.cancel();
        assert!(resample(&buf, hz(48_000), &token).unwrap_err().is_cancelled());
    }

    #[test]
    fn identity_is_a_copy() {
        let buf = synth::multi(hz(48_000), synth::white_noise(3, 0.5, 1234), 2);
        assert_eq!(resample(&buf, hz(48_000), &CancelToken::new()).unwrap(), buf);
    }

    #[test]
    fn fft_block_multiplier_is_even_and_7_smooth() {
        assert_eq!(smooth_even_at_least(26), 28);
        assert_eq!(smooth_even_at_least(1), 2);
        assert_eq!(smooth_even_at_least(22), 24);
        assert_eq!(smooth_even_at_least(683), 686); // 2·7³
        let r = Resampler::new(hz(44_100), hz(48_000), 1).unwrap();
        assert_eq!(r.input_block_frames(), 28 * 147);
    }

    #[test]
    fn gcd_is_right() {
        assert_eq!(gcd(44_100, 48_000), 300);
        assert_eq!(gcd(7, 0), 7);
        assert_eq!(gcd(1, 1), 1);
    }
}
