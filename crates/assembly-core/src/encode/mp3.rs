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
//!   it parsed from LAME's output, both CRCs) the way LAME would (`lame::OwnTag`).

use std::io::{Seek, SeekFrom, Write};
use std::num::NonZeroU32;
use std::path::PathBuf;

use mp3lame_encoder::{DualPcm, Encoder as Lame, FlushGap, MonoPcm};

use super::chunk_cache::ChunkCache;
use super::lame::{MpegLayout, OwnTag, build_lame, lame_call, lame_cbr_scale};
use super::mp3_par::{ParConfig, ParOut};
use super::{Mp3Bitrate, Tags, sanitize_clamped, tags};
use crate::atomic::AtomicFile;
use crate::error::{Error, Result};
use crate::mp3::{crc16_update, frame_info};

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

    /// See [`ParOut::keep_chunks`]; VBR (sequential) keeps no chunks.
    pub(super) fn keep_chunks(
        &mut self,
        spill: &std::path::Path,
        previous: Option<ChunkCache>,
    ) -> Result<()> {
        match self {
            Self::Seq(_) => Ok(()),
            Self::Par(p) => p.keep_chunks(spill, previous),
        }
    }

    pub(super) fn finish(self) -> Result<(AtomicFile, u64, Option<ChunkCache>)> {
        match self {
            Self::Seq(s) => (*s).finish().map(|(f, n)| (f, n, None)),
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
