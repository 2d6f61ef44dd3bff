//! The BS.1770 loudness meter: [`Loudness`] (what a measurement found), the public streaming
//! [`LoudnessMeter`], and [`FastMeter`], the engine behind them, [`crate::analyze::loudness`]
//! and the render passes.
//!
//! Same maths as `ebur128` in its default (queue) mode — K-weighting with libebur128's
//! filter design, 100 ms sub-blocks, 400 ms gating blocks every 100 ms with the −70 LUFS
//! absolute and −10 LU relative gates, loudness range from 3 s blocks every second with the
//! −20 LU gate and the 10th/95th percentiles — but with a tighter inner loop (about 4× faster
//! on stereo), and it keeps the 100 ms sub-block energies, which the master planner uses to
//! predict what the limiter will cost. Tested against `ebur128` itself (a dev-dependency kept
//! as the reference).

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::AudioBuffer;
use crate::buffer::{check_planes, max_abs};
use crate::dsp::true_peak::TruePeakScanner;
use crate::dsp::{db_to_gain, db_to_power, gain_to_db, power_to_db};
use crate::error::{Error, Result};

/// What a loudness measurement found.
///
/// Silence (or audio entirely below the −70 LUFS absolute gate) has an integrated loudness
/// and peaks of `f64::NEG_INFINITY`; in JSON those are written as `null`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Loudness {
    /// Integrated (programme) loudness in LUFS.
    #[serde(with = "crate::dsp::finite_or_null")]
    pub integrated_lufs: f64,
    /// Loudness range in LU (EBU Tech 3342).
    pub range_lu: f64,
    /// Highest true (inter-sample, 4× oversampled) peak over all channels, in dBTP.
    #[serde(with = "crate::dsp::finite_or_null")]
    pub true_peak_dbtp: f64,
    /// Highest sample peak over all channels, in dBFS.
    #[serde(with = "crate::dsp::finite_or_null")]
    pub sample_peak_dbfs: f64,
}

/// A streaming loudness meter: feed blocks with [`add`](Self::add), read with
/// [`finish`](Self::finish).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{analyze::loudness::LoudnessMeter, synth};
///
/// let rate = NonZeroU32::new(48_000).unwrap();
/// // A 1 kHz stereo sine at -23 dBFS reads -23 LUFS (EBU Tech 3341, case 1).
/// let s = synth::sine(rate, 1000.0, synth::db_to_amp(-23.0), 48_000 * 20);
/// let buf = synth::multi(rate, s, 2);
/// let mut meter = LoudnessMeter::new(2, rate.get(), true).unwrap();
/// meter.add(&buf).unwrap();
/// let l = meter.finish().unwrap();
/// assert!((l.integrated_lufs + 23.0).abs() < 0.1);
/// ```
pub struct LoudnessMeter {
    meter: FastMeter,
    true_peak: Option<TruePeakScanner>,
    channels: usize,
}

/// Most channels a meter takes.
const MAX_CHANNELS: usize = 64;
/// Sample rates a meter takes, Hz (BS.1770's K-weighting is defined for audio rates).
const RATES: std::ops::RangeInclusive<u32> = 1_000..=2_822_400;

impl LoudnessMeter {
    /// A meter for `channels` channels at `rate` Hz. `true_peak` enables the 4× oversampled
    /// true-peak measurement; without it `true_peak_dbtp` equals the sample peak.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `channels` is not in 1..=64 or `rate` not in
    /// 1000..=2822400 Hz.
    pub fn new(channels: usize, rate: u32, true_peak: bool) -> Result<Self> {
        if !(1..=MAX_CHANNELS).contains(&channels) || !RATES.contains(&rate) {
            return Err(Error::invalid_input(
                "loudness",
                format!(
                    "cannot meter {channels} ch at {rate} Hz (1..={MAX_CHANNELS} channels, \
                     {}..={} Hz)",
                    RATES.start(),
                    RATES.end()
                ),
            ));
        }
        let rate = NonZeroU32::new(rate).ok_or_else(|| Error::invalid_input("rate", "zero"))?;
        Ok(Self {
            meter: FastMeter::new(channels, rate),
            true_peak: true_peak.then(|| TruePeakScanner::new(channels)),
            channels,
        })
    }

    /// A meter (no true peak) fed one mono channel that stands for `copies` identical
    /// channels of a `copies`-channel signal: the same measurement as duplicating it, for
    /// half the filtering. Only 2 copies are supported (both weigh 1 in BS.1770, so the sum
    /// `e + e` equals `2·e` exactly and the result is bit-identical).
    ///
    /// # Errors
    ///
    /// As [`LoudnessMeter::new`]; [`Error::InvalidInput`] for `copies` other than 2.
    pub(crate) fn mono_as_copies(rate: u32, copies: usize) -> Result<Self> {
        if copies != 2 {
            return Err(Error::invalid_input("copies", "only a mono pair is supported"));
        }
        let mut m = Self::new(1, rate, false)?;
        m.meter = m.meter.with_weights(vec![2.0]);
        Ok(m)
    }

    /// Feeds a block of planar audio.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the block's channel count differs from the meter's.
    pub fn add(&mut self, block: &AudioBuffer) -> Result<()> {
        let planes: Vec<&[f32]> = block.planes().iter().map(Vec::as_slice).collect();
        self.add_planar(&planes)
    }

    /// Feeds planar channel slices of equal length.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the channel count differs or slices differ in length.
    pub fn add_planar(&mut self, planes: &[&[f32]]) -> Result<()> {
        check_planes(planes, self.channels, "meter")?;
        self.meter.add(planes);
        if let Some(tp) = &mut self.true_peak {
            tp.add(planes);
        }
        Ok(())
    }

    /// Runs the filters (and the true-peak history) over `planes` without measuring them:
    /// the state of a meter that starts mid-program, so its first blocks measure as if it
    /// had been fed everything before.
    pub(crate) fn warm_up(&mut self, planes: &[&[f32]]) {
        self.meter.warm_up(planes);
        if let Some(tp) = &mut self.true_peak {
            tp.warm_up(planes);
        }
    }

    /// Appends the measurement of `next`, a meter (made the same way) over the audio right
    /// after this one's, which must end on a 100 ms sub-block boundary.
    pub(crate) fn append(&mut self, next: LoudnessMeter) {
        self.meter.append(next.meter);
        if let (Some(a), Some(b)) = (&mut self.true_peak, next.true_peak) {
            a.append(b);
        }
    }

    /// The measurement so far.
    ///
    /// # Errors
    ///
    /// None today; kept fallible for meters that can fail.
    pub fn finish(&self) -> Result<Loudness> {
        let mut l = self.meter.loudness();
        if let Some(tp) = &self.true_peak {
            let peak = tp.peak();
            let db = if peak > 0.0 { gain_to_db(f64::from(peak)) } else { f64::NEG_INFINITY };
            l.true_peak_dbtp = db.max(l.sample_peak_dbfs);
        }
        Ok(l)
    }
}

/// Energy of a −70 LUFS block: blocks below are dropped (absolute gate).
fn abs_gate() -> f64 {
    db_to_power(-70.0 + 0.691)
}

fn energy_to_lufs(e: f64) -> f64 {
    power_to_db(e) - 0.691
}

/// Biquad coefficients `[b0, b1, b2, a1, a2]`.
type Biquad = [f64; 5];

/// The two K-weighting stages (high shelf, then high pass) at `rate`, as libebur128 designs
/// them.
fn k_weighting(rate: f64) -> (Biquad, Biquad) {
    let f0 = 1_681.974_450_955_533;
    let g = 3.999_843_853_973_347;
    let q = 0.707_175_236_955_419_6;
    let k = (std::f64::consts::PI * f0 / rate).tan();
    let vh = db_to_gain(g);
    let vb = vh.powf(0.499_666_774_154_541_6);
    let a0 = 1.0 + k / q + k * k;
    let shelf = [
        (vh + vb * k / q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / q + k * k) / a0,
    ];
    let f0 = 38.135_470_876_024_44;
    let q = 0.500_327_037_323_877_3;
    let k = (std::f64::consts::PI * f0 / rate).tan();
    let a0 = 1.0 + k / q + k * k;
    let high_pass = [1.0, -2.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0];
    (shelf, high_pass)
}

/// BS.1770 channel weights for the default channel layouts (as `ebur128` assumes them).
fn channel_weights(channels: usize) -> Vec<f64> {
    match channels {
        4 => vec![1.0, 1.0, 1.41, 1.41],
        5 => vec![1.0, 1.0, 1.0, 1.41, 1.41],
        n => (0..n)
            .map(|c| match c {
                0..=2 => 1.0,
                3 => 0.0, // LFE
                4 | 5 => 1.41,
                _ => 0.0,
            })
            .collect(),
    }
}

/// Streaming K-weighted meter keeping 100 ms sub-block energies.
#[derive(Debug, Clone)]
pub(crate) struct FastMeter {
    block: BlockFilter,
    shelf: Biquad,
    high_pass: Biquad,
    weights: Vec<f64>,
    /// Per channel: shelf state (2) then high-pass state (2), transposed direct form II.
    state: Vec<[f64; 4]>,
    sub_len: usize,
    sub_fill: usize,
    sub_acc: f64,
    subs: Vec<f64>,
    peak: f32,
    /// Optional per-window summary: window length (0 = off), fill, peak, energy, results.
    window: usize,
    win_fill: usize,
    win_peak: f32,
    win_energy: f64,
    windows: Vec<(f32, f32)>,
}

#[inline(always)]
fn filter(x: f64, s: &mut [f64; 4], sh: &Biquad, hp: &Biquad) -> f64 {
    let y1 = sh[0] * x + s[0];
    s[0] = sh[1] * x - sh[3] * y1 + s[1];
    s[1] = sh[2] * x - sh[4] * y1;
    let y2 = y1 + s[2];
    s[2] = -2.0 * y1 - hp[3] * y2 + s[3];
    s[3] = y1 - hp[4] * y2;
    y2
}

/// Frames per step of the block form of the filter.
const K: usize = 8;

/// The K-weighting cascade in block (state-space) form: the `K` outputs and the state after
/// `K` frames are each a dot product of the state and the `K` inputs, so the frames of a step
/// are independent and the only serial dependency is one 4×4 product per step, instead of
/// one long chain through every frame. Same linear system as [`filter`], derived from it
/// exactly. The matrices are stored by column, so each product is vector arithmetic (AVX
/// registers of four `f64`).
#[derive(Debug, Clone)]
struct BlockFilter {
    /// `y[k] = Σ_i out_s[i][k]·s[i] + Σ_j out_x[j][k]·x[j]`.
    out_s: [[f64; K]; 4],
    out_x: [[f64; K]; K],
    /// `s'[r] = Σ_i next_s[i][r]·s[i] + Σ_j next_x[j][r]·x[j]`.
    next_s: [[f64; 4]; 4],
    next_x: [[f64; 4]; K],
}

/// `Σ_i m[i]·v[i]` over four columns, summed as a tree (`(m0·v0 + m1·v1) + (m2·v2 + m3·v3)`
/// in every lane: a short dependency chain, and the same bits whatever the instruction set).
#[inline(always)]
fn cols4<const N: usize>(m: &[[f64; N]; 4], v: &[f64; 4]) -> [f64; N] {
    let mut out = [0.0; N];
    for (k, o) in out.iter_mut().enumerate() {
        *o = (m[0][k] * v[0] + m[1][k] * v[1]) + (m[2][k] * v[2] + m[3][k] * v[3]);
    }
    out
}

/// [`cols4`] over eight columns: the two halves' sums added.
#[inline(always)]
fn cols8<const N: usize>(m: &[[f64; N]; 8], v: &[f64; 8]) -> [f64; N] {
    let lo = cols4(&[m[0], m[1], m[2], m[3]], &[v[0], v[1], v[2], v[3]]);
    let hi = cols4(&[m[4], m[5], m[6], m[7]], &[v[4], v[5], v[6], v[7]]);
    let mut out = [0.0; N];
    for ((o, a), b) in out.iter_mut().zip(lo).zip(hi) {
        *o = a + b;
    }
    out
}

/// The block filter's loop over whole steps: filters `x` (a multiple of `K` frames) from
/// state `state` (updated) and returns the per-lane sums of squared outputs. Compiled for
/// AVX2 too and chosen at run time; no fused multiply-add, so the result is the same bits
/// either way.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn block_steps(f: &BlockFilter, state: &mut [f64; 4], x: &[f32]) -> [f64; K] {
    block_steps_body(f, state, x)
}

/// The body of [`block_steps`], inlined into each of its clones (and, in the tests, into
/// portable code, to check that the clones give the same bits).
#[inline(always)]
fn block_steps_body(f: &BlockFilter, state: &mut [f64; 4], x: &[f32]) -> [f64; K] {
    let mut acc = [0.0f64; K];
    // A local copy, so the state stays in registers.
    let mut s = *state;
    for c in x.chunks_exact(K) {
        let mut xv = [0.0f64; K];
        for (v, &c) in xv.iter_mut().zip(c) {
            *v = f64::from(c);
        }
        let (ys, yx) = (cols4(&f.out_s, &s), cols8(&f.out_x, &xv));
        for ((a, &y1), &y2) in acc.iter_mut().zip(&ys).zip(&yx) {
            let y = y1 + y2;
            *a += y * y;
        }
        let (ns, nx) = (cols4(&f.next_s, &s), cols8(&f.next_x, &xv));
        for ((si, &a), &b) in s.iter_mut().zip(&ns).zip(&nx) {
            *si = a + b;
        }
    }
    *state = s;
    acc
}

impl BlockFilter {
    // Matrix entries are filled by (row, column) index; iterators would obscure that.
    #[allow(clippy::needless_range_loop)]
    fn new(sh: &Biquad, hp: &Biquad) -> Self {
        let run = |mut s: [f64; 4], x: [f64; K]| {
            let mut y = [0.0; K];
            for (yk, &xk) in y.iter_mut().zip(&x) {
                *yk = filter(xk, &mut s, sh, hp);
            }
            (y, s)
        };
        let mut f = Self {
            out_s: [[0.0; K]; 4],
            out_x: [[0.0; K]; K],
            next_s: [[0.0; 4]; 4],
            next_x: [[0.0; 4]; K],
        };
        for i in 0..4 {
            let mut basis = [0.0; 4];
            basis[i] = 1.0;
            let (y, s) = run(basis, [0.0; K]);
            f.out_s[i] = y;
            f.next_s[i] = s;
        }
        for j in 0..K {
            let mut x = [0.0; K];
            x[j] = 1.0;
            let (y, s) = run([0.0; 4], x);
            f.out_x[j] = y;
            f.next_x[j] = s;
        }
        f
    }

    /// Filters `x` from state `s` (updated) and returns the sum of squared outputs.
    fn energy(&self, s: &mut [f64; 4], x: &[f32], sh: &Biquad, hp: &Biquad) -> f64 {
        let whole = x.len() - x.len() % K;
        let acc = block_steps(self, s, &x[..whole]);
        let mut e = acc.iter().sum::<f64>();
        for &v in &x[whole..] {
            let y = filter(f64::from(v), s, sh, hp);
            e += y * y;
        }
        e
    }
}

/// Seconds of K-filter warm-up before the second half of a split measurement: the filter's
/// slowest pole (the 38 Hz high-pass) decays by e^-50 or more over it at any rate, so the
/// state it reaches equals the sequential one to within rounding.
pub(crate) const WARM_UP_S: u64 = 1;

/// Frames in one 100 ms sub-block at `rate` (rounded; at least 1): the unit the meter sums
/// energy in, and so the boundary a split measurement must be cut on.
pub(crate) fn sub_block_frames(rate: NonZeroU32) -> u64 {
    ((u64::from(rate.get()) + 5) / 10).max(1)
}

impl FastMeter {
    pub(crate) fn new(channels: usize, rate: NonZeroU32) -> Self {
        let (shelf, high_pass) = k_weighting(f64::from(rate.get()));
        Self {
            block: BlockFilter::new(&shelf, &high_pass),
            shelf,
            high_pass,
            weights: channel_weights(channels),
            state: vec![[0.0; 4]; channels],
            sub_len: sub_block_frames(rate) as usize,
            sub_fill: 0,
            sub_acc: 0.0,
            subs: Vec::new(),
            peak: 0.0,
            window: 0,
            win_fill: 0,
            win_peak: 0.0,
            win_energy: 0.0,
            windows: Vec::new(),
        }
    }

    /// Replaces the BS.1770 channel weights (one per channel).
    pub(crate) fn with_weights(mut self, weights: Vec<f64>) -> Self {
        debug_assert_eq!(weights.len(), self.state.len());
        self.weights = weights;
        self
    }

    /// Also keeps, per `window` frames, the peak magnitude and the K-weighted energy.
    pub(crate) fn with_windows(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    /// Closes the last, partial window and returns the per-window summary.
    pub(crate) fn take_windows(&mut self) -> Vec<(f32, f32)> {
        if self.win_fill > 0 {
            self.windows.push((self.win_peak, self.win_energy as f32));
            self.win_fill = 0;
            self.win_peak = 0.0;
            self.win_energy = 0.0;
        }
        std::mem::take(&mut self.windows)
    }

    /// Feeds planar samples (one slice per channel, equal lengths).
    pub(crate) fn add(&mut self, planes: &[&[f32]]) {
        let n = planes.first().map_or(0, |p| p.len());
        let (sh, hp) = (self.shelf, self.high_pass);
        let mut i = 0;
        while i < n {
            let mut m = (n - i).min(self.sub_len - self.sub_fill);
            if self.window > 0 {
                m = m.min(self.window - self.win_fill);
            }
            let mut seg = 0.0f64;
            let mut peak = 0.0f32;
            for ((p, s), &w) in planes.iter().zip(self.state.iter_mut()).zip(&self.weights) {
                let x = &p[i..i + m];
                if w != 0.0 {
                    seg += w * self.block.energy(s, x, &sh, &hp);
                }
                peak = peak.max(max_abs(x));
            }
            self.peak = self.peak.max(peak);
            self.sub_acc += seg;
            self.sub_fill += m;
            i += m;
            if self.sub_fill == self.sub_len {
                self.subs.push(self.sub_acc / self.sub_len as f64);
                self.sub_acc = 0.0;
                self.sub_fill = 0;
            }
            if self.window > 0 {
                self.win_peak = self.win_peak.max(peak);
                self.win_energy += seg;
                self.win_fill += m;
                if self.win_fill == self.window {
                    self.windows.push((self.win_peak, self.win_energy as f32));
                    self.win_fill = 0;
                    self.win_peak = 0.0;
                    self.win_energy = 0.0;
                }
            }
        }
    }

    /// Runs the K-weighting filters over `planes` without measuring them: the state a meter
    /// starting mid-program would have had, so its first blocks measure as if it had not.
    pub(crate) fn warm_up(&mut self, planes: &[&[f32]]) {
        let (sh, hp) = (self.shelf, self.high_pass);
        for ((p, s), &w) in planes.iter().zip(self.state.iter_mut()).zip(&self.weights) {
            if w != 0.0 {
                self.block.energy(s, p, &sh, &hp);
            }
        }
    }

    /// Appends the measurement of `next`, a meter over the audio right after this one's.
    /// This meter must end on a sub-block (and window) boundary; `next` continues from there.
    pub(crate) fn append(&mut self, next: FastMeter) {
        debug_assert!(self.sub_fill == 0 && self.win_fill == 0, "not on a block boundary");
        self.subs.extend_from_slice(&next.subs);
        self.windows.extend_from_slice(&next.windows);
        self.peak = self.peak.max(next.peak);
        self.state = next.state;
        self.sub_fill = next.sub_fill;
        self.sub_acc = next.sub_acc;
        self.win_fill = next.win_fill;
        self.win_peak = next.win_peak;
        self.win_energy = next.win_energy;
    }

    /// Energies of the completed 100 ms sub-blocks.
    pub(crate) fn sub_blocks(&self) -> &[f64] {
        &self.subs
    }

    /// The measurement so far (true peak = sample peak: this meter does not oversample).
    pub(crate) fn loudness(&self) -> Loudness {
        let sp = if self.peak > 0.0 { gain_to_db(f64::from(self.peak)) } else { f64::NEG_INFINITY };
        Loudness {
            integrated_lufs: integrated_from_subs(&self.subs),
            range_lu: range_from_subs(&self.subs),
            true_peak_dbtp: sp,
            sample_peak_dbfs: sp,
        }
    }
}

/// Integrated loudness (LUFS, `-inf` when nothing passes the gates) from 100 ms sub-block
/// energies: 400 ms blocks every 100 ms, absolute and relative gates.
pub(crate) fn integrated_from_subs(subs: &[f64]) -> f64 {
    let blocks: Vec<f64> = subs
        .windows(4)
        .map(|w| (w[0] + w[1] + w[2] + w[3]) / 4.0)
        .filter(|&e| e >= abs_gate())
        .collect();
    if blocks.is_empty() {
        return f64::NEG_INFINITY;
    }
    let rel = blocks.iter().sum::<f64>() / blocks.len() as f64 * 0.1;
    let (sum, count) =
        blocks.iter().filter(|&&e| e >= rel).fold((0.0, 0usize), |(s, c), &e| (s + e, c + 1));
    if count == 0 {
        return f64::NEG_INFINITY;
    }
    energy_to_lufs(sum / count as f64)
}

/// Sub-blocks in one BS.1770 short-term window (3 s of 100 ms sub-blocks).
pub(crate) const SHORT_TERM_SUBS: usize = 30;

/// Short-term loudness (BS.1770 / EBU Tech 3341: the mean K-weighted energy of the last
/// 3 s) after every `step`-th 100 ms sub-block, in LUFS: point `k` is the window ending with
/// sub-block `(k + 1)·step`. Before 3 s have passed the missing time counts as silence, as a
/// meter started at the programme's start reads it (libebur128's zeroed history). `None`
/// where the window is below the −70 LUFS absolute gate (silence). A `step` of 0 is taken
/// as 1.
pub(crate) fn short_term_from_subs(subs: &[f64], step: usize) -> Vec<Option<f64>> {
    let step = step.max(1);
    let mut out = Vec::with_capacity(subs.len() / step);
    let mut end = step;
    while end <= subs.len() {
        let window = &subs[end.saturating_sub(SHORT_TERM_SUBS)..end];
        let e = window.iter().sum::<f64>() / SHORT_TERM_SUBS as f64;
        out.push((e >= abs_gate()).then(|| energy_to_lufs(e)));
        end += step;
    }
    out
}

/// Loudness range (LU) from 100 ms sub-block energies: 3 s blocks every second.
pub(crate) fn range_from_subs(subs: &[f64]) -> f64 {
    let mut st: Vec<f64> = Vec::new();
    let mut end = 30;
    while end <= subs.len() {
        let e = subs[end - 30..end].iter().sum::<f64>() / 30.0;
        if e >= abs_gate() {
            st.push(e);
        }
        end += 10;
    }
    if st.is_empty() {
        return 0.0;
    }
    st.sort_by(f64::total_cmp);
    let integrated = st.iter().sum::<f64>() / st.len() as f64 * 0.01;
    let gated = st.iter().take_while(|&&v| v < integrated).count();
    let size = st.len() - gated;
    if size == 0 {
        return 0.0;
    }
    let last = (size - 1) as f64;
    let hi = st[gated + (last * 0.95 + 0.5) as usize];
    let lo = st[gated + (last * 0.1 + 0.5) as usize];
    energy_to_lufs(hi) - energy_to_lufs(lo)
}

/// `ebur128`'s own measurement (integrated, range, sample and 4× true peak): the reference
/// the tests hold [`LoudnessMeter`] to.
#[cfg(test)]
pub(crate) fn reference(buffer: &AudioBuffer) -> Loudness {
    use ebur128::{EbuR128, Mode};
    let ch = buffer.channel_count();
    let mode = Mode::I | Mode::LRA | Mode::SAMPLE_PEAK | Mode::TRUE_PEAK;
    let mut m = EbuR128::new(ch as u32, buffer.sample_rate().get(), mode).unwrap();
    let planes: Vec<&[f32]> = buffer.planes().iter().map(Vec::as_slice).collect();
    m.add_frames_planar_f32(&planes).unwrap();
    let (mut sp, mut tp) = (0.0f64, 0.0f64);
    for c in 0..ch as u32 {
        sp = sp.max(m.sample_peak(c).unwrap());
        tp = tp.max(m.true_peak(c).unwrap());
    }
    let i = m.loudness_global().unwrap();
    let r = m.loudness_range().unwrap();
    Loudness {
        integrated_lufs: if i.is_finite() { i } else { f64::NEG_INFINITY },
        range_lu: if r.is_finite() { r } else { 0.0 },
        true_peak_dbtp: 20.0 * tp.log10(),
        sample_peak_dbfs: 20.0 * sp.log10(),
    }
}

#[cfg(test)]
mod tests {
    use super::reference as measure;
    use super::*;
    use crate::{AudioBuffer, synth};

    fn fast(buf: &AudioBuffer, block: usize) -> Loudness {
        let mut m = FastMeter::new(buf.channel_count(), buf.sample_rate());
        let mut i = 0;
        while i < buf.frames() {
            let e = (i + block).min(buf.frames());
            let planes: Vec<&[f32]> = buf.planes().iter().map(|p| &p[i..e]).collect();
            m.add(&planes);
            i = e;
        }
        m.loudness()
    }

    #[test]
    fn short_term_matches_ebur128_every_second() {
        use ebur128::{EbuR128, Mode};
        let rate = NonZeroU32::new(48_000).unwrap();
        // Speech-like bursts at changing levels, stereo: the 3 s window moves over them.
        let mut x = synth::speech_like(rate, 11, -30.0, 48_000 * 12);
        for (i, v) in x.iter_mut().enumerate() {
            *v *= if (i / 96_000) % 2 == 0 { 1.0 } else { 0.25 };
        }
        let buf = synth::multi(rate, x, 2);
        let mut m = FastMeter::new(2, rate);
        let mut reference = EbuR128::new(2, 48_000, Mode::S).unwrap();
        let mut expected = Vec::new();
        for second in 0..12 {
            let r = second * 48_000..(second + 1) * 48_000;
            let planes: Vec<&[f32]> = buf.planes().iter().map(|p| &p[r.clone()]).collect();
            m.add(&planes);
            reference.add_frames_planar_f32(&planes).unwrap();
            expected.push(reference.loudness_shortterm().unwrap());
        }
        let ours = short_term_from_subs(m.sub_blocks(), 10);
        assert_eq!(ours.len(), 12);
        for (k, (o, e)) in ours.iter().zip(&expected).enumerate() {
            let o = o.expect("speech is above the gate");
            assert!((o - e).abs() < 0.01, "second {}: {o} vs ebur128 {e}", k + 1);
        }
        // Silence is below the gate; a step of 3 gives a point every 300 ms.
        assert_eq!(short_term_from_subs(&[0.0; 40], 3), vec![None; 13]);
    }

    /// `cargo test --release -p assembly-core --lib meter::tests::throughput -- --ignored
    /// --nocapture`: nanoseconds per sample of the K-weighted energy (mono, best of 5).
    #[test]
    #[ignore = "a speed measurement, not a check"]
    fn throughput() {
        let r = NonZeroU32::new(44_100).unwrap();
        let x = synth::speech_like(r, 3, -20.0, 44_100 * 60);
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            let mut m = FastMeter::new(1, r);
            for c in x.chunks(16_384) {
                m.add(&[c]);
            }
            std::hint::black_box(m.loudness());
            best = best.min(t.elapsed().as_secs_f64() / x.len() as f64 * 1e9);
        }
        println!("K-weighted energy: {best:.2} ns/sample");
    }

    /// The dispatched block filter (the AVX2 clone on a CPU that has it) gives the bits of the
    /// same code compiled for the baseline instruction set.
    #[test]
    fn avx2_clone_gives_the_portable_bits() {
        let r = NonZeroU32::new(44_100).unwrap();
        let (sh, hp) = k_weighting(44_100.0);
        let f = BlockFilter::new(&sh, &hp);
        let mut x = synth::speech_like(r, 5, -12.0, 44_100 * 3);
        x.extend(synth::white_noise(6, 0.9, 44_100));
        x.truncate(x.len() / K * K);
        let (mut s1, mut s2) = ([0.25, -0.5, 1e-3, 0.0], [0.25, -0.5, 1e-3, 0.0]);
        let a = block_steps(&f, &mut s1, &x);
        let b = block_steps_body(&f, &mut s2, &x);
        assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits));
        assert_eq!(s1.map(f64::to_bits), s2.map(f64::to_bits));
        assert!(a.iter().all(|e| *e > 0.0));
    }

    #[test]
    fn agrees_with_ebur128() {
        let r48 = NonZeroU32::new(48_000).unwrap();
        let r44 = NonZeroU32::new(44_100).unwrap();
        let r22 = NonZeroU32::new(22_050).unwrap();
        let mut cases: Vec<AudioBuffer> = Vec::new();
        for r in [r48, r44, r22] {
            let n = r.get() as usize * 25;
            let mut speech = synth::speech_like(r, 3, -30.0, n);
            speech[n / 3..n / 2].fill(0.0); // a silent stretch for the gates
            cases.push(synth::mono(r, speech.clone()));
            cases.push(
                AudioBuffer::from_planar(r, vec![speech, synth::music_like(r, 4, -24.0, n)])
                    .unwrap(),
            );
            cases.push(synth::multi(r, synth::music_like(r, 5, -12.0, n), 5));
            cases.push(synth::multi(r, synth::white_noise(6, 0.1, n), 6));
        }
        cases.push(AudioBuffer::silence(r48, 2, 48_000 * 5).unwrap());
        for (k, b) in cases.iter().enumerate() {
            let want = measure(b);
            for block in [1000, 4096, 48_000] {
                let got = fast(b, block);
                if want.integrated_lufs.is_finite() {
                    assert!(
                        (got.integrated_lufs - want.integrated_lufs).abs() < 0.001,
                        "case {k}: {got:?} vs {want:?}"
                    );
                } else {
                    assert_eq!(got.integrated_lufs, f64::NEG_INFINITY);
                }
                assert!(
                    (got.range_lu - want.range_lu).abs() < 0.05,
                    "case {k}: {got:?} vs {want:?}"
                );
                assert_eq!(got.sample_peak_dbfs, want.sample_peak_dbfs, "case {k}");
            }
        }
    }
}
