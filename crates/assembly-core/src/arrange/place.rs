//! Placement: a pure function from a template and asset lengths to the episode timeline.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use super::template::{BedRule, DuckingOptions, SegmentType, Template};
use crate::error::{Error, Result};
use crate::frames_to_ms;
use crate::warning::{Warning, WarningCode};

/// Where one segment plays on the episode timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// The segment's id (see [`Template::segment_id`]).
    pub segment_id: String,
    /// The segment's type.
    pub segment_type: SegmentType,
    /// Id of the audio played.
    pub asset: String,
    /// First frame on the episode timeline.
    pub start_frame: u64,
    /// One past the last frame on the episode timeline (`start_frame` + asset length).
    pub end_frame: u64,
    /// `start_frame` in ms (rounded to nearest).
    pub start_ms: u64,
    /// `end_frame` in ms (rounded to nearest).
    pub end_ms: u64,
    /// The template's gain for this segment, in dB (leveling gains come on top).
    pub gain_db: f64,
    /// Raised-cosine fade-in length, in frames.
    pub fade_in_frames: u64,
    /// Raised-cosine fade-out length, in frames.
    pub fade_out_frames: u64,
    /// Equal-power crossfade-in length (with the preceding segment), in frames.
    pub crossfade_in_frames: u64,
    /// Equal-power crossfade-out length (with the following segment), in frames.
    pub crossfade_out_frames: u64,
}

impl Placement {
    /// Length in frames.
    pub fn frames(&self) -> u64 {
        self.end_frame - self.start_frame
    }
}

/// Where one music bed plays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedPlacement {
    /// Index of the rule in `template.background_music_rules`.
    pub rule_index: usize,
    /// Id of the music asset.
    pub asset: String,
    /// Length of the asset, in frames (it loops).
    pub asset_frames: u64,
    /// First frame on the episode timeline.
    pub start_frame: u64,
    /// One past the last frame.
    pub end_frame: u64,
    /// `start_frame` in ms.
    pub start_ms: u64,
    /// `end_frame` in ms.
    pub end_ms: u64,
    /// Level, in dB.
    pub volume_db: f64,
    /// Fade-in length after proportional shrinking, in frames.
    pub fade_in_frames: u64,
    /// Fade-out length after proportional shrinking, in frames.
    pub fade_out_frames: u64,
    /// Crossfade at each loop point, in frames (at most a quarter of the asset).
    pub loop_crossfade_frames: u64,
    /// Ducking parameters.
    pub ducking: DuckingOptions,
}

impl BedPlacement {
    /// Length in frames.
    pub fn frames(&self) -> u64 {
        self.end_frame - self.start_frame
    }
}

/// The episode timeline: every segment and bed with its frames, and the total length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrangement {
    /// Working sample rate in Hz (all frame numbers are at this rate).
    pub rate: NonZeroU32,
    /// Segments in template order.
    pub placements: Vec<Placement>,
    /// Music beds, by rule then time.
    pub beds: Vec<BedPlacement>,
    /// Episode length in frames: the latest end of any segment or bed.
    pub total_frames: u64,
    /// Episode length in ms.
    pub total_ms: u64,
    /// Things that were adjusted or skipped (an empty bed span, a crossfade on the first
    /// segment): a code and a message each.
    pub warnings: Vec<Warning>,
}

impl Arrangement {
    /// The placement of segment `id`, if any.
    pub fn placement(&self, id: &str) -> Option<&Placement> {
        self.placements.iter().find(|p| p.segment_id == id)
    }
}

fn secs_to_frames_signed(s: f64, rate: NonZeroU32) -> i128 {
    // Validated finite and bounded by Template::validate, so this cannot overflow.
    (s * f64::from(rate.get())).round() as i128
}

/// Shrinks two fade lengths proportionally so they fit in `len` frames.
pub(crate) fn fit_fades(fade_in: u64, fade_out: u64, len: u64) -> (u64, u64) {
    let sum = u128::from(fade_in) + u128::from(fade_out);
    if sum <= u128::from(len) {
        return (fade_in, fade_out);
    }
    let fi = (u128::from(fade_in) * u128::from(len) / sum) as u64;
    (fi, len - fi)
}

/// Places every segment and bed of `template` on the episode timeline.
///
/// `asset_frames` returns the length in frames (at `rate`) of the audio an asset id names, or
/// `None` when the caller has none. Each segment starts where everything before it has
/// ended, minus its `crossfade_s`, plus the timing offset that applies to it
/// (`content_start_offset_s` to the first content segment, `outro_start_offset_s` to the
/// first outro segment). Beds cover the merged spans of their segment types, shifted by
/// their offsets; fades that do not fit are shrunk proportionally. Frame maths is exact:
/// seconds are converted once, rounded to the nearest frame.
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::arrange::{place, Segment, SegmentType, Template};
///
/// let rate = NonZeroU32::new(48_000).unwrap();
/// let mut t = Template::new(vec![
///     Segment::new(SegmentType::Intro, "intro"),
///     Segment::new(SegmentType::Content, "talk"),
/// ]);
/// t.timing.content_start_offset_s = -0.5;
/// let a = place(&t, rate, |id| match id {
///     "intro" => Some(96_000),
///     "talk" => Some(480_000),
///     _ => None,
/// })
/// .unwrap();
/// assert_eq!(a.placements[1].start_frame, 72_000); // 2 s intro, content 0.5 s early
/// assert_eq!(a.total_frames, 552_000);
/// ```
///
/// # Errors
///
/// [`Error::InvalidInput`] if the template is invalid, an asset has no audio (the error
/// names the asset and the field that references it), an asset is empty, a crossfade is
/// longer than either segment, or an offset would start a segment before the one before it
/// (or before the episode start).
pub fn place(
    template: &Template,
    rate: NonZeroU32,
    asset_frames: impl Fn(&str) -> Option<u64>,
) -> Result<Arrangement> {
    template.validate()?;
    let mut warnings = Vec::new();
    let (placements, cursor) = place_segments(template, rate, &asset_frames, &mut warnings)?;
    let beds = place_beds(template, rate, &placements, &asset_frames, &mut warnings)?;
    let total = beds.iter().map(|b| b.end_frame).fold(cursor, u64::max);
    Ok(Arrangement {
        rate,
        placements,
        beds,
        total_frames: total,
        total_ms: frames_to_ms(total, rate),
        warnings,
    })
}

/// Places the template's segments one after another: each starts where everything before it
/// has ended, less its crossfade, plus the timing offset that applies to it. Returns the
/// placements and the frame where the last one ends.
fn place_segments(
    template: &Template,
    rate: NonZeroU32,
    asset_frames: &impl Fn(&str) -> Option<u64>,
    warnings: &mut Vec<Warning>,
) -> Result<(Vec<Placement>, u64)> {
    let mut placements: Vec<Placement> = Vec::with_capacity(template.segments.len());
    let mut cursor: u64 = 0;
    let mut seen_content = false;
    let mut seen_outro = false;
    for (i, seg) in template.segments.iter().enumerate() {
        let field = |name: &str| format!("template.segments[{i}].{name}");
        let len = asset_frames(&seg.asset).ok_or_else(|| {
            Error::invalid_input(
                field("asset"),
                format!("no audio was supplied for asset {:?}", seg.asset),
            )
        })?;
        if len == 0 {
            return Err(Error::invalid_input(
                field("asset"),
                format!("asset {:?} has no audio frames", seg.asset),
            ));
        }
        let mut xf = crate::seconds_to_frames(seg.crossfade_s, rate);
        if i == 0 && xf > 0 {
            warnings.push(Warning::new(
                WarningCode::CrossfadeIgnored,
                format!(
                    "segment {:?} is first: its crossfade_s has nothing to cross and was ignored",
                    template.segment_id(i)
                ),
            ));
            xf = 0;
        }
        let (offset_s, offset_field) = match seg.segment_type {
            SegmentType::Content if !seen_content => {
                seen_content = true;
                (template.timing.content_start_offset_s, "template.timing.content_start_offset_s")
            }
            SegmentType::Outro if !seen_outro => {
                seen_outro = true;
                (template.timing.outro_start_offset_s, "template.timing.outro_start_offset_s")
            }
            _ => (0.0, ""),
        };
        let offset = secs_to_frames_signed(offset_s, rate);
        if let Some(prev) = placements.last_mut() {
            if xf > len || xf > prev.frames() {
                return Err(Error::invalid_input(
                    field("crossfade_s"),
                    format!(
                        "{} s is longer than this segment ({} frames) or the one before ({} frames)",
                        seg.crossfade_s,
                        len,
                        prev.frames()
                    ),
                ));
            }
            prev.crossfade_out_frames = prev.crossfade_out_frames.max(xf);
        }
        let start = i128::from(cursor) - i128::from(xf) + offset;
        let floor = placements.last().map_or(0, |p| p.start_frame);
        if start < i128::from(floor) {
            let what =
                if offset_field.is_empty() { field("crossfade_s") } else { offset_field.into() };
            return Err(Error::invalid_input(
                what,
                format!(
                    "segment {:?} would start {:.3} s before the segment it follows starts",
                    template.segment_id(i),
                    (i128::from(floor) - start) as f64 / f64::from(rate.get())
                ),
            ));
        }
        let start = start as u64; // >= floor >= 0, and bounded by the sum of lengths
        let end = start.checked_add(len).ok_or_else(|| {
            Error::invalid_input(field("asset"), "episode length overflows the frame counter")
        })?;
        let (fade_in, fade_out) = fit_fades(
            crate::seconds_to_frames(seg.fade_in_s, rate),
            crate::seconds_to_frames(seg.fade_out_s, rate),
            len,
        );
        placements.push(Placement {
            segment_id: template.segment_id(i),
            segment_type: seg.segment_type,
            asset: seg.asset.clone(),
            start_frame: start,
            end_frame: end,
            start_ms: frames_to_ms(start, rate),
            end_ms: frames_to_ms(end, rate),
            gain_db: seg.gain_db,
            fade_in_frames: fade_in,
            fade_out_frames: fade_out,
            crossfade_in_frames: xf,
            crossfade_out_frames: 0,
        });
        cursor = cursor.max(end);
    }
    Ok((placements, cursor))
}

/// The spans a bed rule covers: its segment types' placements, overlapping or touching spans
/// merged, in time order.
fn merged_spans(placements: &[Placement], rule: &BedRule) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = placements
        .iter()
        .filter(|p| rule.apply_to_segments.contains(&p.segment_type))
        .map(|p| (p.start_frame, p.end_frame))
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// Places every bed rule over the merged spans of its segment types, shifted by its offsets;
/// a span left empty by the offsets is skipped with a warning.
fn place_beds(
    template: &Template,
    rate: NonZeroU32,
    placements: &[Placement],
    asset_frames: &impl Fn(&str) -> Option<u64>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<BedPlacement>> {
    let mut beds = Vec::new();
    for (ri, rule) in template.background_music_rules.iter().enumerate() {
        let field = format!("template.background_music_rules[{ri}].asset");
        let asset_len = asset_frames(&rule.asset).ok_or_else(|| {
            Error::invalid_input(
                &field,
                format!("no audio was supplied for asset {:?}", rule.asset),
            )
        })?;
        if asset_len < 4 {
            return Err(Error::invalid_input(
                &field,
                format!("asset {:?} is too short to loop ({asset_len} frames)", rule.asset),
            ));
        }
        let merged = merged_spans(placements, rule);
        let start_off = secs_to_frames_signed(rule.start_offset_s, rate);
        let end_off = secs_to_frames_signed(rule.end_offset_s, rate);
        let loop_xf = crate::seconds_to_frames(rule.loop_crossfade_s, rate).min(asset_len / 4);
        for (s, e) in merged {
            let bs = (i128::from(s) + start_off).max(0);
            let be = i128::from(e) - end_off;
            if be <= bs {
                warnings.push(Warning::new(
                    WarningCode::EmptyBed,
                    format!(
                        "music bed {ri} ({:?}) over {}..{} ms is empty after its offsets and was skipped",
                        rule.asset,
                        frames_to_ms(s, rate),
                        frames_to_ms(e, rate)
                    ),
                ));
                continue;
            }
            let (bs, be) = (bs as u64, be as u64);
            let (fi, fo) = fit_fades(
                crate::seconds_to_frames(rule.fade_in_s, rate),
                crate::seconds_to_frames(rule.fade_out_s, rate),
                be - bs,
            );
            beds.push(BedPlacement {
                rule_index: ri,
                asset: rule.asset.clone(),
                asset_frames: asset_len,
                start_frame: bs,
                end_frame: be,
                start_ms: frames_to_ms(bs, rate),
                end_ms: frames_to_ms(be, rate),
                volume_db: rule.volume_db,
                fade_in_frames: fi,
                fade_out_frames: fo,
                loop_crossfade_frames: loop_xf,
                ducking: rule.ducking.clone(),
            });
        }
    }
    Ok(beds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrange::template::{BedRule, Segment};

    const R: NonZeroU32 = NonZeroU32::new(44_100).unwrap();

    #[test]
    fn a_bed_covers_its_segment_types_merged_where_they_touch() {
        let t = Template::new(vec![
            Segment::new(SegmentType::Intro, "intro"),   // 0..441_000
            Segment::new(SegmentType::Content, "talk"),  // 441_000..3_087_000
            Segment::new(SegmentType::Content, "sting"), // 3_087_000..3_109_050 (touches)
            Segment::new(SegmentType::Commercial, "ad"), // 3_109_050..3_770_550
            Segment::new(SegmentType::Content, "talk"),  // 3_770_550..6_416_550
        ]);
        let (placements, end) = place_segments(&t, R, &lens, &mut Vec::new()).unwrap();
        assert_eq!(end, 6_416_550);
        let rule = BedRule::new("bed");
        assert_eq!(
            merged_spans(&placements, &rule),
            [(441_000, 3_109_050), (3_770_550, 6_416_550)]
        );
    }

    fn lens(id: &str) -> Option<u64> {
        match id {
            "intro" => Some(441_000),  // 10 s
            "talk" => Some(2_646_000), // 60 s
            "ad" => Some(661_500),     // 15 s
            "outro" => Some(308_700),  // 7 s
            "sting" => Some(22_050),   // 0.5 s
            "bed" => Some(1_323_000),  // 30 s
            _ => None,
        }
    }

    fn show() -> Template {
        let mut t = Template::new(vec![
            Segment::new(SegmentType::Intro, "intro"),
            Segment::new(SegmentType::Content, "talk"),
            Segment { crossfade_s: 0.25, ..Segment::new(SegmentType::Transition, "sting") },
            Segment::new(SegmentType::Commercial, "ad"),
            Segment::new(SegmentType::Content, "talk"),
            Segment::new(SegmentType::Outro, "outro"),
        ]);
        t.segments[4].id = Some("part-2".into());
        t.timing.content_start_offset_s = -2.5;
        t.timing.outro_start_offset_s = -1.000_01; // rounds to 44_100 frames
        t
    }

    #[test]
    fn overlaps_and_crossfades_are_exact_to_the_sample() {
        let a = place(&show(), R, lens).unwrap();
        let p = &a.placements;
        let starts: Vec<u64> = p.iter().map(|p| p.start_frame).collect();
        // intro 0; content 10 s - 2.5 s; sting crossfades 0.25 s into the content's end;
        // ad after the sting; second content after the ad (only the FIRST content is offset);
        // outro 1 s before the second content ends.
        let c1 = 441_000 - 110_250;
        let sting = c1 + 2_646_000 - 11_025;
        let ad = sting + 22_050;
        let c2 = ad + 661_500;
        let outro = c2 + 2_646_000 - 44_100;
        assert_eq!(starts, vec![0, c1, sting, ad, c2, outro]);
        assert_eq!(a.total_frames, outro + 308_700);
        assert_eq!(p[1].crossfade_out_frames, 11_025);
        assert_eq!(p[2].crossfade_in_frames, 11_025);
        assert_eq!(p[4].segment_id, "part-2");
        assert_eq!(p[1].segment_id, "content-1");
        assert_eq!(p[1].start_ms, 7_500);
        assert_eq!(a.total_ms, frames_to_ms(a.total_frames, R));
    }

    #[test]
    fn missing_asset_is_an_error_naming_it() {
        let mut t = show();
        t.segments[3].asset = "ad-missing".into();
        let e = place(&t, R, lens).unwrap_err().to_string();
        assert!(e.contains("template.segments[3].asset") && e.contains("ad-missing"), "{e}");
        let mut t = show();
        t.background_music_rules.push(BedRule::new("nope"));
        let e = place(&t, R, lens).unwrap_err().to_string();
        assert!(e.contains("background_music_rules[0].asset") && e.contains("nope"), "{e}");
    }

    #[test]
    fn impossible_overlaps_and_crossfades_are_errors() {
        let mut t = show();
        t.timing.content_start_offset_s = -11.0; // before the intro starts
        let e = place(&t, R, lens).unwrap_err().to_string();
        assert!(e.contains("content_start_offset_s"), "{e}");
        let mut t = show();
        t.segments[2].crossfade_s = 0.6; // longer than the 0.5 s sting
        let e = place(&t, R, lens).unwrap_err().to_string();
        assert!(e.contains("segments[2].crossfade_s"), "{e}");
        let mut t = show();
        t.segments[0].crossfade_s = 1.0;
        let a = place(&t, R, lens).unwrap();
        assert_eq!(a.placements[0].crossfade_in_frames, 0);
        assert_eq!(a.warnings.len(), 1);
        assert_eq!(a.warnings[0].code, WarningCode::CrossfadeIgnored);
        assert!(a.warnings[0].message.contains("crossfade_s"), "{:?}", a.warnings);
    }

    #[test]
    fn beds_merge_spans_apply_offsets_and_shrink_fades() {
        let mut t = show();
        let mut rule = BedRule::new("bed");
        rule.apply_to_segments = vec![SegmentType::Content, SegmentType::Transition];
        rule.start_offset_s = -1.0; // starts 1 s early
        rule.end_offset_s = -2.0; // ends 2 s late
        t.background_music_rules.push(rule);
        let mut sting_bed = BedRule::new("bed");
        sting_bed.apply_to_segments = vec![SegmentType::Transition];
        t.background_music_rules.push(sting_bed);
        let a = place(&t, R, lens).unwrap();
        let p = &a.placements;
        // Content 1 and the sting overlap -> one span; content 2 is separate (the ad between).
        assert_eq!(a.beds.len(), 3);
        let b = &a.beds[0];
        assert_eq!(b.start_frame, p[1].start_frame - 44_100);
        assert_eq!(b.end_frame, p[2].end_frame + 88_200);
        assert_eq!((b.fade_in_frames, b.fade_out_frames), (88_200, 132_300));
        assert_eq!(b.loop_crossfade_frames, 44_100);
        assert_eq!(a.beds[1].start_frame, p[4].start_frame - 44_100);
        // The sting bed spans 0.5 s: fades of 2 s + 3 s shrink to 0.2 s + 0.3 s.
        let s = &a.beds[2];
        assert_eq!(s.frames(), 22_050);
        assert_eq!((s.fade_in_frames, s.fade_out_frames), (8_820, 13_230));
    }

    #[test]
    fn bed_extending_past_the_end_lengthens_the_episode() {
        let mut t = Template::new(vec![Segment::new(SegmentType::Content, "talk")]);
        let mut r = BedRule::new("bed");
        r.end_offset_s = -4.0;
        t.background_music_rules.push(r);
        let a = place(&t, R, lens).unwrap();
        assert_eq!(a.total_frames, 2_646_000 + 176_400);
    }
}
