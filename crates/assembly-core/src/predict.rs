//! Codec prediction: land a lossy output on its loudness target and under its true-peak
//! ceiling in one full encode.
//!
//! A lossy codec (LAME at 128 kbit/s) pushes true peaks over what the limiter delivered, by
//! about 0.7 dB on speech limited to −1 dBTP. Rather than encode the whole programme, measure
//! and try again, [`plan_for_codec`] renders short excerpts around the programme's loudest
//! moments (and a few typical ones) through the planned gain and limiter, encodes and decodes
//! them with the output's exact settings, and measures the overshoot. The limiter's ceiling is
//! then lowered by that much (plus [`MARGIN_DB`]) and the gain re-planned for the lower ceiling
//! ([`plan_master_from`] on the in-memory measurement, never a full encode), so the integrated
//! loudness stays on target. Up to [`MAX_ROUNDS`] rounds, each re-encoding the excerpts with
//! the new plan. The re-plans between rounds use the limiter model calibrated by the master
//! stage's measured pass (no pass through the programme); only the plan that is kept gets a
//! measured pass. See `docs/mastering.md`, "One encode".
//!
//! It needs both `render` and `encode`, so it sits above them (with the spec and the
//! checkpoints) and below the Assembler.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::dsp::meter::LoudnessMeter;
use crate::dsp::true_peak::{TruePeakScanner, true_peak_4x};
use crate::dsp::{db_to_gain, db_to_power, gain_to_db, power_to_db};
use crate::encode::{OutputFormat, Tags, write_file};
use crate::error::Result;
use crate::load::{DecodeOptions, decode_file, decode_file_streaming};
use crate::master::{
    CeilingDip, CodecPrediction, ExcerptMeasurement, MasterOptions, ceiling_target,
};
use crate::render::{MasterPlan, MixMeasurement, RenderOptions, plan_master_from, render_final};
use crate::{AudioBuffer, CancelToken, FrameSource, frames_to_ms};

/// How many excerpts of what length the prediction encodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Layout {
    /// Excerpts chosen for their peaks.
    pub(crate) peaks: usize,
    /// Excerpts chosen as typical programme (evenly spaced).
    pub(crate) typical: usize,
    /// Length of the measured part of each excerpt, seconds.
    pub(crate) core_s: f64,
}

impl Layout {
    /// What [`plan_for_codec`] uses (chosen by the study in `docs/mastering.md`).
    pub(crate) const DEFAULT: Layout =
        Layout { peaks: PEAK_EXCERPTS, typical: TYPICAL_EXCERPTS, core_s: CORE_S };
}

/// Length of the measured part of each excerpt, seconds.
const CORE_S: f64 = 1.0;
/// Audio rendered and encoded before the measured part (the limiter's release and the
/// encoder settle), seconds.
const WARM_S: f64 = 0.5;
/// Audio rendered and encoded after the measured part, seconds.
const TAIL_S: f64 = 0.25;
/// Excerpts chosen for their peaks.
pub(crate) const PEAK_EXCERPTS: usize = 32;
/// Excerpts chosen as typical programme (evenly spaced).
pub(crate) const TYPICAL_EXCERPTS: usize = 2;
/// Extra headroom below the ceiling for what the excerpts did not see, dB.
pub(crate) const MARGIN_DB: f64 = 0.1;
/// Most rounds of excerpt encoding.
pub(crate) const MAX_ROUNDS: u32 = 3;

/// A part of `src`, as its own source (reads outside it are zeros).
struct Window<'a> {
    src: &'a dyn FrameSource,
    range: Range<u64>,
}

impl FrameSource for Window<'_> {
    fn sample_rate(&self) -> std::num::NonZeroU32 {
        self.src.sample_rate()
    }

    fn channel_count(&self) -> usize {
        self.src.channel_count()
    }

    fn frames(&self) -> u64 {
        self.range.end - self.range.start
    }

    fn read(&self, start: u64, out: &mut [&mut [f32]]) {
        let len = self.frames();
        let n = out.iter().map(|o| o.len()).max().unwrap_or(0) as u64;
        let inside = len.saturating_sub(start).min(n) as usize;
        let mut head: Vec<&mut [f32]> = out.iter_mut().map(|o| &mut o[..inside]).collect();
        if inside > 0 {
            self.src.read(self.range.start + start, &mut head);
        }
        for o in out.iter_mut() {
            o[inside..].fill(0.0);
        }
    }
}

/// The measured parts (frame ranges of the programme) of the excerpts, each at least an
/// excerpt apart from the others and flagged `true` when chosen for its peak:
/// - peaks: the windows whose peak (before gain) reaches `limited` are where the limiter
///   works and the codec can push over the ceiling; when there are more of them than
///   `layout.peaks`, they are taken in that many equal strata of time, the loudest of each
///   (so a quiet speaker's limited plosives are sampled too, not only the loudest
///   speaker's); when none reach it, the loudest windows;
/// - then `layout.typical` evenly spaced ones.
///
/// Also returns how many windows reach `limited` (the population the peaks sample).
pub(crate) fn pick_excerpts(
    m: &MixMeasurement,
    rate: u32,
    limited: f32,
    layout: &Layout,
) -> (Vec<(Range<u64>, bool)>, usize) {
    let core = (layout.core_s * f64::from(rate)) as u64;
    let w = MixMeasurement::WINDOW_FRAMES;
    let frames = m.frames;
    let around = |centre: u64| {
        let start = centre.saturating_sub(core / 2).min(frames.saturating_sub(core));
        start..(start + core).min(frames)
    };
    let clear = |r: &Range<u64>, chosen: &[(Range<u64>, bool)]| {
        chosen.iter().all(|(c, _)| r.end + core <= c.start || c.end + core <= r.start)
    };
    let peaks: Vec<(usize, f32)> = m.window_peaks().enumerate().collect();
    let hot: Vec<(usize, f32)> = peaks.iter().copied().filter(|p| p.1 >= limited).collect();
    let mut order: Vec<(usize, f32)> = Vec::new();
    if hot.is_empty() {
        order = peaks;
    } else {
        // Strata of time over the limited windows; the loudest of each stratum first, then
        // the runners-up, so a stratum whose best is too close to another's still counts.
        let strata = layout.peaks.min(hot.len());
        let mut by_stratum: Vec<Vec<(usize, f32)>> = vec![Vec::new(); strata];
        for (k, w) in hot.iter().enumerate() {
            by_stratum[k * strata / hot.len()].push(*w);
        }
        for s in &mut by_stratum {
            s.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        let deepest = by_stratum.iter().map(Vec::len).max().unwrap_or(0);
        for rank in 0..deepest {
            order.extend(by_stratum.iter().filter_map(|s| s.get(rank).copied()));
        }
    }
    if hot.is_empty() {
        // Loudest first; ties by position, so the choice is deterministic.
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    }
    let mut chosen: Vec<(Range<u64>, bool)> = Vec::new();
    for (i, peak) in order {
        if chosen.len() >= layout.peaks || peak <= 0.0 {
            break;
        }
        let r = around(i as u64 * w + w / 2);
        if !r.is_empty() && clear(&r, &chosen) {
            chosen.push((r, true));
        }
    }
    for k in 1..=layout.typical as u64 {
        let r = around(frames * k / (layout.typical as u64 + 1));
        if !r.is_empty() && clear(&r, &chosen) {
            chosen.push((r, false));
        }
    }
    (chosen, hot.len())
}

/// The codec overshoot (dB over the rendered peak) to expect somewhere in a programme whose
/// `population` limited windows the excerpts' `sampled` overshoots stand for: the largest one
/// seen, or, when the excerpts sampled only part of the population, the expected largest of
/// that many draws from the sample's distribution (mean + sd·√(2 ln n), the normal
/// extreme-value approximation), whichever is higher.
pub(crate) fn expected_overshoot(sampled: &[f64], population: usize) -> f64 {
    let max = sampled.iter().copied().fold(0.0f64, f64::max);
    let n = sampled.len();
    if n < 2 || population <= n {
        return max;
    }
    let mean = sampled.iter().sum::<f64>() / n as f64;
    let var = sampled.iter().map(|o| (o - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let tail = mean + var.sqrt() * (2.0 * (population as f64).ln()).sqrt();
    max.max(tail)
}

/// The predicted true peak of the encoded programme and the expected codec overshoot, from
/// `excerpts` rendered with a limiter ceiling of `limiter_ceiling_dbtp` that sample
/// `population` limited moments: the highest decoded excerpt peak, or the highest rendered
/// peak at the ceiling plus the [`expected_overshoot`] of the peak excerpts rendered within
/// 1 dB of the ceiling, whichever is higher.
fn predict_peak(
    excerpts: &[ExcerptMeasurement],
    population: usize,
    limiter_ceiling_dbtp: f64,
) -> (f64, f64) {
    let decoded_max =
        excerpts.iter().map(|e| e.decoded_true_peak_dbtp).fold(f64::NEG_INFINITY, f64::max);
    // The codec's overshoot at the limited peaks (rendered within 1 dB of the ceiling).
    let at_ceiling = |e: &&ExcerptMeasurement| {
        e.peak
            && e.decoded_true_peak_dbtp.is_finite()
            && e.rendered_true_peak_dbtp >= limiter_ceiling_dbtp - 1.0
    };
    let sampled: Vec<f64> = excerpts
        .iter()
        .filter(at_ceiling)
        .map(|e| e.decoded_true_peak_dbtp - e.rendered_true_peak_dbtp)
        .collect();
    let overshoot = expected_overshoot(&sampled, population);
    let rendered_max = excerpts
        .iter()
        .filter(at_ceiling)
        .map(|e| e.rendered_true_peak_dbtp)
        .fold(f64::NEG_INFINITY, f64::max);
    (decoded_max.max(rendered_max + overshoot), overshoot)
}

/// A scratch file, deleted when dropped (also on error or cancellation).
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The true peak (dBTP) of frames `core` of `planes` (with the interpolator's taps around).
fn core_true_peak(planes: &[Vec<f32>], core: Range<usize>) -> f64 {
    let slices: Vec<&[f32]> = planes
        .iter()
        .map(|p| {
            let lo = core.start.saturating_sub(5).min(p.len());
            let hi = (core.end + 6).min(p.len());
            &p[lo..hi]
        })
        .collect();
    let peak = f64::from(true_peak_4x(&slices));
    if peak > 0.0 { gain_to_db(peak) } else { f64::NEG_INFINITY }
}

/// Renders the excerpt around `core` with `plan`, encodes it to `scratch` in `format` and
/// decodes it; returns the rendered and decoded excerpt and where the core is in them.
fn excerpt_audio(
    program: &dyn FrameSource,
    plan: &MasterPlan,
    core: &Range<u64>,
    format: &OutputFormat,
    scratch: &Path,
    cancel: &CancelToken,
) -> Result<(AudioBuffer, AudioBuffer, Range<usize>)> {
    let rate = program.sample_rate();
    let r = f64::from(rate.get());
    let start = core.start.saturating_sub((WARM_S * r) as u64);
    let end = (core.end + (TAIL_S * r) as u64).min(program.frames());
    let window = Window { src: program, range: start..end };
    let mut rendered = AudioBuffer::silence(rate, program.channel_count(), 0)?;
    render_final(
        &window,
        plan,
        &RenderOptions::default(),
        |b| rendered.append(b),
        cancel,
        &mut |_| {},
    )?;
    let _guard = Scratch(scratch.to_path_buf());
    write_file(scratch, &rendered, format, &Tags::default())?;
    let decoded = decode_file(scratch, &DecodeOptions::default(), cancel)?.audio;
    let at = (core.start - start) as usize..(core.end - start) as usize;
    Ok((rendered, decoded, at))
}

/// The integrated loudness (LUFS) of frames `core` of `b` (no true peak: cheap).
fn core_loudness(b: &AudioBuffer, core: Range<usize>) -> Result<f64> {
    let mut m = LoudnessMeter::new(b.channel_count(), b.sample_rate().get(), false)?;
    let planes: Vec<&[f32]> =
        b.planes().iter().map(|p| &p[core.start.min(p.len())..core.end.min(p.len())]).collect();
    m.add_planar(&planes)?;
    Ok(m.finish()?.integrated_lufs)
}

/// [`excerpt_audio`]'s rendered and decoded true peaks of the core, then their integrated
/// loudness.
fn measure_excerpt(
    program: &dyn FrameSource,
    plan: &MasterPlan,
    core: &Range<u64>,
    format: &OutputFormat,
    scratch: &Path,
    cancel: &CancelToken,
) -> Result<[f64; 4]> {
    let (rendered, decoded, at) = excerpt_audio(program, plan, core, format, scratch, cancel)?;
    Ok([
        core_true_peak(rendered.planes(), at.clone()),
        core_true_peak(decoded.planes(), at.clone()),
        core_loudness(&rendered, at.clone())?,
        core_loudness(&decoded, at)?,
    ])
}

/// The loudness the codec adds (negative: takes), LU: the excerpts' summed K-weighted energy
/// (from their integrated loudness) decoded against rendered, over the excerpts where both are
/// measurable; 0 when none is; at most ±1 LU.
pub(crate) fn loudness_shift(excerpts: &[ExcerptMeasurement]) -> f64 {
    let (mut r, mut d) = (0.0f64, 0.0f64);
    for e in excerpts.iter().filter(|e| e.rendered_lufs.is_finite() && e.decoded_lufs.is_finite()) {
        r += db_to_power(e.rendered_lufs);
        d += db_to_power(e.decoded_lufs);
    }
    if r > 0.0 && d > 0.0 { power_to_db(d / r).clamp(-1.0, 1.0) } else { 0.0 }
}

/// The scratch files of the two threads that encode excerpts: `scratch` and a sibling.
pub(crate) fn scratch_files(scratch: &Path) -> [PathBuf; 2] {
    let mut second = scratch.as_os_str().to_owned();
    second.push("-2");
    [scratch.to_path_buf(), PathBuf::from(second)]
}

/// Encodes and decodes the excerpts with `plan`, half of them on a second thread when the
/// machine has two cores (each thread its own scratch file, [`scratch_files`]); returns their
/// measurements in order.
fn measure_excerpts(
    program: &dyn FrameSource,
    plan: &MasterPlan,
    cores: &[(Range<u64>, bool)],
    format: &OutputFormat,
    scratch: &Path,
    cancel: &CancelToken,
) -> Result<Vec<ExcerptMeasurement>> {
    let rate = program.sample_rate();
    // One thread's share, encoded through its own scratch file.
    let run = |cores: &[(Range<u64>, bool)], scratch: &Path| -> Result<Vec<ExcerptMeasurement>> {
        cores
            .iter()
            .map(|(core, peak)| {
                cancel.check()?;
                let [rendered, decoded, rendered_lufs, decoded_lufs] =
                    measure_excerpt(program, plan, core, format, scratch, cancel)?;
                Ok(ExcerptMeasurement {
                    start_ms: frames_to_ms(core.start, rate),
                    duration_ms: frames_to_ms(core.end - core.start, rate),
                    peak: *peak,
                    rendered_true_peak_dbtp: rendered,
                    decoded_true_peak_dbtp: decoded,
                    rendered_lufs,
                    decoded_lufs,
                })
            })
            .collect()
    };
    let [first, second] = scratch_files(scratch);
    if crate::par::threads() < 2 || cores.len() < 2 {
        return run(cores, &first);
    }
    let (a, b) = cores.split_at(cores.len() / 2);
    let (ra, rb) = crate::par::join(|| run(a, &first), || run(b, &second));
    let mut out = ra?;
    out.extend(rb?);
    Ok(out)
}

/// The plan the one full encode renders with: `plan` (the master stage's, at the goal
/// ceiling) with the limiter's ceiling lowered by the codec overshoot the excerpts measure,
/// and the gain re-planned (from `measurement`) for the lower ceiling. `scratch` is a file
/// path the excerpts are encoded to (removed afterwards).
///
/// # Errors
///
/// Any error of rendering, encoding, decoding or planning; [`crate::Error::Cancelled`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_for_codec(
    program: &dyn FrameSource,
    plan: &MasterPlan,
    measurement: &mut dyn FnMut() -> Result<MixMeasurement>,
    options: &MasterOptions,
    format: &OutputFormat,
    scratch: &Path,
    cancel: &CancelToken,
) -> Result<(MasterPlan, CodecPrediction)> {
    let goal = plan.ceiling_dbtp;
    // The master stage's plan: its measured pass calibrates the limiter model for every
    // re-plan, so the rounds in between re-plan on the model alone and only the plan that
    // is kept gets a measured pass.
    let calibration = plan;
    let mut plan = plan.clone();
    let mut m: Option<MixMeasurement> = None;
    let mut rounds = 0;
    let mut replanned = false;
    loop {
        if !plan.input_lufs.is_finite() {
            // Silence: nothing to limit, nothing for the codec to push over.
            let p = CodecPrediction {
                rounds,
                excerpts: Vec::new(),
                predicted_true_peak_dbtp: f64::NEG_INFINITY,
                codec_overshoot_db: 0.0,
                loudness_shift_lu: 0.0,
                limiter_ceiling_dbtp: plan.ceiling_dbtp,
                gain_db: plan.gain_db,
            };
            return Ok((plan, p));
        }
        let measured = match &m {
            Some(m) => m,
            None => m.insert(measurement()?),
        };
        // Windows whose peak, after the gain, reaches the limiter's level (within 1 dB).
        let limited = ceiling_target(plan.ceiling_dbtp) / db_to_gain(plan.gain_db + 1.0) as f32;
        let rate = program.sample_rate().get();
        let (cores, population) = pick_excerpts(measured, rate, limited, &Layout::DEFAULT);
        let excerpts = measure_excerpts(program, &plan, &cores, format, scratch, cancel)?;
        rounds += 1;
        let (worst, overshoot) = predict_peak(&excerpts, population, plan.ceiling_dbtp);
        let shift = loudness_shift(&excerpts);
        let mut prediction = CodecPrediction {
            rounds,
            excerpts,
            predicted_true_peak_dbtp: worst,
            codec_overshoot_db: overshoot,
            loudness_shift_lu: shift,
            limiter_ceiling_dbtp: plan.ceiling_dbtp,
            gain_db: plan.gain_db,
        };
        // Done when the decoded peaks keep the margin, or nothing more can be done. The gain
        // then makes up for the loudness the codec takes (a small step: the limiter keeps the
        // peaks where they were).
        if worst <= goal - MARGIN_DB / 2.0 || rounds >= MAX_ROUNDS {
            if replanned {
                // A re-plan on the model: measure the gain it chose (usually one pass).
                let opts = MasterOptions {
                    target_lufs: Some(plan.target_lufs),
                    ceiling_dbtp: Some(plan.ceiling_dbtp),
                    ..options.clone()
                };
                let measured = m.as_ref().expect("measured above");
                let ro = RenderOptions::default();
                plan = plan_master_from(
                    program,
                    measured,
                    &opts,
                    &ro,
                    cancel,
                    &mut |_| {},
                    Some(calibration),
                    true,
                )?;
            }
            plan.gain_db -= shift;
            prediction.gain_db = plan.gain_db;
            return Ok((plan, prediction));
        }
        let lower = worst - (goal - MARGIN_DB);
        let ceiling = (plan.ceiling_dbtp - lower).max(goal - 12.0).max(-60.0);
        let opts = MasterOptions {
            target_lufs: Some(plan.target_lufs),
            ceiling_dbtp: Some(ceiling),
            ..options.clone()
        };
        let measured = m.as_ref().expect("measured above");
        let ro = RenderOptions::default();
        plan = plan_master_from(
            program,
            measured,
            &opts,
            &ro,
            cancel,
            &mut |_| {},
            Some(calibration),
            false,
        )?;
        replanned = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::measure_mix;
    use crate::synth;
    use std::num::NonZeroU32;

    #[test]
    fn the_expected_overshoot_grows_with_the_unsampled_population() {
        let sampled = [0.5, 1.0, 1.5];
        // Every limited moment sampled: the largest seen.
        assert_eq!(expected_overshoot(&sampled, 3), 1.5);
        // 100 moments: mean 1.0 + sd 0.5 * sqrt(2 ln 100) = 1.0 + 0.5 * 3.0349 = 2.5174.
        assert!((expected_overshoot(&sampled, 100) - 2.517_427).abs() < 1e-5);
        // Too few samples for a spread: the largest seen.
        assert_eq!(expected_overshoot(&[0.7], 100), 0.7);
        assert_eq!(expected_overshoot(&[], 100), 0.0);
    }

    #[test]
    fn the_loudness_shift_is_the_energy_ratio_over_measurable_excerpts() {
        let e = |r: f64, d: f64| ExcerptMeasurement {
            start_ms: 0,
            duration_ms: 1000,
            peak: true,
            rendered_true_peak_dbtp: -1.0,
            decoded_true_peak_dbtp: -0.5,
            rendered_lufs: r,
            decoded_lufs: d,
        };
        // Energies 10^-1.6 + 10^-2.0 rendered, 10^-1.61 + 10^-2.02 decoded; the silent
        // excerpt does not count.
        let ex = [e(-16.0, -16.1), e(-20.0, -20.2), e(f64::NEG_INFINITY, f64::NEG_INFINITY)];
        let want =
            10.0 * ((10f64.powf(-1.61) + 10f64.powf(-2.02)) / (10f64.powf(-1.6) + 0.01)).log10();
        assert!((loudness_shift(&ex) - want).abs() < 1e-12, "{} vs {want}", loudness_shift(&ex));
        assert!(want < -0.1 && want > -0.2);
        assert_eq!(loudness_shift(&ex[2..]), 0.0);
        assert_eq!(loudness_shift(&[e(-16.0, -19.0)]), -1.0); // capped
    }

    #[test]
    fn window_reads_its_part_and_zeros_past_it() {
        let rate = NonZeroU32::new(8000).unwrap();
        let src = AudioBuffer::mono(rate, (0..100).map(|i| i as f32).collect());
        let w = Window { src: &src, range: 90..95 };
        let mut out = vec![9.0f32; 4];
        w.read(2, &mut [out.as_mut_slice()]);
        assert_eq!(out, [92.0, 93.0, 94.0, 0.0]);
        assert_eq!(w.frames(), 5);
    }

    #[test]
    fn excerpts_are_the_loudest_moments_apart_plus_typical_ones() {
        let rate = NonZeroU32::new(8000).unwrap();
        // 60 s of quiet noise with three loud clicks at 10 s, 10.5 s (too close: excerpts are
        // 1 s, at least 1 s apart) and 40 s.
        let mut x = synth::white_noise(1, 0.01, 8000 * 60);
        for (at, amp) in [(80_000, 0.9), (84_000, 0.8), (320_000, 0.7)] {
            x[at] = amp;
        }
        let m = measure_mix(
            &AudioBuffer::mono(rate, x),
            &RenderOptions::default(),
            &CancelToken::new(),
            &mut |_| {},
        )
        .unwrap();
        // No window limited (an unreachable level): the loudest windows.
        let (picked, population) = pick_excerpts(&m, 8000, f32::INFINITY, &Layout::DEFAULT);
        assert_eq!(population, 0);
        let peaks: Vec<&Range<u64>> = picked.iter().filter(|p| p.1).map(|p| &p.0).collect();
        // The first two: around 10 s and around 40 s (the click at 10.5 s is too close).
        assert!(peaks[0].contains(&80_000), "{peaks:?}");
        assert!(peaks[1].contains(&320_000), "{peaks:?}");
        assert!(peaks.iter().skip(2).all(|r| !r.contains(&84_000)));
        for (r, _) in &picked {
            assert_eq!(r.end - r.start, 8_000);
        }
        // Every excerpt is at least one excerpt length away from every other.
        for (i, (a, _)) in picked.iter().enumerate() {
            for (b, _) in &picked[i + 1..] {
                assert!(a.end + 8_000 <= b.start || b.end + 8_000 <= a.start, "{a:?} {b:?}");
            }
        }
        // 60 s holds at most 30 excerpts of 1 s a second apart.
        assert!((20..=30).contains(&peaks.len()), "{}", peaks.len());
        assert!(picked.len() - peaks.len() <= TYPICAL_EXCERPTS);
    }
}

/// Frames per window in which [`decoded_overs`] reports the true peak.
const OVER_WINDOW: u64 = 2048;
/// A repair dip reaches this far on each side of a window that went over, seconds: an MP3
/// frame's reach (1152 samples and the MDCT overlap) with room to spare.
const DIP_PAD_S: f64 = 0.05;

/// A window of a decoded file whose true peak is above some level.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Over {
    /// Frames `[start, end)` on the file's timeline.
    pub(crate) frames: Range<u64>,
    /// Its true peak, dBTP.
    pub(crate) true_peak_dbtp: f64,
}

/// Decodes `path` and lists the windows of [`OVER_WINDOW`] frames whose 4× true peak is
/// above `floor_dbtp`. Only the blocks that can reach the floor are interpolated.
pub(crate) fn decoded_overs(
    path: &Path,
    floor_dbtp: f64,
    cancel: &CancelToken,
) -> Result<Vec<Over>> {
    let floor = db_to_gain(floor_dbtp) as f32;
    let mut scanner: Option<TruePeakScanner> = None;
    let mut overs = Vec::new();
    let mut at = 0u64; // frames fed so far
    let mut window_start = 0u64;
    let close = |scanner: &mut TruePeakScanner, start: u64, end: u64, overs: &mut Vec<Over>| {
        let peak = scanner.restart(floor);
        if peak > floor {
            overs.push(Over { frames: start..end, true_peak_dbtp: gain_to_db(f64::from(peak)) });
        }
    };
    decode_file_streaming(path, &DecodeOptions::default(), cancel, &mut |_, planes| {
        let s = scanner.get_or_insert_with(|| {
            let mut s = TruePeakScanner::new(planes.len());
            s.restart(floor);
            s
        });
        let n = planes.first().map_or(0, |p| p.len());
        let mut i = 0usize;
        while i < n {
            let take = ((window_start + OVER_WINDOW - at) as usize).min(n - i);
            let piece: Vec<&[f32]> = planes.iter().map(|p| &p[i..i + take]).collect();
            s.add(&piece);
            i += take;
            at += take as u64;
            if at == window_start + OVER_WINDOW {
                close(s, window_start, at, &mut overs);
                window_start = at;
            }
        }
        Ok(())
    })?;
    if let Some(s) = scanner.as_mut()
        && at > window_start
    {
        close(s, window_start, at, &mut overs);
    }
    Ok(overs)
}

/// How a local repair lowers the ceiling after a decoded true peak `over_db` above the goal.
pub(crate) struct RepairRule {
    /// The goal ceiling, dBTP.
    pub(crate) ceiling_dbtp: f64,
    /// How far the worst window went over it, dB (> 0).
    pub(crate) over_db: f64,
    /// Extra lowering beyond that, dB (`verify.peak_step_db`).
    pub(crate) step_db: f64,
}

impl RepairRule {
    /// How much the ceiling is lowered where it is lowered, dB.
    pub(crate) fn lowering_db(&self) -> f64 {
        self.over_db + self.step_db
    }

    /// The decoded level above which a window is repaired (within a lowering of the goal:
    /// once its stretch is encoded again, its overshoot may grow by that much).
    pub(crate) fn floor_dbtp(&self) -> f64 {
        self.ceiling_dbtp - self.lowering_db()
    }
}

/// The ceiling dips that repair the decoded `windows` (those above [`RepairRule::floor_dbtp`])
/// of a file rendered with `plan`. The stretches the encoder encodes independently
/// (`stretches`) that hold a window over the goal will be encoded again, which changes the
/// codec's overshoot everywhere in them; so every window above the floor in those stretches
/// (padded by [`DIP_PAD_S`]) gets the ceiling it was rendered with, lowered by
/// [`RepairRule::lowering_db`]. Dips already in `plan` are kept; the result is sorted and
/// merged (overlapping stretches join, at the lower ceiling).
pub(crate) fn repair_dips(
    plan: &MasterPlan,
    windows: &[Over],
    rule: &RepairRule,
    stretches: &[Range<u64>],
    rate: std::num::NonZeroU32,
) -> Vec<CeilingDip> {
    let frames = stretches.last().map_or(0, |s| s.end);
    let pad = (DIP_PAD_S * f64::from(rate.get())) as u64;
    let hits = |a: &Range<u64>, b: &Range<u64>| a.start < b.end && b.start < a.end;
    let hot: Vec<&Range<u64>> = stretches
        .iter()
        .filter(|s| {
            windows.iter().any(|w| w.true_peak_dbtp > rule.ceiling_dbtp && hits(s, &w.frames))
        })
        .collect();
    let rendered_ceiling = |r: &Range<u64>| {
        plan.ceiling_dips
            .iter()
            .filter(|d| hits(r, &(d.start_frame..d.end_frame)))
            .map(|d| d.ceiling_dbtp)
            .fold(plan.ceiling_dbtp, f64::min)
    };
    let mut dips: Vec<CeilingDip> = plan.ceiling_dips.clone();
    for w in windows.iter().filter(|w| hot.iter().any(|s| hits(s, &w.frames))) {
        let r = w.frames.start.saturating_sub(pad)..(w.frames.end + pad).min(frames.max(1));
        let ceiling = (rendered_ceiling(&r) - rule.lowering_db()).max(-60.0);
        dips.push(CeilingDip { start_frame: r.start, end_frame: r.end, ceiling_dbtp: ceiling });
    }
    dips.sort_by_key(|d| (d.start_frame, d.end_frame));
    let mut merged: Vec<CeilingDip> = Vec::with_capacity(dips.len());
    for d in dips {
        match merged.last_mut() {
            Some(m) if d.start_frame <= m.end_frame => {
                m.end_frame = m.end_frame.max(d.end_frame);
                m.ceiling_dbtp = m.ceiling_dbtp.min(d.ceiling_dbtp);
            }
            _ => merged.push(d),
        }
    }
    merged
}

#[cfg(test)]
mod study;
