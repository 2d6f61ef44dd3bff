//! The serializable edit plan: entries (what was done and why), statistics, warnings, and the
//! render program (output segments and crossfades) that [`EditedAudio`](super::EditedAudio)
//! plays back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Ctx;
use super::merge::{Fill, Merged, Reason};
use super::options::CleanupOptions;
use super::splice::{correlation, fade_half, level_db};
use crate::frames_to_ms;
use crate::warning::Warning;

/// What an entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Source audio removed (output start = end: the join).
    Remove,
    /// Source audio replaced by generated audio (beep, silence).
    Replace,
    /// A clip inserted (source start = end: where).
    Insert,
}

/// One line of the edit list, in ms on both timelines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanEntry {
    /// Remove, replace or insert.
    pub kind: EntryKind,
    /// Why (the highest-precedence reason of the merged operations).
    pub reason: Reason,
    /// Start on the source timeline, in ms.
    pub source_start_ms: u64,
    /// End on the source timeline, in ms.
    pub source_end_ms: u64,
    /// Start on the output timeline, in ms.
    pub output_start_ms: u64,
    /// End on the output timeline, in ms.
    pub output_end_ms: u64,
    /// What exactly (the matched words, the pause lengths, the clip id; merged parts joined
    /// by `"; "`).
    pub detail: String,
}

/// Counts and durations of the edit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditStats {
    /// Filler matches removed (not counting those inside a higher-precedence removal).
    pub fillers_removed: u32,
    /// Filler matches removed, per filler (normalized phrase).
    pub fillers_by_word: BTreeMap<String, u32>,
    /// Pauses shortened.
    pub pauses_shortened: u32,
    /// Audio removed by pause shortening, in seconds.
    pub pause_removed_s: f64,
    /// Silence trimmed before the first and after the last speech (`trim_edges`), in
    /// seconds.
    #[serde(default)]
    pub edge_silence_removed_s: f64,
    /// Retakes removed (keyword-marked and explicit).
    pub flubbers_removed: u32,
    /// Explicit cuts applied.
    pub cuts: u32,
    /// Words censored.
    pub censored: u32,
    /// Sound effects placed.
    pub sound_effects: u32,
    /// Clips inserted.
    pub inserts: u32,
    /// Source audio removed or replaced, in seconds.
    pub removed_s: f64,
    /// Audio added (clips, their silence, replacements), in seconds.
    pub inserted_s: f64,
    /// Source duration, in seconds.
    pub source_duration_s: f64,
    /// Output duration, in seconds.
    pub output_duration_s: f64,
}

/// Where a segment's samples come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SegmentSource {
    /// Source frames `source_start_frame ..` (as many as the segment is long).
    Source {
        /// First source frame.
        source_start_frame: u64,
    },
    /// Generated audio standing for source frames `source_start_frame .. + source_frames`.
    Replaced {
        /// First replaced source frame.
        source_start_frame: u64,
        /// Number of replaced source frames.
        source_frames: u64,
        /// What plays instead.
        fill: Fill,
    },
    /// Silence (around an inserted clip).
    Silence,
    /// Frames `offset_frame ..` of a clip.
    Clip {
        /// The clip's id.
        clip: String,
        /// First clip frame.
        offset_frame: u64,
    },
}

/// One piece of the edited output (the render program [`EditedAudio`](super::EditedAudio)
/// plays back), in frames of the working rate. Not to be confused with a template segment
/// ([`crate::arrange::Segment`]: an asset placed on the episode timeline).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSegment {
    /// First output frame.
    pub output_start_frame: u64,
    /// Length, in frames.
    pub frames: u64,
    /// What plays.
    pub source: SegmentSource,
    /// Raised-cosine fade-in at the start, in frames.
    pub fade_in_frames: u64,
    /// Raised-cosine fade-out at the end, in frames.
    pub fade_out_frames: u64,
}

/// A crossfaded join between two source segments: output frames `output_frame − half_frames
/// .. output_frame + half_frames` mix source `left_source_frame + d` (fading out) with
/// `right_source_frame + d` (fading in) for `d` in `−half_frames .. half_frames`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crossfade {
    /// The join, on the output timeline.
    pub output_frame: u64,
    /// Half the crossfade length.
    pub half_frames: u64,
    /// Where the left segment's source ends (first removed frame).
    pub left_source_frame: u64,
    /// Where the right segment's source starts.
    pub right_source_frame: u64,
    /// Measured correlation of the two sides, in [0, 1] (sets the fade law).
    pub correlation: f32,
}

/// The edit of one piece of content: small, serializable, rendered later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditPlan {
    /// Working sample rate, in Hz.
    pub sample_rate: u32,
    /// Channels of the source (and of the output).
    pub channels: usize,
    /// Source length, in frames.
    pub source_frames: u64,
    /// Output length, in frames.
    pub output_frames: u64,
    /// What was done, in source order.
    pub entries: Vec<PlanEntry>,
    /// Counts and durations.
    pub stats: EditStats,
    /// Non-fatal findings (repaired transcript, moved inserts, reached caps).
    pub warnings: Vec<Warning>,
    /// Whether re-timed transcripts mask censored words.
    pub mask_censored: bool,
    /// The render program: contiguous output segments.
    pub segments: Vec<PlanSegment>,
    /// Crossfaded joins, sorted by output frame.
    pub crossfades: Vec<Crossfade>,
}

fn secs(frames: u64, rate: u32) -> f64 {
    frames as f64 / f64::from(rate)
}

/// Builds the plan from the merged, refined edit list, in three named steps: the timeline
/// walk ([`walk`]: output segments and plan entries), the joins ([`joins`]: crossfades and
/// fades) and the statistics ([`edit_stats`]).
pub(crate) fn build(
    ctx: &Ctx<'_>,
    m: Merged,
    o: &CleanupOptions,
    warnings: Vec<Warning>,
) -> EditPlan {
    let mut walked = walk(ctx, &m);
    let crossfades = joins(ctx, &mut walked.segments, o);
    let stats = edit_stats(ctx, &m, &walked);
    EditPlan {
        sample_rate: ctx.rate.get(),
        channels: ctx.audio.channel_count(),
        source_frames: ctx.n,
        output_frames: walked.out,
        entries: walked.entries,
        stats,
        warnings,
        mask_censored: o.censor.mask_transcript,
        segments: walked.segments,
        crossfades,
    }
}

/// What the timeline walk produced.
struct Walked {
    /// The render program, without fades yet.
    segments: Vec<PlanSegment>,
    /// The edit list.
    entries: Vec<PlanEntry>,
    /// Output length, frames.
    out: u64,
    /// Source frames removed or replaced.
    removed: u64,
    /// Frames added (clips, their silence, replacements).
    inserted: u64,
}

/// Walks the source timeline through the merged edits in source order, producing the output
/// segments (source runs, replacements, inserted clips with their silence) and one plan entry
/// per edit.
fn walk(ctx: &Ctx<'_>, m: &Merged) -> Walked {
    let ms = |f: u64| frames_to_ms(f, ctx.rate);
    // Events in source order: removals and replacements are disjoint; inserts sit at points.
    enum Ev<'a> {
        Rem(&'a super::merge::Removal),
        Rep(&'a super::merge::Replacement),
        Ins(&'a super::merge::Insertion),
    }
    let mut ev: Vec<(u64, u8, usize, Ev<'_>)> = Vec::new();
    for (i, r) in m.removals.iter().enumerate() {
        ev.push((r.range.start, 1, i, Ev::Rem(r)));
    }
    for (i, r) in m.replacements.iter().enumerate() {
        ev.push((r.range.start, 1, i, Ev::Rep(r)));
    }
    for (i, r) in m.insertions.iter().enumerate() {
        ev.push((r.at, 0, i, Ev::Ins(r)));
    }
    ev.sort_by_key(|e| (e.0, e.1, e.2));

    let mut w =
        Walked { segments: Vec::new(), entries: Vec::new(), out: 0, removed: 0, inserted: 0 };
    let mut pos = 0u64;
    let push =
        |segments: &mut Vec<PlanSegment>, out: &mut u64, frames: u64, source: SegmentSource| {
            if frames > 0 {
                segments.push(PlanSegment {
                    output_start_frame: *out,
                    frames,
                    source,
                    fade_in_frames: 0,
                    fade_out_frames: 0,
                });
                *out += frames;
            }
        };
    for (start, _, _, e) in &ev {
        let start = (*start).max(pos).min(ctx.n);
        if start > pos {
            push(
                &mut w.segments,
                &mut w.out,
                start - pos,
                SegmentSource::Source { source_start_frame: pos },
            );
            pos = start;
        }
        match e {
            Ev::Rem(r) => {
                let end = r.range.end.min(ctx.n).max(pos);
                w.removed += end - pos;
                let mut detail: Vec<&str> = r.parts.iter().map(|p| p.detail.as_str()).collect();
                detail.dedup();
                w.entries.push(PlanEntry {
                    kind: EntryKind::Remove,
                    reason: r.reason(),
                    source_start_ms: ms(pos),
                    source_end_ms: ms(end),
                    output_start_ms: ms(w.out),
                    output_end_ms: ms(w.out),
                    detail: detail.join("; "),
                });
                pos = end;
            }
            Ev::Rep(r) => {
                let end = r.range.end.min(ctx.n).max(pos);
                w.removed += end - pos;
                w.inserted += r.frames;
                w.entries.push(PlanEntry {
                    kind: EntryKind::Replace,
                    reason: r.reason,
                    source_start_ms: ms(pos),
                    source_end_ms: ms(end),
                    output_start_ms: ms(w.out),
                    output_end_ms: ms(w.out + r.frames),
                    detail: r.detail.clone(),
                });
                let fill = match &r.fill {
                    Fill::Beep { freq_hz, gain_db, fade_frames } => Fill::Beep {
                        freq_hz: *freq_hz,
                        gain_db: *gain_db,
                        fade_frames: (*fade_frames).min(r.frames / 2),
                    },
                    f => f.clone(),
                };
                push(
                    &mut w.segments,
                    &mut w.out,
                    r.frames,
                    SegmentSource::Replaced {
                        source_start_frame: pos,
                        source_frames: end - pos,
                        fill,
                    },
                );
                pos = end;
            }
            Ev::Ins(i) => {
                let o0 = w.out;
                push(&mut w.segments, &mut w.out, i.before, SegmentSource::Silence);
                push(
                    &mut w.segments,
                    &mut w.out,
                    i.frames,
                    SegmentSource::Clip { clip: i.clip.clone(), offset_frame: 0 },
                );
                push(&mut w.segments, &mut w.out, i.after, SegmentSource::Silence);
                w.inserted += w.out - o0;
                w.entries.push(PlanEntry {
                    kind: EntryKind::Insert,
                    reason: i.reason,
                    source_start_ms: ms(pos),
                    source_end_ms: ms(pos),
                    output_start_ms: ms(o0),
                    output_end_ms: ms(w.out),
                    detail: i.detail.clone(),
                });
            }
        }
    }
    if ctx.n > pos {
        push(
            &mut w.segments,
            &mut w.out,
            ctx.n - pos,
            SegmentSource::Source { source_start_frame: pos },
        );
    }
    w
}

/// The joins: a crossfade between two source segments, a fade next to anything else (a
/// replacement, a clip, silence, the output's end mid-source). Sets the segments' fades and
/// returns the crossfades.
fn joins(ctx: &Ctx<'_>, segments: &mut [PlanSegment], o: &CleanupOptions) -> Vec<Crossfade> {
    let qw = ctx.ms(u64::from(o.splice.quiet_window_ms)).max(1);
    let mut crossfades = Vec::new();
    for k in 0..segments.len() {
        let (left, right) = (&segments[k], segments.get(k + 1));
        let left_src = match left.source {
            SegmentSource::Source { source_start_frame } => Some(source_start_frame + left.frames),
            _ => None,
        };
        let right_src = match right.map(|r| &r.source) {
            Some(SegmentSource::Source { source_start_frame }) => Some(*source_start_frame),
            _ => None,
        };
        match (left_src, right_src, right) {
            (Some(a), Some(b), Some(r)) => {
                let level = level_db(ctx, a.saturating_sub(qw)..a).max(level_db(ctx, b..b + qw));
                // Each side's segment is at least 2h long, so the reads past the edges
                // (a + h <= n, b - h >= 0) stay inside the source.
                let h = fade_half(ctx, level, &o.splice).min(left.frames / 2).min(r.frames / 2);
                if h > 0 {
                    crossfades.push(Crossfade {
                        output_frame: r.output_start_frame,
                        half_frames: h,
                        left_source_frame: a,
                        right_source_frame: b,
                        correlation: correlation(ctx, a, b, h),
                    });
                }
            }
            (Some(a), None, Some(_)) => {
                let level = level_db(ctx, a.saturating_sub(qw)..a);
                let f = (2 * fade_half(ctx, level, &o.splice)).min(left.frames / 2);
                segments[k].fade_out_frames = f;
            }
            (Some(a), None, None) if a < ctx.n => {
                let level = level_db(ctx, a.saturating_sub(qw)..a);
                let f = (2 * fade_half(ctx, level, &o.splice)).min(left.frames / 2);
                segments[k].fade_out_frames = f;
            }
            _ => {}
        }
        // Fade in a source segment that follows anything but a source segment, or starts the
        // output mid-source.
        if let SegmentSource::Source { source_start_frame: b } = segments[k].source {
            let prev_is_source =
                k > 0 && matches!(segments[k - 1].source, SegmentSource::Source { .. });
            if !prev_is_source && b > 0 {
                let level = level_db(ctx, b..b + qw);
                let f = (2 * fade_half(ctx, level, &o.splice)).min(segments[k].frames / 2);
                segments[k].fade_in_frames = f;
            }
        }
    }
    crossfades
}

/// Counts and durations, each counted in one place: removals by their merged parts (a part
/// covered by a higher-precedence part of the same removal is not counted), replacements
/// (censor beeps) and inserts from the merged list, durations from the walk.
fn edit_stats(ctx: &Ctx<'_>, m: &Merged, w: &Walked) -> EditStats {
    let rate = ctx.rate.get();
    let mut stats = EditStats::default();
    let mut pause_labels = std::collections::BTreeSet::new();
    for r in &m.removals {
        for p in &r.parts {
            let covered = r.parts.iter().any(|q| {
                q.reason < p.reason && q.range.start <= p.range.start && p.range.end <= q.range.end
            });
            match p.reason {
                Reason::Filler if !covered => {
                    stats.fillers_removed += 1;
                    let label = p.label.clone().unwrap_or_default();
                    *stats.fillers_by_word.entry(label).or_default() += 1;
                }
                Reason::Pause => {
                    stats.pause_removed_s += secs(p.range.end - p.range.start, rate);
                    // One pause may be split into parts (around removed audio).
                    pause_labels.insert(p.label.clone());
                }
                Reason::EdgeSilence => {
                    stats.edge_silence_removed_s += secs(p.range.end - p.range.start, rate);
                }
                Reason::Flubber if !covered => stats.flubbers_removed += 1,
                Reason::Cut => stats.cuts += 1,
                // A censored word inside a removal: cut, not beeped, still censored.
                Reason::Censor if !covered => stats.censored += 1,
                _ => {}
            }
        }
    }
    // Only censoring replaces audio (a beep or silence over the word).
    stats.censored += m.replacements.len() as u32;
    for i in &m.insertions {
        match i.reason {
            Reason::SoundEffect => stats.sound_effects += 1,
            _ => stats.inserts += 1,
        }
    }
    stats.pauses_shortened = pause_labels.len() as u32;
    stats.removed_s = secs(w.removed, rate);
    stats.inserted_s = secs(w.inserted, rate);
    stats.source_duration_s = secs(ctx.n, rate);
    stats.output_duration_s = secs(w.out, rate);
    stats
}
