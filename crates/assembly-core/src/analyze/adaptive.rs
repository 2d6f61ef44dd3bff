//! Adaptive leveling without speaker labels, driven by the speech-activity map, for content
//! whose transcript names no speakers (or that has no transcript).
//!
//! Speech is cut into phrases: the activity map's active intervals with pauses shorter than
//! [`PHRASE_GAP_S`] bridged (so a phrase is a sentence or a turn, not a syllable), and a
//! phrase split again in one of its short pauses where the speech on either side (at least
//! [`MIN_MEASURE_S`] each) differs by more than [`SPLIT_DB`] (voices that answer each other
//! without a pause, or overlap). Each
//! phrase's level is the power mean of its active hops (the map holds every hop's level); a
//! phrase with less than [`MIN_MEASURE_S`] of activity is measured together with its nearest
//! neighbours until that much is reached. The reference is the mean phrase level in dB,
//! weighted by activity time; each phrase's gain makes up its difference from it beyond a
//! ±[`DEADBAND_DB`] dead band (a well-levelled voice is left alone), capped like the speaker
//! leveling. The gain moves only between phrases and never rises in a pause: a cut ramps down
//! over at most [`RAMP_S`] from the end of the louder phrase, a lift ramps up from the start
//! of the quieter one, so the room tone between them keeps the lower gain.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::activity::ActivityMap;
use super::speakers::{GainEnvelope, GainStep, LevelingMode, LevelingOptions};

/// Pauses shorter than this are inside a phrase, seconds.
pub const PHRASE_GAP_S: f64 = 0.3;
/// Activity a phrase's level is measured over at least (with its neighbours), seconds.
pub const MIN_MEASURE_S: f64 = 1.0;
/// Differences from the reference within this are left alone, dB.
pub const DEADBAND_DB: f64 = 1.0;
/// Longest gain ramp, seconds.
pub const RAMP_S: f64 = 0.2;
/// A phrase is split in a short pause where the speech before and after differ by more than
/// this (two voices in one turn exchange), dB.
pub const SPLIT_DB: f64 = 3.0;

/// What the adaptive leveler measured and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveLeveling {
    /// The reference speech level, dBFS (unweighted power): the activity-weighted mean of
    /// the phrase levels.
    pub speech_level_db: f64,
    /// Phrases found (speech between pauses of at least [`PHRASE_GAP_S`]).
    pub phrases: usize,
    /// The gain over the content's source frames.
    pub envelope: GainEnvelope,
}

/// Plans the adaptive leveling from `map` (see the module docs); `None` with leveling off or
/// without speech.
pub fn level_adaptive(map: &ActivityMap, options: &LevelingOptions) -> Option<AdaptiveLeveling> {
    if options.mode == LevelingMode::Off {
        return None;
    }
    let rate = f64::from(map.sample_rate().get());
    let hop = map.hop_frames().max(1) as u64;
    let levels = map.levels_db();
    let power = |a: &Range<u64>| {
        let (h0, h1) = ((a.start / hop) as usize, (a.end.div_ceil(hop) as usize).min(levels.len()));
        let h0 = h0.min(h1);
        (levels[h0..h1].iter().map(|&l| 10f64.powf(f64::from(l) / 10.0)).sum::<f64>(), h1 - h0)
    };
    let min_hops = (MIN_MEASURE_S * rate / hop as f64).ceil() as usize;
    // Phrases, each split where its voice changes; with each piece's power and active hops.
    let mut phrases: Vec<Range<u64>> = Vec::new();
    let mut stats: Vec<(f64, usize)> = Vec::new();
    for p in map.speech_intervals((PHRASE_GAP_S * rate) as u64) {
        let subs: Vec<(Range<u64>, (f64, usize))> = map
            .active_in(p.clone())
            .map(|a| {
                let s = power(&a);
                (a, s)
            })
            .collect();
        for piece in split(&subs, min_hops) {
            let part = &subs[piece];
            phrases.push(part[0].0.start..part[part.len() - 1].0.end);
            stats.push(part.iter().fold((0.0, 0), |(e, n), (_, s)| (e + s.0, n + s.1)));
        }
    }
    if phrases.is_empty() {
        return None;
    }
    let db = |e: f64, n: usize| 10.0 * (e / n.max(1) as f64).max(1e-14).log10();
    // Each phrase's level, widened to its neighbours while it has too little activity.
    let level: Vec<f64> = (0..phrases.len())
        .map(|i| {
            let (mut lo, mut hi) = (i, i + 1);
            let (mut e, mut n) = stats[i];
            while n < min_hops && (lo > 0 || hi < phrases.len()) {
                // The nearer neighbour first.
                let left = lo.checked_sub(1).map(|k| phrases[i].start - phrases[k].end);
                let right = (hi < phrases.len()).then(|| phrases[hi].start - phrases[i].end);
                let take_left = match (left, right) {
                    (Some(l), Some(r)) => l <= r,
                    (l, _) => l.is_some(),
                };
                let k = if take_left {
                    lo -= 1;
                    lo
                } else {
                    hi += 1;
                    hi - 1
                };
                e += stats[k].0;
                n += stats[k].1;
            }
            db(e, n)
        })
        .collect();
    let weight: f64 = stats.iter().map(|s| s.1 as f64).sum();
    let reference =
        level.iter().zip(&stats).map(|(l, s)| l * s.1 as f64).sum::<f64>() / weight.max(1.0);
    let gains: Vec<f64> = level
        .iter()
        .map(|l| {
            let d = reference - l;
            (d.signum() * (d.abs() - DEADBAND_DB).max(0.0))
                .clamp(-options.max_cut_db, options.max_boost_db)
        })
        .collect();
    let envelope = envelope(&phrases, &gains, (RAMP_S * rate) as u64);
    Some(AdaptiveLeveling { speech_level_db: reference, phrases: phrases.len(), envelope })
}

/// Splits a phrase's active stretches `subs` (each with its power and active hops) into
/// pieces: at the boundary between two stretches where both sides have at least `min_hops`
/// and their levels differ most, when that is more than [`SPLIT_DB`]; recursively.
fn split(subs: &[(Range<u64>, (f64, usize))], min_hops: usize) -> Vec<Range<usize>> {
    fn go(
        subs: &[(Range<u64>, (f64, usize))],
        at: Range<usize>,
        min: usize,
        out: &mut Vec<Range<usize>>,
    ) {
        let part = &subs[at.clone()];
        let (te, tn) = part.iter().fold((0.0, 0), |(e, n), (_, s)| (e + s.0, n + s.1));
        let db = |e: f64, n: usize| 10.0 * (e / n.max(1) as f64).max(1e-14).log10();
        let mut best: Option<(f64, usize)> = None;
        let (mut e, mut n) = (0.0, 0);
        for k in 1..part.len() {
            e += part[k - 1].1.0;
            n += part[k - 1].1.1;
            if n < min || tn - n < min {
                continue;
            }
            let d = (db(e, n) - db(te - e, tn - n)).abs();
            if best.is_none_or(|b| d > b.0) {
                best = Some((d, k));
            }
        }
        match best {
            Some((d, k)) if d > SPLIT_DB => {
                go(subs, at.start..at.start + k, min, out);
                go(subs, at.start + k..at.end, min, out);
            }
            _ => out.push(at),
        }
    }
    let mut out = Vec::new();
    if !subs.is_empty() {
        go(subs, 0..subs.len(), min_hops, &mut out);
    }
    out
}

/// The envelope for `phrases` (sorted, disjoint) with `gains`: a cut ramps down from the end
/// of the earlier phrase, a lift ramps up from the start of the later one (each at most
/// `ramp` frames and within the pause or the phrase), so a pause keeps the lower gain.
fn envelope(phrases: &[Range<u64>], gains: &[f64], ramp: u64) -> GainEnvelope {
    let mut env = GainEnvelope::flat(gains[0]);
    for i in 1..phrases.len() {
        let (prev, next) = (gains[i - 1], gains[i]);
        if next == prev {
            continue;
        }
        let step = if next < prev {
            let gap = phrases[i].start - phrases[i - 1].end;
            GainStep { start: phrases[i - 1].end, ramp: ramp.min(gap), gain_db: next }
        } else {
            let len = phrases[i].end - phrases[i].start;
            GainStep { start: phrases[i].start, ramp: ramp.min(len), gain_db: next }
        };
        env.steps.push(step);
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::activity::ActivityOptions;
    use crate::synth;
    use std::num::NonZeroU32;

    #[test]
    fn a_quiet_stretch_is_lifted_and_pauses_never_rise() {
        let rate = NonZeroU32::new(16_000).unwrap();
        // 10 s of speech at -20 dBFS, 2 s of room tone, 10 s of speech at -32 dBFS.
        let mut x = synth::speech_like(rate, 1, -20.0, 160_000);
        x.extend(synth::white_noise(2, 10f64.powf(-70.0 / 20.0), 32_000));
        x.extend(synth::speech_like(rate, 3, -32.0, 160_000));
        let map = ActivityMap::analyze(&synth::mono(rate, x), &ActivityOptions::default()).unwrap();
        let lv = level_adaptive(&map, &LevelingOptions::default()).unwrap();
        let env = &lv.envelope;
        let g = |s: f64| crate::dsp::gain_to_db(f64::from(env.gain_at((s * 16_000.0) as u64)));
        // The loud half is cut and the quiet half lifted, about symmetrically around the
        // speech level, by 6 dB less the dead band.
        assert!(g(5.0) < -3.5 && g(5.0) > -6.5, "{}", g(5.0));
        assert!(g(16.0) > 3.5 && g(16.0) < 6.5, "{}", g(16.0));
        // In the pause, the lower of the two: no lift of the room tone before the quiet
        // phrase starts.
        assert!((g(10.9) - g(5.0)).abs() < 1e-6, "{} vs {}", g(10.9), g(5.0));
        assert!(lv.phrases >= 2);
        let (lo, hi) = env.range_db();
        assert!(lo >= -12.0 && hi <= 12.0);
        let off = LevelingOptions { mode: LevelingMode::Off, ..LevelingOptions::default() };
        assert!(level_adaptive(&map, &off).is_none());
    }
}
