//! Re-timing: mapping source times to the output timeline.
//!
//! Kept source audio maps one to one; a replaced range (censor beep) maps linearly onto its
//! replacement; removed audio maps to the point where the next kept audio starts (after any
//! clip inserted there). The map is monotonic. A word keeps its place when more than half of
//! its span survives (kept or replaced): its output span runs from the output position of its
//! first surviving frame to that of its last. A word that lost 50% or more is dropped.

use std::num::NonZeroU32;

use super::plan::{EditPlan, SegmentSource};
use crate::seconds_to_frames;
use crate::transcript::Transcript;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Piece {
    src: u64,
    src_len: u64,
    out: u64,
    out_len: u64,
    replaced: bool,
}

impl Piece {
    fn src_end(&self) -> u64 {
        self.src + self.src_len
    }

    /// Output position of source frame `x` in `[src, src_end]`.
    fn at(&self, x: u64) -> u64 {
        let d = x.saturating_sub(self.src).min(self.src_len);
        if self.src_len == self.out_len {
            self.out + d
        } else {
            self.out
                + (u128::from(d) * u128::from(self.out_len) / u128::from(self.src_len.max(1)))
                    as u64
        }
    }
}

/// A monotonic map from source frames (or seconds) to output frames (or seconds).
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{edit, synth};
///
/// let rate = NonZeroU32::new(8_000).unwrap();
/// let audio = synth::mono(rate, synth::sine(rate, 200.0, 0.5, 8_000 * 4));
/// let mut o = edit::CleanupOptions::exact_span();
/// o.cuts_ms = vec![edit::MsRange { start_ms: 1_000, end_ms: 2_000 }];
/// let plan = edit::plan(&audio, None, &[], &o).unwrap();
/// let map = plan.time_map();
/// assert_eq!(map.map_s(0.5), 0.5);
/// assert_eq!(map.map_s(1.5), 1.0); // inside the cut: where the next kept audio starts
/// assert_eq!(map.map_s(3.0), 2.0);
/// assert_eq!(map.map_span_s(2.5, 3.0), Some((1.5, 2.0)));
/// assert_eq!(map.map_span_s(0.9, 1.2), None); // lost 2/3 of its span
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TimeMap {
    rate: NonZeroU32,
    pieces: Vec<Piece>,
    source_frames: u64,
    output_frames: u64,
}

impl TimeMap {
    fn new(plan: &EditPlan) -> Self {
        let rate = NonZeroU32::new(plan.sample_rate).unwrap_or(NonZeroU32::MIN);
        let pieces = plan
            .segments
            .iter()
            .filter_map(|s| match &s.source {
                SegmentSource::Source { source_start_frame } => Some(Piece {
                    src: *source_start_frame,
                    src_len: s.frames,
                    out: s.output_start_frame,
                    out_len: s.frames,
                    replaced: false,
                }),
                SegmentSource::Replaced { source_start_frame, source_frames, .. } => Some(Piece {
                    src: *source_start_frame,
                    src_len: *source_frames,
                    out: s.output_start_frame,
                    out_len: s.frames,
                    replaced: true,
                }),
                _ => None,
            })
            .filter(|p| p.src_len > 0)
            .collect();
        Self { rate, pieces, source_frames: plan.source_frames, output_frames: plan.output_frames }
    }

    /// Output frame of source frame `f` (the output length for `f` at or past the source end).
    pub fn map_frame(&self, f: u64) -> u64 {
        let i = self.pieces.partition_point(|p| p.src_end() <= f);
        match self.pieces.get(i) {
            Some(p) if p.src <= f => p.at(f),
            Some(p) => p.out,
            None => self.output_frames,
        }
    }

    /// Output time of source time `s`, in seconds.
    pub fn map_s(&self, s: f64) -> f64 {
        let f = seconds_to_frames(s, self.rate).min(self.source_frames);
        self.map_frame(f) as f64 / f64::from(self.rate.get())
    }

    fn surviving(&self, start: u64, end: u64) -> (u64, u64, Option<(u64, u64)>) {
        let (mut kept, mut replaced) = (0u64, 0u64);
        let mut span: Option<(u64, u64)> = None;
        let i = self.pieces.partition_point(|p| p.src_end() <= start);
        for p in self.pieces[i..].iter().take_while(|p| p.src < end) {
            let x = start.max(p.src);
            let y = end.min(p.src_end());
            if y <= x {
                continue;
            }
            kept += y - x;
            if p.replaced {
                replaced += y - x;
            }
            let (o0, o1) = (p.at(x), p.at(y));
            span = Some(match span {
                None => (o0, o1),
                Some((s, _)) => (s, o1),
            });
        }
        (kept, replaced, span)
    }

    /// Output span of source frames `start..end`, or `None` when 50% or more of it was
    /// removed. A zero-length span survives when its position is kept.
    pub fn map_span_frames(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        let (start, end) = (start.min(self.source_frames), end.min(self.source_frames));
        let end = end.max(start);
        if start == end {
            let i = self.pieces.partition_point(|p| p.src_end() <= start);
            return match self.pieces.get(i) {
                Some(p) if p.src <= start => {
                    let o = p.at(start);
                    Some((o, o))
                }
                _ => None,
            };
        }
        let (kept, _, span) = self.surviving(start, end);
        if kept * 2 <= end - start {
            return None;
        }
        span.map(|(s, e)| (s, e.max(s)))
    }

    /// [`map_span_frames`](Self::map_span_frames) in seconds.
    pub fn map_span_s(&self, start_s: f64, end_s: f64) -> Option<(f64, f64)> {
        let r = f64::from(self.rate.get());
        let s = seconds_to_frames(start_s, self.rate);
        let e = seconds_to_frames(end_s, self.rate);
        self.map_span_frames(s, e).map(|(a, b)| (a as f64 / r, b as f64 / r))
    }

    /// True when more than half of `start..end` (seconds) was replaced (censored).
    fn mostly_replaced(&self, start_s: f64, end_s: f64) -> bool {
        let s = seconds_to_frames(start_s, self.rate).min(self.source_frames);
        let e = seconds_to_frames(end_s, self.rate).min(self.source_frames).max(s);
        let (_, replaced, _) = self.surviving(s, e);
        e > s && replaced * 2 > e - s
    }
}

impl EditPlan {
    /// The source → output time map of this plan.
    pub fn time_map(&self) -> TimeMap {
        TimeMap::new(self)
    }

    /// The transcript re-timed to the output: every word that kept more than half of its
    /// span gets its output times, the others are dropped; censored words are masked with
    /// `*` when [`mask_censored`](EditPlan::mask_censored) is set. Written back with
    /// [`Transcript::to_native`] the provider's other time fields (segments, utterances,
    /// durations) are mapped too.
    pub fn retime(&self, transcript: &Transcript) -> Transcript {
        let map = self.time_map();
        let words = transcript.words();
        let mask = self.mask_censored;
        transcript.retimed(&|s, e| map.map_span_s(s, e), &|s| map.map_s(s), &|i| {
            let w = words.get(i)?;
            if mask && map.mostly_replaced(w.start_s, w.end_s) {
                Some(w.text.chars().map(|c| if c.is_alphanumeric() { '*' } else { c }).collect())
            } else {
                None
            }
        })
    }
}
