//! The edited audio, read block by block from the source, the plan and the clips.

use std::f64::consts::TAU;

use super::Clip;
use super::merge::Fill;
use super::plan::{EditPlan, SegmentSource};
use super::splice::{crossfade_gains, fade_in_gain};
use crate::dsp::db_to_gain;
use crate::error::{Error, Result};
use crate::source::read_window;
use crate::{AudioBuffer, FrameSource};

/// Per segment: what to read, resolved against the source and clips.
#[derive(Clone, Debug)]
enum Src {
    Source(u64),
    Beep { w: f64, amp: f32, fade: u64 },
    Silence,
    Clip { clip: usize, offset: u64 },
}

#[derive(Clone, Debug)]
struct Seg {
    out: u64,
    frames: u64,
    src: Src,
    fade_in: u64,
    fade_out: u64,
}

/// Edited content as a [`FrameSource`]: any output range is computed on demand from the source
/// buffer, the plan and the clips, without materializing the output. A read costs a binary
/// search plus the frames read; memory does not grow with the output or the number of reads.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{edit, synth, FrameSource};
///
/// let rate = NonZeroU32::new(8_000).unwrap();
/// let audio = synth::mono(rate, synth::sine(rate, 200.0, 0.5, 8_000 * 3));
/// let mut o = edit::CleanupOptions::default();
/// o.cuts_ms = vec![edit::MsRange { start_ms: 1_000, end_ms: 2_000 }];
/// let plan = edit::plan(&audio, None, &[], &o).unwrap();
/// let edited = edit::EditedAudio::new(&audio, &plan, &[]).unwrap();
/// assert_eq!(edited.frames(), 16_000);
/// let mut block = vec![0.0f32; 512];
/// edited.read(15_800, &mut [block.as_mut_slice()]);
/// assert_eq!(block[300], 0.0); // past the end
/// ```
#[derive(Clone)]
pub struct EditedAudio<'a> {
    source: &'a dyn FrameSource,
    clips: Vec<&'a AudioBuffer>,
    segs: Vec<Seg>,
    crossfades: Vec<super::plan::Crossfade>,
    frames: u64,
}

impl<'a> EditedAudio<'a> {
    /// Checks `plan` against `source` and `clips` and prepares reading.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the plan was made for other audio (rate, channels, length),
    /// names a clip that is missing or shorter than planned or at another rate, or is
    /// internally inconsistent (segments not contiguous, reads outside the source).
    pub fn new(source: &'a dyn FrameSource, plan: &EditPlan, clips: &'a [Clip]) -> Result<Self> {
        let bad = |detail: String| Error::invalid_input("edit_plan", detail);
        if plan.sample_rate != source.sample_rate().get()
            || plan.channels != source.channel_count()
            || plan.source_frames != source.frames()
        {
            return Err(bad(format!(
                "made for {} Hz × {} ch × {} frames, the source is {} Hz × {} ch × {} frames",
                plan.sample_rate,
                plan.channels,
                plan.source_frames,
                source.sample_rate(),
                source.channel_count(),
                source.frames()
            )));
        }
        let n = plan.source_frames;
        // Generated segments are at most a minute (what the options allow) or, for a
        // replacement matched to a word, the source's length: a plan cannot ask for unbounded
        // output.
        let max_generated = u64::from(plan.sample_rate) * 60 + 1;
        let mut used: Vec<&'a AudioBuffer> = Vec::new();
        let mut used_ids: Vec<&str> = Vec::new();
        let mut segs = Vec::with_capacity(plan.segments.len());
        let mut out = 0u64;
        for (i, s) in plan.segments.iter().enumerate() {
            if s.output_start_frame != out {
                return Err(bad(format!(
                    "segment {i} starts at {}, expected {out}",
                    s.output_start_frame
                )));
            }
            if s.fade_in_frames > s.frames || s.fade_out_frames > s.frames {
                return Err(bad(format!("segment {i} fades are longer than the segment")));
            }
            let generated =
                matches!(s.source, SegmentSource::Silence | SegmentSource::Replaced { .. });
            if generated && s.frames > max_generated.max(n) {
                return Err(bad(format!(
                    "segment {i} generates {} frames, more than allowed",
                    s.frames
                )));
            }
            let src = match &s.source {
                SegmentSource::Source { source_start_frame } => {
                    if source_start_frame.checked_add(s.frames).is_none_or(|e| e > n) {
                        return Err(bad(format!("segment {i} reads past the source end")));
                    }
                    Src::Source(*source_start_frame)
                }
                SegmentSource::Replaced { source_start_frame, source_frames, fill } => {
                    if source_start_frame.checked_add(*source_frames).is_none_or(|e| e > n) {
                        return Err(bad(format!("segment {i} replaces past the source end")));
                    }
                    match fill {
                        Fill::Silence => Src::Silence,
                        Fill::Beep { freq_hz, gain_db, fade_frames } => {
                            if !freq_hz.is_finite() || !gain_db.is_finite() {
                                return Err(bad(format!("segment {i} has a non-finite beep")));
                            }
                            Src::Beep {
                                w: TAU * freq_hz / f64::from(plan.sample_rate),
                                amp: db_to_gain(gain_db.min(0.0)) as f32,
                                fade: (*fade_frames).min(s.frames / 2),
                            }
                        }
                    }
                }
                SegmentSource::Silence => Src::Silence,
                SegmentSource::Clip { clip, offset_frame } => {
                    let c = clips.iter().find(|c| c.id == *clip).ok_or_else(|| {
                        Error::invalid_input(
                            "clips",
                            format!("the plan needs clip {clip:?}, which was not supplied"),
                        )
                    })?;
                    if c.audio.sample_rate() != source.sample_rate() {
                        return Err(Error::invalid_input(
                            "clips",
                            format!(
                                "clip {clip:?} is at {} Hz, the content at {} Hz",
                                c.audio.sample_rate(),
                                source.sample_rate()
                            ),
                        ));
                    }
                    if offset_frame
                        .checked_add(s.frames)
                        .is_none_or(|e| e > c.audio.frames() as u64)
                    {
                        return Err(Error::invalid_input(
                            "clips",
                            format!(
                                "clip {clip:?} has {} frames, the plan needs {}",
                                c.audio.frames(),
                                offset_frame + s.frames
                            ),
                        ));
                    }
                    let k = match used_ids.iter().position(|u| *u == clip.as_str()) {
                        Some(k) => k,
                        None => {
                            used.push(&c.audio);
                            used_ids.push(clip.as_str());
                            used.len() - 1
                        }
                    };
                    Src::Clip { clip: k, offset: *offset_frame }
                }
            };
            segs.push(Seg {
                out,
                frames: s.frames,
                src,
                fade_in: s.fade_in_frames,
                fade_out: s.fade_out_frames,
            });
            out = out
                .checked_add(s.frames)
                .ok_or_else(|| bad(format!("segment {i} overflows the output length")))?;
        }
        if out != plan.output_frames {
            return Err(bad(format!(
                "segments add up to {out} frames, the plan says {}",
                plan.output_frames
            )));
        }
        let mut last = 0u64;
        for (i, c) in plan.crossfades.iter().enumerate() {
            let h = c.half_frames;
            let ok = h > 0
                && c.output_frame >= h
                && c.output_frame - h >= last
                && c.output_frame.checked_add(h).is_some_and(|e| e <= out)
                && c.left_source_frame >= h
                && c.left_source_frame.checked_add(h).is_some_and(|e| e <= n)
                && c.right_source_frame >= h
                && c.right_source_frame.checked_add(h).is_some_and(|e| e <= n)
                && c.correlation.is_finite();
            if !ok {
                return Err(bad(format!(
                    "crossfade {i} is out of range or overlaps the previous one"
                )));
            }
            last = c.output_frame + h;
        }
        Ok(Self { source, clips: used, segs, crossfades: plan.crossfades.clone(), frames: out })
    }

    /// Renders the whole edited content into a buffer (convenience for tests and small
    /// content; the renderer reads blocks instead).
    pub fn render_to_buffer(&self) -> AudioBuffer {
        let ch = self.channel_count();
        let len = usize::try_from(self.frames).unwrap_or(usize::MAX);
        let mut planes = vec![vec![0.0f32; len]; ch];
        const BLOCK: usize = 1 << 16;
        let mut pos = 0usize;
        while pos < len {
            let end = (pos + BLOCK).min(len);
            let mut outs: Vec<&mut [f32]> = planes.iter_mut().map(|p| &mut p[pos..end]).collect();
            self.read(pos as u64, &mut outs);
            pos = end;
        }
        AudioBuffer::from_planar(self.source.sample_rate(), planes)
            .unwrap_or_else(|_| AudioBuffer::mono(self.source.sample_rate(), Vec::new()))
    }

    fn fill_segment(&self, seg: &Seg, from: u64, to: u64, start: u64, out: &mut [&mut [f32]]) {
        let n_out = self.channel_count();
        let dst0 = (from - start) as usize;
        let len = (to - from) as usize;
        let k0 = from - seg.out;
        match &seg.src {
            Src::Silence => return,
            Src::Source(s0) => {
                let mut dsts: Vec<&mut [f32]> =
                    out.iter_mut().take(n_out).map(|d| &mut d[dst0..dst0 + len]).collect();
                self.source.read(s0 + k0, &mut dsts);
            }
            Src::Beep { w, amp, fade } => {
                for i in 0..len as u64 {
                    let k = k0 + i;
                    let mut g = *amp;
                    if *fade > 0 {
                        if k < *fade {
                            g *= fade_in_gain(k, *fade);
                        } else if seg.frames - k <= *fade {
                            g *= fade_in_gain(seg.frames - 1 - k, *fade);
                        }
                    }
                    let v = g * ((w * k as f64).sin() as f32);
                    for dst in out.iter_mut().take(n_out) {
                        dst[dst0 + i as usize] = v;
                    }
                }
            }
            Src::Clip { clip, offset } => {
                let c = self.clips[*clip];
                let cc = c.channel_count();
                let s = (offset + k0) as usize;
                for (ch, dst) in out.iter_mut().take(n_out).enumerate() {
                    let d = &mut dst[dst0..dst0 + len];
                    if cc == n_out || cc == 1 {
                        let src = c.channel(if cc == 1 { 0 } else { ch });
                        d.copy_from_slice(&src[s..s + len]);
                    } else if n_out == 1 {
                        d.fill(0.0);
                        for p in c.planes() {
                            for (x, y) in d.iter_mut().zip(&p[s..s + len]) {
                                *x += y / cc as f32;
                            }
                        }
                    } else {
                        d.copy_from_slice(&c.channel(ch % cc)[s..s + len]);
                    }
                }
            }
        }
        // Segment fades.
        if seg.fade_in > 0 && k0 < seg.fade_in {
            let end = (to - seg.out).min(seg.fade_in);
            for k in k0..end {
                let g = fade_in_gain(k, seg.fade_in);
                for dst in out.iter_mut().take(n_out) {
                    dst[dst0 + (k - k0) as usize] *= g;
                }
            }
        }
        if seg.fade_out > 0 {
            let fo_start = seg.frames - seg.fade_out;
            let k_end = to - seg.out;
            for k in k0.max(fo_start)..k_end {
                let g = fade_in_gain(seg.frames - 1 - k, seg.fade_out);
                for dst in out.iter_mut().take(n_out) {
                    dst[dst0 + (k - k0) as usize] *= g;
                }
            }
        }
    }
}

impl std::fmt::Debug for EditedAudio<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EditedAudio")
            .field("rate", &self.source.sample_rate())
            .field("channels", &self.source.channel_count())
            .field("source_frames", &self.source.frames())
            .field("segments", &self.segs.len())
            .field("crossfades", &self.crossfades.len())
            .field("frames", &self.frames)
            .finish()
    }
}

impl FrameSource for EditedAudio<'_> {
    fn sample_rate(&self) -> std::num::NonZeroU32 {
        self.source.sample_rate()
    }

    fn channel_count(&self) -> usize {
        self.source.channel_count()
    }

    fn frames(&self) -> u64 {
        self.frames
    }

    fn read(&self, start: u64, out: &mut [&mut [f32]]) {
        let n_out = self.channel_count();
        let len = out.iter().take(n_out).map(|d| d.len()).min().unwrap_or(0) as u64;
        for dst in out.iter_mut().take(n_out) {
            dst.fill(0.0);
        }
        let end = start.saturating_add(len).min(self.frames);
        if start >= end {
            return;
        }
        let i = self.segs.partition_point(|s| s.out + s.frames <= start);
        for seg in self.segs[i..].iter().take_while(|s| s.out < end) {
            let from = start.max(seg.out);
            let to = end.min(seg.out + seg.frames);
            if from < to {
                self.fill_segment(seg, from, to, start, out);
            }
        }
        let j = self.crossfades.partition_point(|c| c.output_frame + c.half_frames <= start);
        for c in self.crossfades[j..].iter().take_while(|c| c.output_frame - c.half_frames < end) {
            let h = c.half_frames;
            let from = start.max(c.output_frame - h);
            let to = end.min(c.output_frame + h);
            // Both sides of the join over [from, to): source frames `side + d`, d from the join.
            let d0 = from as i64 - c.output_frame as i64;
            let len = (to - from) as usize;
            let left = read_window(self.source, (c.left_source_frame as i64 + d0) as u64, len);
            let right = read_window(self.source, (c.right_source_frame as i64 + d0) as u64, len);
            for (k, p) in (from..to).enumerate() {
                let (go, gi) = crossfade_gains(d0 + k as i64, h, c.correlation);
                for ((l, r), dst) in left.iter().zip(&right).zip(out.iter_mut()).take(n_out) {
                    dst[(p - start) as usize] = go * l[k] + gi * r[k];
                }
            }
        }
    }
}
