//! Decoding any supported file or byte buffer into one planar `f32` [`AudioBuffer`].
//!
//! One engine serves both probing and decoding: open (probe the container from its content,
//! pick the audio track, check limits against the header), then pull packets until the end,
//! either storing the samples or only counting them. Every call into symphonia runs inside
//! `catch_unwind`, so a decoder panic on hostile input becomes [`Error::Decode`].

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::num::{NonZeroU32, NonZeroUsize};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use serde::{Deserialize, Serialize};
use symphonia::core::audio::GenericAudioBufferRef;
use symphonia::core::codecs::audio::well_known::{CODEC_ID_FLAC, CODEC_ID_OPUS, CODEC_ID_VORBIS};
use symphonia::core::codecs::audio::{
    AudioCodecParameters, AudioDecoder, AudioDecoderOptions, CODEC_ID_NULL_AUDIO,
};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::{
    MediaSource, MediaSourceStream, MediaSourceStreamOptions, ReadOnlySource,
};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::units::Duration;

use super::matroska::{Facts as MkvFacts, looks_like_ebml, scan_discard_padding};
use super::opusdec::OpusHead;
use super::probe::{
    Mp4TrackEdit, ProbeInfo, collect_chapters, collect_tags, container_name, itunsmpb_priming,
    looks_like_mp4, scan_mp4, sniff_unsupported_container, unsupported_codec_name,
};
use crate::warning::{Warning, WarningCode};
use crate::{AudioBuffer, BoxError, CancelToken, Error, Limits, Result, frames_to_ms};

#[path = "mp3_par.rs"]
mod mp3_par;

/// How [`decode_file`] and [`decode_bytes`] decode.
///
/// # Examples
///
/// ```
/// use assembly_core::Limits;
/// use assembly_core::load::DecodeOptions;
///
/// let opts: DecodeOptions = serde_json::from_str(r#"{"limits": {"max_channels": 2}}"#).unwrap();
/// assert_eq!(opts.limits.max_channels, 2);
/// assert!(opts.gapless);
/// assert_eq!(opts.limits.max_duration_s, Limits::default().max_duration_s);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeOptions {
    /// Caps on file size, rate, channels, duration, decoded size and corrupt packets, checked
    /// from the header before any large allocation and again while decoding.
    /// Default: `Limits::default()`.
    pub limits: Limits,
    /// Trim encoder delay and padding the file declares (MP3 LAME tag, Ogg granule positions,
    /// the MP4 edit list's AAC priming), so lengths match what ffmpeg decodes. Default: `true`.
    pub gapless: bool,
    /// Threads that decode an MP3 file in parallel (ranges of frames, joined bit-identically to
    /// a sequential decode; see `docs/decoding.md`). `None` uses every core the system reports;
    /// `1` decodes on the calling thread. Short files, and files the parallel path cannot
    /// guarantee to reproduce exactly (damaged frames, format changes), always decode on one
    /// thread. Other formats ignore this. Default: `None`.
    pub threads: Option<NonZeroUsize>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self { limits: Limits::default(), gapless: true, threads: None }
    }
}

/// A decoded input: the audio, what the probe found, and what went wrong along the way.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// Planar `f32` at the file's own rate and channel count.
    pub audio: AudioBuffer,
    /// Container, codec, tags, chapters; `frames` equals `audio.frames()`.
    pub info: ProbeInfo,
    /// Packets the decoder rejected and skipped (each leaves a gap of that packet's length).
    pub corrupt_packets: u32,
    /// Skipped packets, truncation, unusual edit lists, dropped tags: a code and a message each.
    pub warnings: Vec<Warning>,
}

/// The error for a valid file without audio, the same for every container.
const NO_AUDIO: &str = "the file holds no audio (0 frames)";

/// Label used in errors for in-memory input.
const MEMORY_LABEL: &str = "<memory>";
/// Consecutive packets that decode to no audio before the input counts as stuck.
const MAX_EMPTY_PACKETS_IN_A_ROW: u32 = 10_000;
/// Warnings kept per decode; the rest are summarised in one line.
const MAX_WARNINGS: usize = 20;
/// Frames preallocated beyond the header's count (one large packet).
const PREALLOC_SLACK_FRAMES: u64 = 8192;
/// No real codec stores more than this many frames per input byte; header counts beyond it
/// are not trusted for preallocation (the buffer then grows as audio actually arrives).
const MAX_FRAMES_PER_BYTE: u64 = 256;

/// Decodes the audio file at `path` to planar `f32` at its own rate and channel count.
///
/// The format is detected from the content (the extension is ignored), limits are checked
/// against the header before anything large is allocated, corrupt packets are skipped and
/// counted, and `cancel` is checked per packet.
///
/// # Errors
///
/// - [`Error::Io`] if the file cannot be opened or read (names the path);
/// - [`Error::LimitExceeded`] if the file, rate, channels, duration or decoded size exceed
///   `opts.limits`;
/// - [`Error::UnsupportedFormat`] for a container or codec we do not decode (e.g. Wave64,
///   `ac3`);
/// - [`Error::Decode`] for an empty, truncated-in-the-header or non-audio file, too many
///   corrupt packets, or a decoder panic;
/// - [`Error::InvalidInput`] for nonsensical limits; [`Error::Cancelled`] if cancelled.
pub fn decode_file(path: &Path, opts: &DecodeOptions, cancel: &CancelToken) -> Result<Decoded> {
    let (file, len) = open_file(path, &opts.limits)?;
    run_file(path, file, len, opts, Mode::Store, None, cancel)
}

/// Decodes the audio file at `path` like [`decode_file`], but hands the audio to `sink` block
/// by block (its sample rate in Hz and planar slices of equal length, one per channel) instead
/// of keeping it: memory stays bounded whatever the file's length. The returned
/// [`Decoded::audio`] is empty; its `info` has the exact decoded length.
///
/// ```
/// use assembly_core::{CancelToken, encode::{write_file, OutputFormat, Tags}, synth};
/// use assembly_core::load::{decode_file_streaming, DecodeOptions};
/// use std::num::{NonZeroU32, NonZeroUsize};
///
/// let rate = NonZeroU32::new(44_100).unwrap();
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("tone.wav");
/// let tone = synth::mono(rate, synth::sine(rate, 440.0, 0.5, 100_000));
/// write_file(&path, &tone, &OutputFormat::wav16(), &Tags::default()).unwrap();
/// let mut frames = 0;
/// let d = decode_file_streaming(&path, &DecodeOptions::default(), &CancelToken::new(), &mut |rate, b| {
///     assert_eq!(rate, 44_100);
///     frames += b[0].len();
///     Ok(())
/// })
/// .unwrap();
/// assert_eq!((frames, d.info.frames), (100_000, 100_000));
/// assert_eq!(d.audio.frames(), 0);
/// ```
///
/// # Errors
///
/// As [`decode_file`], and any error `sink` returns (which stops the decode).
pub fn decode_file_streaming(
    path: &Path,
    opts: &DecodeOptions,
    cancel: &CancelToken,
    sink: BlockSink<'_>,
) -> Result<Decoded> {
    let (file, len) = open_file(path, &opts.limits)?;
    run_file(path, file, len, opts, Mode::Stream, Some(sink), cancel)
}

/// Decodes an audio file held in memory; the same as [`decode_file`] without the file.
///
/// Errors name the input `<memory>`.
///
/// # Errors
///
/// As [`decode_file`], without [`Error::Io`].
///
/// # Examples
///
/// A 16-bit WAV built in memory decodes to the same samples:
///
/// ```
/// use assembly_core::CancelToken;
/// use assembly_core::load::{DecodeOptions, decode_bytes};
///
/// // 100 frames of a 441 Hz sine at 44.1 kHz, 16-bit mono PCM.
/// let pcm: Vec<i16> =
///     (0..100).map(|i| ((i as f32 * 0.0628).sin() * 16_000.0) as i16).collect();
/// let mut wav = Vec::new();
/// let data_len = (pcm.len() * 2) as u32;
/// wav.extend_from_slice(b"RIFF");
/// wav.extend_from_slice(&(36 + data_len).to_le_bytes());
/// wav.extend_from_slice(b"WAVEfmt ");
/// wav.extend_from_slice(&16u32.to_le_bytes());
/// wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
/// wav.extend_from_slice(&1u16.to_le_bytes()); // mono
/// wav.extend_from_slice(&44_100u32.to_le_bytes());
/// wav.extend_from_slice(&88_200u32.to_le_bytes()); // byte rate
/// wav.extend_from_slice(&2u16.to_le_bytes()); // block align
/// wav.extend_from_slice(&16u16.to_le_bytes());
/// wav.extend_from_slice(b"data");
/// wav.extend_from_slice(&data_len.to_le_bytes());
/// for s in &pcm {
///     wav.extend_from_slice(&s.to_le_bytes());
/// }
///
/// let decoded = decode_bytes(&wav, &DecodeOptions::default(), &CancelToken::new()).unwrap();
/// assert_eq!(decoded.info.container, "wav");
/// assert_eq!(decoded.info.codec, "pcm_s16le");
/// assert_eq!(decoded.audio.frames(), 100);
/// assert_eq!(decoded.audio.sample_rate().get(), 44_100);
/// assert_eq!(decoded.audio.channel(0)[10], f32::from(pcm[10]) / 32_768.0);
/// assert_eq!(decoded.corrupt_packets, 0);
/// ```
pub fn decode_bytes(bytes: &[u8], opts: &DecodeOptions, cancel: &CancelToken) -> Result<Decoded> {
    run_bytes(bytes, opts, Mode::Store, cancel)
}

/// Probes the file at `path`: container, codec, layout, exact decoded length, tags, chapters.
///
/// The length comes from the header where the header is exact, otherwise from a decoding pass
/// that counts frames without storing them (see [`ProbeInfo::frames_counted`]). Gapless
/// trimming is on, as in [`DecodeOptions::default`].
///
/// # Errors
///
/// As [`decode_file`].
pub fn probe_file(path: &Path, limits: &Limits) -> Result<ProbeInfo> {
    let opts = DecodeOptions { limits: limits.clone(), ..DecodeOptions::default() };
    let (file, len) = open_file(path, limits)?;
    run_file(path, file, len, &opts, Mode::Probe, None, &CancelToken::new()).map(|d| d.info)
}

/// Probes an audio file held in memory; the same as [`probe_file`].
///
/// # Errors
///
/// As [`decode_bytes`].
pub fn probe_bytes(bytes: &[u8], limits: &Limits) -> Result<ProbeInfo> {
    let opts = DecodeOptions { limits: limits.clone(), ..DecodeOptions::default() };
    run_bytes(bytes, &opts, Mode::Probe, &CancelToken::new()).map(|d| d.info)
}

/// What the engine does with decoded audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Keep the samples.
    Store,
    /// Return header facts if exact; else count frames by decoding without storing.
    Probe,
    /// Hand each decoded block to a sink; keep nothing.
    Stream,
}

/// Where [`Mode::Stream`] sends decoded blocks: the sample rate and planar slices of equal
/// length.
type BlockSink<'s> = &'s mut dyn FnMut(u32, &[&[f32]]) -> Result<()>;

fn open_file(path: &Path, limits: &Limits) -> Result<(File, u64)> {
    validate_limits(limits)?;
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = file.metadata().map_err(|e| Error::io("read metadata of", path, e))?.len();
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Error::decode(path, "is a directory, not an audio file"));
    }
    check_file_len(path, len, limits)?;
    Ok((file, len))
}

fn run_file(
    path: &Path,
    mut file: File,
    len: u64,
    opts: &DecodeOptions,
    mode: Mode,
    sink: Option<BlockSink<'_>>,
    cancel: &CancelToken,
) -> Result<Decoded> {
    let mut head = [0u8; 16];
    let n = read_head(&mut file, &mut head).map_err(|e| Error::io("read", path, e))?;
    let head = &head[..n];
    let mp4 =
        if looks_like_mp4(head) { guarded(path, || Ok(scan_mp4(&mut file, len)))? } else { None };
    let mkv = if looks_like_ebml(head) {
        guarded(path, || Ok(scan_discard_padding(&mut file, len)))?
    } else {
        None
    };
    let mut sources = |seekable: bool| -> std::io::Result<Box<dyn MediaSource>> {
        // A clone shares the file offset; the previous reader is gone when this is called.
        let mut f = file.try_clone()?;
        f.seek(SeekFrom::Start(0))?;
        Ok(if seekable { Box::new(f) } else { Box::new(ReadOnlySource::new(f)) })
    };
    let input = Input { label: path, head, len, mp4, mkv };
    guarded(path, || decode_source(&mut sources, &input, opts, mode, sink, cancel))
}

fn run_bytes(
    bytes: &[u8],
    opts: &DecodeOptions,
    mode: Mode,
    cancel: &CancelToken,
) -> Result<Decoded> {
    let label = Path::new(MEMORY_LABEL);
    validate_limits(&opts.limits)?;
    let len = bytes.len() as u64;
    check_file_len(label, len, &opts.limits)?;
    let head = &bytes[..bytes.len().min(16)];
    let mp4 = if looks_like_mp4(head) {
        guarded(label, || Ok(scan_mp4(&mut Cursor::new(bytes), len)))?
    } else {
        None
    };
    let mkv = if looks_like_ebml(head) {
        guarded(label, || Ok(scan_discard_padding(Cursor::new(bytes), len)))?
    } else {
        None
    };
    let mut sources = |seekable: bool| -> std::io::Result<Box<dyn MediaSource + '_>> {
        let cursor = Cursor::new(bytes);
        Ok(if seekable { Box::new(cursor) } else { Box::new(ReadOnlySource::new(cursor)) })
    };
    let input = Input { label, head, len, mp4, mkv };
    guarded(label, || decode_source(&mut sources, &input, opts, mode, None, cancel))
}

/// Reads up to `buf.len()` bytes from the start (fewer only at end of file).
fn read_head(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn validate_limits(limits: &Limits) -> Result<()> {
    if limits.max_duration_s.is_nan() || limits.max_duration_s <= 0.0 {
        return Err(Error::invalid_input(
            "limits.max_duration_s",
            format!("must be a positive number of seconds, got {}", limits.max_duration_s),
        ));
    }
    for (field, value) in [
        ("limits.max_channels", u64::from(limits.max_channels)),
        ("limits.max_sample_rate", u64::from(limits.max_sample_rate)),
        ("limits.max_file_bytes", limits.max_file_bytes),
        ("limits.max_decoded_bytes", limits.max_decoded_bytes),
    ] {
        if value == 0 {
            return Err(Error::invalid_input(field, "must be at least 1"));
        }
    }
    Ok(())
}

fn check_file_len(label: &Path, len: u64, limits: &Limits) -> Result<()> {
    if len == 0 {
        return Err(Error::decode(label, "file is empty (0 bytes)"));
    }
    if len > limits.max_file_bytes {
        return Err(limit(label, "file_bytes", len, limits.max_file_bytes));
    }
    Ok(())
}

fn limit(label: &Path, what: &'static str, value: impl ToString, max: impl ToString) -> Error {
    Error::LimitExceeded {
        path: label.to_path_buf(),
        what,
        value: value.to_string(),
        limit: max.to_string(),
    }
}

fn decode_err(label: &Path, detail: impl Into<String>, source: SymError) -> Error {
    Error::Decode {
        path: label.to_path_buf(),
        detail: detail.into(),
        source: Some(Box::new(source)),
    }
}

/// Runs `f`, turning a panic inside it into [`Error::Decode`].
fn guarded<T>(label: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(Error::decode(
            label,
            format!(
                "decoder panicked on malformed input: {}",
                crate::error::panic_message(&*payload)
            ),
        )),
    }
}

/// The facts about one input the engine needs besides the byte source.
struct Input<'a> {
    label: &'a Path,
    head: &'a [u8],
    len: u64,
    mp4: Option<Vec<Mp4TrackEdit>>,
    /// Matroska/WebM `DiscardPadding` entries and segment shape, if the input starts with an
    /// EBML header.
    mkv: Option<MkvFacts>,
}

/// An opened input: reader, decoder and what the header says.
struct Opened<'s> {
    reader: Box<dyn FormatReader + 's>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    /// The container's kind (its name is `info.container`).
    container: Container,
    info: ProbeInfo,
    /// Header channel count, if the header gives one.
    channels: Option<usize>,
    /// Frames the header claims after trimming (exact or an estimate).
    header_frames: Option<u64>,
    /// True when `header_frames` equals what decoding will produce.
    exact: bool,
    /// Frames the engine itself skips at the start (MP4 edit list).
    priming: u64,
    /// Frames to trim from the end of given packets of the track, as `(packet index among the
    /// track's packets, frames)` in order: Matroska `DiscardPadding`, which symphonia's
    /// reader does not apply.
    end_trims: Vec<(u64, u64)>,
    /// The track's time base as `(numer, denom)`, for packet durations.
    time_base: Option<(u32, u32)>,
    /// Most silence one corrupt packet may stand for: the codec's largest packet, at least 1 s.
    max_gap_frames: u64,
    warnings: Vec<Warning>,
}

/// Opens a fresh byte source over the whole input; `false` asks for one that cannot seek.
type Sources<'s> = dyn FnMut(bool) -> std::io::Result<Box<dyn MediaSource + 's>> + 's;

/// Runs symphonia's probe over a fresh source.
fn probe_container<'s>(
    sources: &mut Sources<'s>,
    seekable: bool,
    label: &Path,
) -> Result<std::result::Result<Box<dyn FormatReader + 's>, SymError>> {
    let source = sources(seekable).map_err(|e| Error::io("read", label, e))?;
    let mss = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
    // The hint is deliberately empty: symphonia 0.6 detects the format from the content only.
    Ok(symphonia::default::get_probe().probe(
        &Hint::new(),
        mss,
        FormatOptions::default(),
        MetadataOptions::default(),
    ))
}

/// The containers whose rules differ (edit lists, exact frame counts); the rest are `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Container {
    Mp3,
    Mp4,
    Flac,
    Ogg,
    Mkv,
    Other,
}

impl Container {
    /// The kind of a container by its name ([`container_name`]).
    fn of(name: &str) -> Self {
        match name {
            "mp3" => Self::Mp3,
            "mp4" => Self::Mp4,
            "flac" => Self::Flac,
            "ogg" => Self::Ogg,
            "matroska" => Self::Mkv,
            _ => Self::Other,
        }
    }
}

/// Opens an input in named steps: the container ([`open_reader`]), its audio track
/// ([`audio_track`]), the codec ([`supported_codec`], [`make_decoder`]), the stream's shape
/// against the limits ([`stream_shape`]), the MP4 priming ([`mp4_priming`]), and what the
/// header's frame count is worth ([`trimmed_header_frames`], [`count_is_exact`]).
fn open_source<'s>(
    sources: &mut Sources<'s>,
    input: &Input<'_>,
    opts: &DecodeOptions,
) -> Result<Opened<'s>> {
    let label = input.label;
    let limits = &opts.limits;
    let mut warnings = Vec::new();
    let mut reader = open_reader(sources, input, &mut warnings)?;
    let container = container_name(reader.format_info().short_name);
    let kind = Container::of(&container);
    let (track, params) = audio_track(reader.as_ref(), label, &container).map_err(|e| {
        // An empty M4A: no track at all (ffmpeg's, for zero samples), or a sound track that
        // symphonia's MP4 reader drops for having no samples. A video without sound keeps
        // "no audio track".
        let empty = input.mp4.as_ref().is_some_and(|t| t.is_empty() || t.iter().any(|t| t.sound));
        let no_track =
            matches!(&e, Error::UnsupportedFormat { detail, .. } if detail.starts_with("no audio track"));
        if kind == Container::Mp4 && empty && no_track {
            Error::decode(label, NO_AUDIO)
        } else {
            e
        }
    })?;
    let codec = supported_codec(&params, label, &container)?;
    let (rate, channels) = stream_shape(&params, label, limits)?;
    let decoder = make_decoder(&params, opts, label, &codec)?;
    let (tags, dropped) = collect_tags(reader.as_mut());
    if dropped > 0 {
        warnings.push(Warning::new(
            WarningCode::TagsDropped,
            format!("kept the first {} tags, dropped {dropped}", tags.len()),
        ));
    }
    // AAC (and anything else) in MP4: symphonia ignores the edit list; ffmpeg skips its
    // media_time at the start (the encoder priming, 1024 frames for AAC-LC) and keeps the
    // rest, so do the same. Without an edit list, iTunes' `iTunSMPB` tag gives the priming
    // (ffmpeg reads it the same way, and likewise does not trim its end padding).
    let priming = if kind == Container::Mp4 && opts.gapless {
        match mp4_priming(input, &track, rate, &mut warnings) {
            0 => tags
                .iter()
                .find(|t| t.key.ends_with("iTunSMPB"))
                .map_or(0, |t| itunsmpb_priming(&t.value).unwrap_or(0)),
            p => p,
        }
    } else {
        0
    };
    let end_trims = if kind == Container::Mkv && opts.gapless {
        mkv_end_trims(input, track.id, rate)
    } else {
        Vec::new()
    };
    // Opus in Matroska: the decoder skips the OpusHead pre-skip; report it as the delay, as
    // the Ogg reader does.
    let opus_pre_skip = (params.codec == CODEC_ID_OPUS)
        .then(|| params.extra_data.as_deref().and_then(OpusHead::parse))
        .flatten()
        .map(|h| u32::from(h.pre_skip));
    let track_delay = track.delay.or(opus_pre_skip);
    let delay = if opts.gapless { u64::from(track_delay.unwrap_or(0)) } else { 0 };
    let padding = if opts.gapless { u64::from(track.padding.unwrap_or(0)) } else { 0 }
        + end_trims.iter().map(|t| t.1).sum::<u64>();
    let header_frames = trimmed_header_frames(&track, priming, opts.gapless);
    let bits_per_sample = params.bits_per_sample;
    let exact = header_frames.is_some_and(|n| {
        count_is_exact(n, &codec, &params, channels, kind, &track, opts.gapless, input.len)
    });

    if exact && let Some(n) = header_frames {
        check_duration(label, n, rate, limits)?;
        if let Some(ch) = channels {
            check_decoded_bytes(label, n, ch, limits)?;
        }
    }

    let has_gapless_info = opts.gapless
        && (track_delay.is_some() || track.padding.is_some() || priming > 0 || padding > 0);
    let info = ProbeInfo {
        container,
        codec,
        sample_rate: rate,
        channels: channels.map_or(0, |c| u16::try_from(c).unwrap_or(u16::MAX)),
        bits_per_sample,
        frames: header_frames.unwrap_or(0),
        duration_ms: 0,
        frames_counted: false,
        tags,
        chapters: Vec::new(),
        has_gapless_info,
        delay_frames: delay + priming,
        padding_frames: padding,
    };
    Ok(Opened {
        reader,
        decoder,
        track_id: track.id,
        container: kind,
        info,
        channels,
        header_frames,
        exact,
        priming,
        end_trims,
        time_base: track.time_base.map(|tb| (tb.numer.get(), tb.denom.get())),
        max_gap_frames: params.max_frames_per_packet.unwrap_or(0).max(u64::from(rate)),
        warnings,
    })
}

/// Probes the container, reading a damaged or truncated tail front to back as a stream (with a
/// warning); an input no reader takes is `UnsupportedFormat` when we can name what it is.
fn open_reader<'s>(
    sources: &mut Sources<'s>,
    input: &Input<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<Box<dyn FormatReader + 's>> {
    let label = input.label;
    // A container we do not read, recognised from its first bytes, is named before symphonia
    // gets to look: its probe scans up to 1 MB for any reader's marker, and would otherwise take
    // e.g. a byte pair in Wave64's PCM for an MPEG frame and fail on "corrupt packets".
    if let Some(name) = sniff_unsupported_container(input.head) {
        return Err(Error::UnsupportedFormat {
            path: label.to_path_buf(),
            detail: format!("{name} files are not supported"),
        });
    }
    let first = match probe_container(sources, true, label)? {
        Ok(reader) => Ok(reader),
        // Readers that look at the end of a seekable input (Ogg finds its duration there,
        // trailing ID3v1/APE tags) fail on a truncated or damaged tail. Read it front to back
        // instead, as a stream, which is how ffmpeg still decodes such files.
        Err(e @ SymError::Unsupported(_)) => Err(e),
        Err(e) => match probe_container(sources, false, label)? {
            Ok(reader) => {
                warnings.push(Warning::new(
                    WarningCode::UnreadableEnd,
                    format!(
                        "the end of the file could not be read ({e}); decoded it front to back"
                    ),
                ));
                Ok(reader)
            }
            Err(_) => Err(e),
        },
    };
    first.map_err(|e| match e {
        SymError::Unsupported(_) => match sniff_unsupported_container(input.head) {
            Some(name) => Error::UnsupportedFormat {
                path: label.to_path_buf(),
                detail: format!("{name} files are not supported"),
            },
            // An ID3 tag or an MPEG frame header, but no two frames in a row: an MP3 holding
            // only its tags and Info frame (what an encoder writes for zero samples), or junk.
            None if looks_like_mpeg_audio(input.head) => decode_err(
                label,
                "no audio: no run of MPEG audio frames found (an empty or damaged MP3)",
                e,
            ),
            None => decode_err(
                label,
                "not a recognised audio file (no WAV, AIFF, CAF, MP3, FLAC, Ogg, MP4/M4A, \
                     ADTS or Matroska signature found)",
                e,
            ),
        },
        SymError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => decode_err(
            label,
            "no audio before the end of the file (empty, or cut inside its header)",
            e,
        ),
        other => decode_err(label, format!("cannot read the container header: {other}"), other),
    })
}

/// True when `head` starts with an ID3v2 tag or an MPEG audio frame sync.
fn looks_like_mpeg_audio(head: &[u8]) -> bool {
    head.starts_with(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
}

/// The default audio track and its codec parameters.
fn audio_track(
    reader: &dyn FormatReader,
    label: &Path,
    container: &str,
) -> Result<(Track, AudioCodecParameters)> {
    let no_track = || Error::UnsupportedFormat {
        path: label.to_path_buf(),
        detail: format!("no audio track in this {container} file"),
    };
    let track = reader.default_track(TrackType::Audio).cloned().ok_or_else(no_track)?;
    let params =
        track.codec_params.as_ref().and_then(|p| p.audio()).cloned().ok_or_else(no_track)?;
    if params.codec == CODEC_ID_NULL_AUDIO {
        return Err(Error::UnsupportedFormat {
            path: label.to_path_buf(),
            detail: format!("unrecognised audio codec in this {container} file"),
        });
    }
    Ok((track, params))
}

/// The name of the decoder our registry has for the track's codec, or `UnsupportedFormat`
/// naming the codec.
fn supported_codec(params: &AudioCodecParameters, label: &Path, container: &str) -> Result<String> {
    match crate::load::codecs::codecs().get_audio_decoder(params.codec) {
        Some(reg) => Ok(reg.codec.info.short_name.to_string()),
        None => Err(Error::UnsupportedFormat {
            path: label.to_path_buf(),
            detail: format!(
                "codec {} is not supported (container: {container})",
                unsupported_codec_name(params.codec)
            ),
        }),
    }
}

/// The sample rate and (if the header gives one) channel count, checked against the limits.
fn stream_shape(
    params: &AudioCodecParameters,
    label: &Path,
    limits: &Limits,
) -> Result<(u32, Option<usize>)> {
    let rate = match params.sample_rate {
        Some(r) if r > 0 => r,
        _ => return Err(Error::decode(label, "the header gives no sample rate")),
    };
    if rate > limits.max_sample_rate {
        return Err(limit(label, "sample_rate", rate, limits.max_sample_rate));
    }
    let channels = params.channels.as_ref().map(|c| c.count());
    if let Some(ch) = channels {
        if ch == 0 {
            return Err(Error::decode(label, "the header declares zero channels"));
        }
        if ch > usize::from(limits.max_channels) {
            return Err(limit(label, "channels", ch, limits.max_channels));
        }
    }
    Ok((rate, channels))
}

/// The decoder for the track, gapless trimming as the options ask.
fn make_decoder(
    params: &AudioCodecParameters,
    opts: &DecodeOptions,
    label: &Path,
    codec: &str,
) -> Result<Box<dyn AudioDecoder>> {
    crate::load::codecs::codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default().gapless(opts.gapless))
        .map_err(|e| match e {
            // symphonia's AAC decoder takes AAC-LC only, and says so in few words.
            SymError::Unsupported("aac: aac too complex") => Error::UnsupportedFormat {
                path: label.to_path_buf(),
                detail: "aac stream is not plain AAC-LC (HE-AAC with SBR/PS, more than 2 \
                         channels or 960-frame packets); only AAC-LC is decoded"
                    .to_string(),
            },
            SymError::Unsupported(what) => Error::UnsupportedFormat {
                path: label.to_path_buf(),
                detail: format!("{codec} stream uses an unsupported feature ({what})"),
            },
            other => decode_err(label, format!("cannot set up the {codec} decoder"), other),
        })
}

/// The `DiscardPadding` of track `track` as `(packet index, frames at rate)`, in order.
fn mkv_end_trims(input: &Input<'_>, track: u32, rate: u32) -> Vec<(u64, u64)> {
    let Some(facts) = &input.mkv else { return Vec::new() };
    facts
        .paddings
        .iter()
        .filter(|p| p.track == u64::from(track))
        .map(|p| (p.frame, p.frames(rate)))
        .filter(|t| t.1 > 0)
        .collect()
}

/// Frames of encoder priming the MP4 edit list says to skip at the start of `track`, with a
/// warning for what of the edit list is not applied.
fn mp4_priming(input: &Input<'_>, track: &Track, rate: u32, warnings: &mut Vec<Warning>) -> u64 {
    let mut priming = 0;
    if let Some(edit) = input.mp4.as_ref().and_then(|t| t.iter().find(|t| t.track_id == track.id)) {
        priming = edit.priming_frames(rate);
        if edit.empty_edits > 0 {
            warnings.push(Warning::new(
                WarningCode::EmptyEditIgnored,
                format!(
                    "ignored {} empty edit(s) (start delay) in the MP4 edit list",
                    edit.empty_edits
                ),
            ));
        }
        if edit.edit_count > 1 + edit.empty_edits {
            warnings.push(Warning::new(
                WarningCode::ExtraEditsIgnored,
                format!("MP4 edit list has {} edits; only the first is applied", edit.edit_count),
            ));
        }
    } else if input.mp4.is_none() {
        warnings.push(Warning::new(
            WarningCode::EditListUnread,
            "could not read the MP4 edit list; no priming trimmed",
        ));
    }
    priming
}

/// The frame count the header gives, after the trimming decoding will do: symphonia's MP4
/// count includes the priming we trim; MP3 counts already exclude the LAME delay and
/// padding, which the decoder only trims when gapless is on.
fn trimmed_header_frames(track: &Track, priming: u64, gapless: bool) -> Option<u64> {
    track.num_frames.map(|n| {
        let n = n.saturating_sub(priming);
        if gapless {
            n
        } else {
            n.saturating_add(u64::from(track.delay.unwrap_or(0)))
                .saturating_add(u64::from(track.padding.unwrap_or(0)))
        }
    })
}

/// Whether a header count of `n` frames is what decoding will produce: PCM when the file
/// really holds that many frames, FLAC in its own or an Ogg container, Vorbis in Ogg and MP3
/// with a LAME delay when trimming is on. Anything else is an estimate, to be counted.
#[allow(clippy::too_many_arguments)]
fn count_is_exact(
    n: u64,
    codec: &str,
    params: &AudioCodecParameters,
    channels: Option<usize>,
    container: Container,
    track: &Track,
    gapless: bool,
    input_len: u64,
) -> bool {
    if n == 0 {
        return false;
    }
    if codec.starts_with("pcm_") {
        let bytes_per_sample = params
            .bits_per_coded_sample
            .or(params.bits_per_sample)
            .map(|b| u64::from(b.div_ceil(8)));
        return match (bytes_per_sample, channels) {
            (Some(b), Some(ch)) if b > 0 => {
                n.checked_mul(b * ch as u64).is_some_and(|bytes| bytes <= input_len)
            }
            _ => false,
        };
    }
    if params.codec == CODEC_ID_FLAC {
        matches!(container, Container::Flac | Container::Ogg)
    } else if params.codec == CODEC_ID_VORBIS {
        container == Container::Ogg && gapless
    } else {
        container == Container::Mp3 && track.delay.is_some() && gapless
    }
}

fn check_duration(label: &Path, frames: u64, rate: u32, limits: &Limits) -> Result<()> {
    if frames > duration_cap(rate, limits) {
        return Err(limit(
            label,
            "duration_s",
            format!("{:.3}", frames as f64 / f64::from(rate)),
            limits.max_duration_s,
        ));
    }
    Ok(())
}

fn check_decoded_bytes(label: &Path, frames: u64, channels: usize, limits: &Limits) -> Result<()> {
    let bytes = u128::from(frames) * channels as u128 * 4;
    if bytes > u128::from(limits.max_decoded_bytes) {
        return Err(limit(label, "decoded_bytes", bytes, limits.max_decoded_bytes));
    }
    Ok(())
}

/// Most frames `max_duration_s` allows at `rate`.
fn duration_cap(rate: u32, limits: &Limits) -> u64 {
    // Saturating float-to-int cast: an infinite limit means no cap.
    (limits.max_duration_s * f64::from(rate)).floor() as u64
}

/// Most frames `max_decoded_bytes` allows with `channels` channels of `f32`.
fn bytes_cap(channels: usize, limits: &Limits) -> u64 {
    limits.max_decoded_bytes / (4 * channels as u64)
}

/// Per-run counters for corrupt packets and warnings.
struct Report {
    corrupt: u32,
    warnings: Vec<Warning>,
    dropped_warnings: usize,
}

impl Report {
    fn new(warnings: Vec<Warning>) -> Self {
        Self { corrupt: 0, warnings, dropped_warnings: 0 }
    }

    fn warn(&mut self, code: WarningCode, message: impl Into<String>) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(Warning::new(code, message));
        } else {
            self.dropped_warnings += 1;
        }
    }
}

fn decode_source<'s>(
    sources: &mut Sources<'s>,
    input: &Input<'_>,
    opts: &DecodeOptions,
    mode: Mode,
    mut sink: Option<BlockSink<'_>>,
    cancel: &CancelToken,
) -> Result<Decoded> {
    let mut opened = open_source(sources, input, opts)?;
    let rate = opened.info.sample_rate;

    if mode == Mode::Probe && opened.exact {
        let mut info = opened.info;
        let frames = opened.header_frames.unwrap_or(0);
        finish_info(&mut info, frames, opened.reader.as_ref(), rate);
        let audio = AudioBuffer::mono(nonzero(rate), Vec::new());
        return Ok(Decoded { audio, info, corrupt_packets: 0, warnings: opened.warnings });
    }

    // Frames the parallel path already handed to the sink before it gave up.
    let mut delivered = 0;
    if mode != Mode::Probe
        && let Some(plan) = mp3_par::plan(&opened, input, opts)
    {
        let par_sink = sink.as_mut().map(|s| &mut **s as BlockSink<'_>);
        match mp3_par::decode(opened, input, opts, mode, par_sink, cancel, &plan)? {
            mp3_par::Outcome::Done(decoded) => return Ok(decoded),
            mp3_par::Outcome::Fallback { delivered: n } => {
                // Decode again on this thread, from a fresh reader; its first `n` frames are the
                // ones already delivered (the parallel output is identical up to there).
                delivered = n;
                opened = open_source(sources, input, opts)?;
            }
        }
    }
    decode_packets(opened, input, opts, mode, sink, cancel, delivered)
}

/// The sequential engine: pulls packets until the end, storing, streaming or counting frames.
/// The first `delivered` frames are not handed to the sink again.
fn decode_packets(
    mut opened: Opened<'_>,
    input: &Input<'_>,
    opts: &DecodeOptions,
    mode: Mode,
    sink: Option<BlockSink<'_>>,
    cancel: &CancelToken,
    delivered: u64,
) -> Result<Decoded> {
    let label = input.label;
    let limits = &opts.limits;
    let rate = opened.info.sample_rate;
    let mut report = Report::new(std::mem::take(&mut opened.warnings));
    // Packets a sane input can produce: every packet holds at least one byte of the input.
    let max_packets = input.len.saturating_add(1024);
    let mut packets = 0u64;
    let mut empty_run = 0u32;
    let mut acc = Acc::new(label, limits, &opened, mode, input.len, sink);
    acc.sink_skip = delivered;
    // Packets of the track so far, and the next Matroska end trim (see `Opened::end_trims`).
    let mut track_packets = 0u64;
    let mut end_trims = std::mem::take(&mut opened.end_trims).into_iter().peekable();

    loop {
        cancel.check()?;
        let packet = match opened.reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                if acc.frames == 0 && report.corrupt == 0 && packets == 0 {
                    return Err(Error::decode(label, "file ends before the first audio packet"));
                }
                // Live WebM (an open-ended segment) has no end but the file's: not truncation.
                if opened.container == Container::Mkv
                    && input.mkv.as_ref().is_some_and(|f| f.open_ended)
                {
                    break;
                }
                report.warn(
                    WarningCode::Truncated,
                    format!("stream ends early (truncated file?) after {} frames", acc.frames),
                );
                break;
            }
            Err(SymError::ResetRequired) => {
                report.warn(
                    WarningCode::ChainedStream,
                    "stream changes format mid-file (chained stream); decoded the first part only",
                );
                break;
            }
            Err(e) => {
                if acc.frames == 0 {
                    return Err(decode_err(label, format!("cannot read packets: {e}"), e));
                }
                report.corrupt += 1;
                report.warn(
                    WarningCode::DamagedData,
                    format!("stopped at damaged data after {} frames: {e}", acc.frames),
                );
                break;
            }
        };
        packets += 1;
        if packets > max_packets {
            return Err(Error::decode(
                label,
                format!(
                    "more packets ({packets}) than bytes in the input; the stream does not progress"
                ),
            ));
        }
        if packet.track_id != opened.track_id {
            continue;
        }
        let mut packet = packet;
        if end_trims.peek().is_some() {
            while end_trims.next_if(|t| t.0 < track_packets).is_some() {}
            if let Some((_, frames)) = end_trims.next_if(|t| t.0 == track_packets) {
                // The decoder trims frames; the packet's duration is in the track's time base.
                packet.trim_end = packet.trim_end.saturating_add(Duration::new(frames));
                let ticks = frames_to_ticks(frames, opened.time_base, rate);
                packet.dur = packet.dur.saturating_sub(Duration::new(ticks));
            }
        }
        track_packets += 1;
        // What the packet would decode to, for a corrupt one replaced by silence. Durations are
        // in the track's time base; they exclude gapless trims, which the decoder only keeps
        // when trimming is off.
        let dur = if opts.gapless { packet.dur } else { packet.block_dur() };
        let gap = packet_frames(dur.get(), opened.time_base, rate).min(opened.max_gap_frames);
        let (problem, cause) = match opened.decoder.decode(&packet) {
            Ok(buf) => {
                let n = buf.frames();
                let planes_in = buf.num_planes();
                if n == 0 {
                    empty_run += 1;
                    if empty_run > MAX_EMPTY_PACKETS_IN_A_ROW {
                        return Err(Error::decode(
                            label,
                            format!(
                                "{MAX_EMPTY_PACKETS_IN_A_ROW} packets in a row decoded to no audio"
                            ),
                        ));
                    }
                    continue;
                }
                empty_run = 0;
                if acc.frames == 0
                    && planes_in > 0
                    && buf.spec().rate() == rate
                    && acc.channels.is_some_and(|ch| ch != planes_in)
                {
                    // The decoder knows better than the header (e.g. AAC parametric stereo).
                    report.warn(
                        WarningCode::ChannelMismatch,
                        format!(
                            "header says {} channels, the audio has {planes_in}",
                            acc.channels.unwrap_or(0)
                        ),
                    );
                    acc.channels = None;
                }
                if buf.spec().rate() == rate
                    && planes_in > 0
                    && acc.channels.is_none_or(|ch| ch == planes_in)
                {
                    acc.push_decoded(&buf)?;
                    continue;
                }
                let problem = format!(
                    "a packet of {} Hz × {planes_in} ch in a {rate} Hz stream of {} ch",
                    buf.spec().rate(),
                    acc.channels.map_or("?".to_string(), |c| c.to_string())
                );
                (problem, None)
            }
            Err(SymError::ResetRequired) => {
                opened.decoder.reset();
                continue;
            }
            Err(SymError::Unsupported(what)) if acc.frames == 0 && report.corrupt == 0 => {
                return Err(Error::UnsupportedFormat {
                    path: label.to_path_buf(),
                    detail: format!(
                        "{} stream uses an unsupported feature ({what})",
                        opened.info.codec
                    ),
                });
            }
            Err(e) => (e.to_string(), Some(e)),
        };
        report.corrupt += 1;
        if report.corrupt > limits.max_corrupt_packets {
            return Err(Error::Decode {
                path: label.to_path_buf(),
                detail: format!(
                    "more than {} corrupt packets (the limit); last: {problem}",
                    limits.max_corrupt_packets
                ),
                source: cause.map(|e| Box::new(e) as BoxError),
            });
        }
        let silence = acc.push_silence(gap)?;
        report.warn(
            WarningCode::CorruptPacket,
            format!(
                "corrupt packet at {} ms replaced by {silence} frames of silence: {problem}",
                frames_to_ms(acc.frames.saturating_sub(silence as u64), nonzero(rate))
            ),
        );
    }

    finish(label, mode, opened, acc, report)
}

/// Builds the result once every packet is in: length fields, chapters, the stored audio.
fn finish(
    label: &Path,
    mode: Mode,
    opened: Opened<'_>,
    acc: Acc<'_, '_>,
    mut report: Report,
) -> Result<Decoded> {
    let rate = acc.rate;
    let Acc { frames, channels, mut planes, .. } = acc;
    let channel_count = channels.unwrap_or(0);
    if frames == 0 {
        // The same for every container: a valid but empty file (a WAV or FLAC of zero length,
        // an Ogg stream without audio packets) is as useless to the pipeline as a damaged one.
        return Err(Error::decode(label, NO_AUDIO));
    }
    if report.dropped_warnings > 0 {
        let more = report.dropped_warnings;
        report
            .warnings
            .push(Warning::new(WarningCode::MoreWarnings, format!("… and {more} more warnings")));
    }
    let mut info = opened.info;
    info.channels = u16::try_from(channel_count).unwrap_or(u16::MAX);
    info.frames_counted = true;
    finish_info(&mut info, frames, opened.reader.as_ref(), rate);
    let audio = if mode == Mode::Store {
        if planes.is_empty() {
            planes = vec![Vec::new(); channel_count.max(1)];
        }
        for p in &mut planes {
            if p.capacity() > p.len() + p.len() / 8 + PREALLOC_SLACK_FRAMES as usize {
                p.shrink_to_fit();
            }
        }
        AudioBuffer::from_planar(nonzero(rate), planes)?
    } else {
        AudioBuffer::mono(nonzero(rate), Vec::new())
    };
    Ok(Decoded { audio, info, corrupt_packets: report.corrupt, warnings: report.warnings })
}

/// Frames in `dur` ticks of `time_base` at `rate`, rounded to nearest (integer maths).
fn packet_frames(dur: u64, time_base: Option<(u32, u32)>, rate: u32) -> u64 {
    let (numer, denom) = time_base.unwrap_or((1, rate));
    if denom == 0 {
        return 0;
    }
    let f = (u128::from(dur) * u128::from(numer) * u128::from(rate) + u128::from(denom) / 2)
        / u128::from(denom);
    u64::try_from(f).unwrap_or(u64::MAX)
}

/// Ticks of `time_base` in `frames` at `rate`, rounded to nearest: the inverse of
/// [`packet_frames`].
fn frames_to_ticks(frames: u64, time_base: Option<(u32, u32)>, rate: u32) -> u64 {
    let (numer, denom) = time_base.unwrap_or((1, rate));
    let per = u128::from(numer) * u128::from(rate);
    if per == 0 {
        return 0;
    }
    let t = (u128::from(frames) * u128::from(denom) + per / 2) / per;
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// Collects decoded frames: skips the priming, enforces the frame cap, stores or only counts.
struct Acc<'a, 's> {
    label: &'a Path,
    limits: &'a Limits,
    rate: u32,
    store: bool,
    /// Channel count, from the header or else from the first decoded packet.
    channels: Option<usize>,
    planes: Vec<Vec<f32>>,
    frames: u64,
    priming_left: u64,
    header_frames: Option<u64>,
    input_len: u64,
    /// Where decoded blocks go in [`Mode::Stream`].
    sink: Option<BlockSink<'s>>,
    /// The block handed to the sink, reused.
    scratch: Vec<Vec<f32>>,
    /// Frames not to hand to the sink (already delivered by a parallel attempt).
    sink_skip: u64,
}

impl<'a, 's> Acc<'a, 's> {
    fn new(
        label: &'a Path,
        limits: &'a Limits,
        opened: &Opened<'_>,
        mode: Mode,
        input_len: u64,
        sink: Option<BlockSink<'s>>,
    ) -> Self {
        Acc {
            label,
            limits,
            rate: opened.info.sample_rate,
            store: mode == Mode::Store,
            channels: opened.channels,
            planes: Vec::new(),
            frames: 0,
            priming_left: opened.priming,
            header_frames: opened.header_frames,
            input_len,
            sink,
            scratch: Vec::new(),
            sink_skip: 0,
        }
    }

    /// How many of `take` new frames the sink must not see again (see `sink_skip`).
    fn sink_skip(&mut self, take: usize) -> usize {
        let s = usize::try_from(self.sink_skip).unwrap_or(usize::MAX).min(take);
        self.sink_skip -= s as u64;
        s
    }

    /// Most frames the limits allow once the channel count is known.
    fn cap(&self, channels: usize) -> u64 {
        duration_cap(self.rate, self.limits).min(bytes_cap(channels, self.limits))
    }

    /// Applies the priming skip and the limits to `n` new frames of `channels` channels, and
    /// makes room for them. Returns `(skip, take)`.
    fn admit(&mut self, n: usize, channels: usize) -> Result<(usize, usize)> {
        if self.channels.is_none() {
            // The header did not say; the first decoded packet does.
            if channels > usize::from(self.limits.max_channels) {
                return Err(limit(self.label, "channels", channels, self.limits.max_channels));
            }
            self.channels = Some(channels);
        }
        let skip = usize::try_from(self.priming_left.min(n as u64)).unwrap_or(n);
        self.priming_left -= skip as u64;
        let take = n - skip;
        let seen = self.frames + take as u64;
        if seen > self.cap(channels) {
            let rate = self.rate;
            return Err(if seen > duration_cap(rate, self.limits) {
                limit(
                    self.label,
                    "duration_s",
                    format!("at least {:.3}", seen as f64 / f64::from(rate)),
                    self.limits.max_duration_s,
                )
            } else {
                limit(
                    self.label,
                    "decoded_bytes",
                    format!("at least {}", u128::from(seen) * channels as u128 * 4),
                    self.limits.max_decoded_bytes,
                )
            });
        }
        if self.store && take > 0 {
            if self.planes.is_empty() {
                let capacity =
                    prealloc_frames(self.header_frames, self.cap(channels), self.input_len);
                self.planes = (0..channels).map(|_| Vec::with_capacity(capacity)).collect();
            }
            let end = self.planes[0].len() + take;
            for p in &mut self.planes {
                p.resize(end, 0.0);
            }
        }
        self.frames = seen;
        Ok((skip, take))
    }

    fn push_decoded(&mut self, buf: &GenericAudioBufferRef<'_>) -> Result<()> {
        let (skip, take) = self.admit(buf.frames(), buf.num_planes())?;
        if self.store && take > 0 {
            let mut dst: Vec<&mut [f32]> = self
                .planes
                .iter_mut()
                .map(|p| {
                    let start = p.len() - take;
                    &mut p[start..]
                })
                .collect();
            buf.slice(skip..).copy_to_slice_planar(&mut dst);
        }
        let fresh = take - self.sink_skip(take);
        if let Some(sink) = &mut self.sink
            && fresh > 0
        {
            self.scratch.resize_with(buf.num_planes(), Vec::new);
            let mut dst: Vec<&mut [f32]> = self
                .scratch
                .iter_mut()
                .map(|p| {
                    p.resize(fresh, 0.0);
                    &mut p[..]
                })
                .collect();
            buf.slice(skip + take - fresh..).copy_to_slice_planar(&mut dst);
            let planes: Vec<&[f32]> = self.scratch.iter().map(|p| &p[..fresh]).collect();
            sink(self.rate, &planes)?;
        }
        Ok(())
    }

    /// [`push_decoded`](Self::push_decoded) for planar slices of equal length (one per
    /// channel), as the parallel MP3 path delivers them.
    fn push_planes(&mut self, planes: &[&[f32]]) -> Result<()> {
        let n = planes.first().map_or(0, |p| p.len());
        let (skip, take) = self.admit(n, planes.len())?;
        if self.store && take > 0 {
            for (dst, src) in self.planes.iter_mut().zip(planes) {
                let start = dst.len() - take;
                dst[start..].copy_from_slice(&src[skip..]);
            }
        }
        let fresh = take - self.sink_skip(take);
        if let Some(sink) = &mut self.sink
            && fresh > 0
        {
            let from = skip + take - fresh;
            let block: Vec<&[f32]> = planes.iter().map(|p| &p[from..]).collect();
            sink(self.rate, &block)?;
        }
        Ok(())
    }

    /// Appends `n` frames of silence (already zero after `admit`); returns how many were kept.
    /// Nothing is added while the channel count is still unknown.
    fn push_silence(&mut self, n: u64) -> Result<usize> {
        let Some(channels) = self.channels else { return Ok(0) };
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let (_, take) = self.admit(n, channels)?;
        let fresh = take - self.sink_skip(take);
        if let Some(sink) = &mut self.sink {
            let zeros = vec![0.0f32; fresh.min(1 << 16)];
            let mut left = fresh;
            while left > 0 {
                let k = left.min(zeros.len());
                let planes = vec![&zeros[..k]; channels];
                sink(self.rate, &planes)?;
                left -= k;
            }
        }
        Ok(take)
    }
}

/// Fills the length fields and chapters once the frame count is known.
fn finish_info(info: &mut ProbeInfo, frames: u64, reader: &dyn FormatReader, rate: u32) {
    info.frames = frames;
    info.duration_ms = frames_to_ms(frames, nonzero(rate));
    info.chapters = collect_chapters(reader.chapters(), info.duration_ms);
}

/// Frames to reserve per channel: the header's count plus one packet, never more than the
/// limits allow nor more than [`MAX_FRAMES_PER_BYTE`] per input byte.
fn prealloc_frames(header_frames: Option<u64>, cap: u64, input_len: u64) -> usize {
    let Some(n) = header_frames else { return 0 };
    let by_size = input_len.saturating_mul(MAX_FRAMES_PER_BYTE);
    let frames = n.saturating_add(PREALLOC_SLACK_FRAMES).min(cap).min(by_size);
    usize::try_from(frames).unwrap_or(0)
}

fn nonzero(rate: u32) -> NonZeroU32 {
    // `open_source` rejects a zero rate, so this never falls back in practice.
    NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prealloc_is_bounded_by_limits_and_input_size() {
        assert_eq!(prealloc_frames(None, 1_000, 10), 0);
        assert_eq!(prealloc_frames(Some(100), 1_000_000, 1_000_000), 100 + 8192);
        // A 10-byte input claiming a billion frames gets at most 2560.
        assert_eq!(prealloc_frames(Some(1_000_000_000), u64::MAX, 10), 2560);
        assert_eq!(prealloc_frames(Some(1_000_000_000), 500, 1 << 30), 500);
    }

    #[test]
    fn caps_follow_the_limits() {
        let l = Limits { max_duration_s: 2.5, max_decoded_bytes: 8000, ..Limits::default() };
        assert_eq!(duration_cap(8000, &l), 20_000);
        assert_eq!(bytes_cap(2, &l), 1000);
        let inf = Limits { max_duration_s: f64::INFINITY, ..Limits::default() };
        assert_eq!(duration_cap(48_000, &inf), u64::MAX);
    }

    #[test]
    fn nonsensical_limits_are_rejected_by_name() {
        for (l, field) in [
            (Limits { max_duration_s: f64::NAN, ..Limits::default() }, "limits.max_duration_s"),
            (Limits { max_duration_s: -1.0, ..Limits::default() }, "limits.max_duration_s"),
            (Limits { max_channels: 0, ..Limits::default() }, "limits.max_channels"),
        ] {
            match validate_limits(&l) {
                Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
                other => panic!("expected InvalidInput for {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn options_reject_unknown_fields_and_default_the_rest() {
        let typo = serde_json::from_str::<DecodeOptions>(r#"{"gaples": false}"#);
        assert!(typo.is_err());
        let o: DecodeOptions = serde_json::from_str(r#"{"gapless": false}"#).unwrap();
        assert_eq!(o, DecodeOptions { gapless: false, limits: Limits::default(), threads: None });
        let o: DecodeOptions = serde_json::from_str(r#"{"threads": 3}"#).unwrap();
        assert_eq!(o.threads, NonZeroUsize::new(3));
        assert!(serde_json::from_str::<DecodeOptions>(r#"{"threads": 0}"#).is_err());
    }

    #[test]
    fn packet_durations_convert_to_frames() {
        // MP3 packet of 1152 ticks at 1/44100.
        assert_eq!(packet_frames(1152, Some((1, 44_100)), 44_100), 1152);
        // 1024 ticks of an MP4 track with timescale 48000, stream at 96000.
        assert_eq!(packet_frames(1024, Some((1, 48_000)), 96_000), 2048);
        // No time base: ticks are frames.
        assert_eq!(packet_frames(576, None, 22_050), 576);
        assert_eq!(packet_frames(u64::MAX, Some((u32::MAX, 1)), 384_000), u64::MAX);
        // 312 frames at 48 kHz in a millisecond time base (Matroska's default) and back.
        assert_eq!(frames_to_ticks(312, Some((1, 1000)), 48_000), 7);
        assert_eq!(frames_to_ticks(312, None, 48_000), 312);
        assert_eq!(frames_to_ticks(5, Some((0, 1)), 48_000), 0);
    }

    #[test]
    fn he_aac_is_unsupported_naming_it() {
        use symphonia::core::audio::layouts::CHANNEL_LAYOUT_STEREO;
        use symphonia::core::codecs::audio::well_known::CODEC_ID_AAC;
        // AudioSpecificConfig: object type 5 (SBR), 24 kHz core, stereo, 48 kHz output, AAC-LC.
        let mut params = AudioCodecParameters::new();
        params
            .for_codec(CODEC_ID_AAC)
            .with_sample_rate(24_000)
            .with_channels(CHANNEL_LAYOUT_STEREO)
            .with_extra_data(Box::new([0x2B, 0x11, 0x88, 0x00]));
        let label = Path::new("he.m4a");
        match make_decoder(&params, &DecodeOptions::default(), label, "aac") {
            Err(Error::UnsupportedFormat { detail, .. }) => {
                assert!(detail.contains("HE-AAC"), "{detail}");
            }
            Err(other) => panic!(
                "expected UnsupportedFormat, got {other} ({:?})",
                std::error::Error::source(&other)
            ),
            Ok(_) => panic!("HE-AAC decoded"),
        }
    }

    #[test]
    fn panics_become_decode_errors() {
        let label = Path::new("x.wav");
        let err = guarded::<()>(label, || panic!("boom")).unwrap_err();
        assert!(matches!(&err, Error::Decode { detail, .. } if detail.contains("boom")), "{err}");
    }
}
