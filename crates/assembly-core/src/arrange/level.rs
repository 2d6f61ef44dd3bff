//! Leveling: per-segment gains so intros, ads and clips sit at the host's loudness.

use serde::{Deserialize, Serialize};

use super::place::Arrangement;
use super::template::{LevelingMode, SegmentType, Template};
use crate::analyze::loudness::{LoudnessMeter, meter_halves};
use crate::dsp::{db_to_power, power_to_db};
use crate::error::{Error, Result};
use crate::{CancelToken, FrameSource};

/// The extra gain leveling gives one segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentGain {
    /// The segment's id.
    pub segment_id: String,
    /// What was measured: integrated loudness in LUFS (`match_content`) or mean (RMS) level
    /// in dBFS (`legacy`), as the segment will sound in the mix (after channel mapping, before
    /// its template gain). `null` in JSON for silence.
    #[serde(with = "crate::dsp::finite_or_null")]
    pub measured: f64,
    /// The gain to add, in dB.
    pub gain_db: f64,
}

/// Leveling's outcome: the reference level and a gain per leveled segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leveling {
    /// The mode used.
    pub mode: LevelingMode,
    /// What segments were matched to: the content's integrated loudness in LUFS
    /// (`match_content`) or the legacy target in dBFS. `null` when there is none.
    #[serde(with = "crate::dsp::finite_or_null")]
    pub reference: f64,
    /// One entry per leveled segment, in template order.
    pub gains: Vec<SegmentGain>,
}

const BLOCK: usize = 16_384;

/// Streams `src` mapped to `channels` channels (as the mix maps it) into `f`.
fn for_each_block(
    src: &dyn FrameSource,
    channels: usize,
    cancel: &CancelToken,
    mut f: impl FnMut(&[&[f32]]) -> Result<()>,
) -> Result<()> {
    for_each_block_in(src, 0..src.frames(), channels, cancel, &mut f)
}

/// [`for_each_block`] over `range` of `src`.
fn for_each_block_in(
    src: &dyn FrameSource,
    range: std::ops::Range<u64>,
    channels: usize,
    cancel: &CancelToken,
    f: &mut dyn FnMut(&[&[f32]]) -> Result<()>,
) -> Result<()> {
    let mut mapped = vec![vec![0.0f32; BLOCK]; channels];
    crate::source::for_each_block_in(src, range, BLOCK, cancel, &mut |_| {}, |raw| {
        let n = raw.first().map_or(0, |p| p.len());
        for m in &mut mapped {
            m[..n].fill(0.0);
        }
        crate::dsp::mix::add_mapped(&mut mapped, 0, raw, n, 1.0, None);
        let planes: Vec<&[f32]> = mapped.iter().map(|p| &p[..n]).collect();
        f(&planes)
    })
}

/// Integrated loudness (LUFS) of `src` as it sounds mapped to `channels` channels, metered
/// in two halves on two threads when it is long enough (`loudness::meter_halves`).
fn loudness_of(
    src: &dyn FrameSource,
    channels: usize,
    rate: std::num::NonZeroU32,
    cancel: &CancelToken,
) -> Result<f64> {
    // Mono into a stereo mix is the same signal twice: meter it once, weighted twice.
    let copies = src.channel_count() == 1 && channels == 2;
    let fed = if copies { 1 } else { channels };
    let make = || {
        if copies {
            LoudnessMeter::mono_as_copies(rate.get(), 2)
        } else {
            LoudnessMeter::new(channels, rate.get(), false)
        }
    };
    let read = |range: std::ops::Range<u64>, f: &mut dyn FnMut(&[&[f32]]) -> Result<()>| {
        for_each_block_in(src, range, fed, cancel, f)
    };
    let meter = meter_halves(src.frames(), rate, crate::par::threads(), &make, &read)?;
    Ok(meter.finish()?.integrated_lufs)
}

/// Mean (RMS over all channels) level in dBFS of `src` mapped to `channels` channels.
fn rms_dbfs_of(src: &dyn FrameSource, channels: usize, cancel: &CancelToken) -> Result<f64> {
    let mut sum = 0.0f64;
    let mut count = 0u64;
    for_each_block(src, channels, cancel, |planes| {
        for p in planes {
            sum += p.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>();
            count += p.len() as u64;
        }
        Ok(())
    })?;
    if count == 0 || sum <= 0.0 {
        return Ok(f64::NEG_INFINITY);
    }
    Ok(power_to_db(sum / count as f64))
}

/// Computes the leveling gain of every leveled segment.
///
/// `match_content`: the reference is the integrated loudness of the content segments'
/// audio (several contents are combined power-weighted by length); each leveled segment gets
/// `reference − its own integrated loudness`, capped at ±`max_gain_db`. Content segments
/// are never leveled in this mode (they are the reference). `legacy`: each leveled segment's
/// RMS level is brought to `legacy_target_dbfs`, capped at ±`legacy_max_gain_db`. Silent
/// segments get 0 dB. Everything is measured as it will sound in a `channels`-channel mix.
///
/// # Errors
///
/// [`Error::InvalidInput`] if `arrangement` does not match `template` or an asset has no
/// source; [`Error::Cancelled`] when cancelled.
pub fn level_segments<'a>(
    template: &Template,
    arrangement: &Arrangement,
    sources: impl Fn(&str) -> Option<&'a dyn FrameSource>,
    channels: usize,
    cancel: &CancelToken,
) -> Result<Leveling> {
    let opts = &template.leveling;
    if arrangement.placements.len() != template.segments.len() {
        return Err(Error::invalid_input(
            "arrangement",
            "does not belong to this template (segment counts differ)",
        ));
    }
    let src = |asset: &str| {
        sources(asset).ok_or_else(|| {
            Error::invalid_input("sources", format!("no audio was supplied for asset {asset:?}"))
        })
    };
    let rate = arrangement.rate;
    let mut out = Leveling { mode: opts.mode, reference: f64::NEG_INFINITY, gains: Vec::new() };
    match opts.mode {
        LevelingMode::Off => {}
        LevelingMode::MatchContent => {
            // Each distinct content asset once, power-weighted by length.
            let mut seen = std::collections::BTreeSet::new();
            let (mut power, mut frames) = (0.0f64, 0.0f64);
            for p in &arrangement.placements {
                if p.segment_type == SegmentType::Content && seen.insert(p.asset.as_str()) {
                    let s = src(&p.asset)?;
                    let l = loudness_of(s, channels, rate, cancel)?;
                    if l.is_finite() {
                        power += db_to_power(l) * s.frames() as f64;
                        frames += s.frames() as f64;
                    }
                }
            }
            if frames > 0.0 {
                out.reference = power_to_db(power / frames);
            }
            for (i, p) in arrangement.placements.iter().enumerate() {
                if p.segment_type == SegmentType::Content || !template.is_leveled(i) {
                    continue;
                }
                let measured = loudness_of(src(&p.asset)?, channels, rate, cancel)?;
                let gain_db = if measured.is_finite() && out.reference.is_finite() {
                    (out.reference - measured).clamp(-opts.max_gain_db, opts.max_gain_db)
                } else {
                    0.0
                };
                out.gains.push(SegmentGain { segment_id: p.segment_id.clone(), measured, gain_db });
            }
        }
        LevelingMode::Legacy => {
            out.reference = opts.legacy_target_dbfs;
            for (i, p) in arrangement.placements.iter().enumerate() {
                if !template.is_leveled(i) {
                    continue;
                }
                let measured = rms_dbfs_of(src(&p.asset)?, channels, cancel)?;
                let gain_db = if measured.is_finite() {
                    (opts.legacy_target_dbfs - measured)
                        .clamp(-opts.legacy_max_gain_db, opts.legacy_max_gain_db)
                } else {
                    0.0
                };
                out.gains.push(SegmentGain { segment_id: p.segment_id.clone(), measured, gain_db });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrange::{Segment, place};
    use crate::{AudioBuffer, synth};
    use std::num::NonZeroU32;

    /// The content is metered in two halves on two threads when it is long: the reference
    /// equals one sequential pass over it, for mono content in a stereo mix (metered once,
    /// weighted twice) and for stereo content; the intro's gain follows from it.
    #[test]
    fn long_content_measured_in_halves_equals_one_pass() {
        let r = NonZeroU32::new(44_100).unwrap();
        let n = 44_100 * 47 + 311;
        let talk = synth::speech_like(r, 7, -21.0, n);
        let contents = [
            synth::mono(r, talk.clone()),
            AudioBuffer::from_planar(r, vec![talk, synth::speech_like(r, 8, -27.0, n)]).unwrap(),
        ];
        let intro = synth::multi(r, synth::music_like(r, 9, -26.0, 44_100 * 5), 2);
        let t = Template::new(vec![
            Segment::new(SegmentType::Intro, "intro"),
            Segment::new(SegmentType::Content, "talk"),
        ]);
        for content in &contents {
            let lookup = |id: &str| -> Option<&dyn FrameSource> {
                match id {
                    "talk" => Some(content),
                    "intro" => Some(&intro),
                    _ => None,
                }
            };
            let arrangement = place(&t, r, |id| lookup(id).map(FrameSource::frames)).unwrap();
            let got = level_segments(&t, &arrangement, lookup, 2, &CancelToken::new()).unwrap();
            let mut one = LoudnessMeter::new(2, 44_100, false).unwrap();
            for_each_block(content, 2, &CancelToken::new(), |p| one.add_planar(p)).unwrap();
            let want = one.finish().unwrap().integrated_lufs;
            assert!((got.reference - want).abs() < 1e-9, "{} vs {want}", got.reference);
            let intro_lufs = crate::analyze::loudness::measure(&intro).unwrap().integrated_lufs;
            assert!((got.gains[0].gain_db - (want - intro_lufs)).abs() < 1e-6, "{got:?}");
        }
    }
}
