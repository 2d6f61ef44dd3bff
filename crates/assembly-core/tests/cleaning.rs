//! Noise reduction through the whole Assembler: when `auto` engages, what it does to the
//! speech and the noise in the episode, that clean input is untouched, and that the cleaned
//! content is checkpointed and resumed.

use std::num::NonZeroU32;
use std::path::Path;

use assembly_core::encode::{OutputFormat, Tags, write_file};
use assembly_core::synth::rms_db;
use assembly_core::{
    Assembler, CancelToken, NoProgress, Report, Spec, Stage, WarningCode, load, synth,
};

const RATE: u32 = 44_100;

fn rate() -> NonZeroU32 {
    NonZeroU32::new(RATE).unwrap()
}

/// A 70 s recording of word-timed speech at -20 dBFS over `noise` (pink noise at `noise_db`
/// dBFS, or room tone at -75 dBFS when `None`), written with its transcript into `dir`.
fn recording(dir: &Path, noise_db: Option<f64>) -> synth::SpokenScript {
    let floor = if noise_db.is_some() { f64::NEG_INFINITY } else { -75.0 };
    let mut s = synth::spoken_words(rate(), 21, 70.0, -20.0, floor, 0.0, 300.0);
    if let Some(db) = noise_db {
        let pink = synth::pink_noise(5, db, s.samples.len());
        s.samples.iter_mut().zip(&pink).for_each(|(x, n)| *x += n);
    }
    let words: Vec<serde_json::Value> = s
        .words
        .iter()
        .map(|w| serde_json::json!({"word": w.text, "start": w.start_s, "end": w.end_s}))
        .collect();
    std::fs::write(dir.join("words.json"), serde_json::to_vec(&words).unwrap()).unwrap();
    let raw = synth::mono(rate(), s.samples.clone());
    write_file(&dir.join("raw.wav"), &raw, &OutputFormat::wav16(), &Tags::default()).unwrap();
    s
}

/// A job that keeps the content's timeline (no cuts, no edge trimming) with a float WAV
/// output, so output frame `i` is content frame `i`.
fn run(dir: &Path, noise: &str, work_dir: bool) -> (Report, Vec<f32>) {
    let work = if work_dir { r#", "work_dir": "work""# } else { "" };
    let mut spec = Spec::from_json(&format!(
        r#"{{"version": 1, "content": "raw.wav",
            "transcript": {{"format": "words", "path": "words.json"}},
            "cleanup": {{"remove_fillers": false, "remove_pauses": false, "trim_edges": false,
                         "noise": {noise}}},
            "output": {{"path": "out.wav", "encoding": {{"format": "wav", "sample_format": "float32"}}}}{work}}}"#
    ))
    .unwrap();
    spec.resolve_paths(dir);
    let report = Assembler::new(spec).unwrap().run(&mut NoProgress, &CancelToken::new()).unwrap();
    let out = load::decode_file(&dir.join("out.wav"), &Default::default(), &CancelToken::new())
        .unwrap()
        .audio;
    (report, out.channel(0).to_vec())
}

/// The words' level minus the pauses' (over 150 ms, 30 ms in from the words), dB.
fn speech_to_pause_db(x: &[f32], s: &synth::SpokenScript) -> f64 {
    let (pauses, words) = s.pauses_and_words(x, rate());
    rms_db(&words) - rms_db(&pauses)
}

fn tone_db(x: &[f32], hz: f64) -> f64 {
    synth::tone_db(x, rate(), hz)
}

/// Speech plus pink noise at -45 dBFS, default options: `auto` engages; in the episode the
/// pauses sit more than 20 dB further under the words than in the recording, the floor the
/// report measures drops by more than 20 dB, and the episode still lands on target.
#[test]
fn noisy_speech_is_denoised_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let s = recording(dir.path(), Some(-45.0));
    let raw = synth::mono(rate(), s.samples.clone());
    let (report, out) = run(dir.path(), "{}", false);
    let n = report.cleaning.noise.as_ref().unwrap();
    assert!(n.engaged && n.speech_to_noise_db < 35.0, "{n:?}");
    let after = n.noise_floor_after_db.unwrap();
    assert!(n.noise_floor_db - after > 20.0, "floor {:.1} -> {after:.1}", n.noise_floor_db);
    assert_eq!(out.len(), raw.frames());
    let (before, gained) = (speech_to_pause_db(raw.channel(0), &s), speech_to_pause_db(&out, &s));
    assert!(gained - before > 20.0, "words over pauses {before:.1} -> {gained:.1} dB");
    let lufs = report.loudness_out.unwrap().integrated_lufs;
    eprintln!("{n:?}; words over pauses {before:.1} -> {gained:.1} dB; {lufs:.2} LUFS");
    assert!((lufs + 16.0).abs() < 0.2, "{lufs}");
}

/// With pauses removed, the plan (which cleans as a run does) predicts the run's length to
/// the frame: the splices are searched in the same cleaned audio.
#[test]
fn the_plan_of_a_denoised_job_matches_its_run() {
    let dir = tempfile::tempdir().unwrap();
    recording(dir.path(), Some(-45.0));
    let mut spec = Spec::from_json(
        r#"{"version": 1, "content": "raw.wav",
            "transcript": {"format": "words", "path": "words.json"},
            "output": {"path": "out.wav", "encoding": {"format": "wav"}}}"#,
    )
    .unwrap();
    spec.resolve_paths(dir.path());
    let a = Assembler::new(spec).unwrap();
    let plan = a.plan(&CancelToken::new()).unwrap();
    let report = a.run(&mut NoProgress, &CancelToken::new()).unwrap();
    assert!(report.cleaning.noise.as_ref().unwrap().engaged);
    assert!(report.counts.pauses_shortened > 0, "{:?}", report.counts);
    assert_eq!(report.output.frames, plan.arrangement.total_frames);
    assert_eq!(report.edits, plan.edit.entries);
}

/// Clean speech: `auto` measures and does not engage (no noise reduction, no hum found), and
/// the episode is the same bytes as with noise reduction and hum removal off.
#[test]
fn clean_speech_is_left_alone_in_auto() {
    let dir = tempfile::tempdir().unwrap();
    recording(dir.path(), None);
    let (report, auto) = run(dir.path(), "{}", false);
    let n = report.cleaning.noise.as_ref().unwrap();
    assert!(!n.engaged && n.speech_to_noise_db > 35.0 && n.noise_floor_after_db.is_none(), "{n:?}");
    let auto_bytes = std::fs::read(dir.path().join("out.wav")).unwrap();
    let h = report.cleaning.hum.as_ref().unwrap();
    assert!(!h.engaged && h.hum.is_none(), "{h:?}");
    // `run` puts its argument after `"noise": `, so this also sets `"hum"`.
    let (off, _) = run(dir.path(), r#"{"mode": "off"}, "hum": {"mode": "off"}"#, false);
    assert!(off.cleaning.noise.is_some(), "pause analysis still measures the floor");
    assert!(off.cleaning.hum.is_none());
    assert_eq!(std::fs::read(dir.path().join("out.wav")).unwrap(), auto_bytes);
    drop(auto);
}

/// The cleaned content is checkpointed beside the analysis: a rerun resumes it and writes
/// the same bytes; a damaged one is recomputed with a warning, to the same bytes.
#[test]
fn the_cleaned_content_is_checkpointed_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    recording(dir.path(), Some(-45.0));
    let (first, _) = run(dir.path(), "{}", true);
    assert!(first.cleaning.noise.as_ref().unwrap().engaged);
    let bytes = std::fs::read(dir.path().join("out.wav")).unwrap();
    let part = dir.path().join("work/analyze.cleaned-content.checkpoint");
    assert!(part.exists());
    let (second, _) = run(dir.path(), "{}", true);
    assert!(second.stages_resumed.contains(&Stage::Analyze));
    assert_eq!(second.cleaning, first.cleaning);
    assert_eq!(std::fs::read(dir.path().join("out.wav")).unwrap(), bytes);
    let mut b = std::fs::read(&part).unwrap();
    let k = b.len() - 100;
    b[k] ^= 0x10;
    std::fs::write(&part, b).unwrap();
    let (third, _) = run(dir.path(), "{}", true);
    assert!(
        third.warnings.iter().any(|w| w.code == WarningCode::CheckpointRecomputed
            && w.message.contains("cleaned-content")),
        "{:?}",
        third.warnings
    );
    assert_eq!(std::fs::read(dir.path().join("out.wav")).unwrap(), bytes);
}

/// Speech with 50.4 Hz mains hum (harmonics 1-8 at -40 to -55 dBFS) over quiet room tone,
/// noise reduction off to look at the hum alone: `auto` detects it within 0.05 Hz, every
/// harmonic is notched, and in the episode the fundamental sits more than 30 dB further under
/// the words than in the recording. Without hum, `auto` detects nothing.
#[test]
fn mains_hum_is_detected_and_removed_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let s = recording(dir.path(), None);
    let levels = [-40.0, -43.0, -45.0, -47.0, -50.0, -52.0, -53.0, -55.0];
    let hum = synth::mains_hum(rate(), 50.4, &levels, s.samples.len());
    let x: Vec<f32> = s.samples.iter().zip(&hum).map(|(a, b)| a + b).collect();
    let raw = synth::mono(rate(), x);
    write_file(&dir.path().join("raw.wav"), &raw, &OutputFormat::wav16(), &Tags::default())
        .unwrap();
    let (report, out) = run(dir.path(), r#"{"mode": "off"}"#, false);
    let h = report.cleaning.hum.as_ref().unwrap();
    let found = h.hum.as_ref().unwrap();
    assert!(h.engaged && (found.fundamental_hz - 50.4).abs() < 0.05, "{h:?}");
    assert_eq!(found.harmonics.len(), 8, "{h:?}");
    // Relative to the words, so the mastering gain cancels out.
    let at = |t: f64| (t * f64::from(RATE)) as usize;
    let words = |x: &[f32]| -> Vec<f32> {
        s.words.iter().flat_map(|w| x[at(w.start_s)..at(w.end_s)].to_vec()).collect()
    };
    let hum_under_words = |x: &[f32]| rms_db(&words(x)) - tone_db(x, 50.4);
    let (before, after) = (hum_under_words(raw.channel(0)), hum_under_words(&out));
    eprintln!("{found:?}; fundamental under the words {before:.1} -> {after:.1} dB");
    assert!(after - before > 30.0, "fundamental under the words {before:.1} -> {after:.1} dB");

    recording(dir.path(), None);
    let (clean, _) = run(dir.path(), "{}", false);
    let h = clean.cleaning.hum.as_ref().unwrap();
    assert!(!h.engaged && h.hum.is_none(), "{h:?}");
}

/// The backend's keys reach the options, and a bad mode names its key.
#[test]
fn backend_keys_set_noise_reduction() {
    use assembly_core::analyze::clean::CleanMode;
    use assembly_core::edit::CleanupOptions;
    let (o, w) = CleanupOptions::from_backend_json(
        r#"{"noiseReduction": "on", "noiseReductionStrength": 0.7}"#,
    )
    .unwrap();
    assert!(w.is_empty());
    assert_eq!((o.noise.mode, o.noise.strength), (CleanMode::On, 0.7));
    let (o, _) = CleanupOptions::from_backend_json(r#"{"noiseReduction": false}"#).unwrap();
    assert_eq!(o.noise.mode, CleanMode::Off);
    let (o, _) = CleanupOptions::from_backend_json(r#"{"humRemoval": "off"}"#).unwrap();
    assert_eq!(o.hum.mode, CleanMode::Off);
    let e = CleanupOptions::from_backend_json(r#"{"noiseReduction": "max"}"#).unwrap_err();
    assert!(e.to_string().contains("noiseReduction"), "{e}");
    let e = CleanupOptions::from_backend_json(r#"{"noiseReductionStrength": 3}"#).unwrap_err();
    assert!(e.to_string().contains("strength"), "{e}");
}
