//! Splices that never click.
//!
//! Every cut edge may move by up to `search_ms` each way, never into a kept word (nor into a
//! removed word's audio, nor past a neighbouring edit, nor out of a pause's silent run), to
//! the centre of the quietest `quiet_window_ms` window; windows within 1 dB of the quietest
//! count as equally quiet and the one closest to the original edge wins, so edges in steady
//! sound or silence stay put. The edge then moves to the nearest rising zero crossing (of the
//! sum of the channels) within `zero_crossing_ms`, so both sides of a join start in phase.
//!
//! Joins are crossfaded over `2h` frames centred on the join, reading each side's audio past
//! its edge (lengths never change). `2h` grows with the level at the join, from
//! `min_crossfade_ms` at or below the silence threshold to `max_crossfade_ms` at speech level,
//! and is at most half of either neighbouring kept segment. The fade is equal-power for the
//! measured correlation `r` of the two sides (clamped to [0, 1]): with raised-cosine weights
//! `wo`, `wi`, the gains are `wo·k`, `wi·k` with `k = 1/√(wo² + wi² + 2·r·wo·wi)`, so
//! uncorrelated material (r = 0) keeps its power and in-phase material (r = 1) its amplitude.

use std::collections::HashMap;
use std::ops::Range;

use super::Ctx;
use super::merge::Merged;
use super::options::SpliceOptions;
use crate::dsp::power_to_db;
use crate::source::read_window;

/// Sum of the channels at frames `start .. start + len` (0 outside the audio).
fn mix_window(ctx: &Ctx<'_>, start: u64, len: usize) -> Vec<f32> {
    let planes = read_window(ctx.audio, start, len);
    let mut sum = planes[0].clone();
    for p in &planes[1..] {
        for (s, x) in sum.iter_mut().zip(p) {
            *s += x;
        }
    }
    sum
}

/// Mean power over channels of frames `r`, in dBFS (−140 for silence or an empty range).
pub(crate) fn level_db(ctx: &Ctx<'_>, r: Range<u64>) -> f64 {
    let (s, e) = (r.start.min(ctx.n), r.end.min(ctx.n));
    if e <= s {
        return -140.0;
    }
    let mut acc = 0.0f64;
    let planes = read_window(ctx.audio, s, (e - s) as usize);
    for c in &planes {
        acc += c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>();
    }
    let p = acc / ((e - s) as usize * planes.len()) as f64;
    if p <= 1e-14 { -140.0 } else { power_to_db(p) }
}

/// The position in `[lo, hi]` at the centre of the quietest window (see the module docs).
fn quietest(ctx: &Ctx<'_>, lo: u64, hi: u64, orig: u64, window: u64) -> u64 {
    if lo >= hi {
        return lo;
    }
    let half = (window / 2).max(1);
    let r0 = lo.saturating_sub(half);
    let r1 = (hi + half + 1).min(ctx.n);
    if r1 <= r0 {
        return orig.clamp(lo, hi);
    }
    let len = (r1 - r0) as usize;
    let mut pre = Vec::with_capacity(len + 1);
    pre.push(0.0f64);
    let planes = read_window(ctx.audio, r0, len);
    let mut acc = 0.0f64;
    for i in 0..len {
        let mut p = 0.0f32;
        for c in &planes {
            p += c[i] * c[i];
        }
        acc += f64::from(p);
        pre.push(acc);
    }
    let energies: Vec<f64> = (lo..=hi)
        .map(|c| {
            let w0 = c.saturating_sub(half).max(r0);
            let w1 = (c + half).min(r1).max(w0 + 1);
            let (i0, i1) = ((w0 - r0) as usize, ((w1 - r0) as usize).min(len));
            (pre[i1] - pre[i0]) / (w1 - w0) as f64
        })
        .collect();
    let min_e = energies.iter().copied().fold(f64::INFINITY, f64::min);
    let tol = min_e * 1.259 + 1e-12;
    let mut best = orig.clamp(lo, hi);
    let mut best_d = u64::MAX;
    for (c, e) in (lo..=hi).zip(&energies) {
        if *e <= tol && c.abs_diff(orig) < best_d {
            best = c;
            best_d = c.abs_diff(orig);
        }
    }
    best
}

/// The nearest rising zero crossing to `p` within `radius` and `[lo, hi]`, else `p`.
fn zero_cross(ctx: &Ctx<'_>, p: u64, lo: u64, hi: u64, radius: u64) -> u64 {
    let lo = lo.max(1);
    // Frames w0 ..= p + radius hold every candidate c and its predecessor c - 1.
    let w0 = p.saturating_sub(radius).max(lo) - 1;
    let Some(w1) = p.checked_add(radius).map(|e| e.min(hi)) else { return p };
    if w1 < w0 + 1 {
        return p;
    }
    let m = mix_window(ctx, w0, (w1 - w0 + 1) as usize);
    let at = |i: u64| m[(i - w0) as usize];
    for d in 0..=radius {
        for c in [p.checked_add(d), p.checked_sub(d)].into_iter().flatten() {
            if c >= lo && c <= hi && at(c - 1) < 0.0 && at(c) >= 0.0 {
                return c;
            }
        }
    }
    p
}

/// Moves every edge of `m` as described in the module docs.
pub(crate) fn refine(ctx: &Ctx<'_>, mut m: Merged, o: &SpliceOptions) -> Merged {
    let w = ctx.ms(u64::from(o.search_ms));
    let window = ctx.ms(u64::from(o.quiet_window_ms)).max(1);
    let zc = ctx.ms(u64::from(o.zero_crossing_ms));
    let n = ctx.n;
    // Events in source order: (start, kind, index); kind 0 removal, 1 replacement, 2 insert.
    let mut ev: Vec<(u64, u8, usize)> = Vec::new();
    ev.extend(m.removals.iter().enumerate().map(|(i, r)| (r.range.start, 0, i)));
    ev.extend(m.replacements.iter().enumerate().map(|(i, r)| (r.range.start, 1, i)));
    ev.extend(m.insertions.iter().enumerate().map(|(i, r)| (r.at, 2, i)));
    ev.sort_unstable();
    let mut floor = 0u64;
    let mut moved_starts: HashMap<u64, u64> = HashMap::new();
    let mut last_insert: Option<(u64, u64)> = None;
    for k in 0..ev.len() {
        let (_, kind, i) = ev[k];
        let ceiling = ev.get(k + 1).map_or(n, |e| e.0);
        match kind {
            0 => {
                let r = &mut m.removals[i];
                let (a, b) = (r.range.start, r.range.end);
                let part_a =
                    r.parts.iter().find(|p| p.range.start == a).and_then(|p| p.bounds.clone());
                let part_b =
                    r.parts.iter().find(|p| p.range.end == b).and_then(|p| p.bounds.clone());
                let new_a = if a == 0 || a < floor {
                    a
                } else {
                    let mut lo = a.saturating_sub(w).max(floor).max(ctx.prev_word_end(a));
                    let mut hi = (a + w).min(b - 1);
                    let j = ctx.words.partition_point(|x| x.start < a);
                    if let Some(x) = ctx.words.get(j).filter(|x| x.start < b) {
                        hi = hi.min(x.start);
                    }
                    if let Some(bd) = &part_a {
                        lo = lo.max(bd.start);
                        hi = hi.min(bd.end);
                    }
                    if lo <= a && a <= hi {
                        let q = quietest(ctx, lo, hi, a, window);
                        zero_cross(ctx, q, lo, hi, zc)
                    } else {
                        a
                    }
                };
                let new_b = if b >= n {
                    b
                } else {
                    let mut lo = b.saturating_sub(w).max(new_a + 1);
                    let j = ctx.words.partition_point(|x| x.end <= b);
                    if j > 0 && ctx.words[j - 1].end > a {
                        lo = lo.max(ctx.words[j - 1].end);
                    }
                    let mut hi = (b + w).min(ctx.next_word_start(b)).min(ceiling).min(n);
                    if let Some(bd) = &part_b {
                        lo = lo.max(bd.start);
                        hi = hi.min(bd.end);
                    }
                    if lo <= b && b <= hi {
                        let q = quietest(ctx, lo, hi, b, window);
                        zero_cross(ctx, q, lo, hi, zc)
                    } else {
                        b
                    }
                };
                moved_starts.insert(a, new_a);
                r.range = new_a..new_b;
                floor = new_b;
            }
            1 => {
                let r = &mut m.replacements[i];
                let (a, b) = (r.range.start, r.range.end);
                let lo = a.saturating_sub(w).max(floor).max(ctx.prev_word_end(a));
                let new_a = if lo <= a { quietest(ctx, lo, a, a, window) } else { a };
                let hi = (b + w).min(ctx.next_word_start(b)).min(ceiling).min(n);
                let new_b = if b <= hi { quietest(ctx, b, hi, b, window) } else { b };
                moved_starts.insert(a, new_a);
                r.range = new_a..new_b;
                floor = new_b;
            }
            _ => {
                let ins = &mut m.insertions[i];
                let p = ins.at;
                let new_p = if let Some(&q) = moved_starts.get(&p) {
                    q
                } else if let Some((old, new)) = last_insert.filter(|(old, _)| *old == p) {
                    let _ = old;
                    new
                } else {
                    let lo = p.saturating_sub(w).max(floor).max(ctx.prev_word_end(p));
                    let hi = (p + w).min(ctx.next_word_start(p)).min(ceiling).min(n);
                    if lo <= p && p <= hi { quietest(ctx, lo, hi, p, window) } else { p }
                };
                last_insert = Some((p, new_p));
                ins.at = new_p;
                floor = floor.max(new_p);
            }
        }
    }
    m
}

/// Half-length of the crossfade (or the length of a one-sided fade) for a join at `level_db`.
pub(crate) fn fade_half(ctx: &Ctx<'_>, level: f64, o: &SpliceOptions) -> u64 {
    let min_h = ctx.ms(u64::from(o.min_crossfade_ms)) / 2;
    let max_h = ctx.ms(u64::from(o.max_crossfade_ms)) / 2;
    let (quiet, loud) = match ctx.activity {
        Some(a) => (a.threshold_db(), (a.speech_level_db() - 6.0).max(a.threshold_db() + 1.0)),
        None => (-60.0, -26.0),
    };
    let t = ((level - quiet) / (loud - quiet)).clamp(0.0, 1.0);
    min_h + ((max_h - min_h) as f64 * t).round() as u64
}

/// Correlation of the two sides of a join over `[-h, h)` around `a` (left) and `b` (right),
/// clamped to [0, 1].
pub(crate) fn correlation(ctx: &Ctx<'_>, a: u64, b: u64, h: u64) -> f32 {
    let (mut xy, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
    let len = (2 * h) as usize;
    // Frames before 0 are skipped (as if absent), so the windows start at the first frame
    // both sides have.
    let skip = h.saturating_sub(a.min(b));
    let (xs, ys) = (mix_window(ctx, a + skip - h, len), mix_window(ctx, b + skip - h, len));
    for k in 0..len.saturating_sub(skip as usize) {
        let x = f64::from(xs[k]);
        let y = f64::from(ys[k]);
        xy += x * y;
        xx += x * x;
        yy += y * y;
    }
    if xx <= 1e-12 || yy <= 1e-12 { 0.0 } else { (xy / (xx * yy).sqrt()).clamp(0.0, 1.0) as f32 }
}

/// Crossfade gains `(out, in)` at offset `d ∈ [-h, h)` from the join, for correlation `r`.
pub(crate) fn crossfade_gains(d: i64, h: u64, r: f32) -> (f32, f32) {
    let t = (d as f64 + h as f64 + 0.5) / (2 * h) as f64;
    let a = (std::f64::consts::FRAC_PI_2 * t).cos().powi(2);
    let b = (std::f64::consts::FRAC_PI_2 * t).sin().powi(2);
    let k = 1.0 / (a * a + b * b + 2.0 * f64::from(r) * a * b).sqrt();
    ((a * k) as f32, (b * k) as f32)
}

/// Raised-cosine fade-in gain at frame `k` of a fade of `len` frames.
pub(crate) fn fade_in_gain(k: u64, len: u64) -> f32 {
    let t = (k as f64 + 0.5) / len as f64;
    (std::f64::consts::FRAC_PI_2 * t).sin().powi(2) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gains_keep_power_or_amplitude() {
        for d in -50..50 {
            let (o, i) = crossfade_gains(d, 50, 0.0);
            assert!(((o * o + i * i) - 1.0).abs() < 1e-5);
            let (o, i) = crossfade_gains(d, 50, 1.0);
            assert!((o + i - 1.0).abs() < 1e-5);
        }
        let (o, i) = crossfade_gains(-50, 50, 0.0);
        assert!(o > 0.999 && i < 0.001);
        assert!(fade_in_gain(0, 100) < 0.001 && fade_in_gain(99, 100) > 0.999);
    }
}
