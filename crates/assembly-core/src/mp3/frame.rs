//! Layer III frames of a stream: header, and the side information fields a bit-reservoir
//! model needs (`main_data_begin`, `part2_3_length`, block types).
//!
//! Main data of a Layer III frame does not have to sit in the frame itself: `main_data_begin`
//! says how many bytes *before* the frame's own main-data slot (counting only main-data bytes
//! of earlier frames, i.e. skipping their headers and side information) it starts. That is
//! the bit reservoir. [`Stream`] models a whole stream's main-data bytes as one contiguous
//! coordinate ("slot position") so reservoir references can be checked and copied.

use super::header::{Header, Version};

/// One parsed Layer III frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Byte offset of the frame header in its stream.
    pub(crate) offset: usize,
    /// Frame length in bytes (header included).
    pub(crate) len: usize,
    /// Bytes of header, CRC and side information: the main-data slot starts here.
    pub(crate) side_len: usize,
    /// `main_data_begin`: bytes of reservoir (earlier frames' slots) this frame's data starts in.
    pub(crate) main_data_begin: usize,
    /// Bytes of main data (sum of `part2_3_length` over granules and channels, rounded up).
    pub(crate) data_len: usize,
    /// Every granule of every channel is a normal long block (`window_switching_flag` 0).
    pub(crate) all_long: bool,
    /// The window of every granule and channel, 4 bits each in side-information order: 0 for
    /// a normal long block, else `0b1000 | block_type << 1 | mixed_block_flag`. Two streams
    /// whose frames have equal windows around a join decode with a valid window sequence
    /// (long, start, short, stop) across it.
    pub(crate) windows: u32,
}

impl Frame {
    /// Bytes of main-data slot in this frame.
    pub(crate) fn slot(&self) -> usize {
        self.len - self.side_len
    }
}

/// A parsed stream of Layer III frames with main-data slot positions.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub(crate) frames: Vec<Frame>,
    /// `slot_start[i]`: main-data slot position where frame `i`'s slot starts; one extra entry
    /// at the end (total slot bytes).
    pub(crate) slot_start: Vec<usize>,
}

impl Stream {
    /// Parses a complete stream (no tags), frame by frame.
    pub(crate) fn parse(data: &[u8]) -> Result<Self, String> {
        let mut s = Self { frames: Vec::new(), slot_start: vec![0] };
        let mut pos = 0;
        while pos < data.len() {
            let f = parse_frame(&data[pos..])
                .map_err(|e| format!("frame {} at byte {pos}: {e}", s.frames.len()))?;
            let f = Frame { offset: pos, ..f };
            pos += f.len;
            let last = s.slot_start.last().copied().unwrap_or(0);
            s.slot_start.push(last + f.slot());
            s.frames.push(f);
        }
        Ok(s)
    }

    /// Slot position where frame `i`'s main data starts.
    pub(crate) fn data_start(&self, i: usize) -> Option<usize> {
        self.slot_start[i].checked_sub(self.frames[i].main_data_begin)
    }

    /// Slot position just after frame `i`'s main data.
    pub(crate) fn data_end(&self, i: usize) -> Option<usize> {
        self.data_start(i).map(|s| s + self.frames[i].data_len)
    }

    /// Byte offset in the stream of slot position `p` (which must lie inside a frame's slot).
    pub(crate) fn byte_at(&self, p: usize) -> Option<usize> {
        // Index of the last frame whose slot starts at or before p.
        let i = self.slot_start.partition_point(|&s| s <= p).checked_sub(1)?;
        let f = self.frames.get(i)?;
        let within = p - self.slot_start[i];
        (within < f.slot()).then_some(f.offset + f.side_len + within)
    }

    /// Checks every frame's reservoir reference: the data starts at or after the first audio
    /// frame's slot, never overlaps the previous frame's data, and ends inside its own frame.
    #[cfg(test)]
    pub(crate) fn check_reservoir(&self) -> Result<(), String> {
        let mut prev_end = 0;
        for i in 0..self.frames.len() {
            let start = self.data_start(i).ok_or_else(|| {
                format!("frame {i}: main_data_begin reaches before the first frame")
            })?;
            if start < prev_end {
                return Err(format!("frame {i}: main data overlaps frame {}'s", i.max(1) - 1));
            }
            let end = start + self.frames[i].data_len;
            if end > self.slot_start[i + 1] {
                return Err(format!("frame {i}: main data runs past the frame"));
            }
            prev_end = end;
        }
        Ok(())
    }
}

/// Minimal MSB-first bit reader over the side information.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> usize {
        let mut v = 0;
        for _ in 0..n {
            let byte = self.data.get(self.pos / 8).copied().unwrap_or(0);
            v = (v << 1) | usize::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        v
    }
}

/// Parses the frame starting at `data[0]` (its `offset` is left 0).
fn parse_frame(data: &[u8]) -> Result<Frame, String> {
    let bytes = data.get(..4).ok_or_else(|| "truncated header".to_string())?;
    let header = Header::parse(bytes).ok_or_else(|| format!("bad header {bytes:02X?}"))?;
    let len = header.frame_len();
    if data.len() < len {
        return Err(format!("truncated frame ({} of {len} bytes)", data.len()));
    }
    let (side_start, side_len) = (header.side_info_start(), header.main_data_start());
    if side_len > len {
        return Err(format!("{len}-byte frame too short for its side information"));
    }
    let mpeg1 = header.version == Version::Mpeg1;
    let mono = header.mono();
    let channels = if mono { 1 } else { 2 };
    let mut b = Bits { data: &data[side_start..side_len], pos: 0 };
    let main_data_begin = b.read(header.version.main_data_begin_bits());
    if mpeg1 {
        b.read(if mono { 5 } else { 3 }); // private bits
        b.read(4 * channels); // scfsi
    } else {
        b.read(if mono { 1 } else { 2 }); // private bits
    }
    let mut bits = 0;
    let mut all_long = true;
    let mut windows = 0u32;
    for _ in 0..header.version.granules() {
        for _ in 0..channels {
            bits += b.read(12); // part2_3_length
            b.read(9 + 8); // big_values, global_gain
            b.read(if mpeg1 { 4 } else { 9 }); // scalefac_compress
            windows <<= 4;
            if b.read(1) == 1 {
                // window switching: block_type 2, mixed 1, table_select 2×5, subblock_gain 3×3
                all_long = false;
                let block_type = b.read(2) as u32;
                let mixed = b.read(1) as u32;
                windows |= 0b1000 | block_type << 1 | mixed;
                b.read(10 + 9);
            } else {
                b.read(15 + 4 + 3); // table_select 3×5, region0_count, region1_count
            }
            b.read(if mpeg1 { 3 } else { 2 }); // (preflag,) scalefac_scale, count1table_select
        }
    }
    let data_len = bits.div_ceil(8);
    Ok(Frame { offset: 0, len, side_len, main_data_begin, data_len, all_long, windows })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Side information written field by field, MSB first.
    #[derive(Default)]
    struct Writer(Vec<bool>);

    impl Writer {
        fn put(&mut self, value: usize, bits: usize) {
            self.0.extend((0..bits).rev().map(|i| (value >> i) & 1 == 1));
        }

        /// One granule of one channel: `part2_3_length`, zeros elsewhere, and the window
        /// switching flag (then a short block: `block_type` 2, not mixed).
        fn granule(&mut self, mpeg1: bool, part2_3_length: usize, switching: bool) {
            self.put(part2_3_length, 12);
            self.put(0, 9 + 8 + if mpeg1 { 4 } else { 9 });
            self.put(usize::from(switching), 1);
            if switching {
                self.put(2, 2);
                self.put(0, 20);
            } else {
                self.put(0, 22);
            }
            self.put(0, if mpeg1 { 3 } else { 2 });
        }

        /// `header`, `crc` extra bytes, the side information, zeros up to `len` bytes.
        fn frame(&self, header: [u8; 4], crc: usize, len: usize) -> Vec<u8> {
            let mut f = header.to_vec();
            f.resize(4 + crc, 0);
            f.extend(self.0.chunks(8).map(|b| b.iter().fold(0u8, |v, &x| (v << 1) | u8::from(x))));
            f.resize(len, 0);
            f
        }
    }

    /// An MPEG-1 stereo frame at 128 kbit/s, 44.1 kHz (417 bytes, 32 bytes of side info).
    fn mpeg1_stereo(main_data_begin: usize, part2_3: [usize; 4], switching: usize) -> Vec<u8> {
        let mut w = Writer::default();
        w.put(main_data_begin, 9);
        w.put(0, 3 + 8); // private bits, scfsi
        for (i, &p) in part2_3.iter().enumerate() {
            w.granule(true, p, i == switching);
        }
        // 9 + 3 + 8 + 4 × 59 bits.
        assert_eq!(w.0.len(), 256);
        w.frame([0xFF, 0xFB, 0x90, 0x64], 0, 417)
    }

    #[test]
    fn mpeg1_stereo_side_info() {
        let f = parse_frame(&mpeg1_stereo(300, [1000, 1200, 800, 7], 9)).unwrap();
        // 1000 + 1200 + 800 + 7 = 3007 bits: 375.875 bytes, rounded up.
        let expected = Frame {
            offset: 0,
            len: 417,
            side_len: 36,
            main_data_begin: 300,
            data_len: 376,
            all_long: true,
            windows: 0,
        };
        assert_eq!(f, expected);
        assert_eq!(f.slot(), 381);
        // A short block in granule 1, channel 0: the third nibble is 0b1000 | 2 << 1.
        let f = parse_frame(&mpeg1_stereo(300, [1000, 1200, 800, 7], 2)).unwrap();
        assert_eq!((f.data_len, f.all_long, f.windows), (376, false, 0x00C0));
    }

    #[test]
    fn mpeg2_mono_side_info_after_a_crc() {
        let mut w = Writer::default();
        w.put(200, 8);
        w.put(0, 1); // private bit
        w.granule(false, 1500, true);
        // 8 + 1 + 63 bits: 9 bytes.
        assert_eq!(w.0.len(), 72);
        // FF F2: MPEG-2 with CRC; 64 kbit/s, 24 kHz, mono: 192 bytes, side info at 6..15.
        let f = parse_frame(&w.frame([0xFF, 0xF2, 0x84, 0xC4], 2, 192)).unwrap();
        // 1500 bits: 187.5 bytes, rounded up.
        let expected = Frame {
            offset: 0,
            len: 192,
            side_len: 15,
            main_data_begin: 200,
            data_len: 188,
            all_long: false,
            windows: 0xC,
        };
        assert_eq!(f, expected);
    }

    #[test]
    fn bad_frames_are_errors() {
        assert_eq!(parse_frame(&[0xFF, 0xFB]), Err("truncated header".to_string()));
        assert_eq!(
            parse_frame(&[0xFF, 0xFB, 0x00, 0x64, 0]),
            Err("bad header [FF, FB, 00, 64]".to_string())
        );
        let frame = mpeg1_stereo(0, [0; 4], 9);
        assert_eq!(
            parse_frame(&frame[..100]),
            Err("truncated frame (100 of 417 bytes)".to_string())
        );
        let err = Stream::parse(&[&frame[..], &frame[..416]].concat()).unwrap_err();
        assert_eq!(err, "frame 1 at byte 417: truncated frame (416 of 417 bytes)");
    }

    #[test]
    fn stream_slot_positions_and_reservoir() {
        // Frame 0: 376 bytes of data from slot position 0. Frame 1: 4 × 700 bits = 350 bytes
        // from 5 bytes before its slot (381 - 5 = 376), ending at 726 of 762.
        let f0 = mpeg1_stereo(0, [1000, 1200, 800, 7], 9);
        let f1 = mpeg1_stereo(5, [700; 4], 9);
        let s = Stream::parse(&[&f0[..], &f1[..]].concat()).unwrap();
        assert_eq!(s.slot_start, [0, 381, 762]);
        assert_eq!(s.frames[1].offset, 417);
        assert_eq!((s.data_start(1), s.data_end(1)), (Some(376), Some(726)));
        // Slot position 376 is in frame 0's slot (36 bytes in), 381 is frame 1's first.
        assert_eq!(s.byte_at(376), Some(36 + 376));
        assert_eq!(s.byte_at(381), Some(417 + 36));
        assert_eq!(s.byte_at(762), None);
        assert_eq!(s.check_reservoir(), Ok(()));
        // One byte further back overlaps frame 0's data.
        let f1 = mpeg1_stereo(6, [700; 4], 9);
        let s = Stream::parse(&[&f0[..], &f1[..]].concat()).unwrap();
        assert_eq!(s.check_reservoir(), Err("frame 1: main data overlaps frame 0's".to_string()));
        // A first frame cannot borrow.
        let s = Stream::parse(&f1).unwrap();
        assert_eq!(s.data_start(0), None);
        assert!(s.check_reservoir().is_err());
    }
}
