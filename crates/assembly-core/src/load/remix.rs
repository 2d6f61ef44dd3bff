//! Channel conversion: mono ↔ stereo and ITU-R BS.775 downmixes of surround layouts.
//!
//! The rules (also in `docs/resampling.md`):
//!
//! - **Mono → N** (N ≤ [`MAX_UPMIX_CHANNELS`]): the mono signal is copied to every channel at
//!   the same level. No other upmix exists: turning stereo into surround would invent
//!   spatial information, so it is an error.
//! - **Stereo → mono**: `(L + R) / 2`. Never louder than the louder input sample, so it
//!   cannot clip; a dual-mono recording (the same microphone on both channels, very common
//!   in podcasts) comes back sample-exact; mono → stereo → mono is the identity. The price:
//!   an identical-channel signal measures 3.01 LU lower as mono than as stereo (BS.1770 sums
//!   channel powers), which the mastering stage's loudness normalisation absorbs anyway. The
//!   −3 dB alternative, `0.7071·(L + R)` (BS.775's 2/0 → 1/0 rule), keeps that loudness but
//!   can exceed full scale by 3 dB and does not round-trip.
//! - **Surround → stereo**: ITU-R BS.775 (Table 2) coefficients. With `a = 1/√2` (−3 dB):
//!   `L₀ = L + a·C + a·Ls (+ a·Lb)`, `R₀ = R + a·C + a·Rs (+ a·Rb)`; a single surround
//!   channel (the S of 4.0, the Cs of 6.1) goes to both sides at `a·a = 0.5`; LFE is dropped.
//!   No normalisation: dialogue in C keeps its level relative to L/R, peaks may exceed 1.0
//!   (it is `f32`; the limiter deals with it).
//! - **Surround → mono**: `(L₀ + R₀) / 2` of the stereo downmix, consistent with the stereo
//!   rule (= BS.775's 3/2 → 1/0 equation scaled by 1/√2).
//! - **Other channel counts** (more than 8): no standard layout, so a neutral fallback:
//!   mono is the mean of all channels; stereo takes the mean of the even-numbered channels
//!   (0, 2, …) as left and of the odd-numbered ones as right, which keeps L/R pairs apart.
//!
//! Layouts are inferred from the channel count in the WAVE/SMPTE order (see
//! [`ChannelLayout::from_channel_count`]); [`remix_layout`] takes an explicit layout.

use std::f32::consts::FRAC_1_SQRT_2;

use crate::AudioBuffer;
use crate::error::{Error, Result};

/// The most channels a mono signal may be duplicated to.
pub const MAX_UPMIX_CHANNELS: usize = 8;

/// A loudspeaker layout: which speaker each channel feeds, in WAVE/SMPTE channel order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelLayout {
    /// 1 channel: C.
    Mono,
    /// 2 channels: L R.
    Stereo,
    /// 3.0, 3 channels: L R C.
    Surround3_0,
    /// 4.0, 4 channels: L R C S (one surround channel).
    Surround4_0,
    /// Quad, 4 channels: L R Ls Rs.
    Quad,
    /// 5.0, 5 channels: L R C Ls Rs.
    Surround5_0,
    /// 5.1, 6 channels: L R C LFE Ls Rs.
    Surround5_1,
    /// 6.1, 7 channels: L R C LFE Cs Ls Rs (Cs = back centre).
    Surround6_1,
    /// 7.1, 8 channels: L R C LFE Lb Rb Ls Rs (WAVE names them BL BR SL SR; either way
    /// channels 4 and 6 are left, 5 and 7 right, which is all the downmix needs).
    Surround7_1,
}

impl ChannelLayout {
    /// The default layout for a channel count, as WAVE files without a channel mask and
    /// ffmpeg assume it: 1 mono, 2 stereo, 3 → 3.0, 4 → quad, 5 → 5.0, 6 → 5.1, 7 → 6.1,
    /// 8 → 7.1. `None` for 0 or more than 8.
    pub fn from_channel_count(channels: usize) -> Option<Self> {
        Some(match channels {
            1 => Self::Mono,
            2 => Self::Stereo,
            3 => Self::Surround3_0,
            4 => Self::Quad,
            5 => Self::Surround5_0,
            6 => Self::Surround5_1,
            7 => Self::Surround6_1,
            8 => Self::Surround7_1,
            _ => return None,
        })
    }

    /// Number of channels in this layout.
    pub fn channel_count(self) -> usize {
        match self {
            Self::Mono => 1,
            Self::Stereo => 2,
            Self::Surround3_0 => 3,
            Self::Surround4_0 | Self::Quad => 4,
            Self::Surround5_0 => 5,
            Self::Surround5_1 => 6,
            Self::Surround6_1 => 7,
            Self::Surround7_1 => 8,
        }
    }

    /// The stereo downmix as `[left_row, right_row]`, one coefficient per input channel.
    fn stereo_rows(self) -> [Vec<f32>; 2] {
        const A: f32 = FRAC_1_SQRT_2;
        const H: f32 = 0.5; // a single surround channel: −3 dB into each side, then −3 dB
        let (l, r): (Vec<f32>, Vec<f32>) = match self {
            Self::Mono => (vec![1.0], vec![1.0]),
            Self::Stereo => (vec![1.0, 0.0], vec![0.0, 1.0]),
            Self::Surround3_0 => (vec![1.0, 0.0, A], vec![0.0, 1.0, A]),
            Self::Surround4_0 => (vec![1.0, 0.0, A, H], vec![0.0, 1.0, A, H]),
            Self::Quad => (vec![1.0, 0.0, A, 0.0], vec![0.0, 1.0, 0.0, A]),
            Self::Surround5_0 => (vec![1.0, 0.0, A, A, 0.0], vec![0.0, 1.0, A, 0.0, A]),
            Self::Surround5_1 => (vec![1.0, 0.0, A, 0.0, A, 0.0], vec![0.0, 1.0, A, 0.0, 0.0, A]),
            Self::Surround6_1 => {
                (vec![1.0, 0.0, A, 0.0, H, A, 0.0], vec![0.0, 1.0, A, 0.0, H, 0.0, A])
            }
            Self::Surround7_1 => {
                (vec![1.0, 0.0, A, 0.0, A, 0.0, A, 0.0], vec![0.0, 1.0, A, 0.0, 0.0, A, 0.0, A])
            }
        };
        [l, r]
    }
}

/// Converts `buf` to `to_channels` channels, inferring its layout from its channel count
/// (WAVE/SMPTE order, see [`ChannelLayout::from_channel_count`]).
///
/// Mono is duplicated to any count up to [`MAX_UPMIX_CHANNELS`]; stereo becomes mono as
/// `(L + R) / 2`; 3 to 8 channels are downmixed to stereo or mono with ITU-R BS.775
/// coefficients (LFE dropped); other counts use a neutral fallback. The module docs give the
/// exact matrices and the reasons. Equal counts return a copy.
///
/// # Errors
///
/// [`Error::InvalidInput`] (field `to_channels`) if `to_channels` is zero, over
/// [`MAX_UPMIX_CHANNELS`] for a mono input, more than the input's count for a multichannel
/// input (no upmix is invented), or between 3 and the input's count (only downmixes to
/// stereo or mono exist).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{AudioBuffer, load};
///
/// let rate = NonZeroU32::new(48_000).unwrap();
/// // 5.1 in WAVE order: L R C LFE Ls Rs, each channel a different constant.
/// let planes = [0.1f32, 0.2, 0.3, 0.9, 0.4, 0.5].map(|v| vec![v; 4]).to_vec();
/// let surround = AudioBuffer::from_planar(rate, planes).unwrap();
/// let stereo = load::remix(&surround, 2).unwrap();
/// let a = std::f32::consts::FRAC_1_SQRT_2;
/// assert!((stereo.channel(0)[0] - (0.1 + a * 0.3 + a * 0.4)).abs() < 1e-6);
/// assert!((stereo.channel(1)[0] - (0.2 + a * 0.3 + a * 0.5)).abs() < 1e-6);
///
/// let mono = load::remix(&stereo, 1).unwrap();
/// assert!((mono.channel(0)[0] - (stereo.channel(0)[0] + stereo.channel(1)[0]) / 2.0).abs() < 1e-6);
/// ```
pub fn remix(buf: &AudioBuffer, to_channels: usize) -> Result<AudioBuffer> {
    let from = buf.channel_count();
    check_remix(from, to_channels)?;
    match ChannelLayout::from_channel_count(from) {
        Some(layout) => apply(buf, &matrix(layout, to_channels)),
        None => apply(buf, &fallback_matrix(from, to_channels)),
    }
}

/// Like [`remix`], with the input's layout given explicitly (for the layouts a channel count
/// alone cannot tell apart, such as 4.0 and quad).
///
/// # Errors
///
/// [`Error::InvalidInput`] if `layout` does not have `buf`'s channel count (field
/// `layout`), or for the `to_channels` values [`remix`] rejects.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{AudioBuffer, load::{self, ChannelLayout}};
///
/// let rate = NonZeroU32::new(48_000).unwrap();
/// // 4.0: L R C S. The single surround channel reaches each side at 0.5 (−6 dB).
/// let planes = [0.0f32, 0.0, 0.0, 1.0].map(|v| vec![v; 2]).to_vec();
/// let buf = AudioBuffer::from_planar(rate, planes).unwrap();
/// let stereo = load::remix_layout(&buf, ChannelLayout::Surround4_0, 2).unwrap();
/// assert_eq!(stereo.channel(0), &[0.5, 0.5]);
/// assert_eq!(stereo.channel(1), &[0.5, 0.5]);
/// ```
pub fn remix_layout(
    buf: &AudioBuffer,
    layout: ChannelLayout,
    to_channels: usize,
) -> Result<AudioBuffer> {
    let from = buf.channel_count();
    if layout.channel_count() != from {
        return Err(Error::invalid_input(
            "layout",
            format!("{layout:?} has {} channels, the audio has {from}", layout.channel_count()),
        ));
    }
    check_remix(from, to_channels)?;
    apply(buf, &matrix(layout, to_channels))
}

/// Validates a conversion from `from` to `to` channels without doing it.
pub(crate) fn check_remix(from: usize, to: usize) -> Result<()> {
    let err = |detail: String| Err(Error::invalid_input("to_channels", detail));
    if to == 0 {
        return err("channel count must be at least 1".into());
    }
    if from == to {
        return Ok(());
    }
    if from == 1 {
        if to > MAX_UPMIX_CHANNELS {
            return err(format!("mono can be duplicated to at most {MAX_UPMIX_CHANNELS} channels"));
        }
        return Ok(());
    }
    if to > from {
        return err(format!(
            "cannot upmix {from} channels to {to}: only mono is duplicated, nothing is invented"
        ));
    }
    if to > 2 {
        return err(format!(
            "cannot remix {from} channels to {to}: downmixes go to stereo or mono"
        ));
    }
    Ok(())
}

/// Output rows (one coefficient per input channel) for a validated conversion.
fn matrix(layout: ChannelLayout, to: usize) -> Vec<Vec<f32>> {
    let from = layout.channel_count();
    if from == to {
        return (0..to)
            .map(|o| (0..from).map(|i| if i == o { 1.0 } else { 0.0 }).collect())
            .collect();
    }
    if from == 1 {
        return vec![vec![1.0]; to];
    }
    let [l, r] = layout.stereo_rows();
    if to == 2 { vec![l, r] } else { vec![l.iter().zip(&r).map(|(a, b)| (a + b) / 2.0).collect()] }
}

/// Mean of all channels (mono), or of the even / odd channels (stereo).
fn fallback_matrix(from: usize, to: usize) -> Vec<Vec<f32>> {
    if to == 1 {
        return vec![vec![1.0 / from as f32; from]];
    }
    if to == from {
        return (0..to)
            .map(|o| (0..from).map(|i| if i == o { 1.0 } else { 0.0 }).collect())
            .collect();
    }
    let evens = from.div_ceil(2) as f32;
    let odds = (from / 2) as f32;
    let l = (0..from).map(|i| if i % 2 == 0 { 1.0 / evens } else { 0.0 }).collect();
    let r = (0..from).map(|i| if i % 2 == 1 { 1.0 / odds } else { 0.0 }).collect();
    vec![l, r]
}

/// Applies `rows` (one per output channel, one coefficient per input channel).
fn apply(buf: &AudioBuffer, rows: &[Vec<f32>]) -> Result<AudioBuffer> {
    let frames = buf.frames();
    let planes: Vec<Vec<f32>> = rows
        .iter()
        .map(|row| {
            let mut terms = row.iter().zip(buf.planes()).filter(|(c, _)| **c != 0.0);
            let Some((&c0, p0)) = terms.next() else {
                return vec![0.0; frames];
            };
            let mut out: Vec<f32> =
                if c0 == 1.0 { p0.clone() } else { p0.iter().map(|s| c0 * s).collect() };
            for (&c, p) in terms {
                for (o, s) in out.iter_mut().zip(p) {
                    *o += c * s;
                }
            }
            out
        })
        .collect();
    AudioBuffer::from_planar(buf.sample_rate(), planes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::loudness;
    use crate::synth;
    use std::num::NonZeroU32;

    const R48: NonZeroU32 = NonZeroU32::new(48_000).unwrap();
    const A: f64 = std::f64::consts::FRAC_1_SQRT_2;

    /// Channel `i` is a sine at `200·(i+1)` Hz plus DC `0.01·(i+1)`: every channel distinct.
    fn distinct(channels: usize, frames: usize) -> AudioBuffer {
        let planes = (0..channels)
            .map(|i| {
                synth::sine(R48, 200.0 * (i + 1) as f64, 0.1, frames)
                    .into_iter()
                    .map(|s| s + 0.01 * (i + 1) as f32)
                    .collect()
            })
            .collect();
        AudioBuffer::from_planar(R48, planes).unwrap()
    }

    /// Asserts `out[o][n] == Σ_i want[o][i]·in[i][n]` (the standard's equations written out
    /// per layout below, in f64) for every frame, to 1e-6.
    fn check(input: &AudioBuffer, out: &AudioBuffer, want: &[&[f64]]) {
        assert_eq!(out.channel_count(), want.len());
        assert_eq!(out.frames(), input.frames());
        for (o, row) in want.iter().enumerate() {
            for n in 0..input.frames() {
                let e: f64 =
                    row.iter().enumerate().map(|(i, c)| c * f64::from(input.channel(i)[n])).sum();
                let g = f64::from(out.channel(o)[n]);
                assert!((g - e).abs() < 1e-6, "out {o} frame {n}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn surround_to_stereo_follows_bs775() {
        let n = 480;
        // L0 = L + a·C + a·Ls (+ a·Lb); single surround (S, Cs) at 0.5; LFE dropped.
        let cases: [(usize, [&[f64]; 2]); 6] = [
            (3, [&[1.0, 0.0, A], &[0.0, 1.0, A]]),
            (4, [&[1.0, 0.0, A, 0.0], &[0.0, 1.0, 0.0, A]]),
            (5, [&[1.0, 0.0, A, A, 0.0], &[0.0, 1.0, A, 0.0, A]]),
            (6, [&[1.0, 0.0, A, 0.0, A, 0.0], &[0.0, 1.0, A, 0.0, 0.0, A]]),
            (7, [&[1.0, 0.0, A, 0.0, 0.5, A, 0.0], &[0.0, 1.0, A, 0.0, 0.5, 0.0, A]]),
            (8, [&[1.0, 0.0, A, 0.0, A, 0.0, A, 0.0], &[0.0, 1.0, A, 0.0, 0.0, A, 0.0, A]]),
        ];
        for (ch, rows) in cases {
            let input = distinct(ch, n);
            check(&input, &remix(&input, 2).unwrap(), &rows);
            // Mono is the mean of the two stereo rows.
            let mono: Vec<f64> = rows[0].iter().zip(rows[1]).map(|(l, r)| (l + r) / 2.0).collect();
            check(&input, &remix(&input, 1).unwrap(), &[&mono]);
        }
        let four = distinct(4, n);
        let out = remix_layout(&four, ChannelLayout::Surround4_0, 2).unwrap();
        check(&four, &out, &[&[1.0, 0.0, A, 0.5], &[0.0, 1.0, A, 0.5]]);
    }

    #[test]
    fn five_one_mono_is_bs775_scaled_by_minus_3_db() {
        // BS.775 3/2 → 1/0: M = a·L + a·R + C + 0.5·Ls + 0.5·Rs; ours is that times a.
        let input = distinct(6, 96);
        let bs775 = [A, A, 1.0, 0.0, 0.5, 0.5].map(|c| c * A);
        check(&input, &remix(&input, 1).unwrap(), &[&bs775]);
    }

    #[test]
    fn fallback_for_ten_channels() {
        let input = distinct(10, 64);
        let m = [0.1; 10];
        check(&input, &remix(&input, 1).unwrap(), &[&m]);
        let l = [0.2, 0.0, 0.2, 0.0, 0.2, 0.0, 0.2, 0.0, 0.2, 0.0];
        let r = [0.0, 0.2, 0.0, 0.2, 0.0, 0.2, 0.0, 0.2, 0.0, 0.2];
        check(&input, &remix(&input, 2).unwrap(), &[&l, &r]);
    }

    #[test]
    fn mono_stereo_mono_is_identity() {
        let mono = synth::mono(R48, synth::white_noise(9, 0.9, 10_000));
        let stereo = remix(&mono, 2).unwrap();
        assert_eq!(stereo.channel(0), mono.channel(0));
        assert_eq!(stereo.channel(1), mono.channel(0));
        assert_eq!(remix(&stereo, 1).unwrap(), mono);
        let six = remix(&mono, 6).unwrap();
        assert!(six.planes().iter().all(|p| p == mono.channel(0)));
    }

    #[test]
    fn stereo_to_mono_is_the_mean() {
        let l = synth::sine(R48, 440.0, 0.5, 1000);
        let r = synth::white_noise(4, 0.5, 1000);
        let st = AudioBuffer::from_planar(R48, vec![l.clone(), r.clone()]).unwrap();
        let m = remix(&st, 1).unwrap();
        for i in 0..1000 {
            assert_eq!(m.channel(0)[i], (l[i] + r[i]) / 2.0);
        }
    }

    // A 1 kHz sine at -23 dBFS on both channels reads -23.0 LUFS as stereo (EBU Tech 3341
    // case 1). BS.1770 sums channel powers, so the (L+R)/2 mono downmix (the same samples,
    // one channel) reads 10·log10(2) = 3.01 LU lower: -26.01 LUFS. The −3 dB rule would
    // give 1.414× the samples and read -23.0 again.
    #[test]
    fn dual_mono_downmix_measures_3_db_lower() {
        let s = synth::sine(R48, 1000.0, synth::db_to_amp(-23.0), 48_000 * 10);
        let stereo = synth::multi(R48, s, 2);
        let ls = loudness::measure(&stereo).unwrap().integrated_lufs;
        let lm = loudness::measure(&remix(&stereo, 1).unwrap()).unwrap().integrated_lufs;
        assert!((ls + 23.0).abs() < 0.1, "{ls}");
        assert!((lm - (ls - 10.0 * 2f64.log10())).abs() < 0.02, "{lm} vs {ls}");
        assert!((lm + 26.01).abs() < 0.1, "{lm}");
    }

    #[test]
    fn rejects_what_it_cannot_do() {
        let st = distinct(2, 8);
        let six = distinct(6, 8);
        let mono = distinct(1, 8);
        for (b, to) in [(&st, 0), (&st, 3), (&six, 8), (&six, 4), (&mono, 9), (&mono, 0)] {
            let e = remix(b, to).unwrap_err();
            assert!(e.to_string().contains("to_channels"), "{e}");
        }
        assert!(remix_layout(&six, ChannelLayout::Quad, 2).is_err());
        assert_eq!(remix(&six, 6).unwrap(), six);
        assert_eq!(remix(&mono, 8).unwrap().channel_count(), 8);
    }
}
