//! The two-pass render: measure the planned mix, plan one gain to the loudness target
//! (correcting for what the limiter will take), then render through gain and the true-peak
//! limiter into a sink, block by block.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::analyze::loudness::{Loudness, LoudnessMeter};
use crate::dsp::meter::{FastMeter, integrated_from_subs};
use crate::dsp::{db_to_gain, db_to_power};
use crate::error::{Error, Result};
use crate::master::{
    CeilingDip, LimiterOptions, LimiterStats, LimiterStream, MasterOptions, ceiling_target,
};
use crate::source::for_each_block_in;
use crate::{AudioBuffer, CancelToken, FrameSource};

/// Frames per window of the first pass's peak/energy summary (used to predict limiting).
const WINDOW: usize = 512;

/// How rendering proceeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderOptions {
    /// Frames per block handed to the sink (the last block may be shorter; the first is
    /// shorter by the limiter's latency). 1024..=65536. Default: `8192`.
    pub block_frames: u32,
    /// Meter the final output (integrated loudness, range, 4× true peak) while rendering;
    /// costs about as much as the mix itself. Default: `false`.
    pub measure_output: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self { block_frames: 8192, measure_output: false }
    }
}

impl RenderOptions {
    fn block(&self) -> Result<usize> {
        if !(1024..=65_536).contains(&self.block_frames) {
            return Err(Error::invalid_input(
                "render.block_frames",
                format!("must be in 1024..=65536, got {}", self.block_frames),
            ));
        }
        Ok(self.block_frames as usize)
    }
}

/// What the first pass found about the unprocessed mix.
#[derive(Clone, Debug, PartialEq)]
pub struct MixMeasurement {
    /// Loudness of the mix before any gain. Its `true_peak_dbtp` is the sample peak (the
    /// first pass does not oversample).
    pub loudness: Loudness,
    /// Frames measured.
    pub frames: u64,
    /// Per `WINDOW` frames: largest magnitude over all channels and K-weighted energy.
    windows: Vec<(f32, f32)>,
    /// K-weighted energy of each 100 ms sub-block (BS.1770 gating input).
    subs: Vec<f64>,
    /// Frames per sub-block.
    sub_len: usize,
}

impl MixMeasurement {
    /// Frames per peak window ([`window_peaks`](Self::window_peaks)).
    pub(crate) const WINDOW_FRAMES: u64 = WINDOW as u64;

    /// Largest magnitude over all channels per window of [`Self::WINDOW_FRAMES`] frames, before
    /// any gain.
    pub(crate) fn window_peaks(&self) -> impl Iterator<Item = f32> + '_ {
        self.windows.iter().map(|w| w.0)
    }
}

/// The mastering decision for one mix: small, serializable (a checkpoint of the master
/// stage), and all that the final pass needs besides the audio.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterPlan {
    /// Loudness target, LUFS.
    pub target_lufs: f64,
    /// True-peak ceiling, dBTP.
    pub ceiling_dbtp: f64,
    /// Limiter timing.
    pub limiter: LimiterOptions,
    /// Integrated loudness of the unprocessed mix, LUFS (`null` for silence).
    #[serde(with = "crate::dsp::finite_or_null")]
    pub input_lufs: f64,
    /// The one linear gain applied before the limiter, dB.
    pub gain_db: f64,
    /// Loudness the limiter was predicted to take at the plain gain to target, LU.
    pub predicted_limiter_loss_lu: f64,
    /// Measuring passes run through the limiter to correct the gain.
    pub correction_passes: u32,
    /// Integrated loudness after gain and limiter as last measured by a correction pass,
    /// LUFS (`None` when no correction pass ran).
    pub corrected_lufs: Option<f64>,
    /// Stretches where the final pass's limiter holds a lower ceiling (set by the verify
    /// loop's local repair; frames on the programme's timeline). Empty from [`plan_master`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ceiling_dips: Vec<CeilingDip>,
}

/// What the final pass produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderOutcome {
    /// Frames handed to the sink (always the program's length).
    pub frames: u64,
    /// What the limiter did.
    pub limiter: LimiterStats,
    /// Loudness of the output, when [`RenderOptions::measure_output`] was set.
    pub output: Option<Loudness>,
}

/// Everything [`render_mastered`] did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderReport {
    /// Loudness of the unprocessed mix (true peak = sample peak, see [`MixMeasurement`]).
    pub input: Loudness,
    /// The mastering decision.
    pub plan: MasterPlan,
    /// The final pass.
    pub outcome: RenderOutcome,
}

/// Reads `program` block by block into `f`; checks `cancel` and reports progress (0..1 of
/// this pass) per block.
fn for_each_block(
    program: &dyn FrameSource,
    block: usize,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
    f: impl FnMut(&[&[f32]]) -> Result<()>,
) -> Result<()> {
    for_each_block_in(program, 0..program.frames(), block, cancel, progress, f)
}

/// First pass: renders `program` without encoding and meters it (integrated loudness,
/// range, sample peak) plus a compact peak/energy summary used to predict limiting.
///
/// # Errors
///
/// [`Error::InvalidInput`] for bad options or a program the meter cannot take;
/// [`Error::Cancelled`] when cancelled.
pub fn measure_mix(
    program: &dyn FrameSource,
    options: &RenderOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<MixMeasurement> {
    let rate = program.sample_rate();
    measure_mix_threads(program, rate, options, cancel, progress, crate::par::threads())
}

/// [`measure_mix`] on up to `threads` threads. With two or more and a program of at least
/// 20 s, the program is cut in two at a multiple of both the 100 ms sub-block and the window
/// (so no block straddles the cut); the second half runs on its own thread, its meter first
/// warmed up on the second before the cut, and the halves' sub-blocks and windows are joined.
/// The result equals the sequential one up to rounding (tested).
fn measure_mix_threads(
    program: &dyn FrameSource,
    rate: NonZeroU32,
    options: &RenderOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
    threads: usize,
) -> Result<MixMeasurement> {
    let block = options.block()?;
    let channels = program.channel_count();
    let sub_len = crate::dsp::meter::sub_block_frames(rate);
    let unit = lcm(sub_len, WINDOW as u64);
    let total = program.frames();
    let warm = u64::from(rate.get()) * crate::dsp::meter::WARM_UP_S;
    let meter_over = |range: std::ops::Range<u64>, progress: &mut dyn FnMut(f64)| {
        let mut meter = FastMeter::new(channels, rate).with_windows(WINDOW);
        if range.start > 0 {
            let from = range.start.saturating_sub(warm);
            for_each_block_in(program, from..range.start, block, cancel, &mut |_| {}, |p| {
                meter.warm_up(p);
                Ok(())
            })?;
        }
        for_each_block_in(program, range, block, cancel, progress, |p| {
            meter.add(p);
            Ok(())
        })?;
        Ok::<_, Error>(meter)
    };
    let mut meter = match crate::par::cut(total, unit, 20 * u64::from(rate.get()), threads) {
        Some(cut) => {
            let (first, second) = crate::par::join(
                || meter_over(0..cut, progress),
                || meter_over(cut..total, &mut |_| {}),
            );
            let mut first = first?;
            first.append(second?);
            first
        }
        None => meter_over(0..total, progress)?,
    };
    let windows = meter.take_windows();
    Ok(MixMeasurement {
        loudness: meter.loudness(),
        frames: total,
        windows,
        subs: meter.sub_blocks().to_vec(),
        sub_len: sub_len as usize,
    })
}

fn lcm(a: u64, b: u64) -> u64 {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    a / x.max(1) * b
}

/// Per-window peaks for limiter prediction: the sample peak, or, for windows whose sample
/// peak could reach the ceiling at gains up to `max_gain_db`, the exact 4× true peak
/// (re-read from the program).
fn window_peaks(
    program: &dyn FrameSource,
    m: &MixMeasurement,
    max_gain_db: f64,
    ceiling_dbtp: f64,
    cancel: &CancelToken,
) -> Result<Vec<f32>> {
    let g = db_to_gain(max_gain_db) as f32;
    let target = ceiling_target(ceiling_dbtp);
    // Normal audio's inter-sample overs stay under 3 dB; candidates get their exact peak.
    let candidate = |peak: f32| peak * g * std::f32::consts::SQRT_2 > target;
    let mut peaks: Vec<f32> = m.windows.iter().map(|w| w.0).collect();
    let mut buf: Vec<Vec<f32>> = vec![Vec::new(); program.channel_count()];
    let mut w = 0usize;
    while w < peaks.len() {
        if !candidate(peaks[w]) {
            w += 1;
            continue;
        }
        cancel.check()?;
        let mut end = w + 1;
        while end < peaks.len() && end - w < 64 && candidate(peaks[end]) {
            end += 1;
        }
        // Frames [w*WINDOW - 5, end*WINDOW + 6) cover every interpolation tap.
        let from = (w * WINDOW) as u64;
        let pre = from.min(5);
        let to = ((end * WINDOW) as u64).min(m.frames) + 6;
        let len = (to - (from - pre)) as usize;
        for b in &mut buf {
            b.clear();
            b.resize(len, 0.0);
        }
        let mut planes: Vec<&mut [f32]> = buf.iter_mut().map(|b| b.as_mut_slice()).collect();
        program.read(from - pre, &mut planes);
        for (k, peak) in peaks[w..end].iter_mut().enumerate() {
            let a = k * WINDOW + pre as usize;
            let lo = a.saturating_sub(5);
            let hi = (a + WINDOW + 6).min(len);
            let slices: Vec<&[f32]> = buf.iter().map(|b| &b[lo..hi]).collect();
            *peak = peak.max(crate::dsp::true_peak::true_peak_4x(&slices));
        }
        w = end;
    }
    Ok(peaks)
}

/// Predicts the integrated loudness (LUFS) after `gain_db` and the limiter by simulating
/// the limiter per window (required gain from the window's peak, the limiter's release
/// between windows), scaling each 100 ms sub-block's K-weighted energy by the fraction of
/// its (unweighted) energy the simulation keeps, and gating as BS.1770 does.
fn predict_output_lufs(
    m: &MixMeasurement,
    peaks: &[f32],
    gain_db: f64,
    ceiling_dbtp: f64,
    limiter: &LimiterOptions,
    rate: NonZeroU32,
) -> f64 {
    let g = db_to_gain(gain_db) as f32;
    let g2 = f64::from(g) * f64::from(g);
    let target = ceiling_target(ceiling_dbtp);
    let release_frames = f64::from(limiter.release_ms) * f64::from(rate.get()) / 1000.0;
    let decay = (-(WINDOW as f64) / release_frames).exp() as f32;
    // Per sub-block: (energy before, energy kept) of the windows starting in it.
    let mut kept = vec![(0.0f64, 0.0f64); m.subs.len()];
    let mut held = 1.0f32;
    for (w, (&(_, energy), &peak)) in m.windows.iter().zip(peaks).enumerate() {
        let need = if peak * g > target { target / (peak * g) } else { 1.0 };
        held = need.min(1.0 - (1.0 - held) * decay);
        if let Some(k) = kept.get_mut(w * WINDOW / m.sub_len) {
            k.0 += f64::from(energy);
            k.1 += f64::from(energy) * f64::from(held) * f64::from(held);
        }
    }
    let subs: Vec<f64> = m
        .subs
        .iter()
        .zip(&kept)
        .map(|(&e, &(before, after))| {
            let frac = if before > 0.0 { after / before } else { 1.0 };
            e * g2 * frac
        })
        .collect();
    integrated_from_subs(&subs)
}

/// Renders `program` × `gain_db` through the limiter, calling `sink` with each output block.
#[allow(clippy::too_many_arguments)]
fn limited_pass(
    program: &dyn FrameSource,
    rate: NonZeroU32,
    gain_db: f64,
    (ceiling_dbtp, dips): (f64, &[CeilingDip]),
    limiter: &LimiterOptions,
    block: usize,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
    sink: &mut dyn FnMut(&AudioBuffer) -> Result<()>,
) -> Result<LimiterStats> {
    let channels = program.channel_count();
    let mut lim = LimiterStream::new(channels, rate, ceiling_dbtp, limiter)?;
    lim.set_ceiling_dips(dips)?;
    let g = db_to_gain(gain_db) as f32;
    for_each_block(program, block, cancel, progress, |p| lim.push_scaled(p, g, sink))?;
    let stats = lim.stats();
    lim.finish(sink)?;
    Ok(stats)
}

/// Integrated loudness of `program` × `gain_db` after the limiter (a metering-only pass).
#[allow(clippy::too_many_arguments)]
fn measure_limited(
    program: &dyn FrameSource,
    rate: NonZeroU32,
    gain_db: f64,
    ceiling_dbtp: f64,
    limiter: &LimiterOptions,
    block: usize,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<f64> {
    let pass = LimitedPass { program, rate, gain_db, ceiling_dbtp, limiter, block };
    pass.measure(cancel, progress, crate::par::threads())
}

/// One metering pass through gain and limiter (see [`measure_limited`]).
struct LimitedPass<'a> {
    program: &'a dyn FrameSource,
    rate: NonZeroU32,
    gain_db: f64,
    ceiling_dbtp: f64,
    limiter: &'a LimiterOptions,
    block: usize,
}

impl LimitedPass<'_> {
    /// The pass on up to `threads` threads. With two or more and a program of at least 20 s
    /// (and longer than twice the warm-up), the program is cut in two on a 100 ms sub-block;
    /// the second half's limiter and meter first run over the audio before the cut (the
    /// limiter's release decays by e^-20 over it), and the first half reads on past the cut by
    /// the limiter's lookahead. The halves' sub-blocks are joined, so the result equals the
    /// sequential one up to rounding (tested).
    fn measure(
        &self,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(f64),
        threads: usize,
    ) -> Result<f64> {
        let total = self.program.frames();
        let sr = u64::from(self.rate.get());
        let release = u64::from(self.limiter.release_ms) * sr / 1000;
        let warm = sr * crate::dsp::meter::WARM_UP_S + 20 * release;
        let unit = crate::dsp::meter::sub_block_frames(self.rate);
        let cut = crate::par::cut(total, unit, (20 * sr).max(4 * warm), threads);
        let meter = match cut {
            Some(cut) => {
                let (first, second) = crate::par::join(
                    || self.part(0..cut, 0, cancel, progress),
                    || self.part(cut..total, warm, cancel, &mut |_| {}),
                );
                let mut first = first?;
                first.append(second?);
                first
            }
            None => self.part(0..total, 0, cancel, progress)?,
        };
        Ok(meter.loudness().integrated_lufs)
    }

    /// Meters the limited output over `range`, the limiter and meter first warmed up on the
    /// `warm` frames before it.
    fn part(
        &self,
        range: std::ops::Range<u64>,
        warm: u64,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(f64),
    ) -> Result<FastMeter> {
        let channels = self.program.channel_count();
        let total = self.program.frames();
        let mut lim = LimiterStream::new(channels, self.rate, self.ceiling_dbtp, self.limiter)?;
        let from = range.start.saturating_sub(warm);
        let to = (range.end + lim.latency_frames() as u64).min(total);
        let mut meter = FastMeter::new(channels, self.rate);
        // Output frames come out in order from `from`: before `range` they warm the meter up,
        // inside it they are measured, after it (the lookahead read past the cut) dropped.
        let mut pos = from;
        let mut sink = |b: &AudioBuffer| -> Result<()> {
            let n = b.frames() as u64;
            let planes: Vec<&[f32]> = b.planes().iter().map(Vec::as_slice).collect();
            let slice = |a: u64, z: u64| -> Vec<&[f32]> {
                planes.iter().map(|p| &p[(a - pos) as usize..(z - pos) as usize]).collect()
            };
            let (a, z) = (pos, pos + n);
            let w_end = z.min(range.start);
            if a < w_end {
                meter.warm_up(&slice(a, w_end));
            }
            let (m0, m1) = (a.max(range.start), z.min(range.end));
            if m0 < m1 {
                meter.add(&slice(m0, m1));
            }
            pos = z;
            Ok(())
        };
        let g = db_to_gain(self.gain_db) as f32;
        let len = (range.end - range.start) as f64;
        let mut sub = |f: f64| {
            // Progress over the measured range only (the warm-up is short).
            let done = (from as f64 + f * (to - from) as f64 - range.start as f64).max(0.0);
            progress((done / len).min(1.0));
        };
        for_each_block_in(self.program, from..to, self.block, cancel, &mut sub, |p| {
            lim.push_scaled(p, g, &mut sink)
        })?;
        if to == total {
            lim.finish(&mut sink)?;
        }
        Ok(meter)
    }
}

/// Plans the master: the gain from the measured loudness to the target, corrected for the
/// loudness the limiter will take. When the prediction says the limiter costs more than
/// `limiter_loss_tolerance_lu`, up to `max_correction_passes` metering passes run through
/// gain and limiter, refining the gain (secant steps) until the result is within the
/// tolerance of the target.
///
/// # Errors
///
/// [`Error::InvalidInput`] for invalid options; [`Error::Cancelled`] when cancelled.
pub fn plan_master(
    program: &dyn FrameSource,
    measurement: &MixMeasurement,
    options: &MasterOptions,
    render: &RenderOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<MasterPlan> {
    plan_master_from(program, measurement, options, render, cancel, progress, None, true)
}

/// [`plan_master`] for a re-plan of the same programme (the codec prediction lowering the
/// ceiling). `calibration` is an earlier plan of this programme whose gain a correction pass
/// measured: the limiter model's error there (measured minus predicted loudness) is added to
/// the model here, so the model alone lands within a few hundredths of a LU of a measured
/// pass for a ceiling a few dB away. With `measure` false no correction pass runs and the
/// plan carries the calibrated model's gain (`correction_passes` 0); with `measure` true the
/// passes start from that gain, and usually one suffices.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_master_from(
    program: &dyn FrameSource,
    measurement: &MixMeasurement,
    options: &MasterOptions,
    render: &RenderOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
    calibration: Option<&MasterPlan>,
    measure: bool,
) -> Result<MasterPlan> {
    let rate = program.sample_rate();
    options.validate()?;
    let block = render.block()?;
    let target = options.target_lufs();
    let ceiling = options.ceiling_dbtp();
    let input = measurement.loudness.integrated_lufs;
    let gain0 = options.gain_to_target_db(input);
    let mut plan = MasterPlan {
        target_lufs: target,
        ceiling_dbtp: ceiling,
        limiter: options.limiter.clone(),
        input_lufs: input,
        gain_db: gain0,
        predicted_limiter_loss_lu: 0.0,
        correction_passes: 0,
        corrected_lufs: None,
        ceiling_dips: Vec::new(),
    };
    if !input.is_finite() {
        progress(1.0);
        return Ok(plan);
    }
    let cap = options.max_gain_db;
    let peaks = window_peaks(program, measurement, (gain0 + 1.0).min(cap), ceiling, cancel)?;
    // Predicted output loudness, relative to the measured input: gain minus the loss.
    let unlimited = integrated_from_subs(
        &measurement.subs.iter().map(|e| e * db_to_power(gain0)).collect::<Vec<_>>(),
    ) - gain0;
    // The model's error where a pass measured it (zero without a calibration).
    let offset = match calibration {
        Some(c) => c.corrected_lufs.map_or(0.0, |l| {
            l - predict_output_lufs(
                measurement,
                &peaks,
                c.gain_db,
                c.ceiling_dbtp,
                &c.limiter,
                rate,
            )
        }),
        None => 0.0,
    };
    let predict = |gain: f64| {
        predict_output_lufs(measurement, &peaks, gain, ceiling, &options.limiter, rate) - unlimited
            + offset
    };
    let loss = (gain0 - predict(gain0)).max(0.0);
    plan.predicted_limiter_loss_lu = loss;
    let tol = options.limiter_loss_tolerance_lu;
    let max_passes = if measure { options.max_correction_passes } else { 0 };
    if loss <= tol || (measure && max_passes == 0) {
        progress(1.0);
        return Ok(plan);
    }
    // Solve predicted(gain) = gain0 on the (cheap) model first: the predicted output
    // loudness rises with gain at a slope in (0, 1].
    let mut gain = gain0 + loss;
    for _ in 0..30 {
        let err = gain0 - predict(gain);
        if err.abs() < 0.005 {
            break;
        }
        let slope = ((predict(gain + 0.25) - predict(gain - 0.25)) / 0.5).clamp(0.1, 1.0);
        gain = (gain + err / slope).clamp(-cap, cap);
    }
    if !measure {
        plan.gain_db = gain;
        progress(1.0);
        return Ok(plan);
    }
    let model_slope = ((predict(gain + 0.25) - predict(gain - 0.25)) / 0.5).clamp(0.1, 1.0);
    let mut prev: Option<(f64, f64)> = None; // (gain, measured)
    let mut best_err = f64::INFINITY;
    for pass in 0..max_passes {
        let base = f64::from(pass) / f64::from(max_passes);
        let mut sub = |f: f64| progress(base + f / f64::from(max_passes));
        let l = measure_limited(
            program,
            rate,
            gain,
            ceiling,
            &options.limiter,
            block,
            cancel,
            &mut sub,
        )?;
        plan.correction_passes = pass + 1;
        if !l.is_finite() {
            break;
        }
        let err = target - l;
        if err.abs() < best_err {
            best_err = err.abs();
            plan.gain_db = gain;
            plan.corrected_lufs = Some(l);
        }
        if err.abs() <= tol {
            break;
        }
        let slope = match prev {
            Some((g0, l0)) if (gain - g0).abs() > 1e-6 => ((l - l0) / (gain - g0)).clamp(0.1, 1.0),
            _ => model_slope,
        };
        prev = Some((gain, l));
        let next = (gain + err / slope).clamp(-cap, cap);
        if (next - gain).abs() < 1e-4 {
            break; // capped: the target is out of reach
        }
        gain = next;
    }
    progress(1.0);
    Ok(plan)
}

/// Final pass: renders `program` through the plan's gain and the true-peak limiter into
/// `sink`, block by block. The sink receives exactly `program.frames()` frames in order.
///
/// # Errors
///
/// [`Error::InvalidInput`] for invalid options; [`Error::Cancelled`] when cancelled; any
/// error of `sink`.
pub fn render_final(
    program: &dyn FrameSource,
    plan: &MasterPlan,
    render: &RenderOptions,
    mut sink: impl FnMut(&AudioBuffer) -> Result<()>,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<RenderOutcome> {
    let rate = program.sample_rate();
    let block = render.block()?;
    let mut meter = if render.measure_output {
        Some(LoudnessMeter::new(program.channel_count(), rate.get(), true)?)
    } else {
        None
    };
    let mut frames = 0u64;
    let mut counting = |b: &AudioBuffer| -> Result<()> {
        frames += b.frames() as u64;
        if let Some(m) = meter.as_mut() {
            m.add(b)?;
        }
        sink(b)
    };
    let limiter = limited_pass(
        program,
        rate,
        plan.gain_db,
        (plan.ceiling_dbtp, &plan.ceiling_dips),
        &plan.limiter,
        block,
        cancel,
        progress,
        &mut counting,
    )?;
    if frames != program.frames() {
        return Err(Error::internal(format!(
            "render produced {frames} frames for a {}-frame program",
            program.frames()
        )));
    }
    let output = meter.map(|m| m.finish()).transpose()?;
    Ok(RenderOutcome { frames, limiter, output })
}

/// Measures, plans and renders `program` to the master target in one call: the first pass
/// meters the planned mix, [`plan_master`] derives the gain (correcting for the limiter
/// when needed), and the final pass renders through gain and the oversampled true-peak
/// limiter into `sink`. Progress runs 0 → 1 over the whole job (first pass 0–0.45,
/// corrections 0.45–0.55, final pass 0.55–1).
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{analyze::loudness::measure, synth, AudioBuffer, CancelToken};
/// use assembly_core::master::MasterOptions;
/// use assembly_core::render::{render_mastered, RenderOptions};
///
/// let rate = NonZeroU32::new(48_000).unwrap();
/// let quiet = synth::multi(rate, synth::speech_like(rate, 7, -38.0, 48_000 * 20), 2);
/// let mut out = AudioBuffer::silence(rate, 2, 0).unwrap();
/// let report = render_mastered(&quiet, &MasterOptions::default(),
///     &RenderOptions::default(), |b| out.append(b), &CancelToken::new(), &mut |_| {}).unwrap();
/// let l = measure(&out).unwrap();
/// assert_eq!(out.frames(), quiet.frames());
/// assert!((l.integrated_lufs + 16.0).abs() < 0.3, "{l:?}");
/// assert!(l.true_peak_dbtp <= -1.0);
/// assert!(report.plan.gain_db > 15.0);
/// ```
///
/// # Errors
///
/// As [`measure_mix`], [`plan_master`] and [`render_final`].
pub fn render_mastered(
    program: &dyn FrameSource,
    master: &MasterOptions,
    render: &RenderOptions,
    sink: impl FnMut(&AudioBuffer) -> Result<()>,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<RenderReport> {
    master.validate()?;
    let mut last = 0.0f64;
    let mut report = |f: f64| {
        if f > last {
            last = f;
            progress(f);
        }
    };
    let m = measure_mix(program, render, cancel, &mut |f| report(0.45 * f))?;
    let plan = plan_master(program, &m, master, render, cancel, &mut |f| report(0.45 + 0.1 * f))?;
    let outcome =
        render_final(program, &plan, render, sink, cancel, &mut |f| report(0.55 + 0.45 * f))?;
    Ok(RenderReport { input: m.loudness, plan, outcome })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AudioBuffer, synth};

    /// The two-thread measurement (cut mid-program, second half warmed up) equals the
    /// sequential one: the same sub-blocks and windows up to rounding, the same loudness.
    #[test]
    fn split_measurement_equals_the_sequential_one() {
        for (rate, secs) in [(44_100u32, 61usize), (48_000, 37)] {
            let r = NonZeroU32::new(rate).unwrap();
            let n = rate as usize * secs + 123;
            let l = synth::speech_like(r, 3, -18.0, n);
            let mut m = synth::music_like(r, 4, -24.0, n);
            m[n / 2] = 0.99; // a peak near the cut
            let program = AudioBuffer::from_planar(r, vec![l, m]).unwrap();
            let opts = RenderOptions::default();
            let cancel = CancelToken::new();
            let one = measure_mix_threads(&program, r, &opts, &cancel, &mut |_| {}, 1).unwrap();
            let mut last = 0.0;
            let two =
                measure_mix_threads(&program, r, &opts, &cancel, &mut |f| last = f, 2).unwrap();
            assert_eq!(last, 1.0);
            assert_eq!((one.frames, one.subs.len()), (two.frames, two.subs.len()));
            assert_eq!(one.windows.len(), two.windows.len());
            for (a, b) in one.subs.iter().zip(&two.subs) {
                assert!((a - b).abs() <= 1e-12 * a.abs().max(1e-12), "{rate}: {a} vs {b}");
            }
            for (a, b) in one.windows.iter().zip(&two.windows) {
                assert_eq!(a.0, b.0);
                assert!((a.1 - b.1).abs() <= 1e-5 * a.1.abs().max(1e-9), "{a:?} vs {b:?}");
            }
            let (x, y) = (one.loudness, two.loudness);
            assert!((x.integrated_lufs - y.integrated_lufs).abs() < 1e-9, "{x:?} {y:?}");
            assert!((x.range_lu - y.range_lu).abs() < 1e-9, "{x:?} {y:?}");
            assert_eq!(x.sample_peak_dbfs, y.sample_peak_dbfs);
        }
    }

    /// The two-thread limited pass equals the sequential one to well under the correction
    /// tolerance, with heavy limiting right at the cut and a slow release.
    #[test]
    fn split_limited_pass_equals_the_sequential_one() {
        for (rate, secs, release_ms) in [(44_100u32, 61usize, 100u32), (48_000, 47, 400)] {
            let r = NonZeroU32::new(rate).unwrap();
            let n = rate as usize * secs + 77;
            let mut l = synth::speech_like(r, 3, -14.0, n);
            let m = synth::music_like(r, 4, -20.0, n);
            for x in &mut l[n / 2 - 2000..n / 2 + 2000] {
                *x *= 4.0; // a loud burst across the cut: the limiter is deep in gain reduction
            }
            let program = AudioBuffer::from_planar(r, vec![l, m]).unwrap();
            let limiter = LimiterOptions { release_ms, ..LimiterOptions::default() };
            let pass = LimitedPass {
                program: &program,
                rate: r,
                gain_db: 6.0,
                ceiling_dbtp: -1.0,
                limiter: &limiter,
                block: 8192,
            };
            let cancel = CancelToken::new();
            let one = pass.measure(&cancel, &mut |_| {}, 1).unwrap();
            let mut last = 0.0;
            let two = pass.measure(&cancel, &mut |f| last = f, 2).unwrap();
            assert_eq!(last, 1.0);
            assert!(one.is_finite() && one > -20.0, "{one}");
            assert!((one - two).abs() < 1e-6, "{rate}: {one} vs {two}");
            // And the sequential pass is what the final render delivers.
            let plan = MasterPlan {
                target_lufs: -16.0,
                ceiling_dbtp: -1.0,
                limiter: limiter.clone(),
                input_lufs: -20.0,
                gain_db: 6.0,
                predicted_limiter_loss_lu: 0.0,
                correction_passes: 0,
                corrected_lufs: None,
                ceiling_dips: Vec::new(),
            };
            let ro = RenderOptions { measure_output: true, ..RenderOptions::default() };
            let out = render_final(&program, &plan, &ro, |_| Ok(()), &cancel, &mut |_| {}).unwrap();
            let rendered = out.output.expect("measured").integrated_lufs;
            assert!((rendered - one).abs() < 1e-6, "{rendered} vs {one}");
        }
    }

    /// A re-plan for a ceiling 3 dB lower, on the model calibrated by the first plan's
    /// measured pass, lands within the correction tolerance without a pass of its own; with
    /// `measure` one pass confirms it.
    #[test]
    fn a_calibrated_replan_lands_without_a_pass() {
        let r = NonZeroU32::new(44_100).unwrap();
        let n = 44_100 * 40;
        let mut l = synth::speech_like(r, 11, -20.0, n);
        for (i, x) in l.iter_mut().enumerate() {
            if i % 20_000 < 300 {
                *x = (*x * 4.0).clamp(-1.0, 1.0); // plosive-like bursts the limiter must take
            }
        }
        let program = synth::mono(r, l);
        let ro = RenderOptions::default();
        let cancel = CancelToken::new();
        let m = measure_mix(&program, &ro, &cancel, &mut |_| {}).unwrap();
        let first = plan_master(&program, &m, &MasterOptions::default(), &ro, &cancel, &mut |_| {})
            .unwrap();
        assert!(first.corrected_lufs.is_some(), "the first plan measured a pass: {first:?}");
        let low = MasterOptions { ceiling_dbtp: Some(-4.0), ..MasterOptions::default() };
        let plan = |measure| {
            plan_master_from(&program, &m, &low, &ro, &cancel, &mut |_| {}, Some(&first), measure)
                .unwrap()
        };
        let calibrated = plan(false);
        assert_eq!(calibrated.correction_passes, 0);
        assert!(calibrated.predicted_limiter_loss_lu > 1.0, "{calibrated:?}");
        let pass = LimitedPass {
            program: &program,
            rate: r,
            gain_db: calibrated.gain_db,
            ceiling_dbtp: -4.0,
            limiter: &calibrated.limiter,
            block: 8192,
        };
        let got = pass.measure(&cancel, &mut |_| {}, 1).unwrap();
        assert!((got - -16.0).abs() < 0.05, "calibrated model: {got} LUFS");
        let confirmed = plan(true);
        assert_eq!(confirmed.correction_passes, 1);
        assert_eq!(confirmed.gain_db, calibrated.gain_db);
        // The same pass (on two threads there: equal up to rounding).
        assert!((confirmed.corrected_lufs.unwrap() - got).abs() < 1e-9, "{confirmed:?}");
    }

    /// Too short to split (under 20 s, or no whole unit in the first half): sequential.
    #[test]
    fn short_programs_measure_the_same_on_any_thread_count() {
        let r = NonZeroU32::new(44_100).unwrap();
        let program = synth::mono(r, synth::speech_like(r, 5, -20.0, 44_100 * 15));
        let opts = RenderOptions::default();
        let c = CancelToken::new();
        let a = measure_mix_threads(&program, r, &opts, &c, &mut |_| {}, 1).unwrap();
        let b = measure_mix_threads(&program, r, &opts, &c, &mut |_| {}, 4).unwrap();
        assert_eq!(a.subs, b.subs);
        assert_eq!(a.loudness, b.loudness);
    }
}
