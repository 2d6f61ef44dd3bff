//! MP3 output via LAME 3.100 (mp3lame-encoder), with an ID3v2 tag in front and a LAME/Xing
//! info tag in the first frame.
//!
//! File layout: `[ID3v2 tag][info-tag frame][audio frames …]`. The info-tag frame holds the
//! frame count, byte count, seek TOC and the LAME extension with encoder delay and padding,
//! which gapless decoders (symphonia, ffmpeg, iTunes, …) use to trim the output to exactly the
//! encoded number of samples. It is reserved up front and filled in after the flush:
//! - normally LAME reserves it itself (`bWriteVbrTag`) and `lame_get_lametag_frame` fills it;
//! - at low CBR bitrates (e.g. 32–56 kbit/s at 44.1 kHz) a frame of that bitrate is too small
//!   for the tag and LAME silently drops it; then this module reserves a larger "Info" frame
//!   itself and writes the Xing + LAME fields (delay 576, padding computed from the frame count
//!   it parsed from LAME's output, both CRCs) the way LAME would.

use std::io::{Seek, SeekFrom, Write};
use std::num::NonZeroU32;
use std::path::PathBuf;

use mp3lame_encoder::{
    Bitrate, Builder, DualPcm, EncodeError, Encoder as Lame, FlushGap, Mode, MonoPcm, Quality,
    VbrMode, max_required_buffer_size,
};

use super::mp3_par::{ParConfig, ParOut};
use super::{Mp3Bitrate, Tags, sanitize_clamped, tags};
use crate::atomic::AtomicFile;
use crate::error::{Error, Result};
use crate::mp3::{
    ChannelMode, Header, LAME_EXT_LEN, Version, XING_BYTES, XING_FRAMES, XING_LEN, XING_QUALITY,
    XING_TOC, crc16_update, frame_info,
};

/// LAME's encoder delay in samples (`ENCDELAY`, constant in LAME 3.100 without resampling).
pub(super) const LAME_ENCODER_DELAY: u64 = 576;

/// The MP3 backend: CBR is encoded in parallel chunks (see `mp3_par`), VBR sequentially.
pub(super) enum Mp3Out {
    /// One LAME encoder fed block by block.
    Seq(Box<SeqOut>),
    /// Chunks encoded by worker threads and joined into one stream.
    Par(Box<ParOut>),
}

impl Mp3Out {
    pub(super) fn new(
        file: AtomicFile,
        bitrate: Mp3Bitrate,
        quality: u8,
        rate: NonZeroU32,
        channels: usize,
        tags: &Tags,
        threads: Option<std::num::NonZeroUsize>,
    ) -> Result<Self> {
        match bitrate {
            Mp3Bitrate::Cbr { kbps } => {
                let mut cfg = ParConfig::new(rate.get());
                if let Some(n) = threads {
                    cfg.threads = n.get();
                }
                Ok(Self::Par(Box::new(ParOut::new(
                    file, kbps, quality, rate, channels, tags, cfg,
                )?)))
            }
            Mp3Bitrate::Vbr { .. } => {
                Ok(Self::Seq(Box::new(SeqOut::new(file, bitrate, quality, rate, channels, tags)?)))
            }
        }
    }

    pub(super) fn write(&mut self, planes: &[&[f32]]) -> Result<()> {
        match self {
            Self::Seq(s) => s.write(planes),
            Self::Par(p) => p.write(planes),
        }
    }

    pub(super) fn finish(self) -> Result<(AtomicFile, u64)> {
        match self {
            Self::Seq(s) => (*s).finish(),
            Self::Par(p) => p.finish(),
        }
    }
}

/// Sequential MP3 output: one LAME encoder, LAME's own info tag when it fits.
pub(super) struct SeqOut {
    lame: Lame,
    file: AtomicFile,
    /// LAME's output buffer, reused; only [`lame_call`] lets LAME write into it.
    out: Vec<u8>,
    left: Vec<f32>,
    right: Vec<f32>,
    channels: usize,
    /// Where the info-tag frame starts (after the ID3 tag).
    tag_offset: u64,
    /// `Some` when this module writes the info tag itself (LAME's does not fit).
    own_tag: Option<OwnTag>,
    counter: FrameCounter,
    samples: u64,
    cbr_kbps: Option<u16>,
    /// Undoes LAME's CBR input scaling (see [`lame_cbr_scale`]).
    gain: f32,
}

/// The info-tag frame this module writes itself.
pub(super) struct OwnTag {
    header: [u8; 4],
    pub(super) frame_len: usize,
    /// Offset of the Xing tag (header + side information).
    side_info_end: usize,
    /// CRC-16 of all audio bytes after the tag frame (LAME's "music CRC").
    pub(super) music_crc: u16,
}

impl SeqOut {
    pub(super) fn new(
        mut file: AtomicFile,
        bitrate: Mp3Bitrate,
        quality: u8,
        rate: NonZeroU32,
        channels: usize,
        tags: &Tags,
    ) -> Result<Self> {
        let path = file.final_path().to_path_buf();
        let rate = rate.get();
        let layout = MpegLayout::new(rate, channels);
        let own_tag = match bitrate {
            Mp3Bitrate::Cbr { kbps } if !layout.lame_tag_fits(kbps) => Some(layout.own_tag()),
            _ => None,
        };
        let lame = build_lame(bitrate, quality, rate, channels, own_tag.is_none())
            .map_err(|detail| Error::encode(&path, detail))?;

        let id3 = tags::id3_bytes(tags, &path)?;
        file.write_all(&id3).map_err(|e| Error::io("write", &path, e))?;
        if let Some(own) = &own_tag {
            file.write_all(&vec![0u8; own.frame_len]).map_err(|e| Error::io("write", &path, e))?;
        }
        Ok(Self {
            lame,
            file,
            out: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            channels,
            tag_offset: id3.len() as u64,
            own_tag,
            counter: FrameCounter::default(),
            samples: 0,
            cbr_kbps: match bitrate {
                Mp3Bitrate::Cbr { kbps } => Some(kbps),
                Mp3Bitrate::Vbr { .. } => None,
            },
            gain: match bitrate {
                Mp3Bitrate::Cbr { kbps } => 1.0 / lame_cbr_scale(kbps),
                Mp3Bitrate::Vbr { .. } => 1.0,
            },
        })
    }

    fn path(&self) -> PathBuf {
        self.file.final_path().to_path_buf()
    }

    pub(super) fn write(&mut self, planes: &[&[f32]]) -> Result<()> {
        let n = planes.first().map_or(0, |p| p.len());
        if n == 0 {
            return Ok(());
        }
        let gain = self.gain;
        self.left.clear();
        self.left.extend(planes[0].iter().map(|&s| sanitize_clamped(s) * gain));
        let res = if self.channels == 1 {
            let input = MonoPcm(&self.left[..]);
            lame_call(&mut self.out, n, false, |out| self.lame.encode_to_vec(input, out))
        } else {
            self.right.clear();
            self.right.extend(planes[1].iter().map(|&s| sanitize_clamped(s) * gain));
            let input = DualPcm { left: &self.left[..], right: &self.right[..] };
            lame_call(&mut self.out, n, false, |out| self.lame.encode_to_vec(input, out))
        };
        res.map_err(|e| Error::encode(self.path(), format!("LAME encode failed: {e}")))?;
        self.samples += n as u64;
        self.emit()
    }

    /// Writes LAME's output to the file, parsing frame headers on the way.
    fn emit(&mut self) -> Result<()> {
        let path = self.path();
        self.counter.feed(&self.out).map_err(|detail| {
            Error::internal(format!("LAME output for {}: {detail}", path.display()))
        })?;
        if let Some(own) = &mut self.own_tag {
            own.music_crc = crc16_update(own.music_crc, &self.out);
        }
        self.file.write_all(&self.out).map_err(|e| Error::io("write", &path, e))
    }

    pub(super) fn finish(mut self) -> Result<(AtomicFile, u64)> {
        let path = self.path();
        lame_call(&mut self.out, 0, true, |out| self.lame.flush_to_vec::<FlushGap>(out))
            .map_err(|e| Error::encode(&path, format!("LAME flush failed: {e}")))?;
        self.emit()?;
        if !self.counter.at_frame_boundary() {
            return Err(Error::internal(format!(
                "LAME output for {} ends inside a frame",
                path.display()
            )));
        }
        let tag = match &self.own_tag {
            None => self.lame_tag(&path)?,
            Some(own) => own.build(
                self.counter.frames,
                self.counter.bytes,
                self.samples,
                self.cbr_kbps.unwrap_or(0),
                self.counter.spf,
            )?,
        };
        let end = self.file.seek(SeekFrom::End(0)).map_err(|e| Error::io("seek", &path, e))?;
        self.file
            .seek(SeekFrom::Start(self.tag_offset))
            .map_err(|e| Error::io("seek", &path, e))?;
        self.file.write_all(&tag).map_err(|e| Error::io("write", &path, e))?;
        self.file.seek(SeekFrom::End(0)).map_err(|e| Error::io("seek", &path, e))?;
        Ok((self.file, end))
    }

    /// LAME's own info tag, which must exactly replace the dummy first frame it emitted.
    fn lame_tag(&self, path: &std::path::Path) -> Result<Vec<u8>> {
        let size = self.lame.lame_tag_size();
        if size == 0 || Some(size) != self.counter.first_frame_len {
            return Err(Error::internal(format!(
                "{}: LAME tag of {size} bytes does not match its reserved first frame ({:?})",
                path.display(),
                self.counter.first_frame_len
            )));
        }
        let mut tag = Vec::with_capacity(size);
        match self.lame.lame_tag_encode_to_vec(&mut tag) {
            Some(n) if n.get() == size => Ok(tag),
            _ => Err(Error::encode(path, "LAME could not write its info tag")),
        }
    }
}

/// The one place LAME encodes or flushes into `out`.
///
/// LAME reads an output size of 0 as "unlimited" and then writes past the end of the buffer
/// (a segfault from safe Rust), so this always clears `out` and reserves the documented worst
/// case for `frames` input frames first (plus 7200 bytes more for a flush).
pub(super) fn lame_call(
    out: &mut Vec<u8>,
    frames: usize,
    flush: bool,
    call: impl FnOnce(&mut Vec<u8>) -> std::result::Result<usize, EncodeError>,
) -> std::result::Result<usize, EncodeError> {
    out.clear();
    let need = max_required_buffer_size(frames) + if flush { 7200 } else { 0 };
    out.reserve(need);
    if out.capacity() - out.len() < need {
        return Err(EncodeError::NoMem);
    }
    call(out)
}

pub(super) fn build_lame(
    bitrate: Mp3Bitrate,
    quality: u8,
    rate: u32,
    channels: usize,
    write_tag: bool,
) -> std::result::Result<Lame, String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("LAME rejected {what}: {e}");
    let mut b = Builder::new().ok_or_else(|| "cannot allocate the LAME encoder".to_string())?;
    let ch = u8::try_from(channels).map_err(|_| "too many channels".to_string())?;
    b.set_num_channels(ch).map_err(|e| err("the channel count", &e))?;
    b.set_sample_rate(rate).map_err(|e| err("the sample rate", &e))?;
    // Same output rate as input: LAME would otherwise resample low bitrates to a lower rate.
    b.set_output_sample_rate(NonZeroU32::new(rate)).map_err(|e| err("the output rate", &e))?;
    b.set_mode(if channels == 1 { Mode::Mono } else { Mode::JointStereo })
        .map_err(|e| err("the channel mode", &e))?;
    b.set_quality(to_quality(quality)).map_err(|e| err("the quality", &e))?;
    match bitrate {
        Mp3Bitrate::Cbr { kbps } => {
            let br = to_bitrate(kbps).ok_or_else(|| format!("unsupported bitrate {kbps}"))?;
            b.set_vbr_mode(VbrMode::Off).map_err(|e| err("CBR mode", &e))?;
            b.set_brate(br).map_err(|e| err("the bitrate", &e))?;
        }
        Mp3Bitrate::Vbr { quality } => {
            b.set_vbr_mode(VbrMode::Mtrh).map_err(|e| err("VBR mode", &e))?;
            b.set_vbr_quality(to_quality(quality)).map_err(|e| err("the VBR quality", &e))?;
        }
    }
    b.set_to_write_vbr_tag(write_tag).map_err(|e| err("the info tag", &e))?;
    b.build().map_err(|e| err("the configuration", &e))
}

/// The input scale LAME 3.100 applies in CBR/ABR mode (`abr_switch_map` in `presets.c`: "ABR
/// seems to have big problems with clipping … compensate … using a scale value"): 0.95 up to
/// 160 kbit/s (−0.45 dB), 0.97 at 192, 0.98 at 224, 1.0 above. Left alone, a 128 kbit/s file
/// decodes 0.45 LU quieter than its source (ffmpeg's libmp3lame does exactly that). The encoder
/// multiplies its input by the inverse so the decoded loudness matches the master; peak
/// headroom is the mastering limiter's job (its true-peak ceiling).
pub(super) fn lame_cbr_scale(kbps: u16) -> f32 {
    match kbps {
        0..=160 => 0.95,
        161..=192 => 0.97,
        193..=224 => 0.98,
        _ => 1.0,
    }
}

fn to_quality(q: u8) -> Quality {
    match q {
        0 => Quality::Best,
        1 => Quality::SecondBest,
        2 => Quality::NearBest,
        3 => Quality::VeryNice,
        4 => Quality::Nice,
        5 => Quality::Good,
        6 => Quality::Decent,
        7 => Quality::Ok,
        8 => Quality::SecondWorst,
        _ => Quality::Worst,
    }
}

fn to_bitrate(kbps: u16) -> Option<Bitrate> {
    Some(match kbps {
        8 => Bitrate::Kbps8,
        16 => Bitrate::Kbps16,
        24 => Bitrate::Kbps24,
        32 => Bitrate::Kbps32,
        40 => Bitrate::Kbps40,
        48 => Bitrate::Kbps48,
        64 => Bitrate::Kbps64,
        80 => Bitrate::Kbps80,
        96 => Bitrate::Kbps96,
        112 => Bitrate::Kbps112,
        128 => Bitrate::Kbps128,
        160 => Bitrate::Kbps160,
        192 => Bitrate::Kbps192,
        224 => Bitrate::Kbps224,
        256 => Bitrate::Kbps256,
        320 => Bitrate::Kbps320,
        _ => return None,
    })
}

/// MPEG version, channel mode and sizes for one output configuration.
pub(super) struct MpegLayout {
    version: Version,
    rate_index: u8,
    rate: u32,
    mono: bool,
}

impl MpegLayout {
    pub(super) fn new(rate: u32, channels: usize) -> Self {
        // Other rates were rejected by validation; they get 8000 Hz's fields.
        let (version, rate_index) = Version::for_rate(rate).unwrap_or((Version::Mpeg25, 2));
        Self { version, rate_index, rate, mono: channels == 1 }
    }

    /// Header (4) + side information, where the Xing tag starts.
    fn side_info_end(&self) -> usize {
        4 + self.version.side_info_len(self.mono)
    }

    /// Frame length in bytes at `kbps` without the padding slot.
    fn frame_len(&self, kbps: u16) -> usize {
        self.version.frame_len(kbps, self.rate, false)
    }

    /// LAME's own test (`InitVbrTag`): does its info tag fit in a frame of this CBR bitrate?
    pub(super) fn lame_tag_fits(&self, kbps: u16) -> bool {
        self.frame_len(kbps) >= self.side_info_end() + XING_LEN + LAME_EXT_LEN
    }

    /// An "Info" frame at `kbps` when LAME's tag fits in a frame of that bitrate (as LAME's
    /// own CBR tag), else at the bitrate LAME uses for VBR tags.
    pub(super) fn cbr_tag(&self, kbps: u16) -> OwnTag {
        match self.version.bitrate_index(kbps) {
            Some(index) if self.lame_tag_fits(kbps) => self.info_frame(index, kbps),
            _ => self.own_tag(),
        }
    }

    /// An "Info" frame at the bitrate LAME uses for VBR tags (128 / 64 / 32 kbit/s).
    pub(super) fn own_tag(&self) -> OwnTag {
        let kbps = if self.version == Version::Mpeg1 {
            128
        } else if self.rate >= 16_000 {
            64
        } else {
            32
        };
        self.info_frame(self.version.bitrate_index(kbps).unwrap_or(0), kbps)
    }

    /// An empty "Info" frame at bitrate index `index` (`kbps`).
    fn info_frame(&self, index: u8, kbps: u16) -> OwnTag {
        let header = Header {
            version: self.version,
            crc: false,
            bitrate_index: index,
            rate_index: self.rate_index,
            padding: false,
            // As LAME is set up; the "original" bit as LAME sets it.
            mode: if self.mono { ChannelMode::Mono } else { ChannelMode::JointStereo },
            original: true,
        };
        OwnTag {
            header: header.bytes(),
            frame_len: self.frame_len(kbps),
            side_info_end: self.side_info_end(),
            music_crc: 0,
        }
    }
}

impl OwnTag {
    /// Builds the complete info-tag frame once the audio is written.
    pub(super) fn build(
        &self,
        audio_frames: u64,
        audio_bytes: u64,
        samples: u64,
        kbps: u16,
        samples_per_frame: u64,
    ) -> Result<Vec<u8>> {
        let total = audio_frames * samples_per_frame;
        let padding = total.checked_sub(LAME_ENCODER_DELAY + samples).filter(|&p| p < 4096);
        let Some(padding) = padding else {
            return Err(Error::internal(format!(
                "{audio_frames} MP3 frames cannot hold {samples} samples plus the encoder delay"
            )));
        };
        let frames32 = u32::try_from(audio_frames)
            .map_err(|_| Error::internal("too many MP3 frames for the info tag"))?;
        let stream_bytes = u32::try_from(audio_bytes + self.frame_len as u64)
            .map_err(|_| Error::internal("MP3 stream over 4 GiB"))?;

        let mut f = vec![0u8; self.frame_len];
        f[..4].copy_from_slice(&self.header);
        let mut p = self.side_info_end;
        let mut put = |bytes: &[u8]| {
            f[p..p + bytes.len()].copy_from_slice(bytes);
            p += bytes.len();
        };
        put(b"Info");
        put(&(XING_FRAMES | XING_BYTES | XING_TOC | XING_QUALITY).to_be_bytes());
        put(&frames32.to_be_bytes());
        put(&stream_bytes.to_be_bytes());
        let toc: Vec<u8> = (0..100u32).map(|i| (i * 256 / 100) as u8).collect(); // CBR: linear
        put(&toc);
        put(&0u32.to_be_bytes()); // quality indicator (unused for CBR)
        put(b"LAME3.100");
        put(&[0x01]); // tag revision 0, method 1 = CBR
        put(&[0]); // lowpass unknown
        put(&[0; 8]); // ReplayGain: peak, radio, audiophile (none)
        put(&[0]); // encoding flags, ATH type
        put(&[u8::try_from(kbps).unwrap_or(255)]);
        let delay = LAME_ENCODER_DELAY as u32;
        let trim = (delay << 12) | padding as u32;
        put(&trim.to_be_bytes()[1..]);
        put(&[0]); // misc
        put(&[0]); // MP3 gain
        put(&[0, 0]); // preset, surround
        put(&stream_bytes.to_be_bytes()); // music length
        put(&self.music_crc.to_be_bytes());
        let crc_at = p;
        let tag_crc = crc16_update(0, &f[..crc_at]);
        f[crc_at..crc_at + 2].copy_from_slice(&tag_crc.to_be_bytes());
        Ok(f)
    }
}

/// Parses MPEG audio frame headers across output chunks: counts frames and bytes.
#[derive(Default)]
struct FrameCounter {
    frames: u64,
    bytes: u64,
    /// Bytes left to skip in the current frame.
    skip: u64,
    header: [u8; 4],
    header_len: usize,
    first_frame_len: Option<usize>,
    spf: u64,
}

impl FrameCounter {
    fn feed(&mut self, mut data: &[u8]) -> std::result::Result<(), String> {
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            if self.skip > 0 {
                let k = (self.skip.min(data.len() as u64)) as usize;
                self.skip -= k as u64;
                data = &data[k..];
                continue;
            }
            let k = (4 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + k].copy_from_slice(&data[..k]);
            self.header_len += k;
            data = &data[k..];
            if self.header_len == 4 {
                let (len, spf) = frame_info(self.header)
                    .ok_or_else(|| format!("bad frame header {:02X?}", self.header))?;
                self.first_frame_len.get_or_insert(len);
                self.spf = spf;
                self.frames += 1;
                self.skip = len as u64 - 4;
                self.header_len = 0;
            }
        }
        Ok(())
    }

    fn at_frame_boundary(&self) -> bool {
        self.skip == 0 && self.header_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lame_tag_fit_follows_lame() {
        let stereo44 = MpegLayout::new(44_100, 2);
        assert!(!stereo44.lame_tag_fits(32));
        assert!(!stereo44.lame_tag_fits(48));
        assert!(stereo44.lame_tag_fits(64));
        let mono48 = MpegLayout::new(48_000, 1);
        assert!(!mono48.lame_tag_fits(48)); // 144 bytes < 21 + 156
        assert!(mono48.lame_tag_fits(64)); // 192 bytes
        let own = stereo44.own_tag();
        assert_eq!(frame_info(own.header), Some((417, 1152)));
        let own = MpegLayout::new(22_050, 1).own_tag();
        assert_eq!(frame_info(own.header), Some((own.frame_len, 576)));
        let own = MpegLayout::new(8_000, 1).own_tag();
        assert_eq!(frame_info(own.header), Some((own.frame_len, 576)));
    }

    #[test]
    fn counter_handles_split_headers() {
        let mut frame = vec![0u8; 417];
        frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
        let stream: Vec<u8> = frame.iter().chain(frame.iter()).copied().collect();
        let mut c = FrameCounter::default();
        for chunk in stream.chunks(3) {
            c.feed(chunk).unwrap();
        }
        assert_eq!((c.frames, c.bytes, c.first_frame_len), (2, 834, Some(417)));
        assert!(c.at_frame_boundary());
        assert!(c.feed(&[0xFF, 0xFB]).is_ok());
        assert!(!c.at_frame_boundary());
    }
}
