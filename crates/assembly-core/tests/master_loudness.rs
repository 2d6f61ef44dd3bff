//! Mastering to loudness targets: speech-like, music-like, clipped square waves and sharp
//! transients at -35, -23 and -10 LUFS land within ±0.3 LU of the target with the true peak
//! (ebur128, 4× oversampled) at or below the ceiling; EBU Tech 3341 cases read -23.0 ±0.1.
//!
//! These measure the rendered output before encoding (the encoder is not part of this
//! stage); the decoded-MP3 variant runs the same `render_mastered` call into an encoder.

use std::num::NonZeroU32;

use assembly_core::analyze::loudness::{Loudness, measure};
use assembly_core::master::{MasterOptions, Preset};
use assembly_core::render::{RenderOptions, RenderReport, render_mastered};
use assembly_core::synth::{self, Rng, db_to_amp};
use assembly_core::{AudioBuffer, CancelToken};

const R48: NonZeroU32 = NonZeroU32::new(48_000).unwrap();
const R44: NonZeroU32 = NonZeroU32::new(44_100).unwrap();

fn master(input: &AudioBuffer, opts: &MasterOptions) -> (AudioBuffer, RenderReport, Loudness) {
    let rate = input.sample_rate();
    let mut out = AudioBuffer::silence(rate, input.channel_count(), 0).unwrap();
    let report = render_mastered(
        input,
        opts,
        &RenderOptions::default(),
        |b| out.append(b),
        &CancelToken::new(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(out.frames(), input.frames());
    let l = measure(&out).unwrap();
    (out, report, l)
}

/// Scales `buf` so it reads exactly `lufs`.
fn at_lufs(mut buf: AudioBuffer, lufs: f64) -> AudioBuffer {
    let now = measure(&buf).unwrap().integrated_lufs;
    let g = db_to_amp(lufs - now) as f32;
    for p in buf.planes_mut() {
        p.iter_mut().for_each(|s| *s *= g);
    }
    buf
}

fn square(rate: NonZeroU32, freq: f64, frames: usize) -> Vec<f32> {
    let period = f64::from(rate.get()) / freq;
    (0..frames).map(|i| if (i as f64 % period) < period / 2.0 { 1.0 } else { -1.0 }).collect()
}

fn programmes() -> Vec<(&'static str, AudioBuffer)> {
    let n = 48_000 * 30;
    let speech = synth::speech_like(R48, 21, -20.0, n);
    let speech_r = synth::speech_like(R48, 22, -23.0, n);
    let music_l = synth::music_like(R48, 31, -20.0, n);
    let music_r = synth::music_like(R48, 32, -20.0, n);
    // Clipped square waves: full-scale flat tops (naive squares), lots of inter-sample overs.
    let sq_l = square(R48, 441.0, n);
    let sq_r = square(R48, 1_234.5, n);
    // Sharp transients: speech with decaying noise clicks 20 dB over its peaks, and a
    // drum-like loop of snare hits.
    let mut clicks = synth::speech_like(R48, 23, -20.0, n);
    let mut rng = Rng::new(77);
    for start in (3_000..n).step_by(12_011) {
        for j in 0..300 {
            if let Some(s) = clicks.get_mut(start + j) {
                *s += (2.0 * rng.bipolar() * (-(j as f64) / 40.0).exp()) as f32;
            }
        }
    }
    // Music with snare hits 12 dB over its peaks, 3 ms decay, every 0.5 s.
    let mut drums = synth::music_like(R48, 33, -20.0, n);
    for start in (12_000..n).step_by(24_000) {
        for j in 0..2_000 {
            if let Some(s) = drums.get_mut(start + j) {
                *s += (0.9 * rng.bipolar() * (-(j as f64) / 144.0).exp()) as f32;
            }
        }
    }
    // Speech with 10 ms full-scale square-wave bursts every 3 s (hot edges, inter-sample overs).
    let mut bursts = synth::speech_like(R48, 24, -20.0, n);
    let sq = square(R48, 2_000.0, 480);
    for start in (20_000..n).step_by(144_000) {
        for (j, &v) in sq.iter().enumerate() {
            if let Some(s) = bursts.get_mut(start + j) {
                *s = v;
            }
        }
    }
    vec![
        ("speech-like", AudioBuffer::from_planar(R48, vec![speech, speech_r]).unwrap()),
        ("music-like", AudioBuffer::from_planar(R48, vec![music_l, music_r]).unwrap()),
        ("clipped squares", AudioBuffer::from_planar(R48, vec![sq_l, sq_r]).unwrap()),
        ("speech + clicks", synth::multi(R48, clicks, 2)),
        ("music + snare hits", synth::multi(R48, drums, 2)),
        ("speech + square bursts", synth::multi(R48, bursts, 2)),
    ]
}

#[test]
fn every_programme_at_every_level_lands_on_target_under_the_ceiling() {
    let opts = MasterOptions::default(); // podcast stereo: -16 LUFS, -1 dBTP
    for (name, prog) in programmes() {
        for level in [-35.0, -23.0, -10.0] {
            let input = at_lufs(prog.clone(), level);
            let (_, report, l) = master(&input, &opts);
            println!(
                "{name:22} {level:6.1} LUFS -> {:7.2} LUFS, {:6.2} dBTP (gain {:+6.2} dB, \
                 predicted loss {:.2} LU, {} correction passes, max GR {:.1} dB)",
                l.integrated_lufs,
                l.true_peak_dbtp,
                report.plan.gain_db,
                report.plan.predicted_limiter_loss_lu,
                report.plan.correction_passes,
                report.outcome.limiter.max_reduction_db,
            );
            assert!((l.integrated_lufs + 16.0).abs() <= 0.3, "{name} @ {level}: {l:?}");
            assert!(l.true_peak_dbtp <= -1.0, "{name} @ {level}: {l:?}");
        }
    }
}

#[test]
fn presets_reach_their_own_targets() {
    let prog = at_lufs(programmes().swap_remove(1).1, -30.0);
    for preset in
        [Preset::PodcastMono, Preset::Aes, Preset::EbuR128, Preset::AtscA85, Preset::Streaming]
    {
        let opts = MasterOptions::preset(preset);
        let (_, _, l) = master(&prog, &opts);
        assert!((l.integrated_lufs - preset.target_lufs()).abs() <= 0.3, "{preset:?}: {l:?}");
        assert!(l.true_peak_dbtp <= preset.ceiling_dbtp(), "{preset:?}: {l:?}");
    }
    let (_, _, l) = master(&prog, &MasterOptions::explicit(-20.5, -3.0));
    assert!((l.integrated_lufs + 20.5).abs() <= 0.3 && l.true_peak_dbtp <= -3.0, "{l:?}");
}

fn tone(rate: NonZeroU32, channels: usize, parts: &[(f64, f64)]) -> AudioBuffer {
    let mut planes = vec![Vec::new(); channels];
    for &(db, secs) in parts {
        let n = (secs * f64::from(rate.get())).round() as usize;
        let s = synth::sine(rate, 1000.0, db_to_amp(db), n);
        planes.iter_mut().for_each(|p| p.extend_from_slice(&s));
    }
    AudioBuffer::from_planar(rate, planes).unwrap()
}

#[test]
fn ebu_tech_3341_cases_normalise_to_minus_23() {
    let mut cases: Vec<(&str, AudioBuffer)> = Vec::new();
    for rate in [R48, R44] {
        cases.push(("case 1: -23 dBFS", tone(rate, 2, &[(-23.0, 20.0)])));
        cases.push(("case 2: -33 dBFS", tone(rate, 2, &[(-33.0, 20.0)])));
        cases.push(("case 3", tone(rate, 2, &[(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)])));
        cases.push((
            "case 4",
            tone(
                rate,
                2,
                &[(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)],
            ),
        ));
        cases.push(("case 5", tone(rate, 2, &[(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)])));
        // Case 6: 5.0 channels L, R, C, Ls, Rs at -28, -28, -24, -30, -30 dBFS.
        let n = 20 * rate.get() as usize;
        let planes = [-28.0, -28.0, -24.0, -30.0, -30.0]
            .iter()
            .map(|&db| synth::sine(rate, 1000.0, db_to_amp(db), n))
            .collect();
        cases.push(("case 6: 5.0", AudioBuffer::from_planar(rate, planes).unwrap()));
    }
    let opts = MasterOptions::preset(Preset::EbuR128);
    for (name, input) in cases {
        let before = measure(&input).unwrap().integrated_lufs;
        let (_, _, l) = master(&input, &opts);
        println!("{name:18} in {before:7.2} LUFS -> {:7.3} LUFS", l.integrated_lufs);
        assert!((l.integrated_lufs + 23.0).abs() <= 0.1, "{name}: {l:?}");
    }
}

#[test]
fn silence_passes_through_as_silence() {
    let input = AudioBuffer::silence(R48, 2, 48_000 * 3).unwrap();
    let (out, report, _) = master(&input, &MasterOptions::default());
    assert_eq!(out, input);
    assert_eq!(report.plan.gain_db, 0.0);
}
