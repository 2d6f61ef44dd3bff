//! Cleaning the content before it is measured, leveled and edited: RNNoise noise reduction
//! ([`denoise`](super::denoise)) at its 48 kHz, driven segment by segment over the whole
//! content on both cores.
//!
//! **When.** [`NoiseOptions::decide`] reads the speech activity map of the raw content: its
//! speech level (the 90th percentile of the 10 ms levels above the floor) minus its noise
//! floor (the 5th percentile of all levels) is the speech-to-noise ratio. `auto` engages when
//! that is below [`NoiseOptions::auto_below_snr_db`] (default 35 dB: a fan or hiss 35 dB under
//! the speech is lifted to audible by loudness normalisation); `on` always, `off` never.
//!
//! **How.** The content is cut into fixed [`SEGMENT_S`]-second segments (the cut depends only
//! on its length). Each segment is read with [`WARM_S`] of audio before it and a short pad
//! after, converted to 48 kHz (`load::resample`, time-aligned), denoised by a fresh RNNoise
//! state from the first sample of that window, converted back, and its own frames kept: the
//! warm-up settles the recurrent state, the pad keeps the resampler's edges out of the kept
//! frames. Two threads take a segment each; segments are appended in order. So the result
//! does not depend on the thread count (tested: identical samples), the length is kept to the
//! frame, and memory is a few segments, not the content.
//!
//! Measured in the tests below (44.1 kHz content, through this driver): speech-like words at
//! −20 dBFS plus pink noise at −45 dBFS: the pauses drop by more than 20 dB, the words'
//! loudness moves by less than 1 LU.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use super::activity::ActivityMap;
use super::denoise::{RATE_HZ, denoise_whole};
use super::hum::{Hum, HumFilter};
use crate::compact::CompactAudio;
use crate::error::{Error, Result};
use crate::source::{FrameSource, read_window};
use crate::{AudioBuffer, CancelToken};

/// Seconds per independently cleaned segment.
pub const SEGMENT_S: u32 = 30;
/// Seconds each segment's state runs over before the segment.
pub const WARM_S: u32 = 1;

/// Whether a cleaning step runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanMode {
    /// Only when the content needs it (measured; see each step's options).
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl CleanMode {
    /// Parses `auto`, `on`, `off` (or a JSON-style boolean: `true` is `on`, `false` `off`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `field`.
    pub fn parse(field: &str, v: &serde_json::Value) -> Result<Self> {
        match v {
            serde_json::Value::Bool(true) => Ok(Self::On),
            serde_json::Value::Bool(false) => Ok(Self::Off),
            serde_json::Value::String(s) => match s.as_str() {
                "auto" => Ok(Self::Auto),
                "on" => Ok(Self::On),
                "off" => Ok(Self::Off),
                _ => {
                    Err(Error::invalid_input(field, format!("expected auto, on or off, got {s:?}")))
                }
            },
            _ => {
                Err(Error::invalid_input(field, "expected \"auto\", \"on\", \"off\" or a boolean"))
            }
        }
    }
}

/// Noise-reduction settings (the spec's `cleanup.noise`).
///
/// ```
/// use assembly_core::analyze::clean::{CleanMode, NoiseOptions};
/// let o: NoiseOptions = serde_json::from_str(r#"{"strength": 0.8}"#).unwrap();
/// assert_eq!(o.mode, CleanMode::Auto);
/// assert_eq!(o.auto_below_snr_db, 35.0);
/// assert!(NoiseOptions { strength: 1.5, ..o }.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoiseOptions {
    /// `auto` (default), `on` or `off`.
    pub mode: CleanMode,
    /// 0..=1: how much of the denoised signal replaces the original (1 = all of it).
    /// Default: `1`.
    pub strength: f64,
    /// `auto` engages when the speech-to-noise ratio is below this, dB (0..=100). Default:
    /// `35`.
    pub auto_below_snr_db: f64,
}

impl Default for NoiseOptions {
    fn default() -> Self {
        Self { mode: CleanMode::Auto, strength: 1.0, auto_below_snr_db: 35.0 }
    }
}

/// What noise reduction found and did (the report's `cleaning.noise`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseReport {
    /// The mode asked for.
    pub mode: CleanMode,
    /// Whether the content was denoised.
    pub engaged: bool,
    /// Speech level of the raw content, dBFS (activity map: 90th percentile of the 10 ms
    /// levels above the floor).
    pub speech_level_db: f64,
    /// Noise floor of the raw content, dBFS (5th percentile of the 10 ms levels).
    pub noise_floor_db: f64,
    /// `speech_level_db − noise_floor_db`.
    pub speech_to_noise_db: f64,
    /// Noise floor of the cleaned content, measured the same way (`None` when not engaged).
    pub noise_floor_after_db: Option<f64>,
    /// The strength applied (0 when not engaged).
    pub strength: f64,
}

impl NoiseOptions {
    /// Checks the ranges.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `noise.<field>`.
    pub fn validate(&self) -> Result<()> {
        if !(self.strength.is_finite() && (0.0..=1.0).contains(&self.strength)) {
            return Err(Error::invalid_input(
                "noise.strength",
                format!("must be in 0..=1, got {}", self.strength),
            ));
        }
        let t = self.auto_below_snr_db;
        if !(t.is_finite() && (0.0..=100.0).contains(&t)) {
            return Err(Error::invalid_input(
                "noise.auto_below_snr_db",
                format!("must be in 0..=100, got {t}"),
            ));
        }
        Ok(())
    }

    /// Decides from the raw content's activity map whether to denoise (see the module docs).
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use assembly_core::analyze::activity::{ActivityMap, ActivityOptions};
    /// use assembly_core::analyze::clean::NoiseOptions;
    /// use assembly_core::synth;
    /// let r = NonZeroU32::new(16_000).unwrap();
    /// let s = synth::spoken_words(r, 1, 20.0, -20.0, -80.0, 0.0, 0.0);
    /// let map = ActivityMap::analyze(&synth::mono(r, s.samples), &ActivityOptions::default()).unwrap();
    /// let d = NoiseOptions::default().decide(&map);
    /// assert!(!d.engaged && d.speech_to_noise_db > 35.0);
    /// ```
    pub fn decide(&self, map: &ActivityMap) -> NoiseReport {
        let speech = map.speech_level_db();
        let floor = map.noise_floor_db();
        let snr = speech - floor;
        let engaged = self.strength > 0.0
            && match self.mode {
                CleanMode::On => true,
                CleanMode::Off => false,
                // Digital silence and nothing above the floor say nothing about noise.
                CleanMode::Auto => map.frames() > 0 && snr < self.auto_below_snr_db,
            };
        NoiseReport {
            mode: self.mode,
            engaged,
            speech_level_db: speech,
            noise_floor_db: floor,
            speech_to_noise_db: snr,
            noise_floor_after_db: None,
            strength: if engaged { self.strength } else { 0.0 },
        }
    }
}

/// Hum-removal settings (the spec's `cleanup.hum`).
///
/// ```
/// use assembly_core::analyze::clean::{CleanMode, HumOptions};
/// let o: HumOptions = serde_json::from_str(r#"{"mode": "off"}"#).unwrap();
/// assert_eq!(o.mode, CleanMode::Off);
/// assert_eq!(HumOptions::default().mode, CleanMode::Auto);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HumOptions {
    /// `auto` (default): remove mains hum when detection finds harmonics 10 dB over their
    /// local floor ([`hum::PROMINENCE_DB`](super::hum::PROMINENCE_DB)); `on`: also weaker hum,
    /// 6 dB over ([`hum::ON_PROMINENCE_DB`](super::hum::ON_PROMINENCE_DB)); `off`: never.
    pub mode: CleanMode,
}

/// What hum removal found and did (the report's `cleaning.hum`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HumReport {
    /// The mode asked for.
    pub mode: CleanMode,
    /// Whether hum was removed (it was detected and the mode is not `off`).
    pub engaged: bool,
    /// The detected hum: fundamental and every notched harmonic with its level and
    /// prominence (`None`: none detected).
    pub hum: Option<Hum>,
}

/// What cleaning found and did (the report's `cleaning`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CleaningReport {
    /// Noise reduction: the measured speech-to-noise ratio and whether it engaged (`None`
    /// when the speech activity was not analyzed: noise reduction and hum removal `off` and
    /// nothing else needed it).
    pub noise: Option<NoiseReport>,
    /// Hum removal: what was detected and whether it was removed (`None` when `off` or the
    /// speech activity was not analyzed).
    pub hum: Option<HumReport>,
}

impl CleaningReport {
    /// The cleaning these findings call for ([`CleanPlan::is_empty`] when none).
    pub fn plan(&self) -> CleanPlan {
        CleanPlan {
            noise_strength: self.noise.as_ref().filter(|n| n.engaged).map(|n| n.strength as f32),
            hum: self.hum.as_ref().filter(|h| h.engaged).and_then(|h| h.hum.clone()),
        }
    }
}

/// What [`clean`] does to each segment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CleanPlan {
    /// Denoise at this strength (0..=1); `None` leaves the noise alone.
    pub noise_strength: Option<f32>,
    /// Notch out this hum (before denoising); `None` leaves it.
    pub hum: Option<Hum>,
}

impl CleanPlan {
    /// Whether the plan changes anything.
    pub fn is_empty(&self) -> bool {
        self.noise_strength.is_none() && self.hum.is_none()
    }
}

/// What [`clean`] returns.
#[derive(Debug)]
pub struct Cleaned {
    /// The cleaned content, as long as the input, on the same grid.
    pub audio: CompactAudio,
    /// Its noise floor, dBFS: the 5th percentile of its `hop`-frame levels (as the activity
    /// map measures the raw content's).
    pub noise_floor_db: f64,
}

/// Cleans `content` per `plan` (see the module docs) into compact audio on a grid of `bits`
/// bits, on up to `threads` threads, measuring the result's levels on `hop`-frame windows.
/// `progress` gets the fraction done.
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::CancelToken;
/// use assembly_core::analyze::clean::{CleanPlan, clean};
/// use assembly_core::{CompactAudio, FrameSource, synth};
/// let r = NonZeroU32::new(44_100).unwrap();
/// let noisy = synth::mono(r, synth::pink_noise(1, -45.0, 44_100 * 3));
/// let content = CompactAudio::from_buffer(&noisy, 16).unwrap();
/// let plan = CleanPlan { noise_strength: Some(1.0), hum: None };
/// let c = clean(&content, &plan, 16, 441, 2, &CancelToken::new(), &mut |_| {}).unwrap();
/// assert_eq!(c.audio.frames(), content.frames());
/// assert!(c.noise_floor_db < -50.0);
/// ```
///
/// # Errors
///
/// [`Error::InvalidInput`] for a strength outside 0..=1 or `bits` outside 8..=24;
/// [`Error::Cancelled`].
pub fn clean(
    content: &dyn FrameSource,
    plan: &CleanPlan,
    bits: u32,
    hop: usize,
    threads: usize,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<Cleaned> {
    if let Some(s) = plan.noise_strength.filter(|s| !(0.0..=1.0).contains(s)) {
        return Err(Error::invalid_input("noise.strength", format!("must be in 0..=1, got {s}")));
    }
    let rate = content.sample_rate();
    let channels = content.channel_count();
    let mut out = CompactAudio::builder(rate, channels, bits)?;
    let frames = content.frames();
    let seg = u64::from(rate.get()) * u64::from(SEGMENT_S);
    let n = frames.div_ceil(seg);
    let mut levels = HopLevels::new(hop.max(1), channels);
    let one = |s: u64| segment(content, s, seg, plan, cancel);
    let mut s = 0;
    while s < n {
        cancel.check()?;
        let (a, b) = if threads >= 2 && s + 1 < n {
            let (a, b) = crate::par::join(|| one(s), || one(s + 1));
            (a?, Some(b?))
        } else {
            (one(s)?, None)
        };
        for planes in std::iter::once(a).chain(b) {
            let refs: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
            levels.push(&refs);
            out.push(&refs)?;
            s += 1;
        }
        progress(s as f64 / n as f64);
    }
    let mut db = levels.finish();
    Ok(Cleaned { audio: out.finish(), noise_floor_db: super::activity::percentile(&mut db, 0.05) })
}

/// Segment `s`'s frames, cleaned: read with the warm-up before and a pad after.
fn segment(
    content: &dyn FrameSource,
    s: u64,
    seg: u64,
    plan: &CleanPlan,
    cancel: &CancelToken,
) -> Result<Vec<Vec<f32>>> {
    let rate = content.sample_rate();
    let r = u64::from(rate.get());
    let start = s * seg;
    let end = (start + seg).min(content.frames());
    // The notches ring longer than RNNoise settles: their warm-up when there is hum.
    let warm = match &plan.hum {
        Some(_) => super::hum::warm_up_frames(rate.get()).max(r * u64::from(WARM_S)),
        None => r * u64::from(WARM_S),
    };
    let from = start.saturating_sub(warm);
    let to = (end + r.div_ceil(10)).min(content.frames());
    let mut window = read_window(content, from, (to - from) as usize);
    let (lead, len) = ((start - from) as usize, (end - start) as usize);
    if let Some(hum) = &plan.hum {
        for plane in &mut window {
            cancel.check()?;
            let mut notches = HumFilter::new(hum, rate.get())?;
            if from == 0 {
                // The content's start has no audio before it to warm up on: the notches are
                // primed on the hum measured in its first half second.
                let head = plane.len().min(warm as usize);
                notches.prime(&plane[..head]);
            }
            notches.process(plane);
        }
    }
    let cleaned = match plan.noise_strength {
        Some(strength) => denoise_at(rate, window, strength, cancel)?,
        None => window,
    };
    Ok(cleaned
        .into_iter()
        .map(|mut p| {
            p.resize(lead + len, 0.0);
            p.drain(..lead);
            p
        })
        .collect())
}

/// Denoises every plane of `planes` at `rate`: through 48 kHz and back when `rate` differs.
fn denoise_at(
    rate: NonZeroU32,
    planes: Vec<Vec<f32>>,
    strength: f32,
    cancel: &CancelToken,
) -> Result<Vec<Vec<f32>>> {
    let rnn = NonZeroU32::new(RATE_HZ).unwrap_or(NonZeroU32::MIN);
    if rate == rnn {
        return planes.iter().map(|p| denoise_whole(p, strength, cancel)).collect();
    }
    let up = crate::load::resample(&AudioBuffer::from_planar(rate, planes)?, rnn, cancel)?;
    let cleaned = up
        .planes()
        .iter()
        .map(|p| denoise_whole(p, strength, cancel))
        .collect::<Result<Vec<_>>>()?;
    let down = crate::load::resample(&AudioBuffer::from_planar(rnn, cleaned)?, rate, cancel)?;
    Ok(down.into_planes())
}

/// Levels of consecutive `hop`-frame windows (all channels), in dBFS, fed in any pieces.
struct HopLevels {
    hop: usize,
    channels: usize,
    sum: f64,
    filled: usize,
    db: Vec<f32>,
}

impl HopLevels {
    fn new(hop: usize, channels: usize) -> Self {
        Self { hop, channels, sum: 0.0, filled: 0, db: Vec::new() }
    }

    fn push(&mut self, planes: &[&[f32]]) {
        let n = planes.first().map_or(0, |p| p.len());
        let mut i = 0;
        while i < n {
            let k = (self.hop - self.filled).min(n - i);
            for p in planes {
                self.sum += p[i..i + k].iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
            }
            self.filled += k;
            i += k;
            if self.filled == self.hop {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        let db = super::activity::power_db(self.sum, self.filled * self.channels);
        self.db.push(db as f32);
        self.sum = 0.0;
        self.filled = 0;
    }

    fn finish(mut self) -> Vec<f32> {
        if self.filled > 0 {
            self.flush();
        }
        self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::activity::ActivityOptions;
    use crate::analyze::loudness::measure;
    use crate::synth;

    const R: u32 = 44_100;

    fn rate() -> NonZeroU32 {
        NonZeroU32::new(R).unwrap()
    }

    use synth::rms_db;

    /// Speech-like words at -20 dBFS plus pink noise at `noise_db`, and the words.
    fn noisy_speech(seconds: f64, noise_db: f64) -> (Vec<f32>, synth::SpokenScript) {
        let s = synth::spoken_words(rate(), 7, seconds, -20.0, f64::NEG_INFINITY, 0.0, 0.0);
        let noise = synth::pink_noise(9, noise_db, s.samples.len());
        (s.samples.iter().zip(&noise).map(|(a, b)| a + b).collect(), s)
    }

    fn read_all(a: &CompactAudio) -> Vec<Vec<f32>> {
        read_window(a, 0, a.frames() as usize)
    }

    #[test]
    fn one_thread_and_two_give_identical_samples_and_the_length_is_kept() {
        // Three segments, the last partial; stereo with different channels.
        let n = R as usize * 75 + 1234;
        let (x, _) = noisy_speech(75.0 + 1234.0 / f64::from(R), -45.0);
        let y: Vec<f32> = x.iter().rev().copied().collect();
        let buf = AudioBuffer::from_planar(rate(), vec![x, y]).unwrap();
        let content = CompactAudio::from_buffer(&buf, 16).unwrap();
        let plan = CleanPlan { noise_strength: Some(1.0), hum: None };
        let c = CancelToken::new();
        let one = clean(&content, &plan, 16, 441, 1, &c, &mut |_| {}).unwrap();
        let two = clean(&content, &plan, 16, 441, 2, &c, &mut |_| {}).unwrap();
        assert_eq!(one.audio.frames(), n as u64);
        assert_eq!(read_all(&one.audio), read_all(&two.audio));
        assert_eq!(one.noise_floor_db, two.noise_floor_db);
    }

    #[test]
    fn an_empty_plan_returns_the_content() {
        let (x, _) = noisy_speech(40.0, -45.0);
        let content = CompactAudio::from_buffer(&synth::mono(rate(), x), 16).unwrap();
        let c =
            clean(&content, &CleanPlan::default(), 16, 441, 2, &CancelToken::new(), &mut |_| {})
                .unwrap();
        assert_eq!(read_all(&c.audio), read_all(&content));
    }

    /// The issue's case, through the driver at 44.1 kHz (48 kHz and back): the pauses drop by
    /// more than 20 dB, the words' loudness moves by less than 1 LU, the measured floor drops
    /// by more than 20 dB.
    #[test]
    fn speech_with_pink_noise_at_44k1_keeps_the_speech_and_loses_the_noise() {
        let (x, s) = noisy_speech(65.0, -45.0);
        let content = CompactAudio::from_buffer(&synth::mono(rate(), x.clone()), 16).unwrap();
        let map = ActivityMap::analyze(&content, &ActivityOptions::default()).unwrap();
        let decision = NoiseOptions::default().decide(&map);
        assert!(decision.engaged, "{decision:?}");
        let plan = CleanPlan { noise_strength: Some(1.0), hum: None };
        let c = clean(&content, &plan, 16, map.hop_frames(), 2, &CancelToken::new(), &mut |_| {})
            .unwrap();
        let d = read_all(&c.audio).remove(0);
        let (pb, wb) = s.pauses_and_words(&x, rate());
        let (pa, wa) = s.pauses_and_words(&d, rate());
        let drop = rms_db(&pb) - rms_db(&pa);
        assert!(drop > 20.0, "noise in the pauses dropped by {drop:.1} dB");
        let lufs = |v: Vec<f32>| measure(&synth::mono(rate(), v)).unwrap().integrated_lufs;
        let (before, after) = (lufs(wb), lufs(wa));
        assert!((before - after).abs() < 1.0, "words {before:.2} -> {after:.2} LUFS");
        let floor_drop = decision.noise_floor_db - c.noise_floor_db;
        eprintln!(
            "pauses -{drop:.1} dB, words {before:.2} -> {after:.2} LUFS, floor -{floor_drop:.1} dB"
        );
        assert!(
            floor_drop > 20.0,
            "floor {:.1} -> {:.1}",
            decision.noise_floor_db,
            c.noise_floor_db
        );
    }

    /// RMS level of `x` through a 2nd-order band-pass (RBJ, constant 0 dB peak gain, Q √2:
    /// an octave wide) centred on `hz`, dBFS.
    fn band_db(x: &[f32], hz: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / f64::from(R);
        let alpha = w.sin() / (2.0 * std::f64::consts::SQRT_2);
        let a0 = 1.0 + alpha;
        let (b0, b2, a1, a2) = (alpha / a0, -alpha / a0, -2.0 * w.cos() / a0, (1.0 - alpha) / a0);
        let (mut x1, mut x2, mut y1, mut y2, mut sum) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &v in x {
            let v = f64::from(v);
            let y = b0 * v + b2 * x2 - a1 * y1 - a2 * y2;
            (x2, x1, y2, y1) = (x1, v, y1, y);
            sum += y * y;
        }
        10.0 * (sum / x.len() as f64).log10()
    }

    /// The speech band's spectrum envelope: the cleaned words' octave-band levels (250 Hz to
    /// 4 kHz) stay within 1 dB of the same words recorded without noise (measured: within
    /// 0.16 dB).
    #[test]
    fn the_speech_spectrum_envelope_is_kept() {
        let (x, s) = noisy_speech(40.0, -45.0);
        let content = CompactAudio::from_buffer(&synth::mono(rate(), x), 16).unwrap();
        let plan = CleanPlan { noise_strength: Some(1.0), hum: None };
        let c = clean(&content, &plan, 16, 441, 2, &CancelToken::new(), &mut |_| {}).unwrap();
        let d = read_all(&c.audio).remove(0);
        let at = |t: f64| (t * f64::from(R)) as usize;
        let (mut clean_words, mut cleaned_words) = (Vec::new(), Vec::new());
        for w in &s.words {
            clean_words.extend_from_slice(&s.samples[at(w.start_s)..at(w.end_s)]);
            cleaned_words.extend_from_slice(&d[at(w.start_s)..at(w.end_s)]);
        }
        let mut worst = 0.0f64;
        for hz in [250.0, 500.0, 1000.0, 2000.0, 4000.0] {
            let diff = band_db(&cleaned_words, hz) - band_db(&clean_words, hz);
            eprintln!("{hz} Hz: {diff:+.2} dB");
            worst = worst.max(diff.abs());
        }
        assert!(worst < 1.0, "octave bands differ by up to {worst:.2} dB");
    }

    fn tone_db(x: &[f32], hz: f64) -> f64 {
        synth::tone_db(x, rate(), hz)
    }

    /// Hum through the segmented driver (65 s: three segments, so two joins, and the primed
    /// start): detected on the recording, then the hum alone is cleaned with that plan (the
    /// notches are linear): every harmonic drops by more than 30 dB over the whole signal,
    /// and one thread and two give the same samples.
    #[test]
    fn hum_is_notched_across_segments_on_any_thread_count() {
        const LEVELS: [f64; 8] = [-40.0, -43.0, -45.0, -47.0, -50.0, -52.0, -53.0, -55.0];
        let s = synth::spoken_words(rate(), 4, 65.0, -20.0, -75.0, 0.0, 300.0);
        let hum = synth::mains_hum(rate(), 60.0, &LEVELS, s.samples.len());
        let x: Vec<f32> = s.samples.iter().zip(&hum).map(|(a, b)| a + b).collect();
        let content = CompactAudio::from_buffer(&synth::mono(rate(), x), 16).unwrap();
        let map = ActivityMap::analyze(&content, &ActivityOptions::default()).unwrap();
        let quiet = map.silent_runs(3 * map.hop_frames() as u64);
        let found = super::super::hum::detect_hum(&content, &quiet, &CancelToken::new())
            .unwrap()
            .expect("hum detected");
        assert!((found.fundamental_hz - 60.0).abs() < 0.05, "{found:?}");
        // Harmonics 1-8 (the 16-bit content may show a faint 9th: it is notched too).
        assert!(found.harmonics.iter().map(|h| h.number).take(8).eq(1..=8), "{found:?}");
        let plan = CleanPlan { noise_strength: None, hum: Some(found.clone()) };
        let hum_only = CompactAudio::from_buffer(&synth::mono(rate(), hum.clone()), 24).unwrap();
        let c = CancelToken::new();
        let one = clean(&hum_only, &plan, 24, 441, 1, &c, &mut |_| {}).unwrap();
        let two = clean(&hum_only, &plan, 24, 441, 2, &c, &mut |_| {}).unwrap();
        let out = read_all(&one.audio).remove(0);
        assert_eq!(read_all(&two.audio)[0], out);
        for h in found.harmonics.iter().take(8) {
            let drop = tone_db(&hum, h.frequency_hz) - tone_db(&out, h.frequency_hz);
            eprintln!("harmonic {} ({:.3} Hz): -{drop:.1} dB", h.number, h.frequency_hz);
            assert!(drop > 30.0, "harmonic {}: {drop:.1} dB", h.number);
        }
    }

    #[test]
    fn auto_engages_on_noise_only() {
        let opts = NoiseOptions::default();
        let map_of = |x: Vec<f32>| {
            ActivityMap::analyze(&synth::mono(rate(), x), &ActivityOptions::default()).unwrap()
        };
        // Clean speech (room tone at -75 dBFS, and digital silence): not engaged.
        for floor in [-75.0, f64::NEG_INFINITY] {
            let s = synth::spoken_words(rate(), 3, 30.0, -20.0, floor, 0.0, 0.0);
            let d = opts.decide(&map_of(s.samples));
            assert!(!d.engaged, "{floor}: {d:?}");
        }
        // Pink noise at -50 and -45 dBFS under the same speech: engaged.
        for noise in [-50.0, -45.0] {
            let (x, _) = noisy_speech(30.0, noise);
            let d = opts.decide(&map_of(x));
            assert!(d.engaged && d.speech_to_noise_db < 35.0, "{noise}: {d:?}");
            assert!((d.noise_floor_db - noise).abs() < 6.0, "{noise}: {d:?}");
        }
        let (x, _) = noisy_speech(30.0, -45.0);
        let map = map_of(x);
        let off = NoiseOptions { mode: CleanMode::Off, ..opts.clone() };
        assert!(!off.decide(&map).engaged);
        let s = synth::spoken_words(rate(), 3, 30.0, -20.0, -75.0, 0.0, 0.0);
        let on = NoiseOptions { mode: CleanMode::On, ..opts };
        assert!(on.decide(&map_of(s.samples)).engaged);
    }

    #[test]
    fn cancelled_promptly_and_bad_strength_named() {
        let content =
            CompactAudio::from_buffer(&synth::mono(rate(), vec![0.0; R as usize * 70]), 16)
                .unwrap();
        let c = CancelToken::new();
        c.cancel();
        let plan = CleanPlan { noise_strength: Some(1.0), hum: None };
        assert!(matches!(
            clean(&content, &plan, 16, 441, 2, &c, &mut |_| {}),
            Err(Error::Cancelled)
        ));
        let bad = CleanPlan { noise_strength: Some(2.0), hum: None };
        let e = clean(&content, &bad, 16, 441, 2, &CancelToken::new(), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("noise.strength"), "{e}");
    }

    #[test]
    fn mode_parses_words_and_booleans() {
        use serde_json::json;
        assert_eq!(CleanMode::parse("f", &json!("auto")).unwrap(), CleanMode::Auto);
        assert_eq!(CleanMode::parse("f", &json!(true)).unwrap(), CleanMode::On);
        assert_eq!(CleanMode::parse("f", &json!(false)).unwrap(), CleanMode::Off);
        let e = CleanMode::parse("noiseReduction", &json!("loud")).unwrap_err();
        assert!(e.to_string().contains("noiseReduction"), "{e}");
    }
}
