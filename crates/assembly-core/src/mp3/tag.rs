//! The Info/Xing tag and its LAME extension: the first frame of a stream holds, instead of
//! audio, at its main-data start ([`super::Header::main_data_start`]):
//!
//! - the Xing part: `"Xing"` (VBR) or `"Info"` (CBR), 4 bytes of flags ([`XING_FRAMES`] …),
//!   then the fields the flags announce: frame count (4 bytes), byte count (4), a 100-byte seek
//!   TOC, a quality indicator (4), all big-endian;
//! - the LAME extension: encoder version (9 bytes), tag revision and VBR method, lowpass,
//!   ReplayGain (8), encoding flags and ATH type, bitrate, encoder delay and padding (12 bits
//!   each), misc, MP3 gain, preset and surround, music length (4), music CRC (2) and the tag's
//!   own CRC (2): 36 bytes.

/// Xing flag: the frame count is present.
pub(crate) const XING_FRAMES: u32 = 0x01;
/// Xing flag: the byte count is present.
pub(crate) const XING_BYTES: u32 = 0x02;
/// Xing flag: the 100-byte seek TOC is present.
pub(crate) const XING_TOC: u32 = 0x04;
/// Xing flag: the quality indicator is present.
pub(crate) const XING_QUALITY: u32 = 0x08;

/// Size of the Xing part with every field present: id, flags, frames, bytes, TOC, quality.
pub(crate) const XING_LEN: usize = 4 + 4 + 4 + 4 + 100 + 4;
/// Size of the LAME extension, its CRC included.
pub(crate) const LAME_EXT_LEN: usize = 36;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sizes() {
        assert_eq!(XING_LEN, 120);
        assert_eq!(XING_FRAMES | XING_BYTES | XING_TOC | XING_QUALITY, 0x0F);
        // MPEG-1 stereo: 4 + 32 bytes of header and side information, then 156 bytes of tag.
        assert_eq!(4 + 32 + XING_LEN + LAME_EXT_LEN, 192);
    }
}
