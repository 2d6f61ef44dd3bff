//! The excerpt study (`docs/mastering.md`, "How many excerpts of what length"): on several
//! programmes, the whole file is rendered with the plain plan (−16 LUFS, −1 dBTP limiter),
//! encoded, decoded and measured; each excerpt layout then predicts, from its excerpts alone,
//! the decoded true peak and the codec's loudness change, and the errors are printed.
//!
//! Minutes of work, so ignored by default; run in release:
//! `cargo test -p assembly-core --release --lib excerpt_study -- --ignored --nocapture`
//! (espeak-ng on PATH adds a synthesized-voice programme).

use std::num::NonZeroU32;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::analyze::loudness::measure;
use crate::encode::Encoder;
use crate::load::resample;
use crate::master::MasterOptions;
use crate::render::measure_mix;
use crate::render::plan_master;
use crate::synth;

const R: NonZeroU32 = NonZeroU32::new(44_100).unwrap();
const MINUTES: usize = 10;

/// Speech-like turns at `levels` dBFS with plosives 15 dB over the speech and pauses.
fn conversation(levels: &[f64], seed: u64, frames: usize) -> Vec<f32> {
    let mut x = Vec::with_capacity(frames + 44_100 * 8);
    let mut k = 0;
    while x.len() < frames {
        let turn = 44_100 * (3 + (k % 4));
        let level = levels[k % levels.len()];
        let amp = 10f64.powf((level + 15.0) / 20.0);
        let speech = synth::speech_like(R, seed + k as u64, level, turn);
        let plosives = synth::noise_bursts(seed + 100 + k as u64, amp, 220, 40_000, turn);
        x.extend(speech.iter().zip(&plosives).map(|(s, p)| s + p));
        x.extend(std::iter::repeat_n(0.0, 44_100 / 3));
        k += 1;
    }
    x.truncate(frames);
    x
}

/// Three espeak-ng voices at −6, 0 and +6 dB taking turns (sentences), or `None` without
/// espeak-ng.
fn espeak_conversation(dir: &Path, frames: usize) -> Option<Vec<f32>> {
    const LINES: [&str; 6] = [
        "Welcome back to the show, today we are talking about how podcasts get made.",
        "I started recording in my kitchen with a cheap microphone and a lot of patience.",
        "Put the plosives right up against the microphone: pop, bop, pick, top,put, tip.",
        "That sounds like a lot of work. Was it worth it in the end, do you think?",
        "Absolutely. The best part is hearing from listeners who found the show by chance.",
        "Thank you so much for joining us today, and see you all next week.",
    ];
    let voices = [("en-us", 165, -6.0), ("en-gb", 150, 0.0), ("en-us+f3", 175, 6.0)];
    let mut clips = Vec::new();
    for (v, (voice, wpm, gain)) in voices.iter().enumerate() {
        for (i, line) in LINES.iter().enumerate() {
            let path = dir.join(format!("v{v}-{i}.wav"));
            let ok = Command::new("espeak-ng")
                .args(["-v", voice, "-s", &wpm.to_string(), "-w"])
                .arg(&path)
                .arg(line)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return None;
            }
            let cancel = CancelToken::new();
            let d = decode_file(&path, &DecodeOptions::default(), &cancel).ok()?.audio;
            let d = resample(&d, R, &cancel).ok()?;
            let g = db_to_gain(*gain) as f32;
            clips.push(d.channel(0).iter().map(|s| s * g).collect::<Vec<f32>>());
        }
    }
    let mut x = Vec::with_capacity(frames + 44_100 * 10);
    let mut k = 0usize;
    while x.len() < frames {
        // Voices in turn, lines in a shifting order so the programme does not repeat exactly.
        let v = k % 3;
        let i = (k / 3 + k * 7) % LINES.len();
        x.extend_from_slice(&clips[v * LINES.len() + i]);
        x.extend(std::iter::repeat_n(0.0, 44_100 * (2 + k % 5) / 10));
        k += 1;
    }
    x.truncate(frames);
    Some(x)
}

/// One programme's truth and plan.
struct Truth {
    plan: MasterPlan,
    m: MixMeasurement,
    /// Decoded true peak of the full encode, dBTP.
    decoded_tp: f64,
    /// Decoded minus rendered integrated loudness of the full encode, LU.
    loudness_shift: f64,
}

fn truth(prog: &AudioBuffer, format: &OutputFormat, dir: &Path) -> Truth {
    let cancel = CancelToken::new();
    let ro = RenderOptions::default();
    let m = measure_mix(prog, &ro, &cancel, &mut |_| {}).unwrap();
    let plan = plan_master(prog, &m, &MasterOptions::default(), &ro, &cancel, &mut |_| {}).unwrap();
    let path = dir.join("full.mp3");
    let mut enc =
        Encoder::create(&path, format, R, prog.channel_count(), &Tags::default()).unwrap();
    let opts = RenderOptions { measure_output: true, ..RenderOptions::default() };
    let out = render_final(prog, &plan, &opts, |b| enc.write(b), &cancel, &mut |_| {}).unwrap();
    enc.finish().unwrap();
    let rendered = out.output.unwrap();
    let decoded =
        measure(&decode_file(&path, &DecodeOptions::default(), &cancel).unwrap().audio).unwrap();
    Truth {
        plan,
        m,
        decoded_tp: decoded.true_peak_dbtp,
        loudness_shift: decoded.integrated_lufs - rendered.integrated_lufs,
    }
}

/// One layout's prediction: (predicted decoded true peak, predicted loudness shift, seconds
/// of audio encoded).
fn predict(
    prog: &AudioBuffer,
    t: &Truth,
    format: &OutputFormat,
    layout: &Layout,
    dir: &Path,
) -> (f64, f64, f64) {
    let cancel = CancelToken::new();
    let limited = ceiling_target(t.plan.ceiling_dbtp) / db_to_gain(t.plan.gain_db + 1.0) as f32;
    let (cores, population) = pick_excerpts(&t.m, R.get(), limited, layout);
    let scratch = dir.join("excerpt.mp3");
    let mut excerpts = Vec::new();
    let mut encoded = 0.0f64;
    for (core, peak) in &cores {
        let (rendered, decoded, at) =
            excerpt_audio(prog, &t.plan, core, format, &scratch, &cancel).unwrap();
        encoded += rendered.frames() as f64 / 44_100.0;
        excerpts.push(ExcerptMeasurement {
            start_ms: 0,
            duration_ms: 0,
            peak: *peak,
            rendered_true_peak_dbtp: core_true_peak(rendered.planes(), at.clone()),
            decoded_true_peak_dbtp: core_true_peak(decoded.planes(), at.clone()),
            rendered_lufs: core_loudness(&rendered, at.clone()).unwrap(),
            decoded_lufs: core_loudness(&decoded, at).unwrap(),
        });
    }
    let (worst, _) = predict_peak(&excerpts, population, t.plan.ceiling_dbtp);
    let shift = loudness_shift(&excerpts);
    (worst, shift, encoded)
}

#[test]
#[ignore = "a study: minutes in release; its table is in docs/mastering.md"]
fn excerpt_study() {
    let dir = tempfile::tempdir().unwrap();
    let n = 44_100 * 60 * MINUTES;
    let stereo = OutputFormat::mp3_cbr(128);
    let mono64 = OutputFormat::mp3_cbr(64);
    let mut programmes: Vec<(&str, AudioBuffer, &OutputFormat)> = vec![
        (
            "3 speakers −26/−20/−14 dBFS + plosives",
            synth::multi(R, conversation(&[-26.0, -20.0, -14.0], 1, n), 2),
            &stereo,
        ),
        (
            "2 speakers 12 dB apart, mono 64k",
            synth::mono(R, conversation(&[-30.0, -18.0], 5, n)),
            &mono64,
        ),
        (
            "speech over a music bed",
            {
                let s = conversation(&[-22.0, -18.0], 9, n);
                let b = synth::music_like(R, 3, -30.0, n);
                synth::multi(R, s.iter().zip(&b).map(|(a, b)| a + b).collect(), 2)
            },
            &stereo,
        ),
    ];
    match espeak_conversation(dir.path(), n) {
        Some(x) => {
            programmes.push(("espeak-ng voices at −6/0/+6 dB", synth::multi(R, x, 2), &stereo))
        }
        None => eprintln!("espeak-ng not found: its programme is left out"),
    }
    let layouts: Vec<Layout> = [4usize, 8, 16, 32, 64]
        .iter()
        .flat_map(|&peaks| {
            [0.5, 1.0, 2.0].map(|core_s| Layout { peaks, typical: (peaks / 8).max(2), core_s })
        })
        .collect();
    eprintln!(
        "| programme | peaks × core | encoded | TP predicted − decoded | loudness shift predicted − decoded |"
    );
    eprintln!("|---|---|---|---|---|");
    // Largest errors of the default layout (32 × 1 s): true peak, loudness shift; and the
    // true-peak error on the programme without plosives.
    let mut worst_default = (0.0f64, 0.0f64);
    let mut espeak_tp = None;
    for (name, prog, format) in &programmes {
        let t = truth(prog, format, dir.path());
        eprintln!(
            "| {name} | full file: decoded {:.2} dBTP, shift {:+.3} LU | | | |",
            t.decoded_tp, t.loudness_shift
        );
        for layout in &layouts {
            let (tp, shift, secs) = predict(prog, &t, format, layout, dir.path());
            let (e_tp, e_l) = (tp - t.decoded_tp, shift - t.loudness_shift);
            eprintln!(
                "| | {} × {:.1} s (+{} typical) | {secs:.0} s | {e_tp:+.2} dB | {e_l:+.3} LU |",
                layout.peaks, layout.core_s, layout.typical
            );
            if (layout.peaks, layout.core_s) == (32, 1.0) {
                worst_default = (worst_default.0.max(e_tp.abs()), worst_default.1.max(e_l.abs()));
                if name.starts_with("espeak") {
                    espeak_tp = Some(e_tp);
                }
            }
        }
    }
    eprintln!(
        "default layout, largest errors: {:.2} dB, {:.3} LU",
        worst_default.0, worst_default.1
    );
    // What the study found (docs/mastering.md): the codec's loudness change is predicted
    // within 0.1 LU by every layout from 8 excerpts up; the decoded true peak within 0.1 dB
    // where the overshoot is mild (espeak-ng speech), but on plosive-heavy programmes the
    // largest overshoot of hundreds of transients is a tail statistic no layout up to 64
    // excerpts predicts better than about ±1 dB, which is what the local repair is for.
    assert!(worst_default.1 <= 0.1, "{worst_default:?}");
    if let Some(e) = espeak_tp {
        assert!(e.abs() <= 0.1, "espeak-ng programme: {e:+.2} dB");
    }
}
