//! Shared helpers of the edit tests.
#![allow(dead_code)]

use std::num::NonZeroU32;

use assembly_core::edit::{EditPlan, EditedAudio, SegmentSource};
use assembly_core::transcript::{Transcript, Word};
use assembly_core::{AudioBuffer, synth};

pub fn rate(r: u32) -> NonZeroU32 {
    NonZeroU32::new(r).unwrap()
}

/// A transcript from `(text, start_s, end_s)` triples.
pub fn transcript(words: &[(&str, f64, f64)]) -> Transcript {
    let ws = words.iter().map(|&(t, s, e)| Word::new(t, s, e)).collect();
    Transcript::from_words(ws).unwrap().0
}

/// Silence with a tone (220 Hz, -12 dBFS peak) over each word's span.
pub fn tone_words(r: NonZeroU32, seconds: f64, words: &[(&str, f64, f64)]) -> AudioBuffer {
    let n = (seconds * f64::from(r.get())).round() as usize;
    let tone = synth::sine(r, 220.0, 0.25, n);
    let mut s = vec![0.0f32; n];
    for &(_, a, b) in words {
        let (a, b) =
            ((a * f64::from(r.get())).round() as usize, (b * f64::from(r.get())).round() as usize);
        s[a..b.min(n)].copy_from_slice(&tone[a..b.min(n)]);
    }
    synth::mono(r, s)
}

pub fn render(audio: &AudioBuffer, plan: &EditPlan) -> AudioBuffer {
    EditedAudio::new(audio, plan, &[]).unwrap().render_to_buffer()
}

/// Output frames that are fades or crossfades (where samples may differ from the source).
pub fn touched(plan: &EditPlan) -> Vec<std::ops::Range<u64>> {
    let mut v = Vec::new();
    for s in &plan.segments {
        if s.fade_in_frames > 0 {
            v.push(s.output_start_frame..s.output_start_frame + s.fade_in_frames);
        }
        if s.fade_out_frames > 0 {
            let e = s.output_start_frame + s.frames;
            v.push(e - s.fade_out_frames..e);
        }
    }
    for c in &plan.crossfades {
        v.push(c.output_frame - c.half_frames..c.output_frame + c.half_frames);
    }
    v
}

/// Checks that every output frame of a source segment outside fades and crossfades equals
/// its source frame exactly; returns how many frames were compared.
pub fn assert_source_untouched(audio: &AudioBuffer, plan: &EditPlan, out: &AudioBuffer) -> u64 {
    let t = touched(plan);
    let mut compared = 0;
    for s in &plan.segments {
        if let SegmentSource::Source { source_start_frame } = s.source {
            for k in 0..s.frames {
                let p = s.output_start_frame + k;
                if t.iter().any(|r| r.contains(&p)) {
                    continue;
                }
                for ch in 0..audio.channel_count() {
                    let want = audio.channel(ch)[(source_start_frame + k) as usize];
                    let got = out.channel(ch)[p as usize];
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "output {p} (source {}) ch {ch}",
                        source_start_frame + k
                    );
                }
                compared += 1;
            }
        }
    }
    compared
}

/// Second-order Butterworth high-pass at `fc` Hz (RBJ cookbook biquad, Q = 1/√2).
pub fn highpass(x: &[f32], sr: f64, fc: f64) -> Vec<f64> {
    let w0 = std::f64::consts::TAU * fc / sr;
    let alpha = w0.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
    let c = w0.cos();
    let a0 = 1.0 + alpha;
    let (b0, b1, b2) = ((1.0 + c) / 2.0 / a0, -(1.0 + c) / a0, (1.0 + c) / 2.0 / a0);
    let (a1, a2) = (-2.0 * c / a0, (1.0 - alpha) / a0);
    let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
    x.iter()
        .map(|&v| {
            let v = f64::from(v);
            let y = b0 * v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
            (x2, x1, y2, y1) = (x1, v, y1, y);
            y
        })
        .collect()
}

fn mean_sq(y: &[f64], r: std::ops::Range<i64>) -> f64 {
    let (a, b) = (r.start.max(0) as usize, (r.end.max(0) as usize).min(y.len()));
    if b <= a {
        return 0.0;
    }
    y[a..b].iter().map(|v| v * v).sum::<f64>() / (b - a) as f64
}

/// The click metric, in dB: energy above 4 kHz (2nd-order Butterworth high-pass at 4 kHz) in
/// the 5 ms window centred on the join, relative to the louder of the two 22.5 ms windows on
/// either side of it (from 2.5 ms to 25 ms away). A click raises it well above 0 dB.
pub fn click_db(hp: &[f64], join: u64, sr: f64) -> f64 {
    let j = join as i64;
    let ms = |m: f64| (m * sr / 1000.0).round() as i64;
    let w = mean_sq(hp, j - ms(2.5)..j + ms(2.5));
    let left = mean_sq(hp, j - ms(25.0)..j - ms(2.5));
    let right = mean_sq(hp, j + ms(2.5)..j + ms(25.0));
    10.0 * (w.max(1e-30) / left.max(right).max(1e-30)).log10()
}
