//! Pause shortening.
//!
//! A **pause** is silence between kept words (transcript mode) or a silent run of the audio
//! (audio mode). In transcript mode each gap between consecutive kept words is checked
//! against the activity map: activity within 100 ms of a word edge belongs to that word
//! (transcribers clip word tails), anything else in the gap — untranscribed speech, laughter —
//! splits the gap and is never removed. Silent pieces separated only by already removed audio
//! (a filler between two silences) are one pause, because they will be heard as one.
//!
//! A pause of length `L > max_pause_s` keeps `max(target_pause_s, ratio × L)`: half of the
//! kept length at each end, the middle removed. With a cap (`max_pause_removal_pct`), pauses
//! are shortened longest first until the cap is reached; the pause that crosses it is
//! shortened only by what is left, the rest stay as they are. Removed audio never contains
//! activity, whatever the settings.
//!
//! The **edges** (`trim_edges`): the pause that starts the content (its first piece starts at
//! frame 0) and the one that ends it are not shortened as pauses but trimmed from the outside,
//! keeping `edge_keep_s` next to the speech: 8 s of room tone before the first word become
//! 0.5 s. A content with no speech at all (one pause from start to end) is left alone.

use std::ops::Range;

use super::Ctx;
use super::merge::Reason;
use super::merge::{Merged, Op};
use super::options::{CleanupOptions, PauseDetection};
use crate::analyze::activity::ActivityMap;
use crate::warning::{Warning, WarningCode};

/// Activity closer than this to a word edge is part of the word, in ms.
const WORD_EDGE_GUARD_MS: u64 = 100;

/// `a − b` for sorted, disjoint interval lists.
pub(crate) fn subtract(a: &[Range<u64>], b: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for r in a {
        let mut start = r.start;
        while j < b.len() && b[j].end <= start {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].start < r.end {
            if b[k].start > start {
                out.push(start..b[k].start);
            }
            start = start.max(b[k].end);
            k += 1;
        }
        if start < r.end {
            out.push(start..r.end);
        }
    }
    out
}

/// Sorted, disjoint union of possibly overlapping intervals.
fn normalize(mut v: Vec<Range<u64>>) -> Vec<Range<u64>> {
    v.retain(|r| !r.is_empty());
    v.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

fn clip_to(list: &[Range<u64>], g: &Range<u64>) -> Vec<Range<u64>> {
    let i = list.partition_point(|r| r.end <= g.start);
    list[i..]
        .iter()
        .take_while(|r| r.start < g.end)
        .map(|r| r.start.max(g.start)..r.end.min(g.end))
        .filter(|r| !r.is_empty())
        .collect()
}

/// A pause: silent pieces heard as one, and its total length.
struct Pause {
    pieces: Vec<Range<u64>>,
    len: u64,
}

/// Pauses in `g`: free pieces (not removed, not blocked) grouped across removed audio.
fn pauses_in(g: &Range<u64>, removed: &[Range<u64>], blocked: &[Range<u64>], out: &mut Vec<Pause>) {
    let free = subtract(&subtract(std::slice::from_ref(g), removed), blocked);
    let mut cur: Option<Pause> = None;
    for p in free {
        let joins = cur.as_ref().is_some_and(|c| {
            let gap = c.pieces.last().map_or(p.start, |l| l.end)..p.start;
            // Joined only if nothing but removed audio lies between.
            clip_to(blocked, &gap).is_empty()
        });
        match (&mut cur, joins) {
            (Some(c), true) => {
                c.len += p.end - p.start;
                c.pieces.push(p);
            }
            _ => {
                if let Some(c) = cur.take() {
                    out.push(c);
                }
                cur = Some(Pause { len: p.end - p.start, pieces: vec![p] });
            }
        }
    }
    out.extend(cur);
}

/// Frames `[from, from + len)` of the virtual concatenation of `pieces`, as source ranges.
fn virtual_range(pieces: &[Range<u64>], from: u64, len: u64) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let (mut skip, mut left) = (from, len);
    for p in pieces {
        let plen = p.end - p.start;
        if skip >= plen {
            skip -= plen;
            continue;
        }
        let take = (plen - skip).min(left);
        if take > 0 {
            out.push(p.start + skip..p.start + skip + take);
        }
        left -= take;
        skip = 0;
        if left == 0 {
            break;
        }
    }
    out
}

/// Pause removals (and edge trims) for the audio outside `merged`'s removals.
pub(crate) fn ops(
    ctx: &Ctx<'_>,
    act: &ActivityMap,
    merged: &Merged,
    o: &CleanupOptions,
    warnings: &mut Vec<Warning>,
) -> Vec<Op> {
    let removed: Vec<Range<u64>> =
        normalize(merged.removals.iter().map(|r| r.range.clone()).collect());
    // Replaced audio (a censor beep) is heard: it separates pauses like speech does.
    let replaced: Vec<Range<u64>> =
        normalize(merged.replacements.iter().map(|r| r.range.clone()).collect());
    let active = act.active_intervals();
    let transcript_mode = match o.pause_detection {
        PauseDetection::Audio => false,
        PauseDetection::Transcript | PauseDetection::Auto => !ctx.words.is_empty(),
    };
    let mut pauses = Vec::new();
    if transcript_mode {
        let guard = ctx.ms(WORD_EDGE_GUARD_MS);
        // Kept words: not entirely inside removed audio.
        let covered = |w: &Range<u64>| {
            let i = removed.partition_point(|r| r.end <= w.start);
            removed.get(i).is_some_and(|r| r.start <= w.start && w.end <= r.end && w.start < w.end)
        };
        let mut prev_end = 0u64;
        let mut gaps = Vec::new();
        for w in &ctx.words {
            let span = w.start..w.end;
            if covered(&span) {
                continue;
            }
            if w.start > prev_end {
                gaps.push(prev_end..w.start);
            }
            prev_end = prev_end.max(w.end);
        }
        if ctx.n > prev_end {
            gaps.push(prev_end..ctx.n);
        }
        for g in gaps {
            // Guard zones around every word edge near the gap.
            let lo = g.start.saturating_sub(guard);
            let first = ctx.words.partition_point(|w| w.end < lo);
            let mut guards = Vec::new();
            for w in ctx.words[first..].iter().take_while(|w| w.start <= g.end + guard) {
                guards.push(w.start.saturating_sub(guard)..w.start + guard);
                guards.push(w.end.saturating_sub(guard)..w.end + guard);
            }
            let guards = normalize(guards);
            let mut blocked = subtract(&subtract(&clip_to(active, &g), &guards), &removed);
            blocked.extend(clip_to(&replaced, &g));
            let blocked = normalize(blocked);
            pauses_in(&g, &clip_to(&removed, &g), &blocked, &mut pauses);
        }
    } else {
        let g = 0..ctx.n;
        let mut blocked = subtract(active, &removed);
        blocked.extend(replaced.iter().cloned());
        let blocked = normalize(blocked);
        pauses_in(&g, &removed, &blocked, &mut pauses);
    }

    // The edge pauses, trimmed from the outside (and not shortened as pauses).
    let is_lead = |p: &Pause| p.pieces.first().is_some_and(|r| r.start == 0);
    let is_trail = |p: &Pause| p.pieces.last().is_some_and(|r| r.end == ctx.n);
    let edge = |p: &Pause| o.trim_edges && (is_lead(p) != is_trail(p));
    let mut out = Vec::new();
    let keep_edge = ctx.secs(o.edge_keep_s);
    for p in pauses.iter().filter(|p| edge(p) && p.len > keep_edge) {
        let remove = p.len - keep_edge;
        let (from, side) = if is_lead(p) { (0, "leading") } else { (keep_edge, "trailing") };
        let parts = subtract(&virtual_range(&p.pieces, from, remove), active);
        let rate = f64::from(ctx.rate.get());
        let detail = format!(
            "{side} silence {:.3} s trimmed to {:.3} s",
            p.len as f64 / rate,
            (p.len - parts.iter().map(|r| r.end - r.start).sum::<u64>()) as f64 / rate
        );
        for r in parts {
            let mut op = Op::remove(Reason::EdgeSilence, r, detail.clone());
            op.label = Some(format!("{side} silence"));
            out.push(op);
        }
    }
    if !o.remove_pauses {
        return out;
    }

    let max = ctx.secs(o.max_pause_s);
    let target = ctx.secs(o.target_pause_s);
    let mut wanted: Vec<(usize, u64)> = pauses
        .iter()
        .enumerate()
        .filter(|(_, p)| !edge(p) && p.len > max)
        .map(|(i, p)| {
            let keep =
                target.max((o.pause_compression_ratio * p.len as f64).round() as u64).min(p.len);
            (i, p.len - keep)
        })
        .filter(|(_, remove)| *remove > 0)
        .collect();
    if let Some(pct) = o.max_pause_removal_pct {
        let mut budget = (pct / 100.0 * ctx.n as f64).floor() as u64;
        wanted.sort_by_key(|&(i, _)| (std::cmp::Reverse(pauses[i].len), pauses[i].pieces[0].start));
        let total: u64 = wanted.iter().map(|w| w.1).sum();
        if total > budget {
            let mut left = 0;
            for w in &mut wanted {
                if budget == 0 {
                    w.1 = 0;
                    left += 1;
                } else {
                    w.1 = w.1.min(budget);
                    budget -= w.1;
                }
            }
            warnings.push(Warning::new(
                WarningCode::PauseCapReached,
                format!(
                    "pause removal capped at {pct}% of the input; {left} shorter long pauses \
                     kept as they are"
                ),
            ));
            wanted.retain(|w| w.1 > 0);
        }
        wanted.sort_by_key(|&(i, _)| i);
    }

    let rate = f64::from(ctx.rate.get());
    for (k, (i, remove)) in wanted.into_iter().enumerate() {
        let p = &pauses[i];
        let keep = p.len - remove;
        let parts = virtual_range(&p.pieces, keep / 2, remove);
        // Never remove activity (word tails inside the guard zones included).
        let parts = subtract(&parts, active);
        let detail = format!(
            "pause {:.3} s shortened to {:.3} s",
            p.len as f64 / rate,
            (p.len - parts.iter().map(|r| r.end - r.start).sum::<u64>()) as f64 / rate
        );
        for r in parts {
            let bounds = p.pieces.iter().find(|pc| pc.start <= r.start && r.end <= pc.end).cloned();
            let mut op = Op::remove(Reason::Pause, r, detail.clone());
            op.label = Some(format!("pause {k}"));
            op.bounds = bounds;
            out.push(op);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn interval_subtraction() {
        assert_eq!(subtract(&[0..10, 20..30], &[5..22, 25..26]), vec![0..5, 22..25, 26..30]);
        assert_eq!(subtract(&[0..10], &[]), vec![0..10]);
        assert_eq!(subtract(&[0..10], &[0..10]), Vec::<Range<u64>>::new());
        assert_eq!(normalize(vec![5..8, 0..3, 2..4, 9..9]), vec![0..4, 5..8]);
    }

    #[test]
    fn virtual_ranges_span_pieces() {
        let pieces = [0..10, 20..30, 40..50];
        assert_eq!(virtual_range(&pieces, 5, 12), vec![5..10, 20..27]);
        assert_eq!(virtual_range(&pieces, 10, 10), vec![20..30]);
        assert_eq!(virtual_range(&pieces, 25, 100), vec![45..50]);
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn pieces_join_only_across_removed_audio() {
        let mut out = Vec::new();
        // Free 0..100 | removed 100..150 | free 150..300 | blocked 300..320 | free 320..400
        pauses_in(&(0..400), &[100..150], &[300..320], &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].pieces, vec![0..100, 150..300]);
        assert_eq!(out[0].len, 250);
        assert_eq!(out[1].pieces, vec![320..400]);
    }
}
