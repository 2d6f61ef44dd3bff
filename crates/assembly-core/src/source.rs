//! Random-access, block-readable audio: what the renderer pulls from.

use std::num::NonZeroU32;

use crate::error::{Error, Result};
use crate::{AudioBuffer, CancelToken};

/// Audio at the working rate that can be read block by block at any position.
///
/// The edit stage implements it for edited content (cuts cost nothing until read), the
/// arrange stage reads segments, beds and content through it. Reads past the end yield zeros.
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{AudioBuffer, FrameSource};
///
/// let buf = AudioBuffer::mono(NonZeroU32::new(8000).unwrap(), vec![1.0, 2.0, 3.0]);
/// let mut out = vec![0.0f32; 4];
/// buf.read(1, &mut [out.as_mut_slice()]);
/// assert_eq!(out, [2.0, 3.0, 0.0, 0.0]);
/// ```
pub trait FrameSource: Send + Sync {
    /// Sample rate, Hz.
    fn sample_rate(&self) -> NonZeroU32;
    /// Number of channels (at least 1). `read` fills exactly this many output slices.
    fn channel_count(&self) -> usize;
    /// Total length in frames.
    fn frames(&self) -> u64;
    /// Fills `out[ch][i]` with frame `start + i` of channel `ch`, for every `ch <
    /// channel_count()` and `i < out[ch].len()`; frames at or past [`frames`](Self::frames)
    /// are zero. Extra slices in `out` beyond `channel_count()` are left untouched.
    fn read(&self, start: u64, out: &mut [&mut [f32]]);
}

/// Reads frames `start .. start + len` of `src` into new planes (zeros past the end): for
/// the short windows (splice search, crossfades) that analysis looks at.
pub(crate) fn read_window(src: &dyn FrameSource, start: u64, len: usize) -> Vec<Vec<f32>> {
    let mut planes = vec![vec![0.0f32; len]; src.channel_count()];
    let mut outs: Vec<&mut [f32]> = planes.iter_mut().map(Vec::as_mut_slice).collect();
    src.read(start, &mut outs);
    planes
}

/// Reads frames `range` of `src` in blocks of up to `block` frames and calls `f` with each
/// block's planes: the loop of every pass over a whole program (metering, leveling, the
/// mix measurement, the final render). Checks `cancel` before every block and once at the
/// end, and reports progress (the fraction of `range` done) after each block.
pub(crate) fn for_each_block_in(
    src: &dyn FrameSource,
    range: std::ops::Range<u64>,
    block: usize,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
    mut f: impl FnMut(&[&[f32]]) -> Result<()>,
) -> Result<()> {
    let channels = src.channel_count();
    if channels == 0 {
        return Err(Error::invalid_input("program", "has no channels"));
    }
    let total = range.end.saturating_sub(range.start);
    let mut buf = vec![vec![0.0f32; block]; channels];
    let mut pos = range.start;
    while pos < range.end {
        cancel.check()?;
        let n = (range.end - pos).min(block as u64) as usize;
        {
            let mut planes: Vec<&mut [f32]> = buf.iter_mut().map(|p| &mut p[..n]).collect();
            src.read(pos, &mut planes);
        }
        let planes: Vec<&[f32]> = buf.iter().map(|p| &p[..n]).collect();
        f(&planes)?;
        pos += n as u64;
        progress((pos - range.start) as f64 / total as f64);
    }
    cancel.check()?;
    Ok(())
}

impl FrameSource for AudioBuffer {
    fn sample_rate(&self) -> NonZeroU32 {
        AudioBuffer::sample_rate(self)
    }

    fn channel_count(&self) -> usize {
        AudioBuffer::channel_count(self)
    }

    fn frames(&self) -> u64 {
        AudioBuffer::frames(self) as u64
    }

    fn read(&self, start: u64, out: &mut [&mut [f32]]) {
        for (plane, dst) in self.planes().iter().zip(out.iter_mut()) {
            let begin = usize::try_from(start).unwrap_or(usize::MAX).min(plane.len());
            let n = (plane.len() - begin).min(dst.len());
            dst[..n].copy_from_slice(&plane[begin..begin + n]);
            dst[n..].fill(0.0);
        }
    }
}
