//! Operations and their deterministic merge into one edit list.
//!
//! Precedence, highest first: explicit cut, retake (flubber), sound effect, censor, filler,
//! pause, edge silence. Overlapping or touching removals become one removal whose reason is the highest
//! of its parts (every part is kept for the plan's detail and stats). A replacement
//! (censor beep) that overlaps any removal becomes part of that removal: the word is cut,
//! never half-beeped. Of two overlapping replacements the earlier wins. An insert inside a
//! removed or replaced range moves to that range's start.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::warning::{Warning, WarningCode};

/// Why audio was removed, replaced or inserted. The order is the merge precedence, highest
/// first: when operations overlap, the merged range carries the first reason in this list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// An explicit cut (`cuts_ms`).
    Cut,
    /// A retake: keyword-marked or explicit (`flubber_cuts_ms`).
    Flubber,
    /// A trigger word replaced by a sound effect.
    SoundEffect,
    /// A censored word.
    Censor,
    /// A filler word or phrase.
    Filler,
    /// A shortened pause.
    Pause,
    /// Silence before the first or after the last speech of the content, trimmed
    /// (`trim_edges`).
    EdgeSilence,
    /// An inserted clip.
    Clip,
}

/// Generated audio that replaces a source range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fill {
    /// A sine beep with raised-cosine fades at both ends.
    Beep {
        /// Frequency, in Hz.
        freq_hz: f64,
        /// Peak level, in dBFS.
        gain_db: f64,
        /// Fade in and out, in frames.
        fade_frames: u64,
    },
    /// Silence.
    Silence,
}

/// What an operation does to its range.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Action {
    /// Cut the range.
    Remove,
    /// Replace the range by `frames` frames of `fill`.
    Replace { fill: Fill, frames: u64 },
    /// Insert a clip at `range.start` (an empty range), with silence around it.
    Insert { clip: String, frames: u64, before: u64, after: u64 },
}

/// One edit operation on the source timeline, in frames.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Op {
    pub reason: Reason,
    pub range: Range<u64>,
    pub action: Action,
    /// Human-readable detail for the plan.
    pub detail: String,
    /// What matched (filler phrase, censored word) or which pause it belongs to.
    pub label: Option<String>,
    /// Where this op's edges may move during splice refinement (pauses: their silent run).
    pub bounds: Option<Range<u64>>,
}

impl Op {
    pub(crate) fn remove(reason: Reason, range: Range<u64>, detail: String) -> Self {
        Self { reason, range, action: Action::Remove, detail, label: None, bounds: None }
    }
}

/// One contributing operation of a removal.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Part {
    pub reason: Reason,
    pub range: Range<u64>,
    pub detail: String,
    pub label: Option<String>,
    pub bounds: Option<Range<u64>>,
}

/// A removed range and the operations that removed it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Removal {
    pub range: Range<u64>,
    pub parts: Vec<Part>,
}

impl Removal {
    /// The highest-precedence reason among the parts.
    pub(crate) fn reason(&self) -> Reason {
        self.parts.iter().map(|p| p.reason).min().unwrap_or(Reason::Cut)
    }
}

/// A range replaced by generated audio of a (possibly different) length.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Replacement {
    pub range: Range<u64>,
    pub fill: Fill,
    pub frames: u64,
    pub reason: Reason,
    pub detail: String,
    pub label: Option<String>,
}

/// A clip inserted at a source position.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Insertion {
    pub at: u64,
    pub clip: String,
    pub frames: u64,
    pub before: u64,
    pub after: u64,
    pub reason: Reason,
    pub detail: String,
}

/// The merged edit list: disjoint removals and replacements, sorted, and inserts.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Merged {
    pub removals: Vec<Removal>,
    pub replacements: Vec<Replacement>,
    pub insertions: Vec<Insertion>,
}

fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

fn union(mut parts: Vec<Part>) -> Vec<Removal> {
    parts.sort_by(|a, b| {
        (a.range.start, a.range.end, a.reason).cmp(&(b.range.start, b.range.end, b.reason))
    });
    let mut out: Vec<Removal> = Vec::new();
    for p in parts {
        if p.range.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(r) if p.range.start <= r.range.end => {
                r.range.end = r.range.end.max(p.range.end);
                r.parts.push(p);
            }
            _ => out.push(Removal { range: p.range.clone(), parts: vec![p] }),
        }
    }
    out
}

/// Merges `ops` by the precedence rules above. Deterministic: the result does not depend on
/// the order of `ops`.
pub(crate) fn merge(ops: &[Op], warnings: &mut Vec<Warning>) -> Merged {
    let mut parts = Vec::new();
    let mut reps = Vec::new();
    let mut ins = Vec::new();
    for op in ops {
        match &op.action {
            Action::Remove => parts.push(Part {
                reason: op.reason,
                range: op.range.clone(),
                detail: op.detail.clone(),
                label: op.label.clone(),
                bounds: op.bounds.clone(),
            }),
            Action::Replace { fill, frames } => {
                if !op.range.is_empty() {
                    reps.push(Replacement {
                        range: op.range.clone(),
                        fill: fill.clone(),
                        frames: *frames,
                        reason: op.reason,
                        detail: op.detail.clone(),
                        label: op.label.clone(),
                    });
                }
            }
            Action::Insert { clip, frames, before, after } => ins.push(Insertion {
                at: op.range.start,
                clip: clip.clone(),
                frames: *frames,
                before: *before,
                after: *after,
                reason: op.reason,
                detail: op.detail.clone(),
            }),
        }
    }
    reps.sort_by(|a, b| {
        (a.range.start, a.range.end, a.reason, &a.detail).cmp(&(
            b.range.start,
            b.range.end,
            b.reason,
            &b.detail,
        ))
    });
    // Replacements overlapping each other: the earlier wins.
    let mut kept: Vec<Replacement> = Vec::with_capacity(reps.len());
    for r in reps {
        match kept.last() {
            Some(last) if overlaps(&last.range, &r.range) => warnings.push(Warning::new(
                WarningCode::Overridden,
                format!("{} overlaps an earlier {}; dropped", r.detail, last.detail),
            )),
            _ => kept.push(r),
        }
    }
    // Replacements overlapping a removal become part of it (until nothing changes).
    let mut removals = union(parts);
    loop {
        let mut moved = Vec::new();
        kept.retain(|r| {
            let i = removals.partition_point(|m| m.range.end <= r.range.start);
            let hit = removals.get(i).is_some_and(|m| overlaps(&m.range, &r.range));
            if hit {
                moved.push(Part {
                    reason: r.reason,
                    range: r.range.clone(),
                    detail: format!("{} (inside a removed range, cut instead)", r.detail),
                    label: r.label.clone(),
                    bounds: None,
                });
            }
            !hit
        });
        if moved.is_empty() {
            break;
        }
        let mut all: Vec<Part> = removals.into_iter().flat_map(|r| r.parts).collect();
        all.extend(moved);
        removals = union(all);
    }
    // Inserts inside removed or replaced ranges move to the range's start.
    for i in &mut ins {
        let k = removals.partition_point(|m| m.range.end < i.at);
        if let Some(m) = removals.get(k)
            && m.range.start < i.at
            && i.at <= m.range.end
        {
            if i.reason == Reason::Clip {
                warnings.push(Warning::new(
                    WarningCode::InsertMoved,
                    format!("{} fell inside a removed range; moved to its start", i.detail),
                ));
            }
            i.at = m.range.start;
        }
        let k = kept.partition_point(|m| m.range.end <= i.at);
        if let Some(m) = kept.get(k)
            && m.range.start < i.at
        {
            warnings.push(Warning::new(
                WarningCode::InsertMoved,
                format!("{} fell inside a replaced range; moved to its start", i.detail),
            ));
            i.at = m.range.start;
        }
    }
    ins.sort_by(|a, b| {
        (a.at, a.reason, &a.clip, &a.detail).cmp(&(b.at, b.reason, &b.clip, &b.detail))
    });
    Merged { removals, replacements: kept, insertions: ins }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rm(reason: Reason, r: Range<u64>) -> Op {
        Op::remove(reason, r, String::from("x"))
    }

    #[test]
    fn union_takes_highest_precedence_and_is_order_independent() {
        let ops = vec![
            rm(Reason::Filler, 100..200),
            rm(Reason::Cut, 150..300),
            rm(Reason::Pause, 300..400),
            rm(Reason::Filler, 500..600),
        ];
        let mut w = Vec::new();
        let a = merge(&ops, &mut w);
        let mut rev = ops.clone();
        rev.reverse();
        let b = merge(&rev, &mut w);
        assert_eq!(a, b);
        assert_eq!(a.removals.len(), 2);
        assert_eq!(a.removals[0].range, 100..400);
        assert_eq!(a.removals[0].reason(), Reason::Cut);
        assert_eq!(a.removals[1].reason(), Reason::Filler);
    }

    #[test]
    fn replacement_inside_removal_is_cut_and_inserts_move() {
        let beep = Op {
            reason: Reason::Censor,
            range: 120..180,
            action: Action::Replace { fill: Fill::Silence, frames: 50 },
            detail: "censor".into(),
            label: None,
            bounds: None,
        };
        let beep2 = Op { range: 700..800, ..beep.clone() };
        let ins = Op {
            reason: Reason::Clip,
            range: 750..750,
            action: Action::Insert { clip: "c".into(), frames: 10, before: 0, after: 0 },
            detail: "clip".into(),
            label: None,
            bounds: None,
        };
        let ins2 = Op { range: 150..150, ..ins.clone() };
        let mut w = Vec::new();
        let m = merge(&[rm(Reason::Cut, 100..150), beep, beep2, ins, ins2], &mut w);
        assert_eq!(m.removals.len(), 1);
        assert_eq!(m.removals[0].range, 100..180);
        assert_eq!(m.replacements.len(), 1);
        assert_eq!(m.insertions.iter().map(|i| i.at).collect::<Vec<_>>(), [100, 700]);
        assert_eq!(w.len(), 2);
    }
}
