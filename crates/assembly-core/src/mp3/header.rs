//! The 4-byte MPEG audio frame header, layer III only (ISO/IEC 11172-3 2.4.1.3, 13818-3 2.4.2.3,
//! and the MPEG-2.5 extension for 8–12 kHz).
//!
//! ```text
//! AAAAAAAA AAABBCCD EEEEFFGH IIJJKLMM
//! A sync (11 ones)     B version   C layer (01 = III)   D protection (0: CRC-16 follows)
//! E bitrate index      F rate index   G padding   H private
//! I channel mode       J mode extension   K copyright   L original   M emphasis
//! ```

/// Layer III bitrates by index, kbit/s, MPEG-1. Index 0 is "free format", 15 is invalid.
const KBPS_V1: [u16; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
/// Layer III bitrates by index, kbit/s, MPEG-2 and MPEG-2.5.
const KBPS_V2: [u16; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/// Samples per channel in one granule.
const GRANULE_SAMPLES: usize = 576;

/// Most samples per channel a layer III frame holds (MPEG-1: two granules).
pub(crate) const MAX_FRAME_SAMPLES: usize = 2 * GRANULE_SAMPLES;

/// MPEG audio version: the header's 2-bit version field (`01` is reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    /// MPEG-1 (field `11`): 32, 44.1 and 48 kHz, two granules a frame.
    Mpeg1,
    /// MPEG-2 LSF (field `10`): 16, 22.05 and 24 kHz, one granule a frame.
    Mpeg2,
    /// MPEG-2.5 (field `00`): 8, 11.025 and 12 kHz, one granule a frame.
    Mpeg25,
}

impl Version {
    /// The header's version field.
    fn bits(self) -> u8 {
        match self {
            Self::Mpeg1 => 0b11,
            Self::Mpeg2 => 0b10,
            Self::Mpeg25 => 0b00,
        }
    }

    fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0b11 => Some(Self::Mpeg1),
            0b10 => Some(Self::Mpeg2),
            0b00 => Some(Self::Mpeg25),
            _ => None,
        }
    }

    /// The version and rate index for a sample rate in Hz; `None` for a rate MPEG audio does
    /// not have.
    pub(crate) fn for_rate(rate: u32) -> Option<(Self, u8)> {
        [Self::Mpeg1, Self::Mpeg2, Self::Mpeg25].into_iter().find_map(|v| {
            let index = v.sample_rates().iter().position(|&r| r == rate)?;
            Some((v, index as u8))
        })
    }

    /// Sample rates in Hz by rate index (index 3 is reserved).
    fn sample_rates(self) -> [u32; 3] {
        match self {
            Self::Mpeg1 => [44_100, 48_000, 32_000],
            Self::Mpeg2 => [22_050, 24_000, 16_000],
            Self::Mpeg25 => [11_025, 12_000, 8_000],
        }
    }

    /// Layer III bitrates in kbit/s by bitrate index.
    fn bitrates(self) -> &'static [u16; 15] {
        match self {
            Self::Mpeg1 => &KBPS_V1,
            Self::Mpeg2 | Self::Mpeg25 => &KBPS_V2,
        }
    }

    /// The bitrate index of `kbps`, if this version has that bitrate (free format excluded).
    pub(crate) fn bitrate_index(self, kbps: u16) -> Option<u8> {
        let index = self.bitrates().iter().position(|&k| k == kbps)?;
        (index > 0).then_some(index as u8)
    }

    /// Granules a frame: 2 for MPEG-1, 1 for MPEG-2 and 2.5.
    pub(crate) fn granules(self) -> usize {
        match self {
            Self::Mpeg1 => 2,
            Self::Mpeg2 | Self::Mpeg25 => 1,
        }
    }

    /// Samples per channel in a frame: 1152 for MPEG-1, 576 for MPEG-2 and 2.5.
    pub(crate) fn samples_per_frame(self) -> usize {
        self.granules() * GRANULE_SAMPLES
    }

    /// Bits of `main_data_begin` in the side information: 9 for MPEG-1, 8 otherwise.
    pub(crate) fn main_data_begin_bits(self) -> usize {
        match self {
            Self::Mpeg1 => 9,
            Self::Mpeg2 | Self::Mpeg25 => 8,
        }
    }

    /// The largest `main_data_begin`: how far back the bit reservoir reaches, in bytes (511
    /// for MPEG-1, 255 otherwise).
    pub(crate) fn max_main_data_begin(self) -> usize {
        (1 << self.main_data_begin_bits()) - 1
    }

    /// Bytes of side information: 17 (MPEG-1 mono), 32 (MPEG-1 stereo), 9 (MPEG-2/2.5 mono),
    /// 17 (MPEG-2/2.5 stereo).
    pub(crate) fn side_info_len(self, mono: bool) -> usize {
        match (self, mono) {
            (Self::Mpeg1, true) => 17,
            (Self::Mpeg1, false) => 32,
            (_, true) => 9,
            (_, false) => 17,
        }
    }

    /// Length in bytes of a layer III frame at `kbps` and `rate` Hz: `144000 * kbps / rate`
    /// (MPEG-1) or `72000 * kbps / rate` (MPEG-2/2.5) rounded down, plus the padding slot.
    pub(crate) fn frame_len(self, kbps: u16, rate: u32, padding: bool) -> usize {
        let coef: u64 = match self {
            Self::Mpeg1 => 144_000,
            Self::Mpeg2 | Self::Mpeg25 => 72_000,
        };
        (coef * u64::from(kbps) / u64::from(rate)) as usize + usize::from(padding)
    }
}

/// Samples per channel in a layer III frame at `rate` Hz: 1152 from 32 kHz up (MPEG-1), else
/// 576 (MPEG-2 and 2.5).
pub(crate) fn samples_per_frame(rate: u32) -> usize {
    if rate >= 32_000 { Version::Mpeg1 } else { Version::Mpeg2 }.samples_per_frame()
}

/// The header's 2-bit channel mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelMode {
    /// `00`: two independent channels.
    Stereo,
    /// `01`: mid/side and/or intensity stereo, per the mode extension.
    JointStereo,
    /// `10`: two unrelated mono channels.
    DualChannel,
    /// `11`: one channel.
    Mono,
}

impl ChannelMode {
    fn bits(self) -> u8 {
        match self {
            Self::Stereo => 0b00,
            Self::JointStereo => 0b01,
            Self::DualChannel => 0b10,
            Self::Mono => 0b11,
        }
    }

    fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0b00 => Self::Stereo,
            0b01 => Self::JointStereo,
            0b10 => Self::DualChannel,
            _ => Self::Mono,
        }
    }
}

/// A parsed layer III frame header. Fields this crate never reads or writes (private bit, mode
/// extension, copyright, emphasis) are not kept: [`Header::bytes`] writes them as 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// MPEG version.
    pub(crate) version: Version,
    /// A CRC-16 follows the header (protection bit 0).
    pub(crate) crc: bool,
    /// Bitrate index, 1 to 14.
    pub(crate) bitrate_index: u8,
    /// Sample rate index, 0 to 2.
    pub(crate) rate_index: u8,
    /// The frame has one extra byte (padding slot).
    pub(crate) padding: bool,
    /// Channel mode.
    pub(crate) mode: ChannelMode,
    /// The "original" bit.
    pub(crate) original: bool,
}

impl Header {
    /// Parses the header in `data[..4]`. `None` unless it is a layer III header with sync, a
    /// known version, bitrate and sample rate (free format, bitrate index 15, rate index 3 and
    /// version `01` are rejected), or if `data` is shorter than 4 bytes.
    pub(crate) fn parse(data: &[u8]) -> Option<Self> {
        let &[h0, h1, h2, h3, ..] = data else { return None };
        if h0 != 0xFF || h1 & 0xE0 != 0xE0 || (h1 >> 1) & 0b11 != 0b01 {
            return None;
        }
        let version = Version::from_bits((h1 >> 3) & 0b11)?;
        let bitrate_index = h2 >> 4;
        let rate_index = (h2 >> 2) & 0b11;
        if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
            return None;
        }
        Some(Self {
            version,
            crc: h1 & 1 == 0,
            bitrate_index,
            rate_index,
            padding: (h2 >> 1) & 1 == 1,
            mode: ChannelMode::from_bits(h3 >> 6),
            original: (h3 >> 2) & 1 == 1,
        })
    }

    /// The 4 header bytes.
    pub(crate) fn bytes(&self) -> [u8; 4] {
        [
            0xFF,
            0xE0 | (self.version.bits() << 3) | (0b01 << 1) | u8::from(!self.crc),
            (self.bitrate_index << 4) | (self.rate_index << 2) | (u8::from(self.padding) << 1),
            (self.mode.bits() << 6) | (u8::from(self.original) << 2),
        ]
    }

    /// Bitrate in kbit/s.
    pub(crate) fn kbps(&self) -> u16 {
        self.version.bitrates()[usize::from(self.bitrate_index)]
    }

    /// Sample rate in Hz.
    pub(crate) fn sample_rate(&self) -> u32 {
        self.version.sample_rates()[usize::from(self.rate_index)]
    }

    /// One channel (mode `11`), else two.
    pub(crate) fn mono(&self) -> bool {
        self.mode == ChannelMode::Mono
    }

    /// Frame length in bytes, header included.
    pub(crate) fn frame_len(&self) -> usize {
        self.version.frame_len(self.kbps(), self.sample_rate(), self.padding)
    }

    /// Samples per channel in the frame.
    pub(crate) fn samples_per_frame(&self) -> usize {
        self.version.samples_per_frame()
    }

    /// Where the side information starts: after the header and its CRC-16, if any.
    pub(crate) fn side_info_start(&self) -> usize {
        4 + if self.crc { 2 } else { 0 }
    }

    /// Bytes of side information.
    pub(crate) fn side_info_len(&self) -> usize {
        self.version.side_info_len(self.mono())
    }

    /// Where the frame's main-data slot starts (header, CRC and side information before it);
    /// an Info/Xing tag frame has its tag here.
    pub(crate) fn main_data_start(&self) -> usize {
        self.side_info_start() + self.side_info_len()
    }
}

/// Length in bytes and samples per channel of the frame whose header is `h`.
pub(crate) fn frame_info(h: [u8; 4]) -> Option<(usize, u64)> {
    Header::parse(&h).map(|h| (h.frame_len(), h.samples_per_frame() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths() {
        // 128 kbit/s, 44.1 kHz, no padding: 417 bytes; with padding 418.
        assert_eq!(frame_info([0xFF, 0xFB, 0x90, 0x64]), Some((417, 1152)));
        assert_eq!(frame_info([0xFF, 0xFB, 0x92, 0x64]), Some((418, 1152)));
        // MPEG-2, 64 kbit/s, 24 kHz: 192 bytes, 576 samples.
        assert_eq!(frame_info([0xFF, 0xF3, 0x84, 0xC4]), Some((192, 576)));
        assert_eq!(frame_info([0xFF, 0xFB, 0xF0, 0x64]), None);
        assert_eq!(frame_info([0x49, 0x44, 0x33, 0x04]), None);
    }

    /// `(frame length, samples per frame, side-info start, main-data start)` of a header.
    fn sizes(h: [u8; 4]) -> (usize, usize, usize, usize) {
        let h = Header::parse(&h).unwrap();
        (h.frame_len(), h.samples_per_frame(), h.side_info_start(), h.main_data_start())
    }

    #[test]
    fn mpeg1_headers() {
        // FF FB: sync, MPEG-1, layer III, no CRC. 0x90: 128 kbit/s, 44.1 kHz, no padding.
        // 0x64: joint stereo. 144000 * 128 / 44100 = 417.96 -> 417; 4 + 32 bytes before data.
        assert_eq!(sizes([0xFF, 0xFB, 0x90, 0x64]), (417, 1152, 4, 36));
        // Padding bit: 418.
        assert_eq!(sizes([0xFF, 0xFB, 0x92, 0x64]), (418, 1152, 4, 36));
        // 0xE4: 320 kbit/s (index 14), 48 kHz: 144000 * 320 / 48000 = 960. Mono (0xC0): 17
        // bytes of side info.
        assert_eq!(sizes([0xFF, 0xFB, 0xE4, 0xC0]), (960, 1152, 4, 21));
        // 0x18: 32 kbit/s, 32 kHz: 144000 * 32 / 32000 = 144. FA: CRC present, 2 more bytes.
        assert_eq!(sizes([0xFF, 0xFA, 0x18, 0x00]), (144, 1152, 6, 38));
        let h = Header::parse(&[0xFF, 0xFA, 0x18, 0x00]).unwrap();
        assert_eq!((h.version, h.kbps(), h.sample_rate()), (Version::Mpeg1, 32, 32_000));
        assert_eq!((h.crc, h.mode, h.padding), (true, ChannelMode::Stereo, false));
    }

    #[test]
    fn mpeg2_and_25_headers() {
        // FF F3: MPEG-2, no CRC. 0x84: 64 kbit/s (index 8), 24 kHz. Mono: 72000 * 64 / 24000
        // = 192 bytes, 9 bytes of side info.
        assert_eq!(sizes([0xFF, 0xF3, 0x84, 0xC4]), (192, 576, 4, 13));
        // 0x10: 8 kbit/s, 22.05 kHz: 72000 * 8 / 22050 = 26.12 -> 26. Stereo (0x00): 17
        // bytes of side info; with CRC (F2) it starts at 6.
        assert_eq!(sizes([0xFF, 0xF3, 0x10, 0x00]), (26, 576, 4, 21));
        assert_eq!(sizes([0xFF, 0xF2, 0x10, 0x80]), (26, 576, 6, 23));
        // FF E3: MPEG-2.5. 0x18: 8 kbit/s, 8 kHz: 72000 * 8 / 8000 = 72.
        assert_eq!(sizes([0xFF, 0xE3, 0x18, 0xC0]), (72, 576, 4, 13));
        // 0x82: 64 kbit/s, 11.025 kHz, padding: 72000 * 64 / 11025 = 417.96 -> 417, + 1.
        assert_eq!(sizes([0xFF, 0xE3, 0x82, 0x40]), (418, 576, 4, 21));
        let h = Header::parse(&[0xFF, 0xE3, 0x82, 0x40]).unwrap();
        assert_eq!((h.version, h.kbps(), h.sample_rate()), (Version::Mpeg25, 64, 11_025));
        assert_eq!(h.mode, ChannelMode::JointStereo);
    }

    #[test]
    fn rejects_what_is_not_a_layer3_header() {
        for bad in [
            [0xFF, 0xFB, 0x00, 0x00], // free format (bitrate index 0)
            [0xFF, 0xFB, 0xF0, 0x00], // bitrate index 15
            [0xFF, 0xFB, 0x9C, 0x00], // sample rate index 3
            [0xFF, 0xEB, 0x90, 0x00], // version 01 (reserved)
            [0xFF, 0xFF, 0x90, 0x00], // layer I
            [0xFF, 0xFD, 0x90, 0x00], // layer II
            [0xFF, 0xF9, 0x90, 0x00], // layer 00 (reserved)
            [0xFF, 0x7B, 0x90, 0x00], // sync is 11 bits
            [0x49, 0x44, 0x33, 0x04], // "ID3"
        ] {
            assert_eq!(Header::parse(&bad), None, "{bad:02X?}");
        }
        assert_eq!(Header::parse(&[0xFF, 0xFB, 0x90]), None);
        // Bytes after the header are not looked at.
        assert!(Header::parse(&[0xFF, 0xFB, 0x90, 0x64, 0x12]).is_some());
    }

    #[test]
    fn bytes_write_the_parsed_fields() {
        let h = Header {
            version: Version::Mpeg1,
            crc: false,
            bitrate_index: 9,
            rate_index: 0,
            padding: false,
            mode: ChannelMode::JointStereo,
            original: true,
        };
        // 0x44: joint stereo (01), original bit.
        assert_eq!(h.bytes(), [0xFF, 0xFB, 0x90, 0x44]);
        assert_eq!(Header::parse(&h.bytes()), Some(h));
        let h = Header { version: Version::Mpeg25, crc: true, padding: true, ..h };
        assert_eq!(h.bytes(), [0xFF, 0xE2, 0x92, 0x44]);
        assert_eq!(Header::parse(&h.bytes()), Some(h));
    }

    #[test]
    fn rates_bitrates_and_reservoir() {
        assert_eq!(Version::for_rate(48_000), Some((Version::Mpeg1, 1)));
        assert_eq!(Version::for_rate(16_000), Some((Version::Mpeg2, 2)));
        assert_eq!(Version::for_rate(11_025), Some((Version::Mpeg25, 0)));
        assert_eq!(Version::for_rate(96_000), None);
        assert_eq!(Version::Mpeg1.bitrate_index(128), Some(9));
        assert_eq!(Version::Mpeg2.bitrate_index(144), Some(13));
        assert_eq!(Version::Mpeg1.bitrate_index(144), None);
        assert_eq!(Version::Mpeg1.bitrate_index(0), None);
        assert_eq!(Version::Mpeg1.max_main_data_begin(), 511);
        assert_eq!(Version::Mpeg25.max_main_data_begin(), 255);
        assert_eq!((samples_per_frame(32_000), samples_per_frame(24_000)), (1152, 576));
        assert_eq!(MAX_FRAME_SAMPLES, 1152);
    }
}
