//! The commands: each parses nothing itself, calls the library, and prints.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use assembly_core::encode::{self, Mp3Bitrate, OutputFormat, Tags, WavSampleFormat};
use assembly_core::load::{self, DecodeOptions, WorkingFormat};
use assembly_core::{CancelToken, Error, Result, analyze::loudness};

/// `probe FILE`: container, codec, rate, channels, exact length, tags, chapters.
pub fn probe(file: &Path, json: bool) -> Result<()> {
    let info = load::probe_file(file, &DecodeOptions::default().limits)?;
    if json {
        println!("{}", to_json(&info)?);
        return Ok(());
    }
    println!("file:        {}", file.display());
    println!("container:   {}", info.container);
    println!("codec:       {}", info.codec);
    println!("sample rate: {} Hz", info.sample_rate);
    println!("channels:    {}", info.channels);
    if let Some(bits) = info.bits_per_sample {
        println!("bits:        {bits}");
    }
    println!("frames:      {}", info.frames);
    println!("duration:    {} ms ({})", info.duration_ms, clock(info.duration_ms));
    for tag in &info.tags {
        println!("tag:         {} = {}", tag.key, tag.value);
    }
    for ch in &info.chapters {
        println!("chapter:     {} - {}  {}", clock(ch.start_ms), clock(ch.end_ms), ch.title);
    }
    Ok(())
}

/// `loudness FILE`: integrated LUFS, range, true peak, sample peak.
pub fn loudness(file: &Path, json: bool) -> Result<()> {
    let decoded = load::decode_file(file, &DecodeOptions::default(), &CancelToken::new())?;
    let l = loudness::measure(&decoded.audio)?;
    if json {
        println!("{}", to_json(&l)?);
        return Ok(());
    }
    println!("file:        {}", file.display());
    println!("integrated:  {} LUFS", db(l.integrated_lufs));
    println!("range:       {:.1} LU", l.range_lu);
    println!("true peak:   {} dBTP", db(l.true_peak_dbtp));
    println!("sample peak: {} dBFS", db(l.sample_peak_dbfs));
    Ok(())
}

/// Arguments of `convert`.
pub struct ConvertArgs {
    pub input: PathBuf,
    pub output: PathBuf,
    pub rate: Option<u32>,
    pub channels: Option<usize>,
    pub bitrate: Option<u32>,
    pub quality: Option<u8>,
}

/// `convert IN OUT`: decode, convert rate/channels, encode by OUT's extension.
pub fn convert(args: &ConvertArgs) -> Result<()> {
    let format = output_format(args)?;
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
    }
    let cancel = CancelToken::new();
    let decoded = load::decode_file(&args.input, &DecodeOptions::default(), &cancel)?;
    for w in &decoded.warnings {
        eprintln!("podcast-assemble: warning: {}", w.message);
    }
    let rate = match args.rate {
        Some(r) => {
            NonZeroU32::new(r).ok_or_else(|| Error::invalid_input("--rate", "must be > 0"))?
        }
        None => decoded.audio.sample_rate(),
    };
    let channels = args.channels.unwrap_or(decoded.audio.channel_count());
    let audio =
        load::to_working_format(&decoded.audio, &WorkingFormat { rate, channels }, &cancel)?;
    let info = encode::write_file(&args.output, &audio, &format, &Tags::default())?;
    println!(
        "wrote {} ({} bytes, {} frames, {} ms)",
        info.path.display(),
        info.bytes,
        info.frames,
        info.duration_ms
    );
    Ok(())
}

fn output_format(args: &ConvertArgs) -> Result<OutputFormat> {
    let ext = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let mp3_only =
        |flag: &str| Error::invalid_input(flag, format!("only applies to .mp3 output, not .{ext}"));
    match ext.as_str() {
        "mp3" => {
            let bitrate = match (args.bitrate, args.quality) {
                (_, Some(q)) => Mp3Bitrate::Vbr { quality: q },
                (Some(k), None) => Mp3Bitrate::Cbr {
                    kbps: u16::try_from(k)
                        .map_err(|_| Error::invalid_input("--bitrate", "must be 32..=320"))?,
                },
                (None, None) => Mp3Bitrate::default(),
            };
            Ok(OutputFormat::Mp3 { bitrate, quality: 5 })
        }
        "wav" | "flac" if args.bitrate.is_some() => Err(mp3_only("--bitrate")),
        "wav" | "flac" if args.quality.is_some() => Err(mp3_only("--quality")),
        "wav" => Ok(OutputFormat::Wav { sample_format: WavSampleFormat::Pcm16 }),
        "flac" => Ok(OutputFormat::Flac { bits: 16 }),
        _ => Err(Error::invalid_input(
            "OUT",
            format!("cannot tell the format from {:?}: use .wav, .flac or .mp3", args.output),
        )),
    }
}

/// Pretty JSON for `--json` output.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::internal(format!("json: {e}")))
}

fn db(v: f64) -> String {
    if v.is_finite() { format!("{v:.2}") } else { "-inf".into() }
}

/// `m:ss.mmm` for a time in ms.
pub fn clock(ms: u64) -> String {
    format!("{}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000)
}
