//! Splices never click.
//!
//! Metric (see `edit_support::click_db`): the output is high-passed with a 2nd-order
//! Butterworth biquad at 4 kHz; the mean energy in the 5 ms window centred on each join is
//! compared with the louder of the two windows from 2.5 ms to 25 ms either side of it. A join
//! passes when that ratio is at most +3 dB. For a steady sine it must also be at least -3 dB
//! (no dip either). The same metric on hard joins (no refinement, no crossfade) is shown to
//! fail, so the test can catch a click.

mod edit_support;

use assembly_core::edit::{self, CleanupOptions, EditPlan, MsRange, SegmentSource};
use assembly_core::synth::{self, Rng};
use assembly_core::{AudioBuffer, FrameSource};
use edit_support::*;

const SR: u32 = 44_100;

/// Random cuts 50–500 ms long, at least 400 ms apart, in `seconds` of audio.
fn random_cuts(seed: u64, seconds: f64) -> Vec<MsRange> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut t = 300.0;
    loop {
        let start = t + rng.next_f64() * 200.0;
        let len = 50.0 + rng.next_f64() * 450.0;
        if start + len + 300.0 > seconds * 1000.0 {
            break;
        }
        out.push(MsRange { start_ms: start as u64, end_ms: (start + len) as u64 });
        t = start + len + 400.0;
    }
    out
}

fn options(cuts: Vec<MsRange>) -> CleanupOptions {
    CleanupOptions { remove_pauses: false, cuts_ms: cuts, ..CleanupOptions::default() }
}

/// Output frames where two source segments meet (the joins).
fn joins(plan: &EditPlan) -> Vec<u64> {
    plan.segments
        .windows(2)
        .filter(|w| {
            matches!(w[0].source, SegmentSource::Source { .. })
                && matches!(w[1].source, SegmentSource::Source { .. })
        })
        .map(|w| w[1].output_start_frame)
        .collect()
}

fn click_dbs(audio: &AudioBuffer, plan: &EditPlan) -> Vec<f64> {
    let out = edit::EditedAudio::new(audio, plan, &[]).unwrap().render_to_buffer();
    assert_eq!(out.frames() as u64, plan.output_frames);
    let hp = highpass(out.channel(0), f64::from(SR), 4000.0);
    joins(plan).iter().map(|&j| click_db(&hp, j, f64::from(SR))).collect()
}

#[test]
fn cuts_in_a_continuous_sine_do_not_click() {
    let r = rate(SR);
    let audio = synth::mono(r, synth::sine(r, 440.0, 0.5, SR as usize * 12));
    for seed in [2, 4, 6] {
        let cuts = random_cuts(seed, 12.0);
        assert!(cuts.len() >= 10);
        let plan = edit::plan(&audio, None, &[], &options(cuts.clone())).unwrap();
        assert_eq!(plan.crossfades.len(), cuts.len());
        let dbs = click_dbs(&audio, &plan);
        eprintln!("sine seed {seed}: refined joins {:.2?} dB", dbs);
        for (k, db) in dbs.into_iter().enumerate() {
            assert!((-3.0..=3.0).contains(&db), "seed {seed} join {k}: {db:.1} dB");
        }
        // Hard joins on the same cuts click wherever the cut leaves a step (the sample after
        // the join differs from the one the sine would have continued with), and the metric
        // catches every one of them: a step over a quarter of the amplitude (0.125) measures
        // above +3 dB.
        let mut hard = options(cuts);
        hard.splice.refine_edges = false;
        hard.splice.min_crossfade_ms = 0;
        hard.splice.max_crossfade_ms = 0;
        let plan = edit::plan(&audio, None, &[], &hard).unwrap();
        assert!(plan.crossfades.is_empty());
        let dbs = click_dbs(&audio, &plan);
        let x = audio.channel(0);
        let steps: Vec<f32> = plan
            .segments
            .windows(2)
            .filter_map(|w| match (&w[0].source, &w[1].source) {
                (
                    SegmentSource::Source { source_start_frame: a },
                    SegmentSource::Source { source_start_frame: b },
                ) => {
                    let a = (a + w[0].frames) as usize;
                    Some((x[*b as usize] - x[a]).abs())
                }
                _ => None,
            })
            .collect();
        assert_eq!(steps.len(), dbs.len());
        let mut caught = 0;
        for (db, step) in dbs.iter().zip(&steps) {
            if *step > 0.125 {
                assert!(*db > 3.0, "hard join with a {step:.2} step measured {db:.1} dB");
                caught += 1;
            }
        }
        assert!(caught >= 5, "only {caught} hard joins with a phase jump");
    }
}

#[test]
fn cuts_in_speech_over_noise_do_not_click() {
    let r = rate(SR);
    let n = SR as usize * 20;
    let mut s = synth::speech_like(r, 21, -20.0, n);
    for (x, v) in s.iter_mut().zip(synth::white_noise(5, synth::db_to_amp(-50.0) * 3f64.sqrt(), n))
    {
        *x += v;
    }
    let audio = synth::mono(r, s);
    let mut total = 0;
    for seed in [10, 12, 14] {
        let cuts = random_cuts(seed, 20.0);
        let plan = edit::plan(&audio, None, &[], &options(cuts)).unwrap();
        let dbs = click_dbs(&audio, &plan);
        eprintln!("speech seed {seed}: max {:.2} dB", dbs.iter().cloned().fold(f64::MIN, f64::max));
        total += dbs.len();
        for (k, db) in dbs.into_iter().enumerate() {
            assert!(db <= 3.0, "seed {seed} join {k}: {db:.1} dB");
        }
    }
    assert!(total >= 40, "{total} joins checked");
}

#[test]
fn splices_in_stereo_keep_channels_aligned() {
    // Left a sine, right the same sine inverted: after cuts the channels still cancel.
    let r = rate(SR);
    let left = synth::sine(r, 300.0, 0.5, SR as usize * 5);
    let right: Vec<f32> = left.iter().map(|x| -x).collect();
    let audio = AudioBuffer::from_planar(r, vec![left, right]).unwrap();
    let plan = edit::plan(&audio, None, &[], &options(random_cuts(4, 5.0))).unwrap();
    let out = edit::EditedAudio::new(&audio, &plan, &[]).unwrap();
    let mut l = vec![0.0f32; 4096];
    let mut rr = vec![0.0f32; 4096];
    let mut pos = 0;
    while pos < out.frames() {
        out.read(pos, &mut [l.as_mut_slice(), rr.as_mut_slice()]);
        assert!(l.iter().zip(&rr).all(|(a, b)| (a + b).abs() < 1e-6));
        pos += 4096;
    }
}
