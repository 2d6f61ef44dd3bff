//! Kill test: `podcast-assemble run` with a work folder, SIGKILLed at random moments spread
//! over a whole run (so across every stage), then rerun. The job always completes, its files
//! are byte-identical to an uninterrupted run, no temp file is left beside them, and the rerun
//! reuses exactly the stages whose checkpoints the killed run had stored.

use std::num::NonZeroU32;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assembly_core::encode::{OutputFormat, Tags, write_file};
use assembly_core::synth;

/// Content length, s. Long enough that every stage of a debug-build run takes a while.
const CONTENT_S: f64 = 30.0;
/// Kill points, spread evenly (with jitter) over the measured run time.
const KILLS: usize = 20;
/// Checkpointed stages in run order, with their checkpoint file names.
const STAGES: [(&str, &str); 4] = [
    ("analyze", "analyze.checkpoint"),
    ("edit", "edit.checkpoint"),
    ("arrange", "arrange.checkpoint"),
    ("master", "master.checkpoint"),
];
/// Every file the job writes into `out/`.
const OUTPUTS: [&str; 5] =
    ["chapters.json", "episode.mp3", "episode.srt", "episode.vtt", "words.json"];

/// Writes a word-timed recording, an intro, an outro, a bed and the spec into `dir`.
fn write_job(dir: &Path) {
    let rate = NonZeroU32::new(22_050).unwrap();
    let script = synth::spoken_words(rate, 23, CONTENT_S, -26.0, -65.0, 2_000.0, 600.0);
    let words: Vec<serde_json::Value> = script
        .words
        .iter()
        .map(|w| serde_json::json!({"word": w.text, "start": w.start_s, "end": w.end_s}))
        .collect();
    std::fs::write(dir.join("words.json"), serde_json::to_vec(&words).unwrap()).unwrap();
    let wav = OutputFormat::wav16();
    let t = Tags::default();
    write_file(&dir.join("raw.wav"), &synth::mono(rate, script.samples), &wav, &t).unwrap();
    let r44 = NonZeroU32::new(44_100).unwrap();
    let sting = synth::multi(r44, synth::chirp(r44, 300.0, 900.0, 0.3, 44_100 * 3), 2);
    write_file(&dir.join("intro.wav"), &sting, &wav, &t).unwrap();
    write_file(&dir.join("outro.wav"), &sting, &wav, &t).unwrap();
    let bed = synth::multi(r44, synth::sine(r44, 220.0, 0.2, 44_100 * 7), 2);
    write_file(&dir.join("bed.wav"), &bed, &wav, &t).unwrap();
    std::fs::create_dir(dir.join("out")).unwrap();
    let spec = serde_json::json!({
        "version": 1,
        "content": "raw.wav",
        "assets": {"intro": "intro.wav", "outro": "outro.wav", "bed": "bed.wav"},
        "transcript": {"format": "words", "path": "words.json"},
        "template": {
            "segments": [
                {"segment_type": "intro", "asset": "intro", "chapter_title": "Intro"},
                {"segment_type": "content", "asset": "content", "chapter_title": "Talk"},
                {"segment_type": "outro", "asset": "outro"}
            ],
            "timing": {"content_start_offset_s": -0.5, "outro_start_offset_s": -0.5},
            "background_music_rules": [{"asset": "bed", "apply_to_segments": ["content"]}]
        },
        "output": {
            "path": "out/episode.mp3",
            "encoding": {"format": "mp3", "bitrate": {"mode": "cbr", "kbps": 96}},
            "tags": {"title": "Kill test"},
            "srt": "out/episode.srt",
            "vtt": "out/episode.vtt",
            "words": "out/words.json",
            "chapters_json": "out/chapters.json"
        },
        "work_dir": "work"
    });
    std::fs::write(dir.join("spec.json"), serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
}

fn run_cmd(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_podcast-assemble"));
    c.args(["run", "spec.json", "--json"]).current_dir(dir);
    c
}

/// Runs the job to the end and returns its report.
fn run_to_end(dir: &Path) -> serde_json::Value {
    let out = run_cmd(dir).output().expect("the binary runs");
    assert!(out.status.success(), "run failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("a JSON report on stdout")
}

fn names(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<String> = rd.map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    v.sort();
    v
}

/// The stages whose checkpoint is stored under its final name.
fn checkpointed(dir: &Path) -> Vec<&'static str> {
    let have = names(&dir.join("work"));
    STAGES.iter().filter(|(_, f)| have.iter().any(|h| h == f)).map(|(s, _)| *s).collect()
}

fn resumed(report: &serde_json::Value) -> Vec<String> {
    report["stages_resumed"]
        .as_array()
        .expect("stages_resumed is a list")
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn outputs(dir: &Path) -> Vec<Vec<u8>> {
    OUTPUTS.iter().map(|f| std::fs::read(dir.join("out").join(f)).unwrap()).collect()
}

fn clear(dir: &Path) {
    for f in names(&dir.join("out")) {
        std::fs::remove_file(dir.join("out").join(f)).unwrap();
    }
    let _ = std::fs::remove_dir_all(dir.join("work"));
}

/// Spawns a run and SIGKILLs it after `after`; true if it was killed before finishing.
fn spawn_and_kill(dir: &Path, after: Duration) -> bool {
    let mut child = run_cmd(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + after;
    // Poll so a run that finishes early is noticed (and not "killed" after the fact).
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
    child.kill().unwrap(); // SIGKILL on unix
    let status = child.wait().unwrap();
    !status.success()
}

#[test]
fn killed_runs_resume_and_give_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_job(dir);

    // The uninterrupted reference.
    let t0 = Instant::now();
    let reference = run_to_end(dir);
    let full = t0.elapsed();
    assert!(resumed(&reference).is_empty(), "{reference}");
    assert_eq!(names(&dir.join("out")), OUTPUTS);
    let want = outputs(dir);
    eprintln!("uninterrupted run: {full:?}, stage_ms {}", reference["stage_ms"]);

    let mut rng = synth::Rng::new(0x6b11);
    let mut killed = 0;
    let mut killed_past_edit = 0;
    let mut resumed_counts = [0usize; 5];
    for i in 0..KILLS {
        clear(dir);
        let at = full.mul_f64((i as f64 + rng.next_f64()) / KILLS as f64);
        let was_killed = spawn_and_kill(dir, at);
        // Every other round is killed a second time, later in the resumed run.
        let was_killed = if was_killed && i % 2 == 1 {
            spawn_and_kill(dir, full.mul_f64(rng.next_f64() * 0.5)) || was_killed
        } else {
            was_killed
        };
        let done = checkpointed(dir);
        killed += usize::from(was_killed);
        killed_past_edit += usize::from(was_killed && done.contains(&"edit"));

        let report = run_to_end(dir);
        let got = resumed(&report);
        eprintln!(
            "kill {i:2} at {:6.0} ms: killed {was_killed}, checkpoints {done:?}, resumed {got:?}",
            at.as_secs_f64() * 1e3
        );
        // Exactly the stored stages are reused; nothing is recomputed that was complete.
        assert_eq!(got, done, "round {i}");
        resumed_counts[got.len()] += 1;
        // Byte-identical to the uninterrupted run, and nothing else (no temp file) in `out/`.
        assert_eq!(names(&dir.join("out")), OUTPUTS, "round {i}");
        let now = outputs(dir);
        for (f, (a, b)) in OUTPUTS.iter().zip(now.iter().zip(&want)) {
            assert!(a == b, "round {i}: {f} differs from the uninterrupted run");
        }
        // The work folder holds only the checkpoints, no half-written temp.
        let work: Vec<String> = names(&dir.join("work"));
        assert!(work.iter().all(|f| f.ends_with(".checkpoint")), "round {i}: {work:?}");
    }
    eprintln!(
        "{killed}/{KILLS} runs killed, {killed_past_edit} after the edit checkpoint; \
         reruns resuming 0..=4 stages: {resumed_counts:?}"
    );
    // The kill points span the run: some land before any checkpoint, some after Edit.
    assert!(killed >= KILLS / 2, "only {killed} of {KILLS} runs were killed");
    assert!(resumed_counts[0] >= 1, "{resumed_counts:?}");
    assert!(killed_past_edit >= 1, "no kill landed after the edit checkpoint");
}
