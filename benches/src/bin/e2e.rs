//! End-to-end benchmark: a synthetic episode through the whole Assembler.
//!
//! ```text
//! cargo run --release -p benches --bin e2e -- --minutes 60 [--runs 3] [--dir DIR] [--compare-ffmpeg]
//!     [--leveling on|off|unlabelled] [--noise clean|pink45|hum60|off]
//!     [--outputs one|three|separate]
//! ```
//!
//! Synthesizes a reproducible episode (word-timed speech-like content with fillers and long
//! pauses at uneven levels, plosives that need real limiting, intro, outro, a bed), writes
//! the content as a 128 kbps mono MP3, then times the full job — MP3 in, cleaning, template, ducked bed, mastering, 128 kbps stereo
//! MP3 out — and prints per-stage wall times, x-realtime, CPU time and peak RSS.
//! `--noise pink45` runs the same job on the content with pink noise at −45 dBFS added
//! (`content-noisy.mp3`), so noise reduction's `auto` engages (the default content's room
//! tone is −62 dBFS: it does not); `--noise hum60` adds 60 Hz mains hum (harmonics 1–8 at
//! −40 to −55 dBFS) instead (`content-hum.mp3`), so hum removal engages; `--noise off` runs the default content with noise
//! reduction and hum removal off, the row to compare with the default (what `auto` costs
//! when it does not engage).
//!
//! `--outputs three` asks the one job for three files (issue 22): the default 128 kbps
//! stereo MP3 at −16 LUFS, a 64 kbps mono MP3 at −19 (`podcast_mono`) and a FLAC master at
//! −16; `--outputs separate` runs three jobs one after the other in the same process, one
//! file each (what a backend without several outputs does), and reports their total wall
//! time. Both print each file's loudness as decoded and the full encodes of all three.
//!
//! The inputs are kept in `DIR` (default: `<tmp>/podcast-assembly-e2e-<minutes>min`) and reused
//! by later runs with the same `--minutes`. Every timed run is a fresh child process
//! (`e2e --job DIR`), so its peak RSS is the job's alone; the medians over `--runs` are printed.
//! With `--compare-ffmpeg` an equivalent ffmpeg filter graph (the same cuts, intro/outro, a
//! looped bed ducked under the content, loudness normalization, a true-peak limiter and a
//! 128 kbps LAME encode at the same quality) runs on the same inputs, and the ratio is printed.

use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use assembly_core::edit::SegmentSource;
use assembly_core::encode::{Mp3Bitrate, OutputFormat, Tags, write_file};
use assembly_core::master::{MasterOptions, Preset};
use assembly_core::{Assembler, CancelToken, ProgressEvent, Spec, Stage, synth};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Bump when the synthesized material changes, so stale inputs are rebuilt.
const INPUTS_VERSION: u32 = 6;

/// Length of the music bed, frames (20 s).
const BED_FRAMES: usize = 44_100 * 20;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
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

fn spec_in(dir: &Path) -> Res<Spec> {
    let mut spec = Spec::from_json(benches::EPISODE_SPEC)?;
    spec.resolve_paths(dir);
    Ok(spec)
}

/// Writes the inputs into `dir` unless a previous run left them there for the same length.
fn synthesize(dir: &Path, minutes: f64) -> Res<()> {
    let stamp = dir.join("inputs.stamp");
    let want = format!("v{INPUTS_VERSION} minutes={minutes}");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        eprintln!("reusing the inputs in {}", dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(dir.join("out"))?;
    let _ = std::fs::remove_file(&stamp);
    let t = Instant::now();
    let rate = NonZeroU32::new(44_100).ok_or("rate")?;
    let secs = minutes * 60.0;
    // ~9,000 words, ~200 fillers and ~100 long pauses per hour.
    let script = synth::spoken_words(rate, 42, secs, -24.0, -62.0, 200.0, 100.0);
    let mut samples = script.samples;
    benches::add_plosives(&mut samples, rate, 43, -24.0);
    // Uneven levels: speakers take turns by the minute, at 0, -6 and -3 dB.
    for (i, s) in samples.iter_mut().enumerate() {
        *s *= [1.0, 0.5, 0.708][(i / (44_100 * 60)) % 3];
    }
    let words: Vec<_> = script
        .words
        .iter()
        .map(|w| {
            format!(
                r#"{{"word":{:?},"start":{},"end":{},"speaker":"S{}"}}"#,
                w.text,
                w.start_s,
                w.end_s,
                (w.start_s / 60.0) as usize % 3
            )
        })
        .collect();
    std::fs::write(dir.join("words.json"), format!("[{}]", words.join(",")))?;
    // The same words without speaker labels (`--leveling unlabelled`: the adaptive leveler).
    let unlabelled: Vec<_> = script
        .words
        .iter()
        .map(|w| format!(r#"{{"word":{:?},"start":{},"end":{}}}"#, w.text, w.start_s, w.end_s))
        .collect();
    std::fs::write(dir.join("words-unlabelled.json"), format!("[{}]", unlabelled.join(",")))?;
    let mono_mp3 = OutputFormat::Mp3 { bitrate: Mp3Bitrate::Cbr { kbps: 128 }, quality: 5 };
    let tags = Tags::default();
    let mut content = synth::mono(rate, samples);
    write_file(&dir.join("content.mp3"), &content, &mono_mp3, &tags)?;
    // The hum variant (`--noise hum60`): a ground loop's 60 Hz and harmonics under the speech.
    let hum = synth::mains_hum(rate, 60.0, &benches::HUM_LEVELS_DB, content.frames());
    let mut humming = content.clone();
    humming.channel_mut(0).iter_mut().zip(&hum).for_each(|(x, n)| *x += n);
    write_file(&dir.join("content-hum.mp3"), &humming, &mono_mp3, &tags)?;
    drop((hum, humming));
    // The noisy variant (`--noise pink45`): a fan or hiss at -45 dBFS under the same speech.
    let pink = synth::pink_noise(44, -45.0, content.frames());
    content.channel_mut(0).iter_mut().zip(&pink).for_each(|(x, n)| *x += n);
    write_file(&dir.join("content-noisy.mp3"), &content, &mono_mp3, &tags)?;
    drop(content);
    let sting = synth::chirp(rate, 200.0, 800.0, 0.3, 44_100 * 8);
    let wav = OutputFormat::wav16();
    write_file(&dir.join("intro.wav"), &synth::multi(rate, sting.clone(), 2), &wav, &tags)?;
    write_file(&dir.join("outro.wav"), &synth::multi(rate, sting, 2), &wav, &tags)?;
    let bed = synth::music_like(rate, 3, -20.0, BED_FRAMES);
    write_file(&dir.join("bed.wav"), &synth::multi(rate, bed, 2), &wav, &tags)?;
    std::fs::write(&stamp, want)?;
    eprintln!(
        "synthesized {minutes} min: {} words, {} fillers, {} long pauses ({:.1} s)",
        script.words.len(),
        script.fillers,
        script.long_pauses,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One timed job (the child process): prints `key value` lines for the parent.
fn job(dir: &Path) -> Res<()> {
    let mut spec = spec_in(dir)?;
    // `E2E_LEVELING` (set by `--leveling`): `off`, the named row without leveling;
    // `unlabelled`, the transcript without speaker labels, so the adaptive leveler runs.
    match std::env::var("E2E_LEVELING").as_deref() {
        Ok("off") => {
            spec.cleanup.leveling.mode = assembly_core::analyze::speakers::LevelingMode::Off;
        }
        Ok("unlabelled") => {
            if let Some(t) = &mut spec.transcript {
                t.path = Some(dir.join("words-unlabelled.json"));
            }
        }
        Ok("on") | Err(_) => {}
        Ok(other) => {
            return Err(format!("--leveling: expected on, off or unlabelled, got {other}").into());
        }
    }
    // `E2E_NOISE` (set by `--noise`): `pink45`, the content with pink noise at -45 dBFS.
    match std::env::var("E2E_NOISE").as_deref() {
        Ok("pink45") => spec.content = dir.join("content-noisy.mp3"),
        Ok("hum60") => spec.content = dir.join("content-hum.mp3"),
        // The default content with noise reduction and hum removal off: what `auto`'s
        // decision and hum detection cost when they do not engage.
        Ok("off") => {
            spec.cleanup.noise.mode = assembly_core::analyze::clean::CleanMode::Off;
            spec.cleanup.hum.mode = assembly_core::analyze::clean::CleanMode::Off;
        }
        Ok("clean") | Err(_) => {}
        Ok(other) => {
            return Err(
                format!("--noise: expected clean, pink45, hum60 or off, got {other}").into()
            );
        }
    }
    // `E2E_OUTPUTS` (set by `--outputs`): `three`, one job writing three files; `separate`,
    // the same three files from three jobs run one after the other.
    let [stereo] = spec.outputs() else { return Err("the bench spec has one output".into()) };
    let mut mono = stereo.clone();
    mono.path = dir.join("out/episode-mono.mp3");
    mono.channels = 1;
    mono.encoding = OutputFormat::Mp3 { bitrate: Mp3Bitrate::Cbr { kbps: 64 }, quality: 5 };
    mono.master = Some(MasterOptions::preset(Preset::PodcastMono));
    mono.report = None;
    let mut flac = mono.clone();
    flac.path = dir.join("out/episode.flac");
    flac.channels = 2;
    flac.encoding = OutputFormat::Flac { bits: 16 };
    flac.master = None;
    let three = vec![stereo.clone(), mono, flac];
    let specs: Vec<Spec> = match std::env::var("E2E_OUTPUTS").as_deref() {
        Ok("one") | Err(_) => vec![spec],
        Ok("three") => vec![Spec { output: None, outputs: three, ..spec }],
        Ok("separate") => three
            .into_iter()
            .map(|o| Spec { output: Some(o), outputs: Vec::new(), ..spec.clone() })
            .collect(),
        Ok(other) => {
            return Err(format!("--outputs: expected one, three or separate, got {other}").into());
        }
    };
    let (cpu0, _) = cpu_and_peak_rss();
    let t = Instant::now();
    // Process CPU time at each stage's first event: a stage's CPU is the difference to the
    // next stage's (or the end's).
    let mut stage_cpu: Vec<(Stage, f64)> = Vec::new();
    let mut sink = |e: &ProgressEvent| {
        if stage_cpu.last().map(|s| s.0) != Some(e.stage) {
            stage_cpu.push((e.stage, cpu_and_peak_rss().0));
        }
        ControlFlow::Continue(())
    };
    let mut reports = Vec::new();
    for spec in specs {
        reports.push(Assembler::new(spec)?.run(&mut sink, &CancelToken::new())?);
    }
    let wall = t.elapsed().as_secs_f64();
    let (cpu1, rss) = cpu_and_peak_rss();
    // Stage times summed over the jobs (one job unless `separate`).
    let mut stage_ms = std::collections::BTreeMap::new();
    for r in &reports {
        for (stage, ms) in &r.stage_ms {
            *stage_ms.entry(*stage).or_insert(0u64) += ms;
        }
    }
    for (stage, ms) in &stage_ms {
        println!("stage_{} {}", stage.name(), *ms as f64 / 1000.0);
    }
    for (i, (stage, c)) in stage_cpu.iter().enumerate() {
        // A stage seen again (the next job) is counted from its last start only.
        if stage_cpu[i + 1..].iter().any(|n| n.0 == *stage) {
            continue;
        }
        let next = stage_cpu.get(i + 1).map_or(cpu1, |n| n.1);
        println!("cpu_{} {}", stage.name(), next - c);
    }
    println!("wall {wall}");
    println!("cpu {}", cpu1 - cpu0);
    println!("rss {rss}");
    let report = &reports[0];
    // The whole report beside the output, for looking into a run (verify attempts, plans).
    std::fs::write(dir.join("out/report.json"), serde_json::to_vec_pretty(report)?)?;
    println!("audio {}", report.output.duration_ms as f64 / 1000.0);
    if let Some(l) = report.loudness_out {
        println!("lufs {}", l.integrated_lufs);
        println!("dbtp {}", l.true_peak_dbtp);
    }
    // Every file of every job, as decoded (lossy) or measured while rendering (FLAC).
    let files: Vec<_> = reports.iter().flat_map(|r| &r.outputs).collect();
    if files.len() > 1 {
        for (i, o) in files.iter().enumerate() {
            if let Some(l) = o.loudness {
                println!("out{i}_lufs {}", l.integrated_lufs);
                println!("out{i}_dbtp {}", l.true_peak_dbtp);
                println!("out{i}_target {}", o.master.target_lufs);
                println!("out{i}_ceiling {}", o.master.ceiling_dbtp);
            }
        }
    }
    // Full encodes of the episode: the verify loop's attempts (one for a lossless output),
    // except local repairs, which re-encode only the chunks whose input changed (counted
    // apart, with the chunks they encoded); summed over every file.
    let attempts: Vec<_> = files
        .iter()
        .flat_map(|o| o.verify.as_ref().map_or(&[][..], |v| v.attempts.as_slice()))
        .collect();
    let repairs: Vec<_> = attempts.iter().filter_map(|a| a.measured.repair.as_ref()).collect();
    let lossless = files.iter().filter(|o| o.verify.is_none()).count();
    println!("encodes {}", attempts.len() + lossless - repairs.len());
    println!("repairs {}", repairs.len());
    let chunks = |f: fn(&assembly_core::master::LocalRepair) -> Option<u32>| {
        repairs.iter().map(|r| f(r).unwrap_or(0)).sum::<u32>()
    };
    println!("repair_chunks_encoded {}", chunks(|r| r.chunks_encoded));
    println!("repair_chunks_reused {}", chunks(|r| r.chunks_reused));
    if let Some(p) = report.verify.as_ref().and_then(|v| v.prediction.as_ref()) {
        println!("predicted_dbtp {}", p.predicted_true_peak_dbtp);
        println!("prediction_rounds {}", p.rounds);
    }
    println!("correction_passes {}", report.master.correction_passes);
    if let Some(h) = &report.cleaning.hum {
        println!("hum_removed {}", u8::from(h.engaged));
        if let Some(hum) = &h.hum {
            println!("hum_hz {}", hum.fundamental_hz);
            println!("hum_harmonics {}", hum.harmonics.len());
        }
    }
    if let Some(n) = &report.cleaning.noise {
        println!("denoised {}", u8::from(n.engaged));
        println!("speech_to_noise_db {}", n.speech_to_noise_db);
        println!("noise_floor_db {}", n.noise_floor_db);
        if let Some(after) = n.noise_floor_after_db {
            println!("noise_floor_after_db {after}");
        }
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs `e2e --job dir` `runs` times; returns each run's `key value` lines.
fn timed_runs(dir: &Path, runs: usize) -> Res<Vec<Vec<(String, f64)>>> {
    let exe = std::env::current_exe()?;
    let mut all = Vec::new();
    for i in 0..runs {
        let mut cmd = Command::new(&exe);
        cmd.arg("--job").arg(dir);
        if let Some(l) = arg("--leveling") {
            cmd.env("E2E_LEVELING", l); // read by `job`
        }
        if let Some(n) = arg("--noise") {
            cmd.env("E2E_NOISE", n); // read by `job`
        }
        if let Some(o) = arg("--outputs") {
            cmd.env("E2E_OUTPUTS", o); // read by `job`
        }
        let out = cmd.output()?;
        if !out.status.success() {
            return Err(format!("run {i} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let kv: Vec<(String, f64)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        let get = |k: &str| kv.iter().find(|(n, _)| n == k).map_or(f64::NAN, |p| p.1);
        eprintln!(
            "  run {}: {:.2} s wall, {:.2} s cpu, {:.0} MiB peak",
            i + 1,
            get("wall"),
            get("cpu"),
            get("rss")
        );
        all.push(kv);
    }
    Ok(all)
}

/// The same job done by ffmpeg: a cut graph (decode, `asegment`, `concat`) to a float WAV, then
/// loudnorm's two passes over the mixing graph, the second encoding with LAME; returns the
/// wall time of all three in seconds. (One graph doing the cut and the mix stalls in ffmpeg
/// 5.1: `asegment` and `concat` feeding `amix` produce no output.)
fn ffmpeg_run(dir: &Path) -> Res<f64> {
    // The same cuts as the Assembler's edit list: keep the source spans it keeps.
    let plan = Assembler::new(spec_in(dir)?)?.plan(&CancelToken::new())?;
    let rate = f64::from(plan.edit.sample_rate);
    let mut bounds = Vec::new();
    let mut keep = Vec::new();
    let mut pos = 0u64;
    for seg in &plan.edit.segments {
        if let SegmentSource::Source { source_start_frame } = seg.source {
            if source_start_frame > pos {
                bounds.push(source_start_frame);
                keep.push(false);
            }
            bounds.push(source_start_frame + seg.frames);
            keep.push(true);
            pos = source_start_frame + seg.frames;
        }
    }
    keep.push(false); // the tail after the last kept span
    let content_s = plan.edit.output_frames as f64 / rate;
    let mut g = String::new();
    let splits: Vec<String> = bounds.iter().map(|b| b.to_string()).collect();
    g += &format!("[0:a]asegment=samples={}", splits.join("|"));
    for i in 0..keep.len() {
        g += &format!("[s{i}]");
    }
    g += ";\n";
    let mut kept = 0;
    for (i, k) in keep.iter().enumerate() {
        if !*k {
            g += &format!("[s{i}]anullsink;\n");
        }
    }
    for (i, k) in keep.iter().enumerate() {
        if *k {
            g += &format!("[s{i}]");
            kept += 1;
        }
    }
    g += &format!("concat=n={kept}:v=0:a=1[out]\n");
    let cut_graph = dir.join("ffmpeg-cut.txt");
    std::fs::write(&cut_graph, g)?;
    let cut = dir.join("out/ffmpeg-cut.wav");
    // Mixing: intro/outro crossfaded, the bed looped and ducked under the content by a
    // sidechain compressor; then BS.1770 normalization (loudnorm) with its true-peak limit.
    let mix = format!(
        "[0:a]aformat=channel_layouts=stereo,asplit=2[c1][c2];\
         [3:a]aloop=loop=-1:size={BED_FRAMES},atrim=duration={content_s},volume=-6dB[bed];\
         [bed][c2]sidechaincompress=threshold=0.02:ratio=8:attack=50:release=400[duck];\
         [c1][duck]amix=inputs=2:normalize=0:duration=first[cm];\
         [1:a][cm]acrossfade=d=1[ic];[ic][2:a]acrossfade=d=1[ep];[ep]"
    );
    let ffmpeg = |args: &[std::ffi::OsString]| -> Res<String> {
        let out =
            Command::new("ffmpeg").args(["-hide_banner", "-nostats", "-y"]).args(args).output()?;
        if !out.status.success() {
            return Err(format!("ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let path = |p: &str| dir.join(p).into_os_string();
    let inputs = [os("-i"), cut.clone().into_os_string(), os("-i"), path("intro.wav")];
    let inputs = [&inputs[..], &[os("-i"), path("outro.wav"), os("-i"), path("bed.wav")]].concat();
    let t = Instant::now();
    // 1. Decode and cut.
    let a =
        [os("-i"), path("content.mp3"), os("-filter_complex_script"), cut_graph.into_os_string()];
    let b = [os("-map"), os("[out]"), os("-c:a"), os("pcm_f32le"), cut.clone().into_os_string()];
    ffmpeg(&([&a[..], &b[..]].concat()))?;
    // 2. Mix and measure (loudnorm's first pass).
    let measure = format!("{mix}loudnorm=I=-16:TP=-1:LRA=11:print_format=json");
    let tail = [os("-filter_complex"), os(&measure), os("-f"), os("null"), os("-")];
    let log = ffmpeg(&([&inputs[..], &tail[..]].concat()))?;
    let field = |k: &str| -> Res<String> {
        let i = log.find(&format!("\"{k}\" : \"")).ok_or_else(|| format!("no {k}: {log}"))?;
        let rest = &log[i + k.len() + 6..];
        Ok(rest[..rest.find('"').unwrap_or(0)].to_string())
    };
    // 3. Mix again, normalize linearly with the measured values, limit, encode.
    let apply = format!(
        "{mix}loudnorm=I=-16:TP=-1:LRA=11:measured_I={}:measured_TP={}:measured_LRA={}:\
         measured_thresh={}:offset={}:linear=true,aresample=44100[out]",
        field("input_i")?,
        field("input_tp")?,
        field("input_lra")?,
        field("input_thresh")?,
        field("target_offset")?
    );
    let tail = [
        os("-filter_complex"),
        os(&apply),
        os("-map"),
        os("[out]"),
        os("-c:a"),
        os("libmp3lame"),
        os("-b:a"),
        os("128k"),
        os("-compression_level"),
        os("5"),
        path("out/ffmpeg.mp3"),
    ];
    ffmpeg(&([&inputs[..], &tail[..]].concat()))?;
    let wall = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&cut);
    Ok(wall)
}

fn main() -> Res<()> {
    if let Some(dir) = arg("--job") {
        return job(Path::new(&dir));
    }
    let minutes: f64 = arg("--minutes").map_or(Ok(60.0), |m| m.parse())?;

    let runs: usize = arg("--runs").map_or(Ok(3), |m| m.parse())?;
    let dir = arg("--dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("podcast-assembly-e2e-{minutes}min")));
    synthesize(&dir, minutes)?;
    eprintln!("timing {runs} runs of the whole job, each in a fresh process");
    let all = timed_runs(&dir, runs.max(1))?;
    let med = |k: &str| {
        median(all.iter().filter_map(|kv| kv.iter().find(|(n, _)| n == k).map(|p| p.1)).collect())
    };
    let audio_s = med("audio");
    let wall = med("wall");
    println!("episode: {:.1} min out ({minutes} min in), medians of {runs} runs", audio_s / 60.0);
    let mut non_encode = 0.0;
    for (k, _) in &all[0] {
        if let Some(stage) = k.strip_prefix("stage_") {
            let s = med(k);
            if stage != "render" {
                non_encode += s;
            }
            let cpu = med(&format!("cpu_{stage}"));
            println!("  {stage:<8} {s:>8.2} s  (cpu {cpu:>6.2} s)");
        }
    }
    println!("  (all stages before render: {non_encode:.2} s)");
    println!("wall:     {wall:.2} s  ({:.0}x realtime)", audio_s / wall);
    println!("cpu:      {:.2} s", med("cpu"));
    println!("peak rss: {:.0} MiB", med("rss"));
    println!("output:   {:.2} LUFS, {:.2} dBTP", med("lufs"), med("dbtp"));
    for i in 0.. {
        if !all[0].iter().any(|(k, _)| *k == format!("out{i}_lufs")) {
            break;
        }
        println!(
            "  file {i}: {:.2} LUFS (target {:.1}), {:.2} dBTP (ceiling {:.1})",
            med(&format!("out{i}_lufs")),
            med(&format!("out{i}_target")),
            med(&format!("out{i}_dbtp")),
            med(&format!("out{i}_ceiling"))
        );
    }
    println!(
        "encodes:  {} full encode(s) (median); codec prediction said {:.2} dBTP after {} \
         round(s); master correction passes {}",
        med("encodes"),
        med("predicted_dbtp"),
        med("prediction_rounds"),
        med("correction_passes")
    );
    println!(
        "repairs:  {} local repair(s) (median), re-encoding {} chunk(s) and reusing {}",
        med("repairs"),
        med("repair_chunks_encoded"),
        med("repair_chunks_reused")
    );
    println!(
        "noise:    denoised {} (median); speech-to-noise {:.1} dB; floor {:.1} -> {:.1} dBFS",
        med("denoised"),
        med("speech_to_noise_db"),
        med("noise_floor_db"),
        med("noise_floor_after_db")
    );
    println!(
        "hum:      removed {} (median); {:.2} Hz, {} harmonics",
        med("hum_removed"),
        med("hum_hz"),
        med("hum_harmonics")
    );
    if flag("--compare-ffmpeg") {
        if Command::new("ffmpeg").arg("-version").output().is_err() {
            println!("ffmpeg:   not installed, comparison skipped");
        } else {
            let f = ffmpeg_run(&dir)?;
            println!(
                "ffmpeg:   {f:.2} s ({:.0}x realtime); podcast-assembly is {:.1}x faster",
                audio_s / f,
                f / wall
            );
        }
    }
    Ok(())
}
