//! Instruction-count guard: runs one pipeline stage on fixed, small, synthetic input so
//! callgrind can count the instructions it executes; and compares counts with the baseline.
//!
//! ```text
//! stage_cost list                       the stage names and what each measures
//! stage_cost prepare DIR                synthesize every stage's input into DIR/<stage>/
//! stage_cost run STAGE [--dir DIR] [--repeat N]
//!                                       load the stage's input (from DIR, else synthesize it
//!                                       here), then run the stage N times (default 1) inside
//!                                       `callgrind_measured_region`
//! stage_cost compare --baseline FILE --rustc S --valgrind S [--update REASON] stage=OUT...
//!                                       compare callgrind outputs with the baseline
//! ```
//!
//! Meant to be driven by `scripts/callgrind-check.sh`, which runs `run <stage>` under
//! `valgrind --tool=callgrind --zero-before=<region> --dump-after=<region>`: every instruction
//! of every thread between entering and leaving the region (and nothing of loading the input)
//! lands in one dump. The script runs `prepare` natively first, so valgrind never runs the
//! synthesis and fixture encodes, which cost more instructions than most stages. Inputs come from `assembly_core::synth` with fixed seeds, so
//! the count is a property of the code and the toolchain alone. See `docs/performance.md`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::num::{NonZeroU32, NonZeroUsize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use assembly_core::analyze::activity::{ActivityMap, ActivityOptions};
use assembly_core::analyze::adaptive::level_adaptive;
use assembly_core::analyze::clean::{CleanPlan, clean};
use assembly_core::analyze::hum::detect_hum;
use assembly_core::analyze::loudness::LoudnessMeter;
use assembly_core::analyze::speakers::{Leveled, LevelingOptions, level_speakers};
use assembly_core::arrange::{level_segments, place};
use assembly_core::edit::{self, CleanupOptions};
use assembly_core::encode::{self, OutputFormat, Tags};
use assembly_core::load::{self, DecodeOptions};
use assembly_core::master::MasterOptions;
use assembly_core::render::{Mix, RenderOptions, Sources, render_mastered};
use assembly_core::transcript::{Transcript, Word};
use assembly_core::{
    Assembler, AudioBuffer, CancelToken, CompactAudio, FrameSource, NoProgress, Spec, synth,
};
use benches::callgrind::{Baseline, Comparison, parse_callgrind_ir};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;
/// A stage's measured work, set up and ready to run.
type Work = Box<dyn FnMut() -> BoxResult<()>>;

const RATE: u32 = 44_100;

/// The stages, in pipeline order, with what each measures.
const STAGES: &[(&str, &str)] = &[
    ("decode_mp3", "decode 10 s of 128 kbit/s stereo MP3 from memory"),
    ("decode_flac", "decode 10 s of 16-bit stereo FLAC from memory"),
    ("decode_wav", "decode 10 s of 16-bit stereo WAV from memory"),
    ("resample_fft", "resample 10 s of stereo 44.1 kHz to 48 kHz (FFT path)"),
    ("resample_sinc", "resample 2 s of stereo 44.1 kHz to 44.101 kHz (async sinc path)"),
    ("loudness", "integrated loudness, range and true peak of 10 s of stereo"),
    ("activity", "speech-activity analysis of 20 s of mono speech"),
    ("compact", "store 20 s of mono speech as CompactAudio and read it back in 4096-frame blocks"),
    ("edit_plan", "edit plan (fillers, pauses, splices) of 30 s of worded mono speech"),
    (
        "speaker_leveling",
        "speaker leveling of 30 s of worded mono speech (three labelled speakers in turns of 8 \
         words): measure, plan the envelope, read it all through Leveled",
    ),
    (
        "adaptive_leveling",
        "adaptive leveling of 30 s of worded mono speech without labels (voices at 0, -6 and \
         +6 dB in turns of 8 words; the activity map made beforehand): plan, read through Leveled",
    ),
    (
        "hum",
        "hum removal of 10 s of mono speech with 60 Hz mains hum (harmonics 1-8 at -40 to -55 \
         dBFS): detect in the activity map's quiet parts (map made beforehand), notch through \
         analyze::clean (one thread)",
    ),
    (
        "denoise",
        "noise reduction (analyze::clean) of 10 s of mono speech with pink noise at -45 dBFS: \
         44.1 kHz to 48 kHz, RNNoise, back (one thread)",
    ),
    ("render", "two-pass mastered render (mix, ducked bed, limiter) of a 30 s stereo episode"),
    ("encode_mp3", "encode 10 s of stereo to a 128 kbit/s MP3 file (quality 5)"),
    ("assembler", "whole Assembler run: 20 s MP3 episode with transcript, intro, outro, bed"),
];

fn rate() -> NonZeroU32 {
    NonZeroU32::new(RATE).unwrap_or(NonZeroU32::MIN)
}

fn secs(s: usize) -> usize {
    RATE as usize * s
}

/// Stereo speech-like audio: two "speakers" at different levels.
fn stereo_speech(seconds: usize) -> BoxResult<AudioBuffer> {
    let n = secs(seconds);
    Ok(AudioBuffer::from_planar(
        rate(),
        vec![synth::speech_like(rate(), 1, -20.0, n), synth::speech_like(rate(), 2, -22.0, n)],
    )?)
}

// Inputs are synthesized by `prepare` (natively, outside valgrind: synthesis and the fixture
// encodes cost far more instructions than most stages) into files that `run` only reads.

/// Writes `buf` as raw planar little-endian f32 with a small header (rate, channels, frames).
fn write_audio(path: &Path, buf: &AudioBuffer) -> BoxResult<()> {
    let mut bytes = Vec::with_capacity(16 + buf.frames() * buf.channel_count() * 4);
    bytes.extend_from_slice(&buf.sample_rate().get().to_le_bytes());
    bytes.extend_from_slice(&(buf.channel_count() as u32).to_le_bytes());
    bytes.extend_from_slice(&(buf.frames() as u64).to_le_bytes());
    for c in 0..buf.channel_count() {
        for s in buf.channel(c) {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
    }
    Ok(std::fs::write(path, bytes)?)
}

fn read_audio(path: &Path) -> BoxResult<AudioBuffer> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = || format!("{}: not a stage_cost audio file", path.display());
    let word =
        |i: usize| -> BoxResult<[u8; 4]> { Ok(bytes.get(i..i + 4).ok_or_else(bad)?.try_into()?) };
    let rate = NonZeroU32::new(u32::from_le_bytes(word(0)?)).ok_or_else(bad)?;
    let channels = u32::from_le_bytes(word(4)?) as usize;
    let frames = u64::from_le_bytes(bytes.get(8..16).ok_or_else(bad)?.try_into()?) as usize;
    let body = bytes.get(16..).ok_or_else(bad)?;
    if channels == 0 || body.len() != channels * frames * 4 {
        return Err(bad().into());
    }
    let planes = body
        .chunks_exact(frames * 4)
        .map(|p| p.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        .collect();
    Ok(AudioBuffer::from_planar(rate, planes)?)
}

/// Words as `text<TAB>start bits<TAB>end bits` lines (f64 bit patterns: exact round trip).
fn write_words(path: &Path, words: &[synth::SpokenWord]) -> BoxResult<()> {
    let text: String = words
        .iter()
        .map(|w| format!("{}\t{:x}\t{:x}\n", w.text, w.start_s.to_bits(), w.end_s.to_bits()))
        .collect();
    Ok(std::fs::write(path, text)?)
}

fn read_transcript(path: &Path) -> BoxResult<Transcript> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut words = Vec::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        let (Some(w), Some(a), Some(b)) = (f.next(), f.next(), f.next()) else {
            return Err(format!("{}: bad line {line:?}", path.display()).into());
        };
        let bits = |v: &str| u64::from_str_radix(v, 16).map(f64::from_bits);
        words.push(Word::new(w, bits(a)?, bits(b)?));
    }
    Ok(Transcript::from_words(words)?.0)
}

/// Reads a mono `src` from start to end in 4096-frame blocks (each kept from the optimizer).
fn read_through(src: &dyn FrameSource) {
    let mut block = vec![0.0f32; 4096];
    let mut pos = 0u64;
    while pos < src.frames() {
        src.read(pos, &mut [block.as_mut_slice()]);
        black_box(&block);
        pos += 4096;
    }
}

fn encoded_path(dir: &Path, format: &OutputFormat) -> PathBuf {
    dir.join(format!("input.{}", format.extension()))
}

/// Speech runs: 8 s talking, 0.6 s pause, a 2.5 s pause every fourth run (as the render bench).
fn speech_runs(start: u64, end: u64) -> Vec<Range<u64>> {
    let mut v = Vec::new();
    let mut t = start;
    let mut k = 0u64;
    while t < end {
        let len = 8 * u64::from(RATE);
        v.push(t..(t + len).min(end));
        k += 1;
        t += len + if k.is_multiple_of(4) { 110_250 } else { 26_460 };
    }
    v
}

fn decode_format(stage: &str) -> Option<OutputFormat> {
    match stage {
        "decode_mp3" => Some(OutputFormat::mp3_cbr(128)),
        "decode_flac" => Some(OutputFormat::Flac { bits: 16 }),
        "decode_wav" => Some(OutputFormat::wav16()),
        _ => None,
    }
}

/// Synthesizes the named stage's input into `dir` (run natively, not counted).
fn prepare(stage: &str, dir: &Path) -> BoxResult<()> {
    std::fs::create_dir_all(dir)?;
    let r = rate();
    let tags = Tags::default();
    match stage {
        s if decode_format(s).is_some() => {
            let format = decode_format(s).ok_or("format")?;
            encode::write_file(&encoded_path(dir, &format), &stereo_speech(10)?, &format, &tags)?;
        }
        "resample_fft" | "loudness" | "encode_mp3" => {
            write_audio(&dir.join("input.f32"), &stereo_speech(10)?)?;
        }
        "resample_sinc" => write_audio(&dir.join("input.f32"), &stereo_speech(2)?)?,
        "activity" | "compact" => {
            let s = synth::spoken_words(r, 42, 20.0, -20.0, -60.0, 200.0, 100.0);
            write_audio(&dir.join("input.f32"), &synth::mono(r, s.samples))?;
        }
        "edit_plan" | "speaker_leveling" | "adaptive_leveling" => {
            // Fillers and long pauses at 3x the e2e episode's hourly rate, so 30 s has some.
            let s = synth::spoken_words(r, 7, 30.0, -20.0, -60.0, 600.0, 360.0);
            write_words(&dir.join("words.tsv"), &s.words)?;
            write_audio(&dir.join("input.f32"), &synth::mono(r, s.samples))?;
        }
        "hum" => {
            let s = synth::spoken_words(r, 8, 10.0, -20.0, -75.0, 0.0, 0.0);
            let hum = synth::mains_hum(r, 60.0, &benches::HUM_LEVELS_DB, s.samples.len());
            let x = s.samples.iter().zip(&hum).map(|(a, b)| a + b).collect();
            write_audio(&dir.join("input.f32"), &synth::mono(r, x))?;
        }
        "denoise" => {
            let s = synth::spoken_words(r, 5, 10.0, -20.0, f64::NEG_INFINITY, 0.0, 0.0);
            let pink = synth::pink_noise(6, -45.0, s.samples.len());
            let noisy = s.samples.iter().zip(&pink).map(|(a, b)| a + b).collect();
            write_audio(&dir.join("input.f32"), &synth::mono(r, noisy))?;
        }
        "render" => {
            // The render bench's episode, shortened: 5 s intro, 30 s talk, 6 s outro, 9 s bed.
            let stereo = |seed, db, n| synth::multi(r, synth::music_like(r, seed, db, n), 2);
            write_audio(&dir.join("intro.f32"), &stereo(1, -16.0, secs(5)))?;
            let talk = synth::mono(r, synth::speech_like(r, 42, -24.0, secs(30)));
            write_audio(&dir.join("talk.f32"), &talk)?;
            write_audio(&dir.join("outro.f32"), &stereo(2, -16.0, secs(6)))?;
            write_audio(&dir.join("bed.f32"), &stereo(3, -20.0, secs(9)))?;
        }
        "assembler" => {
            // The e2e benchmark's job on 20 s: MP3 content with a word transcript, WAV intro,
            // outro and bed, 128 kbit/s stereo MP3 out.
            let script = synth::spoken_words(r, 42, 20.0, -24.0, -62.0, 600.0, 360.0);
            let words: Vec<_> = script
                .words
                .iter()
                .map(|w| {
                    format!(r#"{{"word":{:?},"start":{},"end":{}}}"#, w.text, w.start_s, w.end_s)
                })
                .collect();
            std::fs::write(dir.join("words.json"), format!("[{}]", words.join(",")))?;
            let mut samples = script.samples;
            benches::add_plosives(&mut samples, r, 43, -24.0);
            let mono = synth::mono(r, samples);
            encode::write_file(
                &dir.join("content.mp3"),
                &mono,
                &OutputFormat::mp3_cbr(128),
                &tags,
            )?;
            let sting = synth::multi(r, synth::chirp(r, 200.0, 800.0, 0.3, secs(3)), 2);
            let wav = OutputFormat::wav16();
            encode::write_file(&dir.join("intro.wav"), &sting, &wav, &tags)?;
            encode::write_file(&dir.join("outro.wav"), &sting, &wav, &tags)?;
            let bed = synth::multi(r, synth::music_like(r, 3, -20.0, secs(6)), 2);
            encode::write_file(&dir.join("bed.wav"), &bed, &wav, &tags)?;
        }
        other => {
            return Err(format!("unknown stage {other:?}; `stage_cost list` names them").into());
        }
    }
    Ok(())
}

fn leak(buf: AudioBuffer) -> &'static AudioBuffer {
    Box::leak(Box::new(buf))
}

fn render_work(dir: &Path) -> BoxResult<Work> {
    let r = rate();
    // The mix borrows its sources; this one-shot process leaks them so the work can own the mix.
    let intro = leak(read_audio(&dir.join("intro.f32"))?);
    let talk = leak(read_audio(&dir.join("talk.f32"))?);
    let outro = leak(read_audio(&dir.join("outro.f32"))?);
    let bed = leak(read_audio(&dir.join("bed.f32"))?);
    let template = benches::episode_template();
    let mut sources = Sources::new();
    sources.insert("intro", intro).insert("talk", talk).insert("outro", outro);
    sources.insert("bed", bed);
    let arr = place(&template, r, |id| sources.frames(id))?;
    let content = arr.placement("content-1").ok_or("no content placement")?;
    let speech = speech_runs(content.start_frame, content.end_frame);
    let levels = level_segments(&template, &arr, |id| sources.get(id), 2, &CancelToken::new())?;
    let mix = Mix::new(&arr, &sources, 2, &levels.gains, &speech)?;
    Ok(Box::new(move || {
        let report = render_mastered(
            &mix,
            &MasterOptions::default(),
            &RenderOptions::default(),
            |b| {
                black_box(b);
                Ok(())
            },
            &CancelToken::new(),
            &mut |_| {},
        )?;
        black_box(report);
        Ok(())
    }))
}

/// Loads the named stage's prepared input from `dir` (not counted) and returns its work.
fn setup(stage: &str, dir: &Path) -> BoxResult<Work> {
    let input = || read_audio(&dir.join("input.f32"));
    match stage {
        s if decode_format(s).is_some() => {
            let path = encoded_path(dir, &decode_format(s).ok_or("format")?);
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            // One thread: the guarded instruction count is the sequential decoder's (10 s is
            // below the parallel MP3 path's minimum anyway).
            let opts = DecodeOptions { threads: NonZeroUsize::new(1), ..DecodeOptions::default() };
            Ok(Box::new(move || {
                let d = load::decode_bytes(&bytes, &opts, &CancelToken::new())?;
                black_box(d);
                Ok(())
            }))
        }
        "resample_fft" | "resample_sinc" => {
            let buf = input()?;
            let to = NonZeroU32::new(if stage == "resample_fft" { 48_000 } else { 44_101 })
                .ok_or("rate")?;
            Ok(Box::new(move || {
                black_box(load::resample(&buf, to, &CancelToken::new())?);
                Ok(())
            }))
        }
        "loudness" => {
            let buf = input()?;
            Ok(Box::new(move || {
                let mut meter = LoudnessMeter::new(2, RATE, true)?;
                meter.add(&buf)?;
                black_box(meter.finish()?);
                Ok(())
            }))
        }
        "activity" => {
            let audio = input()?;
            Ok(Box::new(move || {
                black_box(ActivityMap::analyze(&audio, &ActivityOptions::default())?);
                Ok(())
            }))
        }
        "compact" => {
            let audio = input()?;
            Ok(Box::new(move || {
                read_through(&CompactAudio::from_buffer(&audio, 16)?);
                Ok(())
            }))
        }
        "speaker_leveling" => {
            let audio = input()?;
            let mut words = read_transcript(&dir.join("words.tsv"))?.words().to_vec();
            for (i, w) in words.iter_mut().enumerate() {
                w.speaker = Some(format!("S{}", i / 8 % 3));
            }
            let transcript = Transcript::from_words(words)?.0;
            Ok(Box::new(move || {
                let opts = LevelingOptions::default();
                let cancel = CancelToken::new();
                let (lv, _) =
                    level_speakers(&audio, &transcript, &opts, &cancel)?.ok_or("no speakers")?;
                read_through(&Leveled { src: &audio, envelope: Some(&lv.envelope) });
                Ok(())
            }))
        }
        "adaptive_leveling" => {
            let mut audio = input()?;
            let words = read_transcript(&dir.join("words.tsv"))?.words().to_vec();
            // Three voices in turns of 8 words (the speaker_leveling stage's turns).
            let frame = |s: f64| (s * f64::from(RATE)) as usize;
            for (i, w) in words.iter().enumerate().step_by(8) {
                let end = words.get(i + 8).map_or(audio.frames(), |n| frame(n.start_s));
                let g = [1.0, 0.5, 2.0][i / 8 % 3];
                for x in &mut audio.planes_mut()[0][frame(w.start_s).min(end)..end] {
                    *x *= g;
                }
            }
            let map = ActivityMap::analyze(&audio, &ActivityOptions::default())?;
            Ok(Box::new(move || {
                let lv = level_adaptive(&map, &LevelingOptions::default()).ok_or("no speech")?;
                read_through(&Leveled { src: &audio, envelope: Some(&lv.envelope) });
                Ok(())
            }))
        }
        "hum" => {
            let content = CompactAudio::from_buffer(&input()?, 16)?;
            let map = ActivityMap::analyze(&content, &ActivityOptions::default())?;
            let quiet = map.silent_runs(3 * map.hop_frames() as u64);
            Ok(Box::new(move || {
                let c = CancelToken::new();
                let hum = detect_hum(&content, &quiet, &c)?.ok_or("no hum detected")?;
                let plan = CleanPlan { noise_strength: None, hum: Some(hum) };
                black_box(clean(&content, &plan, 16, 441, 1, &c, &mut |_| {})?);
                Ok(())
            }))
        }
        "denoise" => {
            let content = CompactAudio::from_buffer(&input()?, 16)?;
            let plan = CleanPlan { noise_strength: Some(1.0), hum: None };
            Ok(Box::new(move || {
                let c = clean(&content, &plan, 16, 441, 1, &CancelToken::new(), &mut |_| {})?;
                black_box(c);
                Ok(())
            }))
        }
        "edit_plan" => {
            let audio = input()?;
            let transcript = read_transcript(&dir.join("words.tsv"))?;
            let options = CleanupOptions::default();
            Ok(Box::new(move || {
                black_box(edit::plan(&audio, Some(&transcript), &[], &options)?);
                Ok(())
            }))
        }
        "render" => render_work(dir),
        "encode_mp3" => {
            let buf = input()?;
            let path = dir.join("out.mp3");
            Ok(Box::new(move || {
                let info =
                    encode::write_file(&path, &buf, &OutputFormat::mp3_cbr(128), &Tags::default())?;
                black_box(info);
                Ok(())
            }))
        }
        "assembler" => {
            // A fresh output folder: no earlier episode or temp files to replace or clean up.
            let out = dir.join("out");
            if out.exists() {
                std::fs::remove_dir_all(&out)?;
            }
            std::fs::create_dir_all(out)?;
            let mut spec = Spec::from_json(benches::EPISODE_SPEC)?;
            spec.resolve_paths(dir);
            let assembler = Assembler::new(spec)?;
            Ok(Box::new(move || {
                black_box(assembler.run(&mut NoProgress, &CancelToken::new())?);
                Ok(())
            }))
        }
        other => Err(format!("unknown stage {other:?}; `stage_cost list` names them").into()),
    }
}

/// The region callgrind counts (`--zero-before` / `--dump-after` name this function). Keep the
/// name unique: the script matches `*callgrind_measured_region*`.
#[inline(never)]
fn callgrind_measured_region(
    work: &mut dyn FnMut() -> BoxResult<()>,
    repeat: u32,
) -> BoxResult<()> {
    for _ in 0..repeat {
        work()?;
    }
    Ok(())
}

fn run(stage: &str, dir: Option<&Path>, repeat: u32) -> BoxResult<()> {
    let tmp = tempfile::tempdir()?;
    let dir = match dir {
        Some(d) => d.join(stage),
        None => {
            let d = tmp.path().join(stage);
            prepare(stage, &d)?;
            d
        }
    };
    let mut work = setup(stage, &dir)?;
    callgrind_measured_region(&mut *work, repeat)?;
    Ok(())
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// `compare`: reads each `stage=callgrind.out` pair, prints the table, rewrites the baseline
/// with `--update REASON`. Returns whether the check passed.
fn compare(args: &[String]) -> BoxResult<bool> {
    let baseline_path = PathBuf::from(flag(args, "--baseline").ok_or("--baseline FILE needed")?);
    let rustc = flag(args, "--rustc").ok_or("--rustc VERSION needed")?;
    let valgrind = flag(args, "--valgrind").ok_or("--valgrind VERSION needed")?;
    let update = flag(args, "--update");
    let mut now = BTreeMap::new();
    for pair in args.iter().filter(|a| !a.starts_with("--") && a.contains('=')) {
        let (stage, file) = pair.split_once('=').ok_or("stage=FILE")?;
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        now.insert(
            stage.to_owned(),
            parse_callgrind_ir(&text).map_err(|e| format!("{file}: {e}"))?,
        );
    }
    if now.is_empty() {
        return Err("no stage=callgrind.out pairs given".into());
    }
    if let Some(reason) = update {
        if reason.trim().is_empty() {
            return Err("--update needs a reason".into());
        }
        let stages: Vec<&str> = STAGES.iter().map(|(s, _)| *s).collect();
        if now.keys().any(|s| !stages.contains(&s.as_str())) || now.len() != stages.len() {
            return Err("--update needs every stage measured (no --stages subset)".into());
        }
        let b = Baseline {
            reason,
            rustc: rustc.trim().into(),
            valgrind: valgrind.trim().into(),
            stages: now,
        };
        std::fs::write(&baseline_path, b.to_json()?)?;
        println!("wrote {}", baseline_path.display());
        for (s, v) in &b.stages {
            println!("{s:<16} {:>16}", benches::callgrind::group_digits(*v));
        }
        return Ok(true);
    }
    let text = std::fs::read_to_string(&baseline_path).map_err(|e| {
        format!(
            "{}: {e} (record one: scripts/callgrind-check.sh --update --reason ...)",
            baseline_path.display()
        )
    })?;
    let baseline = Baseline::from_json(&text)?;
    // A subset run (--stages) compares only what it measured.
    let partial = now.len() < STAGES.len();
    let mut compared = baseline.clone();
    if partial {
        compared.stages.retain(|s, _| now.contains_key(s));
    }
    let c = Comparison::new(&compared, &now, &rustc, &valgrind);
    println!("baseline: {} (reason: {})", baseline_path.display(), baseline.reason);
    print!("{}", c.table());
    Ok(!c.failed())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("list") => {
            for (s, what) in STAGES {
                println!("{s}\t{what}");
            }
            Ok(true)
        }
        Some("run") => match args.get(1) {
            Some(stage) => {
                let repeat = flag(&args, "--repeat").map_or(Ok(1), |v| v.parse::<u32>());
                match repeat {
                    Ok(n) if n >= 1 => {
                        let dir = flag(&args, "--dir").map(PathBuf::from);
                        run(stage, dir.as_deref(), n).map(|()| true)
                    }
                    _ => Err("--repeat takes a positive integer".into()),
                }
            }
            None => Err("run <stage>".into()),
        },
        Some("prepare") => match args.get(1) {
            Some(dir) => STAGES
                .iter()
                .try_for_each(|(s, _)| prepare(s, &Path::new(dir).join(s)))
                .map(|()| true),
            None => Err("prepare <dir>".into()),
        },
        Some("compare") => compare(&args[1..]),
        _ => Err("usage: stage_cost list | prepare DIR | run STAGE [--dir DIR] [--repeat N] | \
                  compare ..."
            .into()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("stage_cost: {e}");
            ExitCode::from(2)
        }
    }
}
