//! Encode stage: WAV (hound), FLAC (flacenc) and MP3 (LAME) with tags, written atomically.
//!
//! [`Encoder`] is streaming: the renderer pushes blocks of any size as it goes, so a 60-minute
//! episode is never held twice in memory. Every output is written to a temp file in the
//! destination folder and renamed into place by [`Encoder::finish`]; an encoder dropped without
//! `finish` (error, cancellation) removes its temp file, so nothing partial ever appears.
//!
//! Sample handling at the edges (documented in `docs/encoding.md`):
//! - `NaN` is written as `0.0` (silence) in every format.
//! - Integer formats (WAV PCM, FLAC) clamp to `[-1.0, 1.0]`, scale by `2^(bits-1)`, round to
//!   nearest and clamp to the integer range (so `+1.0` becomes `2^(bits-1) - 1`). No dither is
//!   added: output is deterministic and a source already on the integer grid round-trips
//!   bit-exactly.
//! - 32-bit float WAV keeps finite samples unchanged (even beyond ±1.0); `±inf` becomes `±1.0`.
//! - MP3 clamps to `[-1.0, 1.0]` and feeds LAME floats.

mod chunk_cache;
mod flac;
mod lame;
mod mp3;
mod mp3_par;
mod tags;
mod wav;

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::AtomicFile;
use crate::error::{Error, Result};
use crate::{AudioBuffer, Chapter, frames_to_ms};

pub use chunk_cache::{ChunkCache, ChunkStats};
pub use tags::{CoverArt, MAX_COVER_BYTES};

/// Frames handed to a backend per call; bounds the conversion buffers and LAME's output buffer.
const CHUNK_FRAMES: usize = 4096;

/// Most channels a WAV or FLAC output may have (FLAC's own limit).
pub const MAX_CHANNELS: usize = 8;

/// The output file format and its options.
///
/// Serialized with a `format` tag, e.g. `{"format": "mp3", "bitrate": {"mode": "cbr", "kbps":
/// 128}, "quality": 5}` or `{"format": "flac", "bits": 24}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputFormat {
    /// RIFF WAVE (via hound). Tags and chapters are not written.
    Wav {
        /// Sample format. Default: `pcm16`.
        #[serde(default)]
        sample_format: WavSampleFormat,
    },
    /// FLAC (via flacenc), fixed 4096-frame blocks, with STREAMINFO total length and MD5, a
    /// Vorbis comment block (tags and `CHAPTERxxx` chapters) and a PICTURE block for the cover.
    Flac {
        /// Bits per sample: `16` or `24`. Default: `16`.
        #[serde(default = "default_flac_bits")]
        bits: u8,
    },
    /// MPEG-1/2 Layer III (via LAME 3.100) with a LAME/Xing info tag for exact (gapless)
    /// length, and an ID3v2.4 tag (text, cover art, CHAP/CTOC chapters) in front.
    Mp3 {
        /// CBR bitrate or VBR quality. Default: `{"mode": "cbr", "kbps": 128}`.
        #[serde(default)]
        bitrate: Mp3Bitrate,
        /// LAME's algorithm quality (`-q`), `0` (best, slowest) to `9` (fastest). Values below 2
        /// are much slower for no audible gain. Default: `5` (1.6–2.3× less CPU than `2`; see
        /// `docs/encoding.md`).
        #[serde(default = "default_lame_quality")]
        quality: u8,
    },
}

/// WAV sample format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WavSampleFormat {
    /// 16-bit signed integer PCM.
    #[default]
    Pcm16,
    /// 24-bit signed integer PCM (WAVE_FORMAT_EXTENSIBLE).
    Pcm24,
    /// 32-bit IEEE float.
    Float32,
}

/// MP3 rate control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Mp3Bitrate {
    /// Constant bitrate in kbit/s: one of the Layer III bitrates of the output's MPEG version
    /// (32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320 at 32/44.1/48 kHz; 32 … 160
    /// at 8 … 24 kHz). 56 and 144 are not offered by the LAME binding.
    Cbr {
        /// Bitrate in kbit/s.
        kbps: u16,
    },
    /// Variable bitrate (LAME `-V`): `0` (best, ~245 kbit/s stereo) to `9` (smallest).
    Vbr {
        /// VBR quality 0..=9.
        quality: u8,
    },
}

impl Default for Mp3Bitrate {
    fn default() -> Self {
        Self::Cbr { kbps: 128 }
    }
}

fn default_flac_bits() -> u8 {
    16
}

fn default_lame_quality() -> u8 {
    5
}

/// Sample rates LAME encodes without resampling (MPEG-1, MPEG-2 and MPEG-2.5 Layer III).
pub const MP3_SAMPLE_RATES: [u32; 9] =
    [8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000];

/// MPEG-1 Layer III bitrates (32/44.1/48 kHz) the LAME binding offers, kbit/s.
const MPEG1_KBPS: [u16; 13] = [32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
/// MPEG-2/2.5 Layer III bitrates (8 … 24 kHz) the LAME binding offers, from 32 kbit/s.
const MPEG2_KBPS: [u16; 8] = [32, 40, 48, 64, 80, 96, 112, 128];
/// MPEG-2/2.5 bitrates above 128 that exist (144 is missing from the binding).
const MPEG2_KBPS_HIGH: [u16; 1] = [160];

impl OutputFormat {
    /// 16-bit PCM WAV.
    pub fn wav16() -> Self {
        Self::Wav { sample_format: WavSampleFormat::Pcm16 }
    }

    /// MP3 at a constant bitrate with the default LAME quality.
    pub fn mp3_cbr(kbps: u16) -> Self {
        Self::Mp3 { bitrate: Mp3Bitrate::Cbr { kbps }, quality: default_lame_quality() }
    }

    /// The usual file extension (`"wav"`, `"flac"`, `"mp3"`).
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Wav { .. } => "wav",
            Self::Flac { .. } => "flac",
            Self::Mp3 { .. } => "mp3",
        }
    }

    /// Checks that this format can encode `channels` channels at `rate` Hz.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the field: `channels`, `rate`, `format.bits`,
    /// `format.bitrate.kbps`, `format.bitrate.quality` or `format.quality`.
    pub fn validate(&self, rate: NonZeroU32, channels: usize) -> Result<()> {
        let rate = rate.get();
        match *self {
            Self::Wav { .. } => {
                check_channels(channels, MAX_CHANNELS)?;
            }
            Self::Flac { bits } => {
                check_channels(channels, MAX_CHANNELS)?;
                if bits != 16 && bits != 24 {
                    return Err(Error::invalid_input(
                        "format.bits",
                        format!("FLAC bits must be 16 or 24, got {bits}"),
                    ));
                }
                if rate > 655_350 {
                    return Err(Error::invalid_input(
                        "rate",
                        format!("FLAC sample rate must be at most 655350 Hz, got {rate}"),
                    ));
                }
            }
            Self::Mp3 { bitrate, quality } => {
                check_channels(channels, 2)?;
                if !MP3_SAMPLE_RATES.contains(&rate) {
                    return Err(Error::invalid_input(
                        "rate",
                        format!(
                            "MP3 sample rate must be one of {MP3_SAMPLE_RATES:?} Hz, got {rate}; \
                             resample first"
                        ),
                    ));
                }
                if quality > 9 {
                    return Err(Error::invalid_input(
                        "format.quality",
                        format!("LAME quality must be 0..=9, got {quality}"),
                    ));
                }
                match bitrate {
                    Mp3Bitrate::Cbr { kbps } => check_mp3_kbps(kbps, rate)?,
                    Mp3Bitrate::Vbr { quality } if quality > 9 => {
                        return Err(Error::invalid_input(
                            "format.bitrate.quality",
                            format!("VBR quality must be 0..=9, got {quality}"),
                        ));
                    }
                    Mp3Bitrate::Vbr { .. } => {}
                }
            }
        }
        Ok(())
    }
}

fn check_channels(channels: usize, max: usize) -> Result<()> {
    if channels == 0 || channels > max {
        return Err(Error::invalid_input(
            "channels",
            format!("this format takes 1 to {max} channels, got {channels}"),
        ));
    }
    Ok(())
}

fn check_mp3_kbps(kbps: u16, rate: u32) -> Result<()> {
    if !(32..=320).contains(&kbps) {
        return Err(Error::invalid_input(
            "format.bitrate.kbps",
            format!("MP3 bitrate must be 32..=320 kbit/s, got {kbps}"),
        ));
    }
    let mpeg1 = rate >= 32_000;
    let ok = if mpeg1 {
        MPEG1_KBPS.contains(&kbps)
    } else {
        MPEG2_KBPS.contains(&kbps) || MPEG2_KBPS_HIGH.contains(&kbps)
    };
    if !ok {
        let allowed: Vec<u16> = if mpeg1 {
            MPEG1_KBPS.to_vec()
        } else {
            MPEG2_KBPS.iter().chain(&MPEG2_KBPS_HIGH).copied().collect()
        };
        return Err(Error::invalid_input(
            "format.bitrate.kbps",
            format!("{kbps} kbit/s is not available at {rate} Hz; use one of {allowed:?}"),
        ));
    }
    Ok(())
}

/// Metadata written with the audio: ID3v2 for MP3, Vorbis comments + PICTURE for FLAC, nothing
/// for WAV.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tags {
    /// Episode title (ID3 `TIT2`, Vorbis `TITLE`). Default: `None`.
    pub title: Option<String>,
    /// Artist / host (ID3 `TPE1`, Vorbis `ARTIST`). Default: `None`.
    pub artist: Option<String>,
    /// Album / show name (ID3 `TALB`, Vorbis `ALBUM`). Default: `None`.
    pub album: Option<String>,
    /// Free-text comment (ID3 `COMM` in English, Vorbis `COMMENT`). Default: `None`.
    pub comment: Option<String>,
    /// Release date as ISO 8601 `YYYY[-MM[-DD[THH[:MM[:SS]]]]]` (ID3 `TDRC`, Vorbis `DATE`).
    /// Default: `None`.
    pub date: Option<String>,
    /// Track / episode number, at least 1 (ID3 `TRCK`, Vorbis `TRACKNUMBER`). Default: `None`.
    pub track: Option<u32>,
    /// Cover art, JPEG or PNG (ID3 `APIC` front cover, FLAC `PICTURE`). Default: `None`.
    pub cover: Option<CoverArt>,
    /// Chapters in time order, non-overlapping (ID3 `CHAP` + one top-level ordered `CTOC`;
    /// Vorbis `CHAPTERxxx` comments). Default: empty.
    pub chapters: Vec<Chapter>,
}

impl Tags {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks every field (date syntax, track ≥ 1, cover type, chapter order and ranges).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the field, e.g. `tags.chapters[2].end_ms`.
    pub fn validate(&self) -> Result<()> {
        tags::validate(self)
    }
}

/// What [`Encoder::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedInfo {
    /// The final path (the file now exists there).
    pub path: PathBuf,
    /// File size in bytes.
    pub bytes: u64,
    /// Frames (samples per channel) encoded.
    pub frames: u64,
    /// Duration in milliseconds, rounded to nearest.
    pub duration_ms: u64,
}

enum Backend {
    Wav(wav::WavOut),
    Flac(Box<flac::FlacOut>),
    Mp3(Box<mp3::Mp3Out>),
}

/// A streaming encoder writing one output file atomically.
///
/// Push blocks of any size with [`write`](Self::write), then call [`finish`](Self::finish).
/// Until `finish` returns, the data lives in a temp file beside `path`; dropping the encoder
/// earlier (an error, a cancelled render) deletes it.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{AudioBuffer, synth};
/// use assembly_core::encode::{Encoder, OutputFormat, Tags};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("episode.mp3");
/// let rate = NonZeroU32::new(44_100).unwrap();
/// let mut enc = Encoder::create(&path, &OutputFormat::mp3_cbr(128), rate, 1, &Tags::default())
///     .unwrap();
/// for seed in 0..10 {
///     let block = synth::mono(rate, synth::speech_like(rate, seed, -20.0, 4410));
///     enc.write(&block).unwrap();
/// }
/// let info = enc.finish().unwrap();
/// assert_eq!(info.frames, 44_100);
/// assert_eq!(info.duration_ms, 1000);
/// assert!(info.bytes > 10_000);
/// ```
pub struct Encoder {
    backend: Backend,
    path: PathBuf,
    rate: NonZeroU32,
    channels: usize,
    frames: u64,
    /// Set when a backend call failed: the file is in an unknown state, refuse to continue.
    failed: bool,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("path", &self.path)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// Validates everything, then creates the temp file and writes the header and tags.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the field for a bad format option, rate, channel count or
    /// tag (see [`OutputFormat::validate`], [`Tags::validate`]); [`Error::Io`] if the temp file
    /// cannot be created or written; [`Error::Encode`] if the encoder library refuses the
    /// configuration.
    pub fn create(
        path: &Path,
        format: &OutputFormat,
        rate: NonZeroU32,
        channels: usize,
        tags: &Tags,
    ) -> Result<Self> {
        Self::create_with_threads(path, format, rate, channels, tags, None)
    }

    /// [`create`](Self::create) with an explicit number of encoding threads.
    ///
    /// CBR MP3 is encoded in fixed chunks by worker threads while the caller keeps rendering;
    /// `None` uses one per core (at most 8); `Some(1)` still encodes on one thread beside the
    /// caller. FLAC encodes its blocks in batches, half of each on a second thread unless
    /// the count is 1 (`None`: two threads when the machine has two cores). The output bytes
    /// are the same for any count. WAV ignores it.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create).
    pub fn create_with_threads(
        path: &Path,
        format: &OutputFormat,
        rate: NonZeroU32,
        channels: usize,
        tags: &Tags,
        threads: Option<std::num::NonZeroUsize>,
    ) -> Result<Self> {
        format.validate(rate, channels)?;
        tags.validate()?;
        let file = AtomicFile::create(path)?;
        let backend = match *format {
            OutputFormat::Wav { sample_format } => {
                Backend::Wav(wav::WavOut::new(file, sample_format, rate, channels)?)
            }
            OutputFormat::Flac { bits } => {
                let two = threads.map_or(crate::par::threads(), std::num::NonZeroUsize::get) >= 2;
                Backend::Flac(Box::new(flac::FlacOut::new(file, bits, rate, channels, tags, two)?))
            }
            OutputFormat::Mp3 { bitrate, quality } => Backend::Mp3(Box::new(mp3::Mp3Out::new(
                file, bitrate, quality, rate, channels, tags, threads,
            )?)),
        };
        Ok(Self { backend, path: path.to_path_buf(), rate, channels, frames: 0, failed: false })
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encodes one block (any number of frames, including zero).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] (field `block`) if the block's rate or channel count differs
    /// from the encoder's; the encoder stays usable. [`Error::Io`] / [`Error::Encode`] if
    /// writing fails; the encoder is then unusable and should be dropped (which removes the
    /// temp file).
    pub fn write(&mut self, block: &AudioBuffer) -> Result<()> {
        if block.sample_rate() != self.rate || block.channel_count() != self.channels {
            return Err(Error::invalid_input(
                "block",
                format!(
                    "block is {} Hz × {} ch, encoder expects {} Hz × {} ch",
                    block.sample_rate(),
                    block.channel_count(),
                    self.rate,
                    self.channels
                ),
            ));
        }
        self.check_usable()?;
        let n = block.frames();
        let mut start = 0;
        while start < n {
            let end = (start + CHUNK_FRAMES).min(n);
            let planes: Vec<&[f32]> = block.planes().iter().map(|p| &p[start..end]).collect();
            let res = match &mut self.backend {
                Backend::Wav(w) => w.write(&planes),
                Backend::Flac(w) => w.write(&planes),
                Backend::Mp3(w) => w.write(&planes),
            };
            if let Err(e) = res {
                self.failed = true;
                return Err(e);
            }
            self.frames += (end - start) as u64;
            start = end;
        }
        Ok(())
    }

    /// Keeps the chunks of this encode in the scratch file `spill` (CBR MP3, which is encoded
    /// in parallel chunks), and takes from `previous` every chunk whose input is unchanged
    /// instead of encoding it again: byte for byte what a full encode gives, at the cost of
    /// the changed chunks only. [`finish_keeping_chunks`](Self::finish_keeping_chunks)
    /// returns the new cache. A `previous` made with other settings is ignored; other formats
    /// and VBR keep nothing. Call before the first [`write`](Self::write).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `spill` cannot be created; [`Error::Internal`] after a write.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use assembly_core::{AudioBuffer, synth};
    /// use assembly_core::encode::{Encoder, OutputFormat, Tags};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let rate = NonZeroU32::new(44_100).unwrap();
    /// let speech = synth::mono(rate, synth::speech_like(rate, 7, -20.0, 44_100 * 60));
    /// let (path, spill) = (dir.path().join("a.mp3"), dir.path().join("a.chunks"));
    /// let format = OutputFormat::mp3_cbr(128);
    /// let mut enc = Encoder::create(&path, &format, rate, 1, &Tags::default()).unwrap();
    /// enc.keep_chunks(&spill, None).unwrap();
    /// enc.write(&speech).unwrap();
    /// let (_, first) = enc.finish_keeping_chunks().unwrap();
    /// let first = first.unwrap();
    /// assert_eq!(first.stats().reused, 0);
    ///
    /// // The same audio with one second changed near the end.
    /// let mut planes = speech.into_planes();
    /// planes[0][44_100 * 58..44_100 * 59].iter_mut().for_each(|s| *s *= 0.5);
    /// let changed = AudioBuffer::from_planar(rate, planes).unwrap();
    /// let again = dir.path().join("b.mp3");
    /// let mut enc = Encoder::create(&again, &format, rate, 1, &Tags::default()).unwrap();
    /// enc.keep_chunks(&dir.path().join("b.chunks"), Some(first)).unwrap();
    /// enc.write(&changed).unwrap();
    /// let (_, second) = enc.finish_keeping_chunks().unwrap();
    /// let stats = second.unwrap().stats();
    /// assert!(stats.reused >= 1 && stats.encoded >= 1);
    /// assert!(!spill.exists()); // the first cache's file went with it
    /// ```
    pub fn keep_chunks(&mut self, spill: &Path, previous: Option<ChunkCache>) -> Result<()> {
        match &mut self.backend {
            Backend::Mp3(w) => w.keep_chunks(spill, previous),
            Backend::Wav(_) | Backend::Flac(_) => Ok(()),
        }
    }

    /// Flushes the encoder, completes headers (lengths, LAME tag, STREAMINFO), fsyncs and
    /// renames the temp file to the final path.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] / [`Error::Encode`] naming the path; no file is left behind then.
    pub fn finish(self) -> Result<EncodedInfo> {
        self.finish_keeping_chunks().map(|(info, _)| info)
    }

    /// [`finish`](Self::finish), also returning the chunks kept since
    /// [`keep_chunks`](Self::keep_chunks) (`None` when not asked for or not CBR MP3).
    ///
    /// # Errors
    ///
    /// As [`finish`](Self::finish).
    pub fn finish_keeping_chunks(self) -> Result<(EncodedInfo, Option<ChunkCache>)> {
        self.check_usable()?;
        let (file, bytes, cache) = match self.backend {
            Backend::Wav(w) => w.finish().map(|(f, n)| (f, n, None))?,
            Backend::Flac(w) => w.finish().map(|(f, n)| (f, n, None))?,
            Backend::Mp3(w) => w.finish()?,
        };
        file.commit()?;
        let info = EncodedInfo {
            path: self.path,
            bytes,
            frames: self.frames,
            duration_ms: frames_to_ms(self.frames, self.rate),
        };
        Ok((info, cache))
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed {
            return Err(Error::encode(&self.path, "an earlier write failed; encoder unusable"));
        }
        Ok(())
    }
}

/// The stretches of input frames the encoder encodes independently for an output of `frames`
/// frames at `rate` in `format`: for CBR MP3 the parallel encoder's chunks, each with the
/// pre- and post-roll it reads (neighbours overlap by those); for every other format one
/// stretch. A change to the input inside one stretch changes only that stretch's encoding
/// ([`Encoder::keep_chunks`] reuses the rest).
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::encode::{OutputFormat, independent_stretches};
///
/// let rate = NonZeroU32::new(44_100).unwrap();
/// let s = independent_stretches(&OutputFormat::mp3_cbr(128), rate, 44_100 * 60);
/// assert_eq!(s.len(), 3); // ~26.7 s chunks
/// assert_eq!(s[0].start, 0);
/// assert!(s[1].start < s[0].end); // the pre-roll reaches back into chunk 0
/// assert_eq!(s[2].end, 44_100 * 60);
/// let flac = independent_stretches(&OutputFormat::Flac { bits: 16 }, rate, 1000);
/// assert_eq!(flac.len(), 1);
/// assert_eq!(flac[0], 0..1000);
/// ```
pub fn independent_stretches(
    format: &OutputFormat,
    rate: NonZeroU32,
    frames: u64,
) -> Vec<std::ops::Range<u64>> {
    match format {
        OutputFormat::Mp3 { bitrate: Mp3Bitrate::Cbr { .. }, .. } => {
            mp3_par::job_inputs(rate.get(), frames)
        }
        _ => std::iter::once(0..frames).collect(),
    }
}

/// Encodes a whole buffer to `path` in one call (streams it through an [`Encoder`]).
///
/// # Errors
///
/// As [`Encoder::create`], [`Encoder::write`] and [`Encoder::finish`]; on error nothing is left
/// at `path` (an existing file there is untouched) and no temp file remains.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{synth, encode::{self, OutputFormat, Tags}};
///
/// let dir = tempfile::tempdir().unwrap();
/// let rate = NonZeroU32::new(48_000).unwrap();
/// let tone = synth::multi(rate, synth::sine(rate, 1000.0, 0.5, 4800), 2);
/// let path = dir.path().join("tone.wav");
/// let info = encode::write_file(&path, &tone, &OutputFormat::wav16(), &Tags::default()).unwrap();
/// assert_eq!(info.frames, 4800);
/// assert_eq!(info.duration_ms, 100);
/// assert_eq!(info.bytes, 44 + 4800 * 2 * 2); // canonical header + 16-bit stereo samples
/// assert_eq!(std::fs::metadata(&path).unwrap().len(), info.bytes);
/// ```
pub fn write_file(
    path: &Path,
    buffer: &AudioBuffer,
    format: &OutputFormat,
    tags: &Tags,
) -> Result<EncodedInfo> {
    let mut enc =
        Encoder::create(path, format, buffer.sample_rate(), buffer.channel_count(), tags)?;
    enc.write(buffer)?;
    enc.finish()
}

/// `NaN` → 0, then clamp to `[-1, 1]`.
#[inline]
pub(crate) fn sanitize_clamped(s: f32) -> f32 {
    if s.is_nan() { 0.0 } else { s.clamp(-1.0, 1.0) }
}

/// Quantizes to a signed `bits`-bit integer: clamp, scale by `2^(bits-1)`, round to nearest,
/// clamp to the integer range.
#[inline]
pub(crate) fn quantize(s: f32, bits: u32) -> i32 {
    let scale = (1u32 << (bits - 1)) as f32;
    let v = (sanitize_clamped(s) * scale).round();
    v.clamp(-scale, scale - 1.0) as i32
}

/// Float output: `NaN` → 0, `±inf` → `±1`, finite values unchanged.
#[inline]
pub(crate) fn sanitize_float(s: f32) -> f32 {
    if s.is_nan() {
        0.0
    } else if s.is_infinite() {
        s.signum()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(r: u32) -> NonZeroU32 {
        NonZeroU32::new(r).unwrap()
    }

    #[test]
    fn quantize_edges() {
        assert_eq!(quantize(1.0, 16), 32767);
        assert_eq!(quantize(-1.0, 16), -32768);
        assert_eq!(quantize(2.5, 16), 32767);
        assert_eq!(quantize(-7.0, 24), -8_388_608);
        assert_eq!(quantize(f32::NAN, 16), 0);
        assert_eq!(quantize(f32::INFINITY, 24), 8_388_607);
        assert_eq!(quantize(f32::NEG_INFINITY, 16), -32768);
        assert_eq!(quantize(0.5 / 32768.0, 16), 1); // ties away from zero
        assert_eq!(quantize(1234.0 / 32768.0, 16), 1234);
        assert_eq!(quantize(-1234.0 / 8_388_608.0, 24), -1234);
        assert_eq!(sanitize_float(1.5), 1.5);
        assert_eq!(sanitize_float(f32::NEG_INFINITY), -1.0);
        assert_eq!(sanitize_float(f32::NAN), 0.0);
    }

    #[test]
    fn validation_names_fields() {
        let field = |f: &OutputFormat, r: u32, ch: usize| match f.validate(rate(r), ch) {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        assert_eq!(field(&OutputFormat::mp3_cbr(100), 44_100, 2), "format.bitrate.kbps");
        assert_eq!(field(&OutputFormat::mp3_cbr(16), 44_100, 2), "format.bitrate.kbps");
        assert_eq!(field(&OutputFormat::mp3_cbr(192), 22_050, 1), "format.bitrate.kbps");
        assert_eq!(field(&OutputFormat::mp3_cbr(128), 96_000, 2), "rate");
        assert_eq!(field(&OutputFormat::mp3_cbr(128), 44_100, 3), "channels");
        let q = OutputFormat::Mp3 { bitrate: Mp3Bitrate::Cbr { kbps: 128 }, quality: 10 };
        assert_eq!(field(&q, 44_100, 2), "format.quality");
        let v = OutputFormat::Mp3 { bitrate: Mp3Bitrate::Vbr { quality: 12 }, quality: 5 };
        assert_eq!(field(&v, 44_100, 2), "format.bitrate.quality");
        assert_eq!(field(&OutputFormat::Flac { bits: 20 }, 44_100, 2), "format.bits");
        assert_eq!(field(&OutputFormat::Flac { bits: 16 }, 700_000, 2), "rate");
        assert_eq!(field(&OutputFormat::wav16(), 44_100, 9), "channels");
        assert!(OutputFormat::mp3_cbr(160).validate(rate(22_050), 1).is_ok());
        assert!(OutputFormat::mp3_cbr(320).validate(rate(48_000), 2).is_ok());
        assert!(OutputFormat::mp3_cbr(32).validate(rate(8_000), 1).is_ok());
    }

    #[test]
    fn serde_shape_and_defaults() {
        let f: OutputFormat = serde_json::from_str(r#"{"format":"mp3"}"#).unwrap();
        assert_eq!(f, OutputFormat::mp3_cbr(128));
        let f: OutputFormat =
            serde_json::from_str(r#"{"format":"mp3","bitrate":{"mode":"vbr","quality":2}}"#)
                .unwrap();
        assert_eq!(f, OutputFormat::Mp3 { bitrate: Mp3Bitrate::Vbr { quality: 2 }, quality: 5 });
        let f: OutputFormat = serde_json::from_str(r#"{"format":"flac"}"#).unwrap();
        assert_eq!(f, OutputFormat::Flac { bits: 16 });
        let f: OutputFormat =
            serde_json::from_str(r#"{"format":"wav","sample_format":"float32"}"#).unwrap();
        assert_eq!(f, OutputFormat::Wav { sample_format: WavSampleFormat::Float32 });
        // Typos are errors, not silently different audio.
        assert!(serde_json::from_str::<OutputFormat>(r#"{"format":"flac","bit":24}"#).is_err());
        assert!(
            serde_json::from_str::<OutputFormat>(
                r#"{"format":"mp3","bitrate":{"mode":"cbr","kbs":64}}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<Tags>(r#"{"titel":"x"}"#).is_err());
        let back = serde_json::to_string(&OutputFormat::mp3_cbr(192)).unwrap();
        assert_eq!(back, r#"{"format":"mp3","bitrate":{"mode":"cbr","kbps":192},"quality":5}"#);
    }
}
