//! End-to-end benchmark: a synthetic episode through the whole Assembler.
//!
//! `cargo run --release -p benches --bin e2e -- --minutes 60 [--keep DIR]`
//!
//! Synthesizes a reproducible episode (word-timed speech-like content with fillers and long
//! pauses at uneven levels, intro, outro, a bed), writes the content as a 128 kbps mono MP3,
//! then times the full job — MP3 in, cleaning, template, ducked bed, mastering, 128 kbps stereo
//! MP3 out — and prints per-stage wall times, x-realtime, CPU time and peak RSS.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Instant;

use assembly_core::encode::{Mp3Bitrate, OutputFormat, Tags, write_file};
use assembly_core::{Assembler, CancelToken, NoProgress, Spec, synth};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// (user + system CPU seconds, peak RSS in MiB) of this process, from /proc.
fn cpu_and_peak_rss() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command name: utime is the 12th, stime the 13th (0-based 11, 12).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let minutes: f64 = arg("--minutes").map_or(Ok(60.0), |m| m.parse())?;
    let keep = arg("--keep").map(PathBuf::from);
    let tmp = tempfile::tempdir()?;
    let dir = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(dir.join("out"))?;

    let t = Instant::now();
    let rate = NonZeroU32::new(44_100).ok_or("rate")?;
    let secs = minutes * 60.0;
    // ~9,000 words, ~200 fillers and ~100 long pauses per hour.
    let script = synth::spoken_words(rate, 42, secs, -24.0, -62.0, 200.0, 100.0);
    let mut samples = script.samples;
    // Uneven levels: every other minute 6 dB quieter (a second speaker further from the mic).
    for (i, s) in samples.iter_mut().enumerate() {
        if (i / (44_100 * 60)) % 2 == 1 {
            *s *= 0.5;
        }
    }
    let words: Vec<_> = script
        .words
        .iter()
        .map(|w| format!(r#"{{"word":{:?},"start":{},"end":{}}}"#, w.text, w.start_s, w.end_s))
        .collect();
    std::fs::write(dir.join("words.json"), format!("[{}]", words.join(",")))?;
    let mono_mp3 = OutputFormat::Mp3 { bitrate: Mp3Bitrate::Cbr { kbps: 128 }, quality: 5 };
    let tags = Tags::default();
    write_file(&dir.join("content.mp3"), &synth::mono(rate, samples), &mono_mp3, &tags)?;
    let sting = synth::chirp(rate, 200.0, 800.0, 0.3, 44_100 * 8);
    let wav = OutputFormat::wav16();
    write_file(&dir.join("intro.wav"), &synth::multi(rate, sting.clone(), 2), &wav, &tags)?;
    write_file(&dir.join("outro.wav"), &synth::multi(rate, sting, 2), &wav, &tags)?;
    let bed = synth::music_like(rate, 3, -20.0, 44_100 * 20);
    write_file(&dir.join("bed.wav"), &synth::multi(rate, bed, 2), &wav, &tags)?;
    eprintln!(
        "synthesized {minutes} min: {} words, {} fillers, {} long pauses ({:.1} s)",
        script.words.len(),
        script.fillers,
        script.long_pauses,
        t.elapsed().as_secs_f64()
    );

    let mut spec = Spec::from_json(
        r#"{
        "version": 1,
        "content": "content.mp3",
        "assets": {"intro": "intro.wav", "outro": "outro.wav", "bed": "bed.wav"},
        "transcript": {"format": "words", "path": "words.json"},
        "template": {
            "segments": [
                {"segment_type": "intro", "asset": "intro"},
                {"segment_type": "content", "asset": "content"},
                {"segment_type": "outro", "asset": "outro"}
            ],
            "timing": {"content_start_offset_s": -1.0, "outro_start_offset_s": -1.0},
            "background_music_rules": [{"asset": "bed", "apply_to_segments": ["content"]}]
        },
        "verify": {"max_attempts": 1},
        "output": {"path": "out/episode.mp3"}
    }"#,
    )?;
    spec.resolve_paths(&dir);
    let (cpu0, _) = cpu_and_peak_rss();
    let t = Instant::now();
    let report = Assembler::new(spec)?.run(&mut NoProgress, &CancelToken::new())?;
    let wall = t.elapsed().as_secs_f64();
    let (cpu1, rss) = cpu_and_peak_rss();
    let audio_s = report.output.duration_ms as f64 / 1000.0;
    println!("episode: {:.1} min out ({:.1} min in)", audio_s / 60.0, minutes);
    for (stage, ms) in &report.stage_ms {
        println!("  {:<8} {:>8.2} s", stage.name(), *ms as f64 / 1000.0);
    }
    println!("wall:     {wall:.2} s  ({:.0}x realtime)", audio_s / wall);
    println!("cpu:      {:.2} s", cpu1 - cpu0);
    println!("peak rss: {rss:.0} MiB (whole process, synthesis included)");
    if let Some(l) = report.loudness_out {
        println!("output:   {:.2} LUFS, {:.2} dBTP", l.integrated_lufs, l.true_peak_dbtp);
    }
    Ok(())
}
