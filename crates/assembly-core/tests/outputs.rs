//! Several outputs from one job (issue 22, part 2): one load, analysis, edit and
//! arrangement; each output its own master plan, render and verify. Every file is decoded
//! here on its own and measured: loudness within ±0.2 LU of its own target, true peak at or
//! under its own ceiling, lengths to the sample.

use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::path::Path;

use assembly_core::analyze::loudness::{Loudness, measure};
use assembly_core::encode::{OutputFormat, Tags, write_file};
use assembly_core::load::{DecodeOptions, decode_file, resampled_len};
use assembly_core::{
    Assembler, CancelToken, Error, NoProgress, ProgressEvent, Report, Spec, Stage, synth,
};

const R: NonZeroU32 = NonZeroU32::new(44_100).unwrap();

/// A 30 s conversation: three speakers in turns at −28, −20 and −14 dBFS, with plosives
/// (the limiter has real work) and pauses; a music bed under it, an intro sting before it.
fn material(dir: &Path) {
    let turn = 44_100 * 3;
    let mut x = Vec::new();
    for k in 0..10u64 {
        let level = [-28.0, -20.0, -14.0][k as usize % 3];
        let amp = 10f64.powf((level + 15.0) / 20.0);
        let speech = synth::speech_like(R, 40 + k, level, turn);
        let plosives = synth::noise_bursts(140 + k, amp, 220, 40_000, turn);
        x.extend(speech.iter().zip(&plosives).map(|(s, p)| s + p));
        x.extend(std::iter::repeat_n(0.0, 44_100 / 4));
    }
    let wav = OutputFormat::wav16();
    let t = Tags::default();
    write_file(&dir.join("raw.wav"), &synth::mono(R, x), &wav, &t).unwrap();
    let bed = synth::music_like(R, 9, -14.0, 44_100 * 8);
    write_file(&dir.join("bed.wav"), &synth::multi(R, bed, 2), &wav, &t).unwrap();
    let sting = synth::chirp(R, 300.0, 900.0, 0.4, 44_100 * 2);
    write_file(&dir.join("intro.wav"), &synth::multi(R, sting, 2), &wav, &t).unwrap();
}

/// The job with `outputs` (a JSON fragment: `"output": {…}` or `"outputs": […]`).
fn spec(dir: &Path, outputs: &str) -> Spec {
    let json = format!(
        r#"{{"version": 1, "content": "raw.wav",
            "assets": {{"bed": "bed.wav", "intro": "intro.wav"}},
            "cleanup": {{"remove_fillers": false, "remove_pauses": false}},
            "template": {{
                "segments": [
                    {{"segment_type": "intro", "asset": "intro"}},
                    {{"segment_type": "content", "asset": "content"}}
                ],
                "background_music_rules": [{{"asset": "bed", "apply_to_segments": ["content"]}}]
            }},
            {outputs}}}"#
    );
    let mut spec = Spec::from_json(&json).unwrap();
    spec.resolve_paths(dir);
    spec
}

/// Decodes `path` and measures it here, independently of the report.
fn decoded(path: &Path) -> (Loudness, u64, usize, u32) {
    let d = decode_file(path, &DecodeOptions::default(), &CancelToken::new()).unwrap();
    let l = measure(&d.audio).unwrap();
    (l, d.audio.frames() as u64, d.audio.channel_count(), d.audio.sample_rate().get())
}

/// The names in `dir`, sorted (no attempt, chunk or excerpt scratch file may be left).
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn three_outputs_each_land_on_their_own_target_and_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    material(d);
    let spec = spec(
        d,
        r#""outputs": [
            {"path": "stereo.mp3", "report": "report.json"},
            {"path": "mono.mp3", "channels": 1,
             "encoding": {"format": "mp3", "bitrate": {"mode": "cbr", "kbps": 64}},
             "master": {"preset": "podcast_mono"}},
            {"path": "master.flac", "encoding": {"format": "flac"},
             "master": {"target_lufs": -16.0, "ceiling_dbtp": -2.0}}
        ]"#,
    );
    let report = Assembler::new(spec).unwrap().run(&mut NoProgress, &CancelToken::new()).unwrap();
    assert_eq!(report.outputs.len(), 3);
    // (file, target, ceiling, channels, lossy)
    let goals = [
        ("stereo.mp3", -16.0, -1.0, 2, true),
        ("mono.mp3", -19.0, -1.0, 1, true),
        ("master.flac", -16.0, -2.0, 2, false),
    ];
    let mut lengths = Vec::new();
    for ((name, target, ceiling, channels, lossy), out) in goals.iter().zip(&report.outputs) {
        assert_eq!(out.output.path, d.join(name));
        let (l, frames, ch, rate) = decoded(&out.output.path);
        eprintln!("{name}: {:.2} LUFS, {:.2} dBTP", l.integrated_lufs, l.true_peak_dbtp);
        assert!((l.integrated_lufs - target).abs() <= 0.2, "{name}: {l:?}");
        assert!(l.true_peak_dbtp <= *ceiling, "{name}: {l:?}");
        assert_eq!((ch, rate), (*channels, 44_100), "{name}");
        assert_eq!(out.output.channels, *channels, "{name}");
        assert_eq!((out.master.target_lufs, out.master.ceiling_dbtp), (*target, *ceiling));
        // The report's measurement is of the written file.
        let reported = out.loudness.unwrap();
        assert!((reported.integrated_lufs - l.integrated_lufs).abs() < 0.05, "{name}");
        // Lossy outputs were verified, and one full encode landed each.
        assert_eq!(out.verify.is_some(), *lossy, "{name}");
        if let Some(v) = &out.verify {
            assert!(v.passed && v.attempts.len() == 1, "{name}: {v:#?}");
        }
        if !lossy {
            lengths.push(frames);
        }
        assert_eq!(out.output.frames, report.outputs[2].output.frames, "{name}");
    }
    // The lossless file is the programme to the sample; the MP3s report the same length.
    assert_eq!(lengths, vec![report.output.frames]);
    // The top-level fields are the first output's.
    assert_eq!(report.output, report.outputs[0].output);
    assert_eq!(report.loudness_out, report.outputs[0].loudness);
    // One plan per output: the mono mix is measured on its own (the content and the bed are
    // the same in both channels, so the mono mix is 3.01 dB quieter than the stereo one).
    let (stereo_in, mono_in) =
        (report.outputs[0].master.input_lufs, report.outputs[1].master.input_lufs);
    assert!((stereo_in - mono_in - 3.01).abs() < 0.05, "{stereo_in} {mono_in}");
    // The report sidecar lists every output.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["outputs"].as_array().unwrap().len(), 3);
    let names = files_in(d);
    let expected =
        ["bed.wav", "intro.wav", "master.flac", "mono.mp3", "raw.wav", "report.json", "stereo.mp3"];
    assert_eq!(names, expected);
}

#[test]
fn an_output_at_another_rate_is_resampled_and_resumes_from_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    material(d);
    let outputs = r#""work_dir": "work",
        "outputs": [
            {"path": "episode.wav", "encoding": {"format": "wav"}},
            {"path": "episode-48k.flac", "sample_rate": 48000, "encoding": {"format": "flac"},
             "cleaned_content": "content-48k.flac", "review_html": "review-48k.html",
             "master": {"preset": "streaming"}}
        ]"#;
    let run = || {
        let a = Assembler::new(spec(d, outputs)).unwrap();
        a.run(&mut NoProgress, &CancelToken::new()).unwrap()
    };
    let first = run();
    let (main, main_frames, _, _) = decoded(&d.join("episode.wav"));
    let (hi, hi_frames, _, hi_rate) = decoded(&d.join("episode-48k.flac"));
    assert_eq!(hi_rate, 48_000);
    let r48 = NonZeroU32::new(48_000).unwrap();
    assert_eq!(hi_frames, resampled_len(main_frames, R, r48));
    assert_eq!(first.outputs[1].output.frames, hi_frames);
    assert!((main.integrated_lufs + 16.0).abs() <= 0.2, "{main:?}");
    assert!((hi.integrated_lufs + 14.0).abs() <= 0.2, "{hi:?}");
    assert!(main.true_peak_dbtp <= -1.0 && hi.true_peak_dbtp <= -1.0, "{main:?} {hi:?}");
    // Measured on the written (resampled) file: resampling after the limiter can ring over
    // the ceiling, so the file went through the decode-and-measure check.
    let reported = first.outputs[1].loudness.unwrap();
    assert!((reported.integrated_lufs - hi.integrated_lufs).abs() < 0.01);
    let check = first.outputs[1].verify.as_ref().unwrap();
    assert!(check.passed && check.prediction.is_none(), "{check:#?}");
    eprintln!("48 kHz FLAC: {} encode(s)", check.attempts.len());
    let (_, _, _, content_rate) = decoded(&d.join("content-48k.flac"));
    assert_eq!(content_rate, 48_000);
    assert!(first.sidecars.contains(&d.join("content-48k.flac")));
    // The review page of the 48 kHz file gives its duration in its own rate's seconds.
    let page = std::fs::read_to_string(d.join("review-48k.html")).unwrap();
    let at = page.find("\"duration_s\":").unwrap() + "\"duration_s\":".len();
    let end = page[at..].find([',', '}']).unwrap();
    let duration_s: f64 = page[at..at + end].parse().unwrap();
    assert!((duration_s - main_frames as f64 / 44_100.0).abs() < 0.002, "{duration_s}");

    // A rerun resumes every stage up to the master plans (one per output) and writes the
    // same files.
    let second = run();
    assert!(second.stages_resumed.contains(&Stage::Master), "{:?}", second.stages_resumed);
    let (a, b) = (&first.outputs[1].master, &second.outputs[1].master);
    assert_eq!(
        (a.gain_db, a.ceiling_dbtp, a.target_lufs),
        (b.gain_db, b.ceiling_dbtp, b.target_lufs)
    );
    assert_eq!(second.outputs[1].output.frames, hi_frames);
}

#[test]
fn a_cancelled_job_leaves_none_of_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    material(d);
    let spec = spec(
        d,
        r#""outputs": [
            {"path": "a.mp3", "chapters_json": "a.json"},
            {"path": "b.mp3", "channels": 1},
            {"path": "c.flac", "encoding": {"format": "flac"}, "review_html": "c.html"}
        ]"#,
    );
    let token = CancelToken::new();
    let mut sink = |e: &ProgressEvent| {
        if e.stage == Stage::Render && e.stage_fraction > 0.3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let r: Result<Report, Error> = Assembler::new(spec).unwrap().run(&mut sink, &token);
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert_eq!(files_in(d), ["bed.wav", "intro.wav", "raw.wav"]);
}

#[test]
fn the_outputs_list_is_checked_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    material(d);
    let problems = |outputs: &str| -> Vec<String> {
        let json = format!(r#"{{"version": 1, "content": "raw.wav", {outputs}}}"#);
        let mut spec = match Spec::from_json(&json) {
            Ok(s) => s,
            Err(Error::InvalidSpec { problems }) => {
                return problems.into_iter().map(|p| p.path).collect();
            }
            Err(e) => panic!("{e}"),
        };
        spec.resolve_paths(d);
        spec.problems().into_iter().map(|p| p.path).collect()
    };
    assert_eq!(
        problems(r#""output": {"path": "a.mp3"}, "outputs": [{"path": "b.mp3"}]"#),
        ["outputs"]
    );
    assert_eq!(problems(r#""outputs": []"#), ["output"]);
    let neither = Spec::from_json(r#"{"version": 1, "content": "raw.wav"}"#);
    assert!(
        matches!(&neither, Err(Error::InvalidSpec { problems }) if problems[0].path == "output"),
        "{neither:?}"
    );
    assert_eq!(
        problems(r#""outputs": [{"path": "a.mp3"}, {"path": "a.mp3"}]"#),
        ["outputs[1].path"]
    );
    assert_eq!(
        problems(r#""outputs": [{"path": "a.mp3", "srt": "x.srt"}, {"path": "x.srt"}]"#),
        ["outputs[1].path", "outputs[0].words"]
    );
    assert_eq!(
        problems(
            r#""outputs": [{"path": "a.mp3"}, {"path": "b.mp3", "channels": 3},
                {"path": "c.mp3", "master": {"target_lufs": 5}},
                {"path": "d.mp3", "content_chapters": [{"title": "x", "start_ms": 0, "end_ms": 1000}]},
                {"path": "e.mp3", "sample_rate": 7}]"#
        ),
        [
            "outputs[1].channels",
            "outputs[2].master.target_lufs",
            "outputs[3].content_chapters",
            "outputs[4].sample_rate"
        ]
    );
    // A JSON error inside the list names its element.
    assert_eq!(
        problems(r#""outputs": [{"path": "a.mp3"}, {"path": "b.mp3", "chanels": 1}]"#),
        ["outputs[1].chanels"]
    );
    // The single form is unchanged.
    assert!(problems(r#""output": {"path": "a.mp3"}"#).is_empty());
}
