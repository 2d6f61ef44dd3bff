//! Conversion to the working format: one rate and channel count for a whole job.

use std::num::NonZeroU32;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::decode::{DecodeOptions, decode_file_streaming};
use super::remix::{check_remix, remix};
use super::resample::{MAX_RATE_RATIO, Resampler, resample};
use crate::error::{Error, Result};
use crate::warning::Warning;
use crate::{AudioBuffer, CancelToken, CompactAudio, CompactBuilder};

/// The rate and channel count every source is converted to before analysis and editing.
///
/// Both fields are required (no defaults: the job decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingFormat {
    /// Sample rate in Hz.
    pub rate: NonZeroU32,
    /// Channel count (1 or 2 in practice; see [`remix`](super::remix) for what converts).
    pub channels: usize,
}

/// Converts `buf` to `format`: remix and resample, the cheaper order first.
///
/// A downmix runs before resampling (fewer channels to resample), an upmix after it. Both
/// steps are validated before either runs, so an impossible conversion fails before any
/// heavy work. When `buf` is already in `format`, the result is a copy.
///
/// # Errors
///
/// The errors of [`resample`](super::resample) and [`remix`](super::remix):
/// [`Error::InvalidInput`] for a channel conversion that does not exist or a rate ratio
/// over [`MAX_RATE_RATIO`]; [`Error::Cancelled`] if `cancel` fires.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{CancelToken, load::{self, WorkingFormat}, synth};
///
/// let hz = |r| NonZeroU32::new(r).unwrap();
/// let music = synth::multi(hz(48_000), synth::sine(hz(48_000), 440.0, 0.5, 48_000), 2);
/// let fmt = WorkingFormat { rate: hz(44_100), channels: 1 };
/// let out = load::to_working_format(&music, &fmt, &CancelToken::new()).unwrap();
/// assert_eq!((out.sample_rate().get(), out.channel_count(), out.frames()), (44_100, 1, 44_100));
/// ```
pub fn to_working_format(
    buf: &AudioBuffer,
    format: &WorkingFormat,
    cancel: &CancelToken,
) -> Result<AudioBuffer> {
    cancel.check()?;
    let from_ch = buf.channel_count();
    check_remix(from_ch, format.channels)?;
    let (f, t) = (u64::from(buf.sample_rate().get()), u64::from(format.rate.get()));
    let max = u64::from(MAX_RATE_RATIO);
    if t > f * max || f > t * max {
        return Err(Error::invalid_input(
            "rate",
            format!("cannot resample {f} Hz to {t} Hz: ratio over {MAX_RATE_RATIO}"),
        ));
    }
    let remixes = from_ch != format.channels;
    let resamples = f != t;
    match (remixes, resamples) {
        (false, false) => Ok(buf.clone()),
        (true, false) => remix(buf, format.channels),
        (false, true) => resample(buf, format.rate, cancel),
        (true, true) if format.channels < from_ch => {
            let mixed = remix(buf, format.channels)?;
            resample(&mixed, format.rate, cancel)
        }
        (true, true) => {
            let resampled = resample(buf, format.rate, cancel)?;
            remix(&resampled, format.channels)
        }
    }
}

/// [`to_working_format`] taking the buffer by value: a buffer already in `format` is
/// returned as it is, without a copy (a decoded hour of mono audio is ~635 MB).
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{CancelToken, synth};
/// use assembly_core::load::{WorkingFormat, into_working_format};
///
/// let rate = NonZeroU32::new(44_100).unwrap();
/// let buf = synth::mono(rate, synth::sine(rate, 440.0, 0.5, 4_410));
/// let ptr = buf.channel(0).as_ptr();
/// let same = into_working_format(buf, &WorkingFormat { rate, channels: 1 }, &CancelToken::new());
/// assert_eq!(same.unwrap().channel(0).as_ptr(), ptr);
/// ```
///
/// # Errors
///
/// As [`to_working_format`].
pub fn into_working_format(
    buf: AudioBuffer,
    format: &WorkingFormat,
    cancel: &CancelToken,
) -> Result<AudioBuffer> {
    cancel.check()?;
    if buf.channel_count() == format.channels && buf.sample_rate() == format.rate {
        return Ok(buf);
    }
    to_working_format(&buf, format, cancel)
}

/// Decodes the file at `path` into compact storage on a grid of `bits` bits, block by block:
/// each decoded block is downmixed (more than two channels become two), resampled to `rate`
/// when it differs (the streaming [`Resampler`], which gives the same samples as resampling
/// the whole recording) and appended, so the recording never exists in memory as `f32`.
pub(crate) fn decode_file_compact(
    path: &Path,
    opts: &DecodeOptions,
    rate: NonZeroU32,
    bits: u32,
    cancel: &CancelToken,
) -> Result<(CompactAudio, Vec<Warning>)> {
    struct Pipeline {
        from: (u32, usize),
        resampler: Option<Resampler>,
        out: Vec<Vec<f32>>,
        builder: CompactBuilder,
    }
    let mut pipe: Option<Pipeline> = None;
    let d = decode_file_streaming(path, opts, cancel, &mut |r, planes| {
        let from = (r, planes.len());
        let p = match &mut pipe {
            Some(p) => p,
            None => {
                let from_rate =
                    NonZeroU32::new(r).ok_or_else(|| Error::decode(path, "sample rate 0"))?;
                let ch = planes.len().min(2);
                let resampler =
                    (from_rate != rate).then(|| Resampler::new(from_rate, rate, ch)).transpose()?;
                let builder = CompactAudio::builder(rate, ch, bits)?;
                pipe.insert(Pipeline { from, resampler, out: vec![Vec::new(); ch], builder })
            }
        };
        if from != p.from {
            return Err(Error::decode(path, "the sample rate or channel count changes mid-stream"));
        }
        let mixed;
        let planes: Vec<&[f32]> = if planes.len() > 2 {
            let block = AudioBuffer::from_planar(
                NonZeroU32::new(r).unwrap_or(rate),
                planes.iter().map(|p| p.to_vec()).collect(),
            )?;
            mixed = remix(&block, 2)?;
            mixed.planes().iter().map(Vec::as_slice).collect()
        } else {
            planes.to_vec()
        };
        match &mut p.resampler {
            None => p.builder.push(&planes),
            Some(rs) => {
                rs.push(&planes, &mut p.out)?;
                let outs: Vec<&[f32]> = p.out.iter().map(Vec::as_slice).collect();
                p.builder.push(&outs)?;
                p.out.iter_mut().for_each(Vec::clear);
                Ok(())
            }
        }
    })?;
    match pipe {
        Some(mut p) => {
            if let Some(rs) = p.resampler.take() {
                rs.finish(&mut p.out)?;
                let outs: Vec<&[f32]> = p.out.iter().map(Vec::as_slice).collect();
                p.builder.push(&outs)?;
            }
            Ok((p.builder.finish(), d.warnings))
        }
        None => {
            let ch = usize::from(d.info.channels).clamp(1, 2);
            Ok((CompactAudio::builder(rate, ch, bits)?.finish(), d.warnings))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::resampled_len;
    use crate::synth;

    fn hz(r: u32) -> NonZeroU32 {
        NonZeroU32::new(r).unwrap()
    }

    #[test]
    fn downmix_then_resample_equals_the_other_order() {
        // Remix is linear and per-frame, resampling is linear and per-channel: the orders
        // agree up to f32 rounding, which shows the cheap order loses nothing.
        let l = synth::white_noise(1, 0.5, 20_000);
        let r = synth::sine(hz(44_100), 300.0, 0.5, 20_000);
        let st = AudioBuffer::from_planar(hz(44_100), vec![l, r]).unwrap();
        let fmt = WorkingFormat { rate: hz(48_000), channels: 1 };
        let a = to_working_format(&st, &fmt, &CancelToken::new()).unwrap();
        let b = remix(&resample(&st, hz(48_000), &CancelToken::new()).unwrap(), 1).unwrap();
        assert_eq!(a.frames() as u64, resampled_len(20_000, hz(44_100), hz(48_000)));
        let max =
            a.channel(0).iter().zip(b.channel(0)).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(max < 1e-5, "{max}");
    }

    #[test]
    fn upmix_after_resampling() {
        let m = synth::mono(hz(16_000), synth::white_noise(2, 0.5, 16_000));
        let fmt = WorkingFormat { rate: hz(48_000), channels: 2 };
        let out = to_working_format(&m, &fmt, &CancelToken::new()).unwrap();
        assert_eq!((out.channel_count(), out.frames()), (2, 48_000));
        assert_eq!(out.channel(0), out.channel(1));
    }

    #[test]
    fn validates_before_work_and_serde_is_strict() {
        let st = synth::multi(hz(44_100), vec![0.0; 10], 2);
        let bad = WorkingFormat { rate: hz(48_000), channels: 3 };
        assert!(to_working_format(&st, &bad, &CancelToken::new()).is_err());
        let token = CancelToken::new();
        token.cancel();
        let ok = WorkingFormat { rate: hz(48_000), channels: 1 };
        assert!(to_working_format(&st, &ok, &token).unwrap_err().is_cancelled());
        let f: WorkingFormat = serde_json::from_str(r#"{"rate":44100,"channels":1}"#).unwrap();
        assert_eq!(f, WorkingFormat { rate: hz(44_100), channels: 1 });
        assert!(serde_json::from_str::<WorkingFormat>(r#"{"rate":0,"channels":1}"#).is_err());
        assert!(
            serde_json::from_str::<WorkingFormat>(r#"{"rate":8000,"channels":1,"x":1}"#).is_err()
        );
    }
}
