//! Matroska/WebM `DiscardPadding`: the frames an encoder padded the end of a block with (Opus
//! in WebM puts its end trimming there), which symphonia's Matroska reader parses but does not
//! apply. ffmpeg drops them, so to decode to ffmpeg's length `load` must too.
//!
//! [`scan_discard_padding`] walks the EBML structure front to back, reading only element
//! headers and the first bytes of each block (track number and lacing), and returns where
//! each `DiscardPadding` sits: which track, and which of that track's frames (in the order
//! symphonia's reader returns them as packets, one per laced frame) ends the padded block.
//! Everything is bounded: every step advances through the input, an element of unknown size
//! other than a `Segment` or `Cluster` ends the walk, and at most [`MAX_PADDINGS`] entries are
//! kept.

use std::io::{BufReader, Read, Seek, SeekFrom};

/// EBML IDs (with their length marker bits, as the specification writes them).
const EBML_HEADER: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const SIMPLE_BLOCK: u32 = 0xA3;
const DISCARD_PADDING: u32 = 0x75A2;

/// Most `DiscardPadding` entries kept (real files have one per track, at the end).
pub(crate) const MAX_PADDINGS: usize = 4096;

/// One block's `DiscardPadding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Padding {
    /// Track number (symphonia's track id).
    pub track: u64,
    /// Index, among that track's frames (symphonia packets), of the block's last frame.
    pub frame: u64,
    /// Nanoseconds of decoded audio to drop from the end of that frame.
    pub nanos: u64,
}

impl Padding {
    /// The padding in frames at `rate`, rounded to nearest (integer maths).
    pub(crate) fn frames(&self, rate: u32) -> u64 {
        let f = (u128::from(self.nanos) * u128::from(rate) + 500_000_000) / 1_000_000_000;
        u64::try_from(f).unwrap_or(u64::MAX)
    }
}

/// True when `head` starts with the EBML magic (Matroska, WebM).
pub(crate) fn looks_like_ebml(head: &[u8]) -> bool {
    head.starts_with(&EBML_HEADER.to_be_bytes())
}

/// The input, read through a buffer, with its position tracked so that skipping forward stays
/// inside the buffer.
struct Walker<R> {
    r: BufReader<R>,
    at: u64,
    len: u64,
}

impl<R: Read + Seek> Walker<R> {
    fn goto(&mut self, pos: u64) -> Option<()> {
        if pos != self.at {
            let delta = i64::try_from(i128::from(pos) - i128::from(self.at)).ok()?;
            self.r.seek_relative(delta).ok()?;
            self.at = pos;
        }
        Some(())
    }

    fn byte(&mut self) -> Option<u8> {
        let mut b = [0u8; 1];
        self.r.read_exact(&mut b).ok()?;
        self.at += 1;
        Some(b[0])
    }

    /// An EBML variable-length integer: `(value without the marker, all value bits set)`.
    fn vint(&mut self) -> Option<(u64, bool)> {
        let first = self.byte()?;
        let len = first.leading_zeros() as usize + 1;
        if len > 8 {
            return None;
        }
        let mut v = u64::from(first) & (0xFF >> len);
        let mut all_ones = v == 0xFF >> len;
        for _ in 1..len {
            let b = self.byte()?;
            all_ones &= b == 0xFF;
            v = v << 8 | u64::from(b);
        }
        Some((v, all_ones))
    }

    /// An element ID: like a vint, but the marker bits are kept (and IDs are at most 4 bytes).
    fn id(&mut self) -> Option<u32> {
        let first = self.byte()?;
        let len = first.leading_zeros() as usize + 1;
        if len > 4 {
            return None;
        }
        let mut id = u32::from(first);
        for _ in 1..len {
            id = id << 8 | u32::from(self.byte()?);
        }
        Some(id)
    }

    /// Reads a block's header: `(track number, frames in the block)`.
    fn block_header(&mut self) -> Option<(u64, u64)> {
        let (track, _) = self.vint()?;
        let _timecode = [self.byte()?, self.byte()?];
        let flags = self.byte()?;
        let frames = if (flags >> 1) & 3 == 0 { 1 } else { u64::from(self.byte()?) + 1 };
        Some((track, frames))
    }
}

/// Per-track frame counts, in order of first appearance (files have a handful of tracks).
#[derive(Default)]
struct Counts(Vec<(u64, u64)>);

impl Counts {
    /// Adds `frames` to `track`'s count; returns the index of the block's last frame.
    fn add(&mut self, track: u64, frames: u64) -> u64 {
        let i = match self.0.iter().position(|(t, _)| *t == track) {
            Some(i) => i,
            None => {
                self.0.push((track, 0));
                self.0.len() - 1
            }
        };
        self.0[i].1 = self.0[i].1.saturating_add(frames);
        self.0[i].1 - 1
    }
}

/// The block group being read: its end, its block's last frame, its padding.
struct Group {
    end: u64,
    block: Option<(u64, u64)>,
    nanos: Option<u64>,
}

/// What the walk finds in a Matroska/WebM input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Every `DiscardPadding`, in file order.
    pub paddings: Vec<Padding>,
    /// The `Segment` has an unknown size, as live WebM (a browser's MediaRecorder) writes it:
    /// the file simply ends, so reaching its end is no sign of truncation.
    pub open_ended: bool,
}

/// Every `DiscardPadding` of a Matroska/WebM input of `len` bytes, in file order, and whether
/// its segment is open-ended. `None` if the input does not start with an EBML header. A
/// malformed or truncated structure ends the walk with what was found before it.
pub(crate) fn scan_discard_padding<R: Read + Seek>(r: R, len: u64) -> Option<Facts> {
    let mut r = r;
    r.seek(SeekFrom::Start(0)).ok()?;
    let mut w = Walker { r: BufReader::with_capacity(64 << 10, r), at: 0, len };
    if w.id()? != EBML_HEADER {
        return None;
    }
    w.goto(0)?;
    let mut out = Vec::new();
    let mut counts = Counts::default();
    let mut group: Option<Group> = None;
    let mut open_ended = false;
    let mut pos = 0u64;
    while pos < w.len && out.len() < MAX_PADDINGS {
        if let Some(g) = group.as_ref().filter(|g| pos >= g.end) {
            push_group(g, &mut out);
            group = None;
        }
        if w.goto(pos).is_none() {
            break;
        }
        let Some(id) = w.id() else { break };
        let Some((size, unknown)) = w.vint() else { break };
        let data = w.at;
        match id {
            // Containers whose children are walked (their size may be unknown in live WebM).
            SEGMENT | CLUSTER => {
                open_ended |= id == SEGMENT && unknown;
                pos = data;
            }
            _ if unknown => break,
            BLOCK_GROUP => {
                group = Some(Group { end: data.saturating_add(size), block: None, nanos: None });
                pos = data;
            }
            SIMPLE_BLOCK | BLOCK => {
                let Some((track, frames)) = w.block_header() else { break };
                let last = counts.add(track, frames);
                if let Some(g) = group.as_mut().filter(|_| id == BLOCK) {
                    g.block = Some((track, last));
                }
                pos = data.saturating_add(size);
            }
            DISCARD_PADDING => {
                if let Some(g) = group.as_mut()
                    && (1..=8).contains(&size)
                {
                    let mut v = 0i64;
                    for i in 0..size {
                        let b = i64::from(w.byte().unwrap_or(0));
                        v = if i == 0 { (b << 56) >> 56 } else { v << 8 | b };
                    }
                    g.nanos = u64::try_from(v).ok();
                }
                pos = data.saturating_add(size);
            }
            _ => pos = data.saturating_add(size),
        }
    }
    if let Some(g) = &group {
        push_group(g, &mut out);
    }
    Some(Facts { paddings: out, open_ended })
}

fn push_group(g: &Group, out: &mut Vec<Padding>) {
    if let (Some((track, frame)), Some(nanos)) = (g.block, g.nanos)
        && nanos > 0
    {
        out.push(Padding { track, frame, nanos });
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// An element with a 1-byte size (8-byte for `unknown`).
    fn el(id: u32, body: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = id.to_be_bytes().iter().copied().skip_while(|&b| b == 0).collect();
        assert!(body.len() < 127);
        v.push(0x80 | body.len() as u8);
        v.extend_from_slice(body);
        v
    }

    fn unknown(id: u32, body: &[u8]) -> Vec<u8> {
        let mut v = id.to_be_bytes().to_vec();
        v.push(0x01);
        v.extend_from_slice(&[0xFF; 7]);
        v.extend_from_slice(body);
        v
    }

    fn block(id: u32, track: u8, laced: Option<u8>) -> Vec<u8> {
        let mut body = vec![0x80 | track, 0, 0, if laced.is_some() { 0x02 } else { 0 }];
        body.extend(laced);
        body.extend_from_slice(&[1, 2, 3]);
        el(id, &body)
    }

    #[test]
    fn paddings_are_found_per_track_and_frame() {
        let mut cluster = Vec::new();
        cluster.extend(el(0xE7, &[0])); // Timecode
        cluster.extend(block(SIMPLE_BLOCK, 1, None)); // track 1 frame 0
        cluster.extend(block(SIMPLE_BLOCK, 2, Some(2))); // track 2 frames 0..3
        cluster.extend(block(SIMPLE_BLOCK, 1, None)); // track 1 frame 1
        let mut group = block(BLOCK, 1, Some(1)); // track 1 frames 2, 3
        group.extend(el(DISCARD_PADDING, &6_500_000i32.to_be_bytes()[1..])); // 6.5 ms
        cluster.extend(el(BLOCK_GROUP, &group));
        let mut file = el(EBML_HEADER, b"\x42\x82\x84webm");
        file.extend(unknown(SEGMENT, &unknown(CLUSTER, &cluster)));
        assert!(looks_like_ebml(&file));
        let len = file.len() as u64;
        let found = scan_discard_padding(Cursor::new(file), len).unwrap();
        assert_eq!(found.paddings, vec![Padding { track: 1, frame: 3, nanos: 6_500_000 }]);
        assert_eq!(found.paddings[0].frames(48_000), 312);
        assert!(found.open_ended);
    }

    #[test]
    fn negative_or_absent_padding_and_garbage_give_nothing() {
        let mut group = block(BLOCK, 1, None);
        group.extend(el(DISCARD_PADDING, &[0xFF])); // -1 ns
        let mut file = el(EBML_HEADER, &[]);
        file.extend(el(SEGMENT, &el(CLUSTER, &el(BLOCK_GROUP, &group))));
        let len = file.len() as u64;
        let found = scan_discard_padding(Cursor::new(file.clone()), len).unwrap();
        assert_eq!((found.paddings, found.open_ended), (vec![], false));
        // Cut anywhere: never a panic, at most what was whole.
        for cut in 0..file.len() {
            let _ = scan_discard_padding(Cursor::new(&file[..cut]), cut as u64);
        }
        assert_eq!(scan_discard_padding(Cursor::new(b"RIFF\0\0\0\0".to_vec()), 8), None);
    }
}
