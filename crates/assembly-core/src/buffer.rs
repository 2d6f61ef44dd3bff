//! The one audio buffer type: planar `f32`, channel-major, non-zero rate and channel count.

use std::num::NonZeroU32;

use crate::error::{Error, Result};

/// Planar `f32` audio: one `Vec<f32>` per channel, all of the same length.
///
/// The sample rate and the channel count can never be zero: constructors reject it.
/// Integer formats and interleaving exist only at the decode and encode edges.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::AudioBuffer;
///
/// let rate = NonZeroU32::new(48_000).unwrap();
/// let tone: Vec<f32> = (0..480).map(|i| (i as f32 * 0.1).sin()).collect();
/// let buf = AudioBuffer::from_planar(rate, vec![tone.clone(), tone]).unwrap();
/// assert_eq!(buf.channel_count(), 2);
/// assert_eq!(buf.frames(), 480);
/// assert_eq!(buf.duration_ms(), 10);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AudioBuffer {
    rate: NonZeroU32,
    channels: Vec<Vec<f32>>,
}

impl AudioBuffer {
    /// A buffer of `frames` zero samples in each of `channels` channels.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `channels` is zero.
    pub fn silence(rate: NonZeroU32, channels: usize, frames: usize) -> Result<Self> {
        if channels == 0 {
            return Err(Error::invalid_input("channels", "channel count must be at least 1"));
        }
        Ok(Self { rate, channels: vec![vec![0.0; frames]; channels] })
    }

    /// Wraps planar channel data.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if there are no channels or the channels differ in length.
    pub fn from_planar(rate: NonZeroU32, channels: Vec<Vec<f32>>) -> Result<Self> {
        let Some(first) = channels.first() else {
            return Err(Error::invalid_input("channels", "channel count must be at least 1"));
        };
        let frames = first.len();
        if let Some((i, c)) = channels.iter().enumerate().find(|(_, c)| c.len() != frames) {
            return Err(Error::invalid_input(
                "channels",
                format!("channel {i} has {} frames, channel 0 has {frames}", c.len()),
            ));
        }
        Ok(Self { rate, channels })
    }

    /// A mono buffer from one channel of samples.
    pub fn mono(rate: NonZeroU32, samples: Vec<f32>) -> Self {
        Self { rate, channels: vec![samples] }
    }

    /// De-interleaves `samples` (frame-major, `channels` samples per frame).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `channels` is zero or `samples.len()` is not a multiple of it.
    pub fn from_interleaved(rate: NonZeroU32, channels: usize, samples: &[f32]) -> Result<Self> {
        if channels == 0 {
            return Err(Error::invalid_input("channels", "channel count must be at least 1"));
        }
        if !samples.len().is_multiple_of(channels) {
            return Err(Error::invalid_input(
                "samples",
                format!(
                    "{} samples is not a whole number of {channels}-channel frames",
                    samples.len()
                ),
            ));
        }
        let frames = samples.len() / channels;
        let mut planar = vec![Vec::with_capacity(frames); channels];
        for frame in samples.chunks_exact(channels) {
            for (ch, &s) in planar.iter_mut().zip(frame) {
                ch.push(s);
            }
        }
        Ok(Self { rate, channels: planar })
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> NonZeroU32 {
        self.rate
    }

    /// Number of channels (always at least 1).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.channels[0].len()
    }

    /// True when the buffer holds no frames.
    pub fn is_empty(&self) -> bool {
        self.frames() == 0
    }

    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.frames() as f64 / f64::from(self.rate.get())
    }

    /// Duration in whole milliseconds, rounded to nearest.
    pub fn duration_ms(&self) -> u64 {
        frames_to_ms(self.frames() as u64, self.rate)
    }

    /// One channel's samples. Panics if `index >= channel_count()`.
    pub fn channel(&self, index: usize) -> &[f32] {
        &self.channels[index]
    }

    /// One channel's samples, mutable. Panics if `index >= channel_count()`.
    pub fn channel_mut(&mut self, index: usize) -> &mut [f32] {
        &mut self.channels[index]
    }

    /// All channels, in order.
    pub fn planes(&self) -> &[Vec<f32>] {
        &self.channels
    }

    /// All channels, mutable. The slice itself cannot be resized, so channels stay equal in length.
    pub fn planes_mut(&mut self) -> &mut [Vec<f32>] {
        &mut self.channels
    }

    /// Consumes the buffer, returning its channels.
    pub fn into_planes(self) -> Vec<Vec<f32>> {
        self.channels
    }

    /// Frame-major samples (`L R L R …`), as encoders want them.
    pub fn to_interleaved(&self) -> Vec<f32> {
        let n = self.channel_count();
        let mut out = Vec::with_capacity(self.frames() * n);
        for i in 0..self.frames() {
            for ch in &self.channels {
                out.push(ch[i]);
            }
        }
        out
    }

    /// Appends `other`'s frames.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if rate or channel count differ.
    pub fn append(&mut self, other: &AudioBuffer) -> Result<()> {
        if other.rate != self.rate || other.channel_count() != self.channel_count() {
            return Err(Error::invalid_input(
                "buffer",
                format!(
                    "cannot append {} Hz × {} ch to {} Hz × {} ch",
                    other.rate,
                    other.channel_count(),
                    self.rate,
                    self.channel_count()
                ),
            ));
        }
        for (a, b) in self.channels.iter_mut().zip(&other.channels) {
            a.extend_from_slice(b);
        }
        Ok(())
    }

    /// Shortens every channel to at most `frames` frames.
    pub fn truncate(&mut self, frames: usize) {
        for ch in &mut self.channels {
            ch.truncate(frames);
        }
    }

    /// Largest absolute sample value over all channels (0.0 for an empty buffer).
    pub fn sample_peak(&self) -> f32 {
        self.channels.iter().fold(0.0_f32, |m, ch| m.max(max_abs(ch)))
    }
}

/// Checks a block of planar slices for a processor of `channels` channels (`owner` names it
/// in the message): one slice a channel, all the same length. Returns the length in frames.
///
/// # Errors
///
/// [`Error::InvalidInput`] (field `block`) if the count or the lengths differ.
pub(crate) fn check_planes(
    planes: &[impl AsRef<[f32]>],
    channels: usize,
    owner: &str,
) -> Result<usize> {
    if planes.len() != channels {
        return Err(Error::invalid_input(
            "block",
            format!("{owner} has {channels} channels, block has {}", planes.len()),
        ));
    }
    let n = planes.first().map_or(0, |p| p.as_ref().len());
    if planes.iter().any(|p| p.as_ref().len() != n) {
        return Err(Error::invalid_input("block", "channel slices differ in length"));
    }
    Ok(n)
}

/// Largest magnitude in `x`, 0.0 when empty (lane-parallel so it vectorizes; the maximum is
/// exact in any order).
pub(crate) fn max_abs(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder().iter().fold(0.0f32, |m, s| m.max(s.abs()));
    for c in chunks {
        for (l, s) in lanes.iter_mut().zip(c) {
            *l = l.max(s.abs());
        }
    }
    lanes.iter().fold(rest, |m, &l| m.max(l))
}

/// Converts a frame count at `rate` to whole milliseconds, rounded to nearest (integer maths).
pub fn frames_to_ms(frames: u64, rate: NonZeroU32) -> u64 {
    let r = u128::from(rate.get());
    ((u128::from(frames) * 1000 + r / 2) / r) as u64
}

/// Converts milliseconds to a frame count at `rate`, rounded to nearest (integer maths).
pub fn ms_to_frames(ms: u64, rate: NonZeroU32) -> u64 {
    ((u128::from(ms) * u128::from(rate.get()) + 500) / 1000) as u64
}

/// Converts seconds to a frame count at `rate`, rounded to nearest. Negative or NaN gives 0.
pub fn seconds_to_frames(seconds: f64, rate: NonZeroU32) -> u64 {
    let f = (seconds * f64::from(rate.get())).round();
    if f.is_nan() || f <= 0.0 { 0 } else { f as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(r: u32) -> NonZeroU32 {
        NonZeroU32::new(r).unwrap()
    }

    #[test]
    fn interleave_round_trip() {
        let data: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let b = AudioBuffer::from_interleaved(rate(8000), 3, &data).unwrap();
        assert_eq!(b.frames(), 4);
        assert_eq!(b.channel(1), &[1.0, 4.0, 7.0, 10.0]);
        assert_eq!(b.to_interleaved(), data);
    }

    #[test]
    fn rejects_zero_channels_and_ragged() {
        assert!(AudioBuffer::from_planar(rate(8000), vec![]).is_err());
        assert!(AudioBuffer::from_planar(rate(8000), vec![vec![0.0; 3], vec![0.0; 2]]).is_err());
        assert!(AudioBuffer::from_interleaved(rate(8000), 2, &[0.0; 3]).is_err());
        assert!(AudioBuffer::silence(rate(8000), 0, 10).is_err());
    }

    #[test]
    fn unit_conversions_are_exact() {
        assert_eq!(frames_to_ms(44_100, rate(44_100)), 1000);
        assert_eq!(frames_to_ms(22, rate(44_100)), 0);
        assert_eq!(frames_to_ms(23, rate(44_100)), 1);
        assert_eq!(ms_to_frames(1500, rate(48_000)), 72_000);
        assert_eq!(seconds_to_frames(0.1, rate(44_100)), 4410);
        assert_eq!(seconds_to_frames(f64::NAN, rate(44_100)), 0);
        assert_eq!(seconds_to_frames(-1.0, rate(44_100)), 0);
    }
}
