//! Deterministic test signals: sines, chirps, noise, bursts, impulses and a speech-like signal.
//!
//! Used by the crate's tests, the benchmarks and the demo material. Every generator is
//! deterministic (noise comes from a seeded xorshift generator), so results are reproducible.

use std::f64::consts::TAU;
use std::num::NonZeroU32;

use crate::AudioBuffer;

/// Converts decibels to a linear amplitude factor.
pub fn db_to_amp(db: f64) -> f64 {
    crate::dsp::db_to_gain(db)
}

/// Converts a linear amplitude factor to decibels (`-inf` for 0).
pub fn amp_to_db(amp: f64) -> f64 {
    crate::dsp::gain_to_db(amp)
}

/// A small, fast, seeded pseudo-random generator (xorshift64*), for reproducible noise.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[-1, 1)`.
    pub fn bipolar(&mut self) -> f64 {
        self.next_f64() * 2.0 - 1.0
    }
}

/// A sine of `freq_hz` at peak amplitude `amp`, `frames` long.
///
/// ```
/// use std::num::NonZeroU32;
/// let s = assembly_core::synth::sine(NonZeroU32::new(48_000).unwrap(), 1000.0, 0.5, 48);
/// assert!((s[12] - 0.5).abs() < 1e-6); // a quarter period of 1 kHz at 48 kHz
/// ```
pub fn sine(rate: NonZeroU32, freq_hz: f64, amp: f64, frames: usize) -> Vec<f32> {
    let w = TAU * freq_hz / f64::from(rate.get());
    (0..frames).map(|i| (amp * (w * i as f64).sin()) as f32).collect()
}

/// A linear chirp from `f0_hz` to `f1_hz` over `frames`, at peak amplitude `amp`.
pub fn chirp(rate: NonZeroU32, f0_hz: f64, f1_hz: f64, amp: f64, frames: usize) -> Vec<f32> {
    let sr = f64::from(rate.get());
    let dur = frames as f64 / sr;
    let k = if dur > 0.0 { (f1_hz - f0_hz) / dur } else { 0.0 };
    (0..frames)
        .map(|i| {
            let t = i as f64 / sr;
            (amp * (TAU * (f0_hz * t + 0.5 * k * t * t)).sin()) as f32
        })
        .collect()
}

/// Uniform white noise with peak amplitude `amp`.
pub fn white_noise(seed: u64, amp: f64, frames: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..frames).map(|_| (amp * rng.bipolar()) as f32).collect()
}

/// `frames` zero samples.
pub fn silence(frames: usize) -> Vec<f32> {
    vec![0.0; frames]
}

/// Zero samples with a unit-height (times `amp`) impulse at each position in `at`.
pub fn impulses(frames: usize, at: &[usize], amp: f32) -> Vec<f32> {
    let mut v = vec![0.0; frames];
    for &i in at {
        if let Some(s) = v.get_mut(i) {
            *s = amp;
        }
    }
    v
}

/// Noise bursts: `burst` frames of noise (peak `amp`) then `gap` frames of silence, repeated.
pub fn noise_bursts(seed: u64, amp: f64, burst: usize, gap: usize, frames: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let period = (burst + gap).max(1);
    (0..frames)
        .map(|i| if i % period < burst { (amp * rng.bipolar()) as f32 } else { 0.0 })
        .collect()
}

/// A speech-like signal: voiced "syllables" (a harmonic series on a wandering pitch, shaped by
/// a smooth envelope, plus a little noise) 80–300 ms long, separated by short gaps, at RMS
/// roughly `level_db` dBFS while active. Reproducible from `seed`.
pub fn speech_like(rate: NonZeroU32, seed: u64, level_db: f64, frames: usize) -> Vec<f32> {
    let sr = f64::from(rate.get());
    let mut rng = Rng::new(seed);
    let mut out = vec![0.0f32; frames];
    let amp = db_to_amp(level_db) * 1.2;
    let mut pos = 0usize;
    let mut phase = 0.0f64;
    while pos < frames {
        let syl = ((0.08 + 0.22 * rng.next_f64()) * sr) as usize;
        let gap = ((0.02 + 0.08 * rng.next_f64()) * sr) as usize;
        let f0 = 100.0 + 120.0 * rng.next_f64();
        let end = (pos + syl).min(frames);
        for (j, s) in out[pos..end].iter_mut().enumerate() {
            let t = j as f64 / syl.max(1) as f64;
            let env = (std::f64::consts::PI * t).sin().powi(2);
            let f = f0 * (1.0 + 0.1 * (TAU * t).sin());
            phase += TAU * f / sr;
            let mut v = 0.0;
            for h in 1..=8 {
                v += (phase * h as f64).sin() / h as f64;
            }
            v += 0.05 * rng.bipolar();
            *s = (amp * env * v * 0.6) as f32;
        }
        pos = end + gap;
    }
    out
}

/// A music-like signal: chords of harmonic tones (three notes, eight harmonics each) that
/// change every 0.4–1.2 s with a soft attack, a kick (decaying 55 Hz sine with a click) on
/// every beat at 120 bpm and a hi-hat (fast-decaying noise) on the off-beats, scaled so the
/// whole has an RMS of roughly `level_db` dBFS. Broadband with real transients; reproducible
/// from `seed`.
pub fn music_like(rate: NonZeroU32, seed: u64, level_db: f64, frames: usize) -> Vec<f32> {
    let sr = f64::from(rate.get());
    let mut rng = Rng::new(seed);
    let mut out = vec![0.0f64; frames];
    let mut pos = 0usize;
    let mut phases = [0.0f64; 3];
    while pos < frames {
        let len = ((0.4 + 0.8 * rng.next_f64()) * sr) as usize;
        let root = 110.0 * 2f64.powf((rng.next_f64() * 12.0).floor() / 12.0);
        let notes = [root, root * 1.259_9, root * 1.498_3];
        let end = (pos + len).min(frames);
        for (j, s) in out[pos..end].iter_mut().enumerate() {
            let env = (j as f64 / (0.02 * sr)).min(1.0) * (-(j as f64) / (0.8 * sr)).exp();
            let mut v = 0.0;
            for (k, f) in notes.iter().enumerate() {
                phases[k] += TAU * f / sr;
                for h in 1..=8 {
                    v += (phases[k] * h as f64).sin() / (h * h) as f64;
                }
            }
            *s += 0.3 * env * v;
        }
        pos = end;
    }
    let beat = (sr * 0.5) as usize;
    for b in (0..frames).step_by(beat.max(1)) {
        for j in 0..(0.25 * sr) as usize {
            let Some(s) = out.get_mut(b + j) else { break };
            let t = j as f64 / sr;
            *s += 0.9 * (-t / 0.06).exp() * (TAU * 55.0 * t).sin();
            if j < 40 {
                *s += 0.5 * (1.0 - j as f64 / 40.0) * rng.bipolar();
            }
        }
        for j in 0..(0.08 * sr) as usize {
            let Some(s) = out.get_mut(b + beat / 2 + j) else { break };
            *s += 0.25 * (-(j as f64) / (0.012 * sr)).exp() * rng.bipolar();
        }
    }
    let rms = (out.iter().map(|v| v * v).sum::<f64>() / frames.max(1) as f64).sqrt();
    let k = if rms > 0.0 { db_to_amp(level_db) / rms } else { 0.0 };
    out.into_iter().map(|v| (v * k) as f32).collect()
}

/// Pink noise (Paul Kellet's filter over white noise), scaled to RMS `db` dBFS: the broadband
/// hiss and fan noise of a home recording.
///
/// ```
/// let p = assembly_core::synth::pink_noise(1, -45.0, 48_000);
/// let rms = (p.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 48_000.0).sqrt();
/// assert!((20.0 * rms.log10() + 45.0).abs() < 1e-3);
/// ```
pub fn pink_noise(seed: u64, db: f64, frames: usize) -> Vec<f32> {
    let w = white_noise(seed, 1.0, frames);
    let (mut b0, mut b1, mut b2) = (0.0f64, 0.0f64, 0.0f64);
    let p: Vec<f64> = w
        .iter()
        .map(|&x| {
            let x = f64::from(x);
            b0 = 0.99765 * b0 + x * 0.099_046_0;
            b1 = 0.96300 * b1 + x * 0.296_516_4;
            b2 = 0.57000 * b2 + x * 1.052_691_3;
            b0 + b1 + b2 + x * 0.1848
        })
        .collect();
    let rms = (p.iter().map(|v| v * v).sum::<f64>() / frames.max(1) as f64).sqrt();
    let k = if rms > 0.0 { db_to_amp(db) / rms } else { 0.0 };
    p.into_iter().map(|v| (v * k) as f32).collect()
}

/// Mains hum: harmonics `k · f0_hz` for k = 1, 2, … at `levels_db[k − 1]` dBFS RMS each,
/// phases spread (`0.7 k` rad).
///
/// ```
/// use std::num::NonZeroU32;
/// let h = assembly_core::synth::mains_hum(NonZeroU32::new(48_000).unwrap(), 50.0, &[-40.0], 48_000);
/// let rms = (h.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 48_000.0).sqrt();
/// assert!((20.0 * rms.log10() + 40.0).abs() < 1e-3);
/// ```
pub fn mains_hum(rate: NonZeroU32, f0_hz: f64, levels_db: &[f64], frames: usize) -> Vec<f32> {
    let tau = std::f64::consts::TAU;
    (0..frames)
        .map(|i| {
            let t = i as f64 / f64::from(rate.get());
            levels_db
                .iter()
                .enumerate()
                .map(|(j, &l)| {
                    let k = (j + 1) as f64;
                    2f64.sqrt() * db_to_amp(l) * (tau * k * f0_hz * t + 0.7 * k).sin()
                })
                .sum::<f64>() as f32
        })
        .collect()
}

/// Level of `x` as 10·log10 of its mean square, dBFS (`-inf` for silence).
///
/// ```
/// let x = assembly_core::synth::white_noise(1, 0.1, 48_000);
/// assert!((assembly_core::synth::rms_db(&x) - (-24.77)).abs() < 0.1); // 0.1/√3 RMS
/// ```
pub fn rms_db(x: &[f32]) -> f64 {
    let p = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64;
    10.0 * p.log10()
}

/// Level of the component of `x` at `hz` (one DFT bin over all of `x`), dB: a sine of
/// amplitude `a` reads 20·log10(a / 2).
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::synth;
/// let r = NonZeroU32::new(48_000).unwrap();
/// let x = synth::sine(r, 50.0, 0.5, 48_000);
/// assert!((synth::tone_db(&x, r, 50.0) - 20.0 * 0.25f64.log10()).abs() < 1e-3);
/// ```
pub fn tone_db(x: &[f32], rate: NonZeroU32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate.get());
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        re += f64::from(v) * (w * i as f64).cos();
        im += f64::from(v) * (w * i as f64).sin();
    }
    20.0 * ((re * re + im * im).sqrt() / x.len() as f64).log10()
}

/// Wraps mono samples as a buffer at `rate`.
pub fn mono(rate: NonZeroU32, samples: Vec<f32>) -> AudioBuffer {
    AudioBuffer::mono(rate, samples)
}

/// Duplicates mono samples into `channels` identical channels (at least 1).
pub fn multi(rate: NonZeroU32, samples: Vec<f32>, channels: usize) -> AudioBuffer {
    let planes = vec![samples; channels.max(1)];
    AudioBuffer::from_planar(rate, planes).expect("non-empty, equal-length planes")
}

/// One word of a synthetic transcript: its text and times in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct SpokenWord {
    /// The token, with punctuation (`"Uh,"`, `"today."`).
    pub text: String,
    /// Start, in seconds.
    pub start_s: f64,
    /// End, in seconds.
    pub end_s: f64,
}

/// What [`spoken_words`] generates: speech-like audio and the words that "say" it.
#[derive(Clone, Debug, PartialEq)]
pub struct SpokenScript {
    /// Mono samples.
    pub samples: Vec<f32>,
    /// The words, in order, non-overlapping.
    pub words: Vec<SpokenWord>,
    /// How many of the words are fillers (`um`, `uh`).
    pub fillers: usize,
    /// How many gaps are long pauses (1.8–4 s).
    pub long_pauses: usize,
}

impl SpokenScript {
    /// Cuts `x` (audio on this script's timeline at `rate`) into its pauses and its words,
    /// each concatenated: the gaps longer than 150 ms between consecutive words, less 30 ms at
    /// each side (word tails and onsets stay out), and every word but the last. How noise
    /// measurements tell the floor in the pauses from the speech.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// let r = NonZeroU32::new(16_000).unwrap();
    /// let s = assembly_core::synth::spoken_words(r, 1, 20.0, -20.0, -60.0, 0.0, 0.0);
    /// let (pauses, words) = s.pauses_and_words(&s.samples, r);
    /// let (p, w) = (assembly_core::synth::rms_db(&pauses), assembly_core::synth::rms_db(&words));
    /// assert!((p + 60.0).abs() < 1.0 && w > -25.0);
    /// ```
    pub fn pauses_and_words(&self, x: &[f32], rate: NonZeroU32) -> (Vec<f32>, Vec<f32>) {
        let at = |t: f64| (t * f64::from(rate.get())) as usize;
        let (mut pauses, mut words) = (Vec::new(), Vec::new());
        for w in self.words.windows(2) {
            let (end, next) = (at(w[0].end_s), at(w[1].start_s));
            if next > end + at(0.15) {
                pauses.extend_from_slice(&x[end + at(0.03)..next - at(0.03)]);
            }
            words.extend_from_slice(&x[at(w[0].start_s)..end]);
        }
        (pauses, words)
    }
}

/// Deterministic word-timed speech: `duration_s` seconds at about 150 words per minute (with
/// the pauses), each
/// word a voiced burst (a harmonic series on a per-word pitch, 10 ms raised-cosine attack and
/// release, a little noise) at RMS roughly `level_db` dBFS, separated by short gaps, sentence
/// breaks, `fillers_per_hour` fillers (`"um"`, `"Uh,"`) and `long_pauses_per_hour` long
/// pauses, over a noise floor at `noise_db` dBFS (RMS; `f64::NEG_INFINITY` for digital
/// silence). The transcript times match the bursts exactly.
///
/// ```
/// use std::num::NonZeroU32;
/// let s = assembly_core::synth::spoken_words(NonZeroU32::new(16_000).unwrap(), 1, 60.0, -20.0, -60.0, 200.0, 100.0);
/// assert!(s.words.len() > 125 && s.words.len() < 175);
/// assert_eq!(s.samples.len(), 16_000 * 60);
/// ```
pub fn spoken_words(
    rate: NonZeroU32,
    seed: u64,
    duration_s: f64,
    level_db: f64,
    noise_db: f64,
    fillers_per_hour: f64,
    long_pauses_per_hour: f64,
) -> SpokenScript {
    const VOCAB: [&str; 24] = [
        "the",
        "show",
        "today",
        "we",
        "talk",
        "about",
        "editing",
        "audio",
        "and",
        "people",
        "really",
        "think",
        "that",
        "this",
        "is",
        "a",
        "good",
        "way",
        "to",
        "start",
        "podcast",
        "listeners",
        "music",
        "time",
    ];
    let sr = f64::from(rate.get());
    let frames = (duration_s.max(0.0) * sr).round() as usize;
    let mut rng = Rng::new(seed);
    let noise_amp = if noise_db.is_finite() { db_to_amp(noise_db) * 3f64.sqrt() } else { 0.0 };
    let mut samples: Vec<f32> = (0..frames).map(|_| (noise_amp * rng.bipolar()) as f32).collect();
    let amp = db_to_amp(level_db) * 1.2;
    // Probabilities per word (about 150 words per minute).
    let p_filler = fillers_per_hour / 9000.0;
    let p_long = long_pauses_per_hour / 9000.0;
    let mut words = Vec::new();
    let (mut fillers, mut long_pauses) = (0, 0);
    let mut t = 0.3;
    let mut in_sentence = 0;
    while t < duration_s {
        let filler = rng.next_f64() < p_filler;
        let len = if filler { 0.25 + 0.3 * rng.next_f64() } else { 0.12 + 0.24 * rng.next_f64() };
        if t + len > duration_s {
            break;
        }
        in_sentence += 1;
        let end_sentence = !filler && in_sentence > 6 && rng.next_f64() < 0.15;
        let text = if filler {
            fillers += 1;
            if rng.next_f64() < 0.5 { "um".to_string() } else { "Uh,".to_string() }
        } else {
            let w = VOCAB[(rng.next_u64() % VOCAB.len() as u64) as usize];
            if end_sentence { format!("{w}.") } else { w.to_string() }
        };
        // Render the word.
        let (s0, s1) = ((t * sr).round() as usize, ((t + len) * sr).round() as usize);
        let f0 = 100.0 + 120.0 * rng.next_f64();
        let ramp = (0.01 * sr) as usize;
        let mut phase = 0.0f64;
        let n = s1 - s0;
        for (k, out) in samples[s0..s1.min(frames)].iter_mut().enumerate() {
            let env = if k < ramp {
                (std::f64::consts::FRAC_PI_2 * k as f64 / ramp as f64).sin().powi(2)
            } else if n - k <= ramp {
                (std::f64::consts::FRAC_PI_2 * (n - k) as f64 / ramp as f64).sin().powi(2)
            } else {
                1.0
            };
            phase += TAU * f0 * (1.0 + 0.05 * (TAU * k as f64 / n as f64).sin()) / sr;
            let mut v = 0.0;
            for h in 1..=8 {
                v += (phase * h as f64).sin() / h as f64;
            }
            v += 0.05 * rng.bipolar();
            *out += (amp * env * v * 0.6) as f32;
        }
        words.push(SpokenWord { text, start_s: t, end_s: t + len });
        t += len;
        let gap = if rng.next_f64() < p_long {
            long_pauses += 1;
            1.8 + 2.2 * rng.next_f64()
        } else if end_sentence {
            in_sentence = 0;
            0.3 + 0.3 * rng.next_f64()
        } else {
            0.04 + 0.1 * rng.next_f64()
        };
        t += gap;
    }
    SpokenScript { samples, words, fillers, long_pauses }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn sine_has_expected_rms_and_is_deterministic() {
        let r = NonZeroU32::new(48_000).unwrap();
        let s = sine(r, 1000.0, 1.0, 48_000);
        assert!((rms(&s) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-4);
        assert_eq!(white_noise(7, 1.0, 100), white_noise(7, 1.0, 100));
        assert_ne!(white_noise(7, 1.0, 100), white_noise(8, 1.0, 100));
    }

    #[test]
    fn speech_like_has_gaps_and_bounded_peak() {
        let r = NonZeroU32::new(16_000).unwrap();
        let s = speech_like(r, 1, -20.0, 16_000 * 5);
        let zeros = s.iter().filter(|&&x| x == 0.0).count();
        assert!(zeros > 16_000 / 10, "expected gaps, found {zeros} zero samples");
        assert!(s.iter().all(|x| x.abs() < 1.0));
    }
}
