//! LAME 3.100 (mp3lame-encoder) as both MP3 outputs use it, the sequential one (`mp3`) and the
//! parallel CBR one (`mp3_par`): the encoder setup, the one place LAME writes into a buffer
//! ([`lame_call`]), its CBR input scale, and the LAME/Xing "Info" frame written by this crate
//! where LAME's own tag does not fit or does not describe the output ([`OwnTag`]).

use std::num::NonZeroU32;

use mp3lame_encoder::{
    Bitrate, Builder, EncodeError, Encoder as Lame, Mode, Quality, VbrMode,
    max_required_buffer_size,
};

use super::Mp3Bitrate;
use crate::error::{Error, Result};
use crate::mp3::{
    ChannelMode, Header, LAME_EXT_LEN, Version, XING_BYTES, XING_FRAMES, XING_LEN, XING_QUALITY,
    XING_TOC, crc16_update,
};

/// LAME's encoder delay in samples (`ENCDELAY`, constant in LAME 3.100 without resampling).
pub(super) const LAME_ENCODER_DELAY: u64 = 576;

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

/// An info-tag frame written by this crate (LAME's own is not used).
pub(super) struct OwnTag {
    header: [u8; 4],
    pub(super) frame_len: usize,
    /// Offset of the Xing tag (header + side information).
    side_info_end: usize,
    /// CRC-16 of all audio bytes after the tag frame (LAME's "music CRC").
    pub(super) music_crc: u16,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp3::frame_info;

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
}
