//! Layer III frame parsing: headers and the side information fields the chunk joiner needs
//! (`main_data_begin`, `part2_3_length`, block types).
//!
//! Main data of a Layer III frame does not have to sit in the frame itself: `main_data_begin`
//! says how many bytes *before* the frame's own main-data slot (counting only main-data bytes
//! of earlier frames, i.e. skipping their headers and side information) it starts. That is
//! the bit reservoir. [`Stream`] models a whole stream's main-data bytes as one contiguous
//! coordinate ("slot position") so reservoir references can be checked and copied.

use crate::mp3::frame_info;

/// One parsed Layer III frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Frame {
    /// Byte offset of the frame header in its stream.
    pub offset: usize,
    /// Frame length in bytes (header included).
    pub len: usize,
    /// Bytes of header, CRC and side information: the main-data slot starts here.
    pub side_len: usize,
    /// `main_data_begin`: bytes of reservoir (earlier frames' slots) this frame's data starts in.
    pub main_data_begin: usize,
    /// Bytes of main data (sum of `part2_3_length` over granules and channels, rounded up).
    pub data_len: usize,
    /// Every granule of every channel is a normal long block (`window_switching_flag` 0).
    pub all_long: bool,
}

impl Frame {
    /// Bytes of main-data slot in this frame.
    pub fn slot(&self) -> usize {
        self.len - self.side_len
    }
}

/// A parsed stream of Layer III frames with main-data slot positions.
#[derive(Debug, Default)]
pub(super) struct Stream {
    pub frames: Vec<Frame>,
    /// `slot_start[i]`: main-data slot position where frame `i`'s slot starts; one extra entry
    /// at the end (total slot bytes).
    pub slot_start: Vec<usize>,
}

impl Stream {
    /// Parses a complete stream (no tags), frame by frame.
    pub fn parse(data: &[u8]) -> Result<Self, String> {
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
    pub fn data_start(&self, i: usize) -> Option<usize> {
        self.slot_start[i].checked_sub(self.frames[i].main_data_begin)
    }

    /// Slot position just after frame `i`'s main data.
    pub fn data_end(&self, i: usize) -> Option<usize> {
        self.data_start(i).map(|s| s + self.frames[i].data_len)
    }

    /// Byte offset in the stream of slot position `p` (which must lie inside a frame's slot).
    pub fn byte_at(&self, p: usize) -> Option<usize> {
        // Index of the last frame whose slot starts at or before p.
        let i = self.slot_start.partition_point(|&s| s <= p).checked_sub(1)?;
        let f = self.frames.get(i)?;
        let within = p - self.slot_start[i];
        (within < f.slot()).then_some(f.offset + f.side_len + within)
    }

    /// Checks every frame's reservoir reference: the data starts at or after the first audio
    /// frame's slot, never overlaps the previous frame's data, and ends inside its own frame.
    #[cfg(test)]
    pub fn check_reservoir(&self) -> Result<(), String> {
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
pub(super) fn parse_frame(data: &[u8]) -> Result<Frame, String> {
    let header: [u8; 4] = data
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| "truncated header".to_string())?;
    let (len, _) = frame_info(header).ok_or_else(|| format!("bad header {header:02X?}"))?;
    if data.len() < len {
        return Err(format!("truncated frame ({} of {len} bytes)", data.len()));
    }
    let mpeg1 = (header[1] >> 3) & 0b11 == 3;
    let crc = header[1] & 1 == 0;
    let mono = header[3] >> 6 == 3;
    let channels = if mono { 1 } else { 2 };
    let side = match (mpeg1, mono) {
        (true, true) => 17,
        (true, false) => 32,
        (false, true) => 9,
        (false, false) => 17,
    };
    let side_start = 4 + if crc { 2 } else { 0 };
    let side_len = side_start + side;
    if side_len > len {
        return Err(format!("{len}-byte frame too short for its side information"));
    }
    let mut b = Bits { data: &data[side_start..side_len], pos: 0 };
    let main_data_begin;
    let granules;
    if mpeg1 {
        main_data_begin = b.read(9);
        b.read(if mono { 5 } else { 3 }); // private bits
        b.read(4 * channels); // scfsi
        granules = 2;
    } else {
        main_data_begin = b.read(8);
        b.read(if mono { 1 } else { 2 });
        granules = 1;
    }
    let mut bits = 0;
    let mut all_long = true;
    for _ in 0..granules {
        for _ in 0..channels {
            bits += b.read(12); // part2_3_length
            b.read(9 + 8); // big_values, global_gain
            b.read(if mpeg1 { 4 } else { 9 }); // scalefac_compress
            if b.read(1) == 1 {
                // window switching: block_type 2, mixed 1, table_select 2×5, subblock_gain 3×3
                all_long = false;
                b.read(2 + 1 + 10 + 9);
            } else {
                b.read(15 + 4 + 3); // table_select 3×5, region0_count, region1_count
            }
            b.read(if mpeg1 { 3 } else { 2 }); // (preflag,) scalefac_scale, count1table_select
        }
    }
    Ok(Frame { offset: 0, len, side_len, main_data_begin, data_len: bits.div_ceil(8), all_long })
}
