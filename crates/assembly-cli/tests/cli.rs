//! The CLI end to end: real files in, numbers out, clean errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podcast-assemble"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assembly-core/tests/fixtures").join(name)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the binary runs")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("valid JSON on stdout")
}

#[test]
fn probe_json_reports_exact_length() {
    let v = json(&run(bin().args(["probe", "--json"]).arg(fixture("speech.flac"))));
    let reference = json(&run(bin().args(["probe", "--json"]).arg(fixture("speech.wav"))));
    assert_eq!(v["container"], "flac");
    assert_eq!(v["channels"], 1);
    // FLAC is lossless: the same frame count as the WAV it was made from.
    assert_eq!(v["frames"], reference["frames"]);
    let frames = v["frames"].as_u64().unwrap();
    let rate = v["sample_rate"].as_u64().unwrap();
    assert_eq!(v["duration_ms"].as_u64().unwrap(), (frames * 1000 + rate / 2) / rate);
}

#[test]
fn loudness_json_matches_the_library() {
    let v = json(&run(bin().args(["loudness", "--json"]).arg(fixture("speech.wav"))));
    let i = v["integrated_lufs"].as_f64().unwrap();
    assert!((-40.0..-5.0).contains(&i), "{v}");
    assert!(v["true_peak_dbtp"].as_f64().unwrap() >= v["sample_peak_dbfs"].as_f64().unwrap());
}

#[test]
fn convert_to_mp3_resamples_and_keeps_the_length() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("speech.mp3");
    let o = run(bin().arg("convert").arg(fixture("speech.wav")).arg(&out).args([
        "--rate",
        "48000",
        "--channels",
        "2",
        "--bitrate",
        "96",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let src = json(&run(bin().args(["probe", "--json"]).arg(fixture("speech.wav"))));
    let dst = json(&run(bin().args(["probe", "--json"]).arg(&out)));
    assert_eq!(dst["sample_rate"], 48_000);
    assert_eq!(dst["channels"], 2);
    // Exact resampled length (round to nearest), and the LAME tag makes the decode exact.
    let (f, r) = (src["frames"].as_u64().unwrap(), src["sample_rate"].as_u64().unwrap());
    assert_eq!(dst["frames"].as_u64().unwrap(), (f * 48_000 + r / 2) / r);
    // Only the final file is left: no temp files.
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("speech.mp3")]);
}

#[test]
fn errors_are_one_clear_line_without_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.wav");
    let o = run(bin().arg("probe").arg(&missing));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nope.wav"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");

    let garbage = dir.path().join("text.mp3");
    std::fs::write(&garbage, "this is not audio at all, just text\n".repeat(50)).unwrap();
    let o = run(bin().arg("loudness").arg(&garbage));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("text.mp3") && !err.contains("panicked"), "{err}");

    let o = run(bin().arg("convert").arg(fixture("speech.wav")).arg(dir.path().join("o.ogg")));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(".ogg"));
    let o = run(bin()
        .arg("convert")
        .arg(fixture("speech.wav"))
        .arg(dir.path().join("o.mp3"))
        .args(["--bitrate", "7"]));
    assert!(!o.status.success());
    assert!(!dir.path().join("o.mp3").exists());
}

#[test]
fn demo_assembles_the_bundled_episode_and_plan_matches_run() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(bin().arg("demo").arg(dir.path()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("input/out");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let plan = json(&run(bin().args(["plan", "--json"]).arg(dir.path().join("input/spec.json"))));
    // The dry run predicts the rendered length exactly.
    assert_eq!(report["output"]["duration_ms"], plan["duration_ms"]);
    let probe = json(&run(bin().args(["probe", "--json"]).arg(out.join("episode.mp3"))));
    assert_eq!(probe["frames"], report["output"]["frames"]);
    assert_eq!(probe["chapters"].as_array().unwrap().len(), 3);
    // Mastered: -16 LUFS within the verify tolerance, true peak under -1 dBTP.
    let lufs = report["loudness_out"]["integrated_lufs"].as_f64().unwrap();
    assert!((lufs + 16.0).abs() <= 0.5, "{lufs}");
    assert!(report["loudness_out"]["true_peak_dbtp"].as_f64().unwrap() <= -1.0);
    // The demo's fillers, the retake and the censored word are all in the edit list.
    let reasons: Vec<&str> =
        report["edits"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap()).collect();
    for r in ["filler", "pause", "flubber", "censor"] {
        assert!(reasons.contains(&r), "{r} missing from {reasons:?}");
    }
    // The review page is written beside the episode, listed and printed, and plays the
    // episode by its relative path, one marker per edit.
    let page = out.join("review.html");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(&format!("review page: {}", page.display())), "{stdout}");
    let sidecars = report["sidecars"].as_array().unwrap();
    assert!(sidecars.iter().any(|p| p.as_str().unwrap().ends_with("review.html")));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(r#"src="episode.mp3""#));
    let start = html.find(r#"id="review-data">"#).unwrap() + r#"id="review-data">"#.len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    assert_eq!(data["edits"].as_array().unwrap().len(), reasons.len());
    // At most 2,000 equal columns: ceil(frames / ceil(frames / 2000)) of them.
    let frames = report["output"]["frames"].as_u64().unwrap();
    let columns = frames.div_ceil(frames.div_ceil(2_000));
    assert_eq!(data["waveform"]["min"].as_array().unwrap().len() as u64, columns);
    // A rerun resumes from the checkpoints in the work folder and writes the same bytes.
    let first = std::fs::read(out.join("episode.mp3")).unwrap();
    let again = json(&run(bin().args(["run", "--json"]).arg(dir.path().join("input/spec.json"))));
    assert_eq!(again["stages_resumed"].as_array().unwrap().len(), 4);
    assert_eq!(std::fs::read(out.join("episode.mp3")).unwrap(), first);
}

#[test]
fn run_reports_every_spec_problem() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    std::fs::write(
        &spec,
        r#"{"version": 1, "content": "missing.wav", "output": {"path": "nodir/o.mp3", "channels": 5}}"#,
    )
    .unwrap();
    let o = run(bin().arg("run").arg(&spec));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    for path in ["content:", "output.path:", "output.channels:"] {
        assert!(err.contains(path), "{path} not in {err}");
    }
}
