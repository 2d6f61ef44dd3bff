//! The Assembler end to end: a synthesized episode through every stage, checked by numbers.

use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assembly_core::encode::{OutputFormat, Tags, write_file};
use assembly_core::{
    Assembler, CancelToken, Error, NoProgress, ProgressEvent, Spec, Stage, WarningCode, load, synth,
};

const RATE: u32 = 22_050;

struct Job {
    dir: tempfile::TempDir,
    fillers: usize,
}

impl Job {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Writes a 40 s word-timed recording (with fillers and long pauses), an intro, an outro and
/// a bed into a temp folder.
fn job() -> Job {
    let dir = tempfile::tempdir().unwrap();
    let rate = NonZeroU32::new(RATE).unwrap();
    let script = synth::spoken_words(rate, 11, 40.0, -26.0, -65.0, 2_000.0, 600.0);
    // Two labelled speakers in turns of 10 words (so speaker leveling has an envelope).
    let words: Vec<serde_json::Value> = script
        .words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let speaker = if i / 10 % 2 == 0 { "A" } else { "B" };
            serde_json::json!({"word": w.text, "start": w.start_s, "end": w.end_s, "speaker": speaker})
        })
        .collect();
    std::fs::write(dir.path().join("words.json"), serde_json::to_vec(&words).unwrap()).unwrap();
    let wav = OutputFormat::wav16();
    let t = Tags::default();
    write_file(&dir.path().join("raw.wav"), &synth::mono(rate, script.samples), &wav, &t).unwrap();
    let r44 = NonZeroU32::new(44_100).unwrap();
    let sting = synth::chirp(r44, 300.0, 900.0, 0.3, 44_100 * 3);
    write_file(&dir.path().join("intro.wav"), &synth::multi(r44, sting.clone(), 2), &wav, &t)
        .unwrap();
    write_file(&dir.path().join("outro.wav"), &synth::multi(r44, sting, 2), &wav, &t).unwrap();
    let bed = synth::sine(r44, 220.0, 0.2, 44_100 * 7);
    write_file(&dir.path().join("bed.wav"), &synth::multi(r44, bed, 2), &wav, &t).unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    Job { dir, fillers: script.fillers }
}

fn spec_json(encoding: &str, work_dir: bool) -> String {
    let work = if work_dir { r#", "work_dir": "work""# } else { "" };
    format!(
        r#"{{
        "version": 1,
        "content": "raw.wav",
        "assets": {{"intro": "intro.wav", "outro": "outro.wav", "bed": "bed.wav"}},
        "transcript": {{"format": "words", "path": "words.json"}},
        "template": {{
            "segments": [
                {{"segment_type": "intro", "asset": "intro", "chapter_title": "Intro"}},
                {{"segment_type": "content", "asset": "content", "chapter_title": "Talk"}},
                {{"segment_type": "outro", "asset": "outro"}}
            ],
            "timing": {{"content_start_offset_s": -0.5, "outro_start_offset_s": -0.5}},
            "background_music_rules": [{{"asset": "bed", "apply_to_segments": ["content"]}}]
        }},
        "output": {{
            "path": "out/episode.{ext}",
            "encoding": {encoding},
            "tags": {{"title": "Test episode"}},
            "report": "out/report.json",
            "srt": "out/episode.srt",
            "words": "out/words.json",
            "chapters_json": "out/chapters.json",
            "review_html": "out/review.html"
        }}{work}
    }}"#,
        ext = if encoding.contains("mp3") { "mp3" } else { "wav" },
    )
}

fn spec(job: &Job, encoding: &str, work_dir: bool) -> Spec {
    let mut s = Spec::from_json(&spec_json(encoding, work_dir)).unwrap();
    s.resolve_paths(job.dir.path());
    s
}

const MP3: &str = r#"{"format": "mp3", "bitrate": {"mode": "cbr", "kbps": 128}}"#;
const WAV: &str = r#"{"format": "wav", "sample_format": "float32"}"#;

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn assembles_a_whole_episode_to_target_with_exact_length() {
    let job = job();
    let a = Assembler::new(spec(&job, MP3, false)).unwrap();
    let plan = a.plan(&CancelToken::new()).unwrap();
    let report = a.run(&mut NoProgress, &CancelToken::new()).unwrap();

    // Length: exactly the planned timeline, and the decoded MP3 has exactly that many frames.
    assert_eq!(report.output.frames, plan.arrangement.total_frames);
    let decoded =
        load::decode_file(&report.output.path, &Default::default(), &CancelToken::new()).unwrap();
    assert_eq!(decoded.audio.frames() as u64, plan.arrangement.total_frames);
    assert_eq!(decoded.audio.channel_count(), 2);
    // Intro 3 s + edited content + outro 3 s, overlapped by 0.5 s twice.
    // The content was resampled to the 44.1 kHz working rate before editing.
    let content_frames = plan.edit.output_frames;
    assert_eq!(plan.edit.source_frames, 40 * 44_100);
    assert_eq!(plan.arrangement.total_frames, 132_300 + content_frames + 132_300 - 2 * 22_050);

    // Loudness: the decoded file is on target and under the ceiling.
    let out = report.loudness_out.unwrap();
    assert!((out.integrated_lufs + 16.0).abs() <= 0.5, "{out:?}");
    assert!(out.true_peak_dbtp <= -1.0 + 0.05, "{out:?}");
    assert!(report.verify.as_ref().unwrap().passed);

    // Cleaning: every filler removed, the long pauses shortened.
    assert_eq!(report.counts.fillers_removed as usize, job.fillers);
    assert!(report.counts.pauses_shortened >= 1);
    assert!(plan.edit.output_frames < plan.edit.source_frames);

    // Re-timed words: monotonic, inside the content's placement, no fillers left.
    let content = report.placements.iter().find(|p| p.asset == "content").unwrap();
    let (c0, c1) = (content.start_ms as f64 / 1000.0, content.end_ms as f64 / 1000.0);
    assert!(report.words.windows(2).all(|w| w[0].end_s <= w[1].start_s + 1e-9));
    assert!(report.words.iter().all(|w| w.start_s >= c0 - 1e-6 && w.end_s <= c1 + 1e-3));
    assert!(report.words.iter().all(|w| !w.text.to_lowercase().starts_with("um")));

    // Chapters from the segments' titles, in ms on the episode timeline.
    assert_eq!(report.chapters.len(), 2);
    assert_eq!(report.chapters[1].start_ms, content.start_ms);

    // Sidecars exist; nothing else (no temp files) in the output folder.
    assert_eq!(
        files_in(&job.path("out")),
        ["chapters.json", "episode.mp3", "episode.srt", "report.json", "review.html", "words.json"]
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job.path("out/report.json")).unwrap()).unwrap();
    assert_eq!(json["output"]["frames"], plan.arrangement.total_frames);

    // The review page: listed, plays the episode beside it, one marker per edit, the words the
    // report lost struck through, and the waveform and loudness of the decoded episode.
    assert!(report.sidecars.contains(&job.path("out/review.html")));
    let html = std::fs::read_to_string(job.path("out/review.html")).unwrap();
    assert!(html.contains(r#"<audio id="episode" controls preload="metadata" src="episode.mp3">"#));
    let start = html.find(r#"id="review-data">"#).unwrap() + r#"id="review-data">"#.len();
    let end = start + html[start..].find("</script>").unwrap();
    let page: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    let edits = page["edits"].as_array().unwrap();
    assert_eq!(edits.len(), report.edits.len());
    for (m, e) in edits.iter().zip(&report.edits) {
        let join = content.start_ms as f64 / 1000.0 + e.output_start_ms as f64 / 1000.0;
        assert!((m["episode_start_s"].as_f64().unwrap() - join).abs() < 1e-9);
        assert!((m["play_from_s"].as_f64().unwrap() - (join - 3.0).max(0.0)).abs() < 1e-9);
    }
    let words = page["words"].as_array().unwrap();
    let struck = words.iter().filter(|w| !w["removed_by"].is_null()).count();
    let transcript: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(job.path("words.json")).unwrap()).unwrap();
    assert_eq!(words.len(), transcript.len());
    assert_eq!(struck, transcript.len() - report.words.len());
    assert!(struck >= job.fillers);
    // The waveform's highest column is the decoded file's sample peak; the loudness curve is
    // ebur128's short-term loudness of the decoded file at every point.
    let peak = page["waveform"]["max"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap());
    let peak_db = 20.0 * peak.fold(0.0, f64::max).log10();
    assert!((peak_db - out.sample_peak_dbfs).abs() < 0.01, "{peak_db} vs {out:?}");
    let curve: Vec<Option<f64>> = page["loudness"]["lufs"]
        .as_array()
        .unwrap()
        .iter()
        .map(serde_json::Value::as_f64)
        .collect();
    let step = (page["loudness"]["step_s"].as_f64().unwrap() * 44_100.0).round() as usize;
    assert_eq!(step, 4_410, "a short episode has a point every 100 ms");
    assert_eq!(curve.len(), decoded.audio.frames() / step);
    let mut meter = ebur128::EbuR128::new(2, 44_100, ebur128::Mode::S).unwrap();
    let mut compared = 0;
    for (k, ours) in curve.iter().enumerate() {
        let planes: Vec<&[f32]> =
            decoded.audio.planes().iter().map(|p| &p[k * step..(k + 1) * step]).collect();
        meter.add_frames_planar_f32(&planes).unwrap();
        let reference = meter.loudness_shortterm().unwrap();
        match ours {
            Some(v) => {
                assert!((v - reference).abs() < 0.02, "point {k}: {v} vs ebur128 {reference}");
                compared += 1;
            }
            None => assert!(reference < -69.9, "point {k}: null vs ebur128 {reference}"),
        }
    }
    assert!(compared > curve.len() * 9 / 10, "{compared} of {}", curve.len());
}

#[test]
fn invalid_specs_report_every_problem_with_its_path() {
    let job = job();
    let mut s = spec(&job, MP3, false);
    s.content = job.path("missing.wav");
    s.outputs_mut()[0].channels = 3;
    s.cleanup.max_pause_s = -1.0;
    s.template.as_mut().unwrap().segments[0].asset = "nope".into();
    s.outputs_mut()[0].srt = Some(job.path("no-such-dir/x.srt"));
    let Err(Error::InvalidSpec { problems }) = Assembler::new(s) else {
        panic!("expected InvalidSpec")
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for want in ["content", "output.channels", "template.segments[0].asset", "output.srt"] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    assert!(paths.iter().any(|p| p.starts_with("cleanup.")), "{paths:?}");

    // The review page: a folder that does not exist, or the episode's own path.
    for page in [job.path("no-such-dir/review.html"), job.path("out/episode.mp3")] {
        let mut s = spec(&job, MP3, false);
        s.outputs_mut()[0].review_html = Some(page.clone());
        let Err(Error::InvalidSpec { problems }) = Assembler::new(s) else {
            panic!("expected InvalidSpec for {}", page.display())
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "output.review_html", "{problems:?}");
    }

    let e = Spec::from_json(
        r#"{"version": 1, "content": "a", "output": {"path": "o.mp3", "bitrate": 1}}"#,
    )
    .unwrap_err();
    let Error::InvalidSpec { problems } = e else { panic!() };
    assert!(problems[0].path.starts_with("output"), "{problems:?}");
    let e = Spec::from_json(r#"{"version": 2, "content": "a", "output": {"path": "o.mp3"}}"#)
        .unwrap_err();
    assert!(e.to_string().contains("version"));
}

#[test]
fn progress_is_monotonic_complete_and_throttled() {
    let job = job();
    let a = Assembler::new(spec(&job, WAV, false)).unwrap();
    let mut events: Vec<ProgressEvent> = Vec::new();
    let mut sink = |e: &ProgressEvent| {
        events.push(e.clone());
        ControlFlow::Continue(())
    };
    a.run(&mut sink, &CancelToken::new()).unwrap();
    assert!(events.windows(2).all(|w| w[1].overall >= w[0].overall));
    assert_eq!(events.last().unwrap().overall, 1.0);
    for stage in Stage::ALL {
        let of_stage: Vec<_> = events.iter().filter(|e| e.stage == stage).collect();
        assert!(of_stage.first().unwrap().stage_fraction == 0.0, "{stage} has no start");
        assert!(of_stage.last().unwrap().stage_fraction == 1.0, "{stage} has no end");
    }
}

#[test]
fn a_progress_sink_can_stop_the_run() {
    let job = job();
    let a = Assembler::new(spec(&job, WAV, false)).unwrap();
    let mut sink = |e: &ProgressEvent| {
        if e.stage == Stage::Master { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    let e = a.run(&mut sink, &CancelToken::new()).unwrap_err();
    assert!(e.is_cancelled(), "{e}");
    assert!(files_in(&job.path("out")).is_empty());
}

#[test]
fn cancelling_at_random_instants_is_prompt_and_leaves_nothing() {
    let job = job();
    let a = Arc::new(Assembler::new(spec(&job, MP3, false)).unwrap());
    // How long a whole run takes here, to spread the cancel instants over every stage.
    let t0 = Instant::now();
    a.run(&mut NoProgress, &CancelToken::new()).unwrap();
    let full = t0.elapsed();
    for f in std::fs::read_dir(job.path("out")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let mut rng = synth::Rng::new(5);
    let mut latencies = Vec::new();
    for _ in 0..12 {
        let token = CancelToken::new();
        let at = full.mul_f64(rng.next_f64() * 0.9);
        let cancelled_at = Arc::new(Mutex::new(None));
        let (t2, c2) = (token.clone(), Arc::clone(&cancelled_at));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(at);
            *c2.lock().unwrap() = Some(Instant::now());
            t2.cancel();
        });
        let r = a.run(&mut NoProgress, &token);
        let end = Instant::now();
        killer.join().unwrap();
        match r {
            Err(e) => {
                assert!(e.is_cancelled(), "{e}");
                let at = cancelled_at.lock().unwrap().unwrap();
                latencies.push(end.duration_since(at));
                assert!(files_in(&job.path("out")).is_empty(), "{:?}", files_in(&job.path("out")));
            }
            Ok(_) => {
                // Finished before the cancel landed: clear for the next round.
                for f in std::fs::read_dir(job.path("out")).unwrap() {
                    std::fs::remove_file(f.unwrap().path()).unwrap();
                }
            }
        }
    }
    assert!(latencies.len() >= 6, "only {} runs were cancelled", latencies.len());
    latencies.sort();
    // Generous for a loaded debug build; the per-block checks make it ~10 ms in release.
    assert!(*latencies.last().unwrap() < Duration::from_secs(2), "{latencies:?}");
}

#[test]
fn two_runs_give_identical_bytes_and_a_rerun_resumes_from_checkpoints() {
    let job = job();
    let a = Assembler::new(spec(&job, MP3, true)).unwrap();
    let first = a.run(&mut NoProgress, &CancelToken::new()).unwrap();
    assert!(first.stages_resumed.is_empty());
    let bytes1 = std::fs::read(job.path("out/episode.mp3")).unwrap();
    let second = a.run(&mut NoProgress, &CancelToken::new()).unwrap();
    assert_eq!(second.stages_resumed, [Stage::Analyze, Stage::Edit, Stage::Arrange, Stage::Master]);
    assert_eq!(std::fs::read(job.path("out/episode.mp3")).unwrap(), bytes1);
    // The speaker leveling's envelope came back from the analysis checkpoint unchanged.
    let lv = first.leveling.as_ref().unwrap();
    assert_eq!(lv.speakers.len(), 2);
    assert!(!lv.envelope.steps.is_empty(), "{lv:?}");
    assert_eq!(second.leveling, first.leveling);

    // A corrupt checkpoint is recomputed with a warning, and the output does not change.
    let ck = job.path("work/edit.checkpoint");
    let mut b = std::fs::read(&ck).unwrap();
    let n = b.len();
    b[n - 3] ^= 0x20;
    std::fs::write(&ck, b).unwrap();
    let third = a.run(&mut NoProgress, &CancelToken::new()).unwrap();
    assert!(!third.stages_resumed.contains(&Stage::Edit));
    assert!(
        third.warnings.iter().any(|w| w.code == WarningCode::CheckpointRecomputed
            && w.message.contains("edit.checkpoint")),
        "{:?}",
        third.warnings
    );
    assert_eq!(std::fs::read(job.path("out/episode.mp3")).unwrap(), bytes1);

    // Without a work folder: the same bytes again (determinism).
    let b = Assembler::new(spec(&job, MP3, false)).unwrap();
    b.run(&mut NoProgress, &CancelToken::new()).unwrap();
    assert_eq!(std::fs::read(job.path("out/episode.mp3")).unwrap(), bytes1);
}

#[test]
fn a_panic_in_a_stage_becomes_an_internal_error() {
    let job = job();
    for stage in [Stage::Load, Stage::Edit, Stage::Render] {
        let mut a = Assembler::new(spec(&job, WAV, false)).unwrap();
        a.inject_panic(stage);
        let e = a.run(&mut NoProgress, &CancelToken::new()).unwrap_err();
        assert!(matches!(e, Error::Internal { .. }), "{e}");
        assert!(e.to_string().contains("injected fault"), "{e}");
    }
    assert!(files_in(&job.path("out")).is_empty());
}

/// Issue 4's acceptance: content at −35, −23 and −10 LUFS, speech-like, music-like, clipped
/// squares with sharp transients, through the whole job into a 128 kbps MP3: the decoded file
/// is within ±0.3 LU of −16 LUFS and its 4× true peak at or below −1 dBTP.
#[test]
fn decoded_mp3_lands_on_target_from_any_input_level() {
    let rate = NonZeroU32::new(44_100).unwrap();
    let n = 44_100 * 12;
    let square = |amp: f32| -> Vec<f32> {
        let mut v: Vec<f32> = (0..n).map(|i| if (i / 50) % 2 == 0 { amp } else { -amp }).collect();
        for i in (0..n).step_by(11_025) {
            v[i] = 1.5; // a sharp transient every 250 ms
        }
        v
    };
    let cases: Vec<(&str, Vec<f32>)> = vec![
        ("speech -35", synth::speech_like(rate, 1, -35.0, n)),
        ("speech -23", synth::speech_like(rate, 2, -23.0, n)),
        ("speech -10", synth::speech_like(rate, 3, -10.0, n)),
        ("music -35", synth::music_like(rate, 4, -35.0, n)),
        ("music -10", synth::music_like(rate, 5, -10.0, n)),
        ("clipped squares", square(1.0)),
    ];
    for (name, samples) in cases {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("in.wav");
        let f32wav =
            OutputFormat::Wav { sample_format: assembly_core::encode::WavSampleFormat::Float32 };
        write_file(&content, &synth::mono(rate, samples), &f32wav, &Tags::default()).unwrap();
        let mut spec = Spec::from_json(
            r#"{"version": 1, "content": "in.wav",
                "cleanup": {"remove_fillers": false, "remove_pauses": false},
                "verify": {"loudness_tolerance_lu": 0.3},
                "output": {"path": "out.mp3"}}"#,
        )
        .unwrap();
        spec.resolve_paths(dir.path());
        let report =
            Assembler::new(spec).unwrap().run(&mut NoProgress, &CancelToken::new()).unwrap();
        let decoded = load::decode_file(
            &dir.path().join("out.mp3"),
            &Default::default(),
            &CancelToken::new(),
        )
        .unwrap();
        let l = assembly_core::analyze::loudness::measure(&decoded.audio).unwrap();
        assert!((l.integrated_lufs + 16.0).abs() <= 0.3, "{name}: {l:?}");
        assert!(l.true_peak_dbtp <= -1.0, "{name}: {l:?}");
        // The report measured the file while decoding it block by block: the same value up
        // to the order of floating-point sums.
        let reported = report.loudness_out.unwrap();
        assert!((reported.integrated_lufs - l.integrated_lufs).abs() < 1e-9, "{name}");
        assert!((reported.true_peak_dbtp - l.true_peak_dbtp).abs() < 1e-9, "{name}");
    }
}

/// A warning of a later stage reaches the report with its code: a crossfade on the first
/// segment is ignored by the arrange stage, and the report (and its JSON) says so.
#[test]
fn the_report_carries_an_arrange_warning_with_its_code() {
    let rate = NonZeroU32::new(44_100).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let audio = synth::mono(rate, synth::speech_like(rate, 1, -20.0, 44_100 * 3));
    write_file(&dir.path().join("in.wav"), &audio, &OutputFormat::wav16(), &Tags::default())
        .unwrap();
    let mut spec = Spec::from_json(
        r#"{"version": 1, "content": "in.wav",
            "cleanup": {"remove_fillers": false, "remove_pauses": false},
            "template": {"segments": [
                {"segment_type": "content", "asset": "content", "crossfade_s": 0.5}]},
            "output": {"path": "out.wav", "encoding": {"format": "wav"},
                       "report": "report.json"}}"#,
    )
    .unwrap();
    spec.resolve_paths(dir.path());
    let report = Assembler::new(spec).unwrap().run(&mut NoProgress, &CancelToken::new()).unwrap();
    let w = report.warnings.iter().find(|w| w.code == WarningCode::CrossfadeIgnored);
    let w = w.unwrap_or_else(|| panic!("{:?}", report.warnings));
    assert!(w.message.contains("crossfade_s has nothing to cross"), "{w:?}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let codes: Vec<&str> =
        json["warnings"].as_array().unwrap().iter().filter_map(|w| w["code"].as_str()).collect();
    assert!(codes.contains(&"crossfade_ignored"), "{json}");
}

/// Writes `audio` as the content in `format`, runs a job with cleanup off and a WAV output,
/// and returns the report with the content file decoded back.
fn run_uncleaned_wav_job(
    audio: &assembly_core::AudioBuffer,
    format: &OutputFormat,
) -> (assembly_core::Report, assembly_core::AudioBuffer) {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("in.wav");
    write_file(&content, audio, format, &Tags::default()).unwrap();
    let mut spec = Spec::from_json(
        r#"{"version": 1, "content": "in.wav",
            "cleanup": {"remove_fillers": false, "remove_pauses": false,
                        "noise": {"mode": "off"}},
            "output": {"path": "out.wav", "encoding": {"format": "wav"}}}"#,
    )
    .unwrap();
    spec.resolve_paths(dir.path());
    let report = Assembler::new(spec).unwrap().run(&mut NoProgress, &CancelToken::new()).unwrap();
    let decoded =
        load::decode_file(&content, &Default::default(), &CancelToken::new()).unwrap().audio;
    (report, decoded)
}

/// The content is stored compactly (16-bit grid, bit-packed): a 16-bit source at the working
/// rate reads back bit for bit, so the reported input loudness is the decoded file's; a float
/// source is within half a 16-bit step, and its over-full-scale peaks survive to the limiter.
#[test]
fn content_is_stored_losslessly_for_16_bit_and_keeps_float_peaks() {
    let rate = NonZeroU32::new(44_100).unwrap();
    let n = 44_100 * 10;
    for (name, format, gain) in [
        ("pcm16 stereo", OutputFormat::wav16(), 1.0f32),
        (
            "f32 over full scale",
            OutputFormat::Wav { sample_format: assembly_core::encode::WavSampleFormat::Float32 },
            8.0,
        ),
    ] {
        let l: Vec<f32> = synth::speech_like(rate, 8, -18.0, n).iter().map(|x| x * gain).collect();
        let r = synth::speech_like(rate, 9, -21.0, n);
        let audio = assembly_core::AudioBuffer::from_planar(rate, vec![l, r]).unwrap();
        let (report, decoded) = run_uncleaned_wav_job(&audio, &format);
        assert!(decoded.channel(0).iter().any(|x| x.abs() > 1.0) == (gain > 1.0), "{name}");
        let want = assembly_core::analyze::loudness::measure(&decoded).unwrap();
        let got = report.loudness_in;
        // Lossless: equal up to the order of sums. Float: half a 16-bit step moves the
        // loudness by far less than 0.001 LU and the peak by less than 0.001 dB.
        let tol = if gain > 1.0 { 1e-3 } else { 1e-9 };
        assert!((got.integrated_lufs - want.integrated_lufs).abs() < tol, "{name}: {got:?}");
        assert!((got.sample_peak_dbfs - want.sample_peak_dbfs).abs() < tol, "{name}: {got:?}");
        assert!(got.sample_peak_dbfs > 0.5 || gain == 1.0, "{name}: peaks kept: {got:?}");
        assert_eq!(report.output.frames, n as u64, "{name}");
        let out = report.loudness_out.unwrap();
        assert!((out.integrated_lufs + 16.0).abs() < 0.5 && out.true_peak_dbtp <= -1.0, "{out:?}");
    }
}

/// Content at another rate or with more than two channels is downmixed and resampled block by
/// block as it is decoded: the same audio (up to the 16-bit storage grid) as converting the
/// whole decoded file, and exactly `resampled_len` frames long.
#[test]
fn content_is_converted_while_streaming_like_the_whole_file() {
    let hz = |r| NonZeroU32::new(r).unwrap();
    for (from, channels) in [(48_000u32, 1usize), (22_050, 2), (48_000, 6)] {
        let n = from as usize * 7 + 333;
        let planes: Vec<Vec<f32>> =
            (0..channels).map(|c| synth::speech_like(hz(from), c as u64, -20.0, n)).collect();
        let audio = assembly_core::AudioBuffer::from_planar(hz(from), planes).unwrap();
        let (report, decoded) = run_uncleaned_wav_job(&audio, &OutputFormat::wav16());
        let fmt = load::WorkingFormat { rate: hz(44_100), channels: channels.min(2) };
        let whole = load::to_working_format(&decoded, &fmt, &CancelToken::new()).unwrap();
        assert_eq!(whole.frames() as u64, load::resampled_len(n as u64, hz(from), hz(44_100)));
        assert_eq!(report.output.frames, whole.frames() as u64, "{from} Hz × {channels}");
        let want = assembly_core::analyze::loudness::measure(&whole).unwrap();
        let got = report.loudness_in;
        assert!((got.integrated_lufs - want.integrated_lufs).abs() < 1e-3, "{got:?} {want:?}");
        assert!((got.true_peak_dbtp - want.true_peak_dbtp).abs() < 1e-3, "{got:?} {want:?}");
    }
}
