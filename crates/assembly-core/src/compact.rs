//! Compact in-memory audio: how the Assembler keeps an hours-long recording.
//!
//! Samples are rounded to a fixed integer grid (16 bits by default: the precision of 16-bit
//! PCM and what every MP3/AAC/Vorbis decoder hands a player), and each channel is cut into
//! blocks of [`BLOCK`] frames. A block stores the differences between neighbouring samples,
//! zigzag-coded and bit-packed at the width of its largest difference. Speech changes slowly
//! between samples and pauses are quiet, so an hour of mono speech at 44.1 kHz takes about
//! a third of the 635 MB it would as `f32` (measured in the tests and `docs/performance.md`).
//!
//! The coding is lossless on the grid: a 16-bit source reads back bit for bit, anything else
//! reads back within half a grid step (1/65,536 of full scale at 16 bits, −101 dBFS RMS).
//! Values beyond full scale are kept (the grid extends to ±2^(29 − bits + 1) × full scale);
//! only absurd values beyond that are clamped, and non-finite samples read back as 0.
//!
//! Every block decodes on its own, so a read at any position costs at most one block of
//! extra decoding at each end.

use std::num::NonZeroU32;

use crate::FrameSource;
use crate::error::{Error, Result};

/// Frames per block: the unit of random access and of the bit width.
pub const BLOCK: usize = 512;
/// First bytes of [`CompactAudio::to_bytes`]'s form.
const BYTES_MAGIC: &[u8; 8] = b"PACOMP01";

/// Largest magnitude of a grid value: differences then fit in 31 bits after zigzag coding.
const MAX_Q: i32 = 1 << 29;

/// Audio stored compactly (see the module docs); reads through [`FrameSource`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{AudioBuffer, CompactAudio, FrameSource, synth};
///
/// let rate = NonZeroU32::new(44_100).unwrap();
/// let talk = synth::mono(rate, synth::speech_like(rate, 3, -20.0, 44_100 * 10));
/// let compact = CompactAudio::from_buffer(&talk, 16).unwrap();
/// assert_eq!(compact.frames(), 441_000);
/// // Smaller than f32 (4 bytes a sample) and smaller than 16-bit PCM.
/// assert!(compact.stored_bytes() < 441_000 * 2);
///
/// let mut block = vec![0.0f32; 1_000];
/// compact.read(123_456, &mut [block.as_mut_slice()]);
/// let max_err = block
///     .iter()
///     .zip(&talk.channel(0)[123_456..124_456])
///     .map(|(a, b)| (a - b).abs())
///     .fold(0.0f32, f32::max);
/// assert!(max_err <= 0.5 / 32_768.0 + 1e-9);
/// ```
#[derive(Clone, Debug)]
pub struct CompactAudio {
    rate: NonZeroU32,
    frames: u64,
    /// Grid value of full scale: 2^(bits − 1).
    scale: f32,
    channels: Vec<Packed>,
}

/// One channel: per block, the bit offset of its data and its width.
#[derive(Clone, Debug, Default)]
struct Packed {
    offsets: Vec<u64>,
    widths: Vec<u8>,
    /// Packed bits, little-endian, with [`SLACK`] zero bytes at the end (reads take windows).
    data: Vec<u8>,
}

impl Packed {
    /// Appends one block of grid values (at most [`BLOCK`]; a short last block repeats its
    /// last value).
    fn push_block(&mut self, q: &[i32]) {
        let mut z = [0u32; BLOCK];
        let mut prev = 0i32;
        for (zi, &v) in z.iter_mut().zip(q) {
            *zi = zigzag(v - prev);
            prev = v;
        }
        let width = 32 - z.iter().fold(0u32, |m, &v| m | v).leading_zeros();
        // Blocks are BLOCK values of `width` bits, a whole number of bytes: each starts on a
        // byte boundary, where the previous one's zero slack begins.
        let bit0 = self
            .offsets
            .last()
            .map_or(0, |&o| o + u64::from(*self.widths.last().unwrap_or(&0)) * BLOCK as u64);
        self.offsets.push(bit0);
        self.widths.push(width as u8);
        let byte0 = (bit0 / 8) as usize;
        let width = width as usize;
        self.data.resize(byte0 + width * BLOCK / 8 + SLACK, 0);
        pack(width, &z, &mut self.data[byte0..]);
    }

    /// Decodes values `from..upto` of block `b` into `out[..upto - from]`, times `inv`.
    fn decode(&self, b: usize, from: usize, upto: usize, inv: f32, out: &mut [f32]) {
        let out = &mut out[..upto - from];
        let width = usize::from(self.widths[b]);
        if width == 0 {
            out.fill(0.0);
            return;
        }
        // Every block is BLOCK values of `width` bits, a multiple of 64 bytes: blocks start on
        // a byte boundary. `push_block` leaves SLACK bytes after the last one.
        let byte0 = (self.offsets[b] / 8) as usize;
        let groups = upto.div_ceil(8);
        let Some(bytes) = self.data.get(byte0..byte0 + groups * width + SLACK) else {
            out.fill(0.0);
            return;
        };
        let mut z = [0u32; BLOCK];
        unpack(width, bytes, &mut z[..groups * 8]);
        // The running sum of the differences (one add per value), then the conversion, which
        // vectorizes once it is a separate loop.
        let mut prev = 0i32;
        for v in &mut z[..upto] {
            prev = prev.wrapping_add(*v as i32);
            *v = prev as u32;
        }
        for (o, &v) in out.iter_mut().zip(&z[from..upto]) {
            *o = v as i32 as f32 * inv;
        }
    }
}

/// Bytes of zeros after the packed data: an 8-value group is read as one 40-byte window.
const SLACK: usize = 40;

/// Calls `$f::<W>($args)` for the bit width `$width` (1..=32) as a constant `W`, so each
/// width gets its own unrolled code.
macro_rules! by_width {
    ($width:expr, $f:ident $args:tt) => {
        by_width!(@ $width, $f, $args, 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23
            24 25 26 27 28 29 30 31 32)
    };
    (@ $width:expr, $f:ident, $args:tt, $($w:literal)*) => {
        match $width {
            $($w => $f::<$w> $args,)*
            _ => unreachable!("a zigzag difference has at most 32 bits"),
        }
    };
}

/// Unpacks `out.len()` (a multiple of 8) zigzag-coded values of `width` (1..=32) bits from
/// `bytes`; each `u32` holds the bits of the decoded `i32` difference.
fn unpack(width: usize, bytes: &[u8], out: &mut [u32]) {
    by_width!(width, unpack_w(bytes, out));
}

/// Packs `values` (a multiple of 8, each under 2^`width`) at `width` bits each into `out`,
/// which must be zero.
fn pack(width: usize, values: &[u32], out: &mut [u8]) {
    if width > 0 {
        by_width!(width, pack_w(values, out));
    }
}

/// [`pack`] for a width known at compile time: each group of 8 values fills `W` bytes.
fn pack_w<const W: usize>(values: &[u32], out: &mut [u8]) {
    for (vals, bytes) in values.chunks_exact(8).zip(out.chunks_exact_mut(W)) {
        // Unrolled for a constant W: the bit count at every step is a constant.
        let (mut acc, mut used, mut at) = (0u64, 0usize, 0usize);
        for &v in vals {
            acc |= u64::from(v) << used;
            used += W;
            while used >= 8 {
                bytes[at] = acc as u8;
                acc >>= 8;
                used -= 8;
                at += 1;
            }
        }
    }
}

/// [`unpack`] for a width known at compile time: each group of 8 values is `W` bytes, and
/// every value's byte offset and shift within it are constants.
fn unpack_w<const W: usize>(bytes: &[u8], out: &mut [u32]) {
    let mask = u64::MAX >> (64 - W);
    for (g, vals) in out.chunks_exact_mut(8).enumerate() {
        let window: &[u8; SLACK] = bytes[g * W..g * W + SLACK].try_into().expect("SLACK bytes");
        for (j, v) in vals.iter_mut().enumerate() {
            let (at, shift) = (j * W / 8, j * W % 8);
            let word: [u8; 8] = window[at..at + 8].try_into().expect("8 bytes");
            *v = unzigzag(((u64::from_le_bytes(word) >> shift) & mask) as u32) as u32;
        }
    }
}

/// `v` rounded half away from zero (as `f32::round`, without its libm call), clamped to
/// ±[`MAX_Q`]; NaN is 0. Only adds, compares and a bit cast (no float-to-int conversion, whose
/// saturating form does not vectorize): `floor(|v| + 0.5)` is exact in `f64`, and adding 2^52
/// leaves that integer in the low bits of the mantissa.
fn round_to_grid(v: f32) -> i32 {
    const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
    let v = if v.is_nan() { 0.0 } else { v.clamp(-(MAX_Q as f32), MAX_Q as f32) };
    let a = f64::from(v.abs()) + 0.5;
    let r = (a + MAGIC) - MAGIC; // `a` to the nearest integer (ties to even)
    let floor = if r > a { r - 1.0 } else { r };
    let m = (floor + MAGIC).to_bits() as u32 as i32; // `floor` ≤ 2^29 + 1: fits
    if v < 0.0 { -m } else { m }
}

/// `out[i] = round_to_grid(x[i] * scale)`, compiled for AVX2 too and chosen at run time.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn quantize(x: &[f32], scale: f32, out: &mut [i32]) {
    quantize_body(x, scale, out)
}

/// The body of [`quantize`], inlined into each of its clones (and, in the tests, into
/// portable code, to check that the clones give the same bits).
#[inline(always)]
fn quantize_body(x: &[f32], scale: f32, out: &mut [i32]) {
    for (q, &v) in out.iter_mut().zip(x) {
        *q = round_to_grid(v * scale);
    }
}

fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn unzigzag(z: u32) -> i32 {
    ((z >> 1) as i32) ^ -((z & 1) as i32)
}

/// Builds a [`CompactAudio`] from blocks of any length, as a decoder delivers them.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{CompactAudio, FrameSource};
///
/// let rate = NonZeroU32::new(8_000).unwrap();
/// let mut b = CompactAudio::builder(rate, 2, 16).unwrap();
/// b.push(&[&[0.5, -0.25], &[1.0, 0.0]]).unwrap();
/// b.push(&[&[0.125], &[-1.0]]).unwrap();
/// let audio = b.finish();
/// let (mut l, mut r) = (vec![0.0f32; 3], vec![0.0f32; 3]);
/// audio.read(0, &mut [l.as_mut_slice(), r.as_mut_slice()]);
/// assert_eq!((l, r), (vec![0.5, -0.25, 0.125], vec![1.0, 0.0, -1.0]));
/// ```
#[derive(Debug)]
pub struct CompactBuilder {
    audio: CompactAudio,
    /// Grid values of the block being filled, per channel.
    pending: Vec<Vec<i32>>,
}

impl CompactBuilder {
    /// Appends frames: one slice per channel, all of the same length.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the channel count or the slice lengths disagree.
    pub fn push(&mut self, planes: &[&[f32]]) -> Result<()> {
        if planes.len() != self.pending.len() {
            return Err(Error::invalid_input(
                "channels",
                format!(
                    "{} channels pushed into {}-channel audio",
                    planes.len(),
                    self.pending.len()
                ),
            ));
        }
        let n = planes.first().map_or(0, |p| p.len());
        if planes.iter().any(|p| p.len() != n) {
            return Err(Error::invalid_input("channels", "channels differ in length"));
        }
        let scale = self.audio.scale;
        for ((plane, pending), packed) in
            planes.iter().zip(&mut self.pending).zip(&mut self.audio.channels)
        {
            let mut rest: &[f32] = plane;
            while !rest.is_empty() {
                let fill = pending.len();
                let k = (BLOCK - fill).min(rest.len());
                pending.resize(fill + k, 0);
                quantize(&rest[..k], scale, &mut pending[fill..]);
                rest = &rest[k..];
                if pending.len() == BLOCK {
                    packed.push_block(pending);
                    pending.clear();
                }
            }
        }
        self.audio.frames += n as u64;
        Ok(())
    }

    /// The audio pushed so far.
    pub fn finish(mut self) -> CompactAudio {
        for (pending, packed) in self.pending.iter().zip(&mut self.audio.channels) {
            if !pending.is_empty() {
                packed.push_block(pending);
            }
            packed.data.shrink_to_fit();
            packed.offsets.shrink_to_fit();
            packed.widths.shrink_to_fit();
        }
        self.audio
    }
}

impl CompactAudio {
    /// A builder for audio of `channels` channels at `rate`, on a grid of `bits` bits
    /// (2^(bits − 1) steps per full scale).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `channels` is 0 or `bits` is outside 8..=24.
    pub fn builder(rate: NonZeroU32, channels: usize, bits: u32) -> Result<CompactBuilder> {
        if channels == 0 {
            return Err(Error::invalid_input("channels", "channel count must be at least 1"));
        }
        if !(8..=24).contains(&bits) {
            return Err(Error::invalid_input("bits", format!("must be 8..=24, got {bits}")));
        }
        Ok(CompactBuilder {
            audio: CompactAudio {
                rate,
                frames: 0,
                scale: (1u32 << (bits - 1)) as f32,
                channels: vec![Packed::default(); channels],
            },
            pending: vec![Vec::with_capacity(BLOCK); channels],
        })
    }

    /// Stores `buf` on a grid of `bits` bits.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `bits` is outside 8..=24.
    pub fn from_buffer(buf: &crate::AudioBuffer, bits: u32) -> Result<Self> {
        let mut b = Self::builder(buf.sample_rate(), buf.channel_count(), bits)?;
        let planes: Vec<&[f32]> = buf.planes().iter().map(Vec::as_slice).collect();
        b.push(&planes)?;
        Ok(b.finish())
    }

    /// The stored form as bytes, for a checkpoint: the header (rate, frames, grid, channels),
    /// then per channel the block widths and the packed data. [`from_bytes`](Self::from_bytes)
    /// reads it back exactly.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.stored_bytes() + 64);
        b.extend_from_slice(BYTES_MAGIC);
        b.extend_from_slice(&self.rate.get().to_le_bytes());
        b.extend_from_slice(&self.frames.to_le_bytes());
        b.extend_from_slice(&self.scale.to_bits().to_le_bytes());
        b.extend_from_slice(&(self.channels.len() as u32).to_le_bytes());
        for c in &self.channels {
            b.extend_from_slice(&(c.widths.len() as u64).to_le_bytes());
            b.extend_from_slice(&c.widths);
            b.extend_from_slice(&(c.data.len() as u64).to_le_bytes());
            b.extend_from_slice(&c.data);
        }
        b
    }

    /// Reads [`to_bytes`](Self::to_bytes)'s form; `None` if it is not exactly that (wrong
    /// magic, truncated, inconsistent lengths or widths).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut r = bytes.strip_prefix(BYTES_MAGIC.as_slice())?;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, rest) = (r.get(..n)?, r.get(n..)?);
            r = rest;
            Some(head)
        };
        let u32_ = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or_default());
        let u64_ = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        let rate = NonZeroU32::new(u32_(take(4)?))?;
        let frames = u64_(take(8)?);
        let scale = f32::from_bits(u32_(take(4)?));
        let n = u32_(take(4)?) as usize;
        if n == 0 || n > 64 || !(scale.is_finite() && scale >= 1.0) {
            return None;
        }
        let blocks = usize::try_from(frames.div_ceil(BLOCK as u64)).ok()?;
        let mut channels = Vec::with_capacity(n);
        for _ in 0..n {
            if usize::try_from(u64_(take(8)?)).ok()? != blocks {
                return None;
            }
            let widths = take(blocks)?.to_vec();
            let mut offsets = Vec::with_capacity(blocks);
            let mut bit = 0u64;
            for &w in &widths {
                if w > 32 {
                    return None;
                }
                offsets.push(bit);
                bit += u64::from(w) * BLOCK as u64;
            }
            let len = usize::try_from(u64_(take(8)?)).ok()?;
            let expected = if blocks == 0 { 0 } else { usize::try_from(bit / 8).ok()? + SLACK };
            if len != expected {
                return None;
            }
            let data = take(len)?.to_vec();
            channels.push(Packed { offsets, widths, data });
        }
        r.is_empty().then_some(Self { rate, frames, scale, channels })
    }

    /// Bytes the samples occupy (packed data and block headers).
    pub fn stored_bytes(&self) -> usize {
        self.channels.iter().map(|c| c.data.len() + c.offsets.len() * 9).sum()
    }
}

impl FrameSource for CompactAudio {
    fn sample_rate(&self) -> NonZeroU32 {
        self.rate
    }

    fn channel_count(&self) -> usize {
        self.channels.len()
    }

    fn frames(&self) -> u64 {
        self.frames
    }

    fn read(&self, start: u64, out: &mut [&mut [f32]]) {
        let inv = 1.0 / self.scale;
        for (packed, dst) in self.channels.iter().zip(out.iter_mut()) {
            let end = start.saturating_add(dst.len() as u64).min(self.frames);
            let mut pos = start;
            while pos < end {
                let b = (pos / BLOCK as u64) as usize;
                let b0 = b as u64 * BLOCK as u64;
                let upto = (end - b0).min(BLOCK as u64) as usize;
                let from = (pos - b0) as usize;
                let d = (pos - start) as usize;
                packed.decode(b, from, upto, inv, &mut dst[d..]);
                pos = b0 + upto as u64;
            }
            let filled = (end.saturating_sub(start) as usize).min(dst.len());
            dst[filled..].fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AudioBuffer, synth};
    use proptest::prelude::*;

    /// Round half away from zero, clamped, the plain way (what `round_to_grid` must equal).
    fn plain_round(v: f32) -> i32 {
        if v.is_nan() { 0 } else { v.round().clamp(-(MAX_Q as f32), MAX_Q as f32) as i32 }
    }

    #[test]
    fn bytes_round_trip_exactly_and_damage_is_refused() {
        let r = NonZeroU32::new(44_100).unwrap();
        let l = synth::speech_like(r, 1, -20.0, 44_100 + 77);
        let rr = synth::white_noise(2, 0.3, 44_100 + 77);
        let buf = AudioBuffer::from_planar(r, vec![l, rr]).unwrap();
        let a = CompactAudio::from_buffer(&buf, 16).unwrap();
        let bytes = a.to_bytes();
        let b = CompactAudio::from_bytes(&bytes).unwrap();
        let read = |c: &CompactAudio| crate::source::read_window(c, 0, c.frames() as usize);
        assert_eq!((b.frames(), b.sample_rate(), b.channel_count()), (a.frames(), r, 2));
        assert_eq!(read(&a), read(&b));
        assert_eq!(b.to_bytes(), bytes);
        for cut in [0, 7, 30, bytes.len() / 2, bytes.len() - 1] {
            assert!(CompactAudio::from_bytes(&bytes[..cut]).is_none(), "truncated at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(CompactAudio::from_bytes(&longer).is_none());
        let mut wide = bytes.clone();
        wide[8 + 4 + 8 + 4 + 4 + 8] = 33; // the first block's width
        assert!(CompactAudio::from_bytes(&wide).is_none());
        let empty = CompactAudio::builder(r, 1, 16).unwrap().finish();
        assert_eq!(CompactAudio::from_bytes(&empty.to_bytes()).unwrap().frames(), 0);
    }

    #[test]
    fn rounding_is_half_away_from_zero_and_clamped() {
        let mut cases = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.499_999_97,
            -0.499_999_97,
            32_767.5,
            -32_768.5,
            8_388_607.5,
            16_777_215.0,
            16_777_216.0,
            1e9,
            -1e9,
            MAX_Q as f32,
            -(MAX_Q as f32),
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::from_bits(0x7fc0_1234),
        ];
        // Every half step in a range, and their neighbours one ulp away.
        for k in -70_000..70_000 {
            let h = k as f32 + 0.5;
            cases.extend([h, f32::from_bits(h.to_bits() + 1), f32::from_bits(h.to_bits() - 1)]);
        }
        for v in cases {
            assert_eq!(round_to_grid(v), plain_round(v), "{v:e}");
        }
    }

    /// The dispatched quantizer (the AVX2 clone on a CPU that has it) gives the integers of
    /// the same code compiled for the baseline instruction set.
    #[test]
    fn avx2_clone_quantizes_as_the_portable_code() {
        let mut x = synth::speech_like(rate(), 2, -3.0, 100_000);
        x.extend([0.5, -0.5, 1.5 / 32_768.0, -2.5 / 32_768.0, f32::NAN, f32::INFINITY, -1e12]);
        let (mut a, mut b) = (vec![0i32; x.len()], vec![0i32; x.len()]);
        quantize(&x, 32_768.0, &mut a);
        quantize_body(&x, 32_768.0, &mut b);
        assert_eq!(a, b);
    }

    proptest! {
        #[test]
        fn rounding_matches_f32_round(v in proptest::num::f32::ANY) {
            prop_assert_eq!(round_to_grid(v), plain_round(v));
        }
    }

    fn rate() -> NonZeroU32 {
        NonZeroU32::new(44_100).unwrap()
    }

    fn read_all(a: &CompactAudio) -> Vec<Vec<f32>> {
        crate::source::read_window(a, 0, a.frames() as usize)
    }

    #[test]
    fn sixteen_bit_sources_read_back_exactly() {
        let mut rng = synth::Rng::new(7);
        let pcm: Vec<f32> = (0..10_000)
            .map(|_| ((rng.next_f64() * 65_536.0).floor() - 32_768.0) as f32 / 32_768.0)
            .collect();
        let buf = AudioBuffer::mono(rate(), pcm.clone());
        let c = CompactAudio::from_buffer(&buf, 16).unwrap();
        assert_eq!(read_all(&c)[0], pcm);
    }

    #[test]
    fn float_sources_are_within_half_a_step_and_over_full_scale_is_kept() {
        let n = 44_100 * 3;
        let mut s = synth::speech_like(rate(), 2, -12.0, n);
        s[1000] = 3.5;
        s[1001] = -7.25;
        s[1002] = f32::NAN;
        s[1003] = f32::INFINITY;
        s[1004] = 1e30;
        let buf =
            AudioBuffer::from_planar(rate(), vec![s.clone(), synth::sine(rate(), 440.0, 0.9, n)])
                .unwrap();
        let c = CompactAudio::from_buffer(&buf, 16).unwrap();
        let back = read_all(&c);
        assert_eq!((back[0][1000], back[0][1001], back[0][1002]), (3.5, -7.25, 0.0));
        let limit = MAX_Q as f32 / 32_768.0;
        assert_eq!((back[0][1003], back[0][1004]), (limit, limit));
        for (ch, orig) in back.iter().zip(buf.planes()) {
            for (i, (a, b)) in ch.iter().zip(orig).enumerate() {
                if (1000..1005).contains(&i) {
                    continue;
                }
                assert!((a - b).abs() <= 0.5 / 32_768.0 + 1e-7, "sample {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn speech_and_silence_take_less_than_sixteen_bit_pcm() {
        let n = 44_100 * 30;
        let talk = synth::mono(rate(), synth::speech_like(rate(), 11, -20.0, n));
        let c = CompactAudio::from_buffer(&talk, 16).unwrap();
        let ratio = c.stored_bytes() as f64 / (n * 2) as f64;
        assert!(ratio < 0.85, "{ratio}");
        let silence = AudioBuffer::silence(rate(), 2, n).unwrap();
        let c = CompactAudio::from_buffer(&silence, 16).unwrap();
        assert!(c.stored_bytes() < n / 20, "{}", c.stored_bytes());
    }

    #[test]
    fn builder_rejects_mismatched_pushes() {
        let mut b = CompactAudio::builder(rate(), 2, 16).unwrap();
        assert!(b.push(&[&[0.0]]).is_err());
        assert!(b.push(&[&[0.0], &[0.0, 1.0]]).is_err());
        assert!(CompactAudio::builder(rate(), 0, 16).is_err());
        assert!(CompactAudio::builder(rate(), 1, 25).is_err());
    }

    /// Throughput on ten minutes of speech (`cargo test --release -p assembly-core --lib
    /// compact::tests::throughput -- --ignored --nocapture`); not a pass/fail check.
    #[test]
    #[ignore]
    fn throughput() {
        let n = 44_100 * 600;
        let talk = synth::mono(rate(), synth::speech_like(rate(), 3, -20.0, n));
        let t = std::time::Instant::now();
        let c = CompactAudio::from_buffer(&talk, 16).unwrap();
        let enc = t.elapsed().as_secs_f64();
        let mut buf = vec![0.0f32; 65_536];
        let t = std::time::Instant::now();
        let mut pos = 0;
        while pos < c.frames() {
            c.read(pos, &mut [buf.as_mut_slice()]);
            pos += 65_536;
        }
        let dec = t.elapsed().as_secs_f64();
        println!(
            "{:.2} bits/sample; encode {:.2} ns/sample, decode {:.2} ns/sample",
            c.stored_bytes() as f64 * 8.0 / n as f64,
            enc * 1e9 / n as f64,
            dec * 1e9 / n as f64
        );
    }

    proptest! {
        /// Any read window of any split of pushes equals the whole buffer rounded to the
        /// grid, zeros past the end.
        #[test]
        fn reads_match_the_rounded_source(
            len in 0usize..3_000,
            cut in 0usize..3_000,
            start in 0u64..3_500,
            n in 0usize..1_500,
            bits in 8u32..=24,
            seed in 0u64..1_000,
        ) {
            let a = synth::speech_like(rate(), seed, -10.0, len);
            let b = synth::white_noise(seed + 1, 0.3, len);
            let mut builder = CompactAudio::builder(rate(), 2, bits).unwrap();
            let cut = cut.min(len);
            builder.push(&[&a[..cut], &b[..cut]]).unwrap();
            builder.push(&[&a[cut..], &b[cut..]]).unwrap();
            let c = builder.finish();
            prop_assert_eq!(c.frames(), len as u64);
            let scale = (1u32 << (bits - 1)) as f32;
            let (mut x, mut y) = (vec![9.0f32; n], vec![9.0f32; n]);
            c.read(start, &mut [x.as_mut_slice(), y.as_mut_slice()]);
            for i in 0..n {
                let k = start as usize + i;
                let want = |s: &[f32]| s.get(k).map_or(0.0, |v| (v * scale).round() / scale);
                prop_assert_eq!(x[i], want(&a));
                prop_assert_eq!(y[i], want(&b));
            }
        }
    }
}
