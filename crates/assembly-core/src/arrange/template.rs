//! The show template: segments in order, timing offsets, music bed rules, leveling.
//!
//! Everything here is plain data (serde, unknown fields rejected) plus [`Template::validate`],
//! which checks every value that needs no audio and names the offending field.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a segment is. Serialized in `snake_case` (`"sound_effect"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentType {
    /// Opening segment (music and/or voice).
    Intro,
    /// The (edited) recording itself. A template may hold several.
    Content,
    /// Closing segment.
    Outro,
    /// An ad read or promo.
    Commercial,
    /// A short stinger between segments.
    Transition,
    /// A sound effect placed in the running order.
    SoundEffect,
}

impl SegmentType {
    /// The `snake_case` name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intro => "intro",
            Self::Content => "content",
            Self::Outro => "outro",
            Self::Commercial => "commercial",
            Self::Transition => "transition",
            Self::SoundEffect => "sound_effect",
        }
    }
}

/// One entry of the running order.
///
/// A segment starts where everything before it has ended, minus its `crossfade_s`, plus the
/// timing offset that applies to it (see [`Timing`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Unique id used in placements, reports and chapters. Default: `"<type>-<index>"`
    /// (`"intro-0"`, `"content-1"`, … with the segment's index in `segments`).
    #[serde(default)]
    pub id: Option<String>,
    /// What the segment is.
    pub segment_type: SegmentType,
    /// Id of the audio to play: an asset file id, or the id under which the caller supplies
    /// the (edited) content. No default: required.
    pub asset: String,
    /// Gain applied to this segment, in dB. Default: `0.0`.
    #[serde(default)]
    pub gain_db: f64,
    /// Fade-in length at the segment's start, in seconds (raised-cosine curve). Default: `0.0`.
    #[serde(default)]
    pub fade_in_s: f64,
    /// Fade-out length at the segment's end, in seconds (raised-cosine curve). Default: `0.0`.
    #[serde(default)]
    pub fade_out_s: f64,
    /// Equal-power crossfade with the preceding segment, in seconds: the segment starts this
    /// much before the preceding material ends, fading in while that fades out. Must not be
    /// longer than either segment. Default: `0.0` (butt splice).
    #[serde(default)]
    pub crossfade_s: f64,
    /// Chapter title for this segment; `None` makes no chapter for it. Default: `None`.
    #[serde(default)]
    pub chapter_title: Option<String>,
    /// Overrides whether leveling applies to this segment (see
    /// [`LevelingOptions::apply_to_segments`]). Default: `None` (decided by type).
    #[serde(default)]
    pub level: Option<bool>,
}

impl Segment {
    /// A segment of `segment_type` playing `asset`, everything else at its default.
    pub fn new(segment_type: SegmentType, asset: impl Into<String>) -> Self {
        Self {
            id: None,
            segment_type,
            asset: asset.into(),
            gain_db: 0.0,
            fade_in_s: 0.0,
            fade_out_s: 0.0,
            crossfade_s: 0.0,
            chapter_title: None,
            level: None,
        }
    }
}

/// Offsets of the content and the outro relative to what precedes them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// Shift of the first content segment's start, in seconds: negative overlaps the content
    /// with what precedes it (speech starts under the intro's tail), positive leaves a gap.
    /// Default: `0.0`.
    pub content_start_offset_s: f64,
    /// Shift of the first outro segment's start, in seconds: negative overlaps the outro with
    /// what precedes it, positive leaves a gap. Default: `0.0`.
    pub outro_start_offset_s: f64,
}

/// How a music bed dips under speech.
///
/// The bed is fully down `lookahead_ms` before a run of speech starts (it gets there over
/// `attack_ms`), stays down while the run lasts, and is back at full level `release_ms` after
/// it ends. Runs separated by less than `hold_ms` count as one run, so the bed does not pump
/// between sentences.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DuckingOptions {
    /// Whether the bed ducks at all. Default: `true`.
    pub enabled: bool,
    /// How far the bed dips below its `volume_db` during speech, in dB (a positive number).
    /// Default: `10.0`.
    pub depth_db: f64,
    /// Length of the dip's downward ramp, in ms. Default: `150`.
    pub attack_ms: u32,
    /// Length of the recovery ramp after speech, in ms. Default: `500`.
    pub release_ms: u32,
    /// How long before speech starts the dip is complete, in ms. Default: `100`.
    pub lookahead_ms: u32,
    /// Gaps between speech shorter than this are bridged (the bed stays down), in ms.
    /// Default: `1000`.
    pub hold_ms: u32,
}

impl Default for DuckingOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            depth_db: 10.0,
            attack_ms: 150,
            release_ms: 500,
            lookahead_ms: 100,
            hold_ms: 1000,
        }
    }
}

/// A music bed: one looping asset under the chosen segment types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedRule {
    /// Id of the music asset. No default: required.
    pub asset: String,
    /// Segment types the bed plays under; touching or overlapping placements of these types
    /// are merged into one span, each span gets its own bed. Default: `["content"]`.
    #[serde(default = "default_apply_to")]
    pub apply_to_segments: Vec<SegmentType>,
    /// Shift of the bed's start relative to its span's start, in seconds: positive starts
    /// later, negative earlier (extends). Default: `0.0`.
    #[serde(default)]
    pub start_offset_s: f64,
    /// Inset of the bed's end relative to its span's end, in seconds: positive ends earlier,
    /// negative later (extends). Default: `0.0`.
    #[serde(default)]
    pub end_offset_s: f64,
    /// Fade-in length, in seconds; shrunk proportionally with `fade_out_s` when the bed is
    /// shorter than both together. Default: `2.0`.
    #[serde(default = "default_bed_fade_in")]
    pub fade_in_s: f64,
    /// Fade-out length, in seconds (shrunk like `fade_in_s`). Default: `3.0`.
    #[serde(default = "default_bed_fade_out")]
    pub fade_out_s: f64,
    /// Bed level, in dB relative to the asset. Default: `-15.0`.
    #[serde(default = "default_bed_volume")]
    pub volume_db: f64,
    /// Length of the equal-power crossfade that joins the asset's end to its start when it
    /// loops, in seconds; clamped to a quarter of the asset. Default: `1.0`.
    #[serde(default = "default_loop_crossfade")]
    pub loop_crossfade_s: f64,
    /// Ducking under speech. Default: see [`DuckingOptions`].
    #[serde(default)]
    pub ducking: DuckingOptions,
}

fn default_apply_to() -> Vec<SegmentType> {
    vec![SegmentType::Content]
}
fn default_bed_fade_in() -> f64 {
    2.0
}
fn default_bed_fade_out() -> f64 {
    3.0
}
fn default_bed_volume() -> f64 {
    -15.0
}
fn default_loop_crossfade() -> f64 {
    1.0
}

impl BedRule {
    /// A bed playing `asset` under content, everything else at its default.
    pub fn new(asset: impl Into<String>) -> Self {
        Self {
            asset: asset.into(),
            apply_to_segments: default_apply_to(),
            start_offset_s: 0.0,
            end_offset_s: 0.0,
            fade_in_s: default_bed_fade_in(),
            fade_out_s: default_bed_fade_out(),
            volume_db: default_bed_volume(),
            loop_crossfade_s: default_loop_crossfade(),
            ducking: DuckingOptions::default(),
        }
    }
}

/// How per-segment levels are matched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelingMode {
    /// No leveling: segments play at their `gain_db`.
    Off,
    /// Each leveled segment's integrated loudness is matched to the content's (the host's
    /// speech loudness, gated per BS.1770).
    #[default]
    MatchContent,
    /// The old backend's rule: each leveled segment's mean (RMS) level is brought to
    /// `legacy_target_dbfs`, the gain capped at ±`legacy_max_gain_db`.
    Legacy,
}

/// Matching the loudness of intros, ads and clips to the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LevelingOptions {
    /// The rule. Default: `"match_content"`.
    pub mode: LevelingMode,
    /// Segment types leveled unless a segment's `level` says otherwise.
    /// Default: `["intro", "outro", "commercial"]`.
    pub apply_to_segments: Vec<SegmentType>,
    /// Largest boost or cut `match_content` applies, in dB. Default: `12.0`.
    pub max_gain_db: f64,
    /// Mean level `legacy` aims for, in dBFS. Default: `-18.0`.
    pub legacy_target_dbfs: f64,
    /// Largest boost or cut `legacy` applies, in dB. Default: `9.0`.
    pub legacy_max_gain_db: f64,
}

impl Default for LevelingOptions {
    fn default() -> Self {
        Self {
            mode: LevelingMode::MatchContent,
            apply_to_segments: vec![
                SegmentType::Intro,
                SegmentType::Outro,
                SegmentType::Commercial,
            ],
            max_gain_db: 12.0,
            legacy_target_dbfs: -18.0,
            legacy_max_gain_db: 9.0,
        }
    }
}

/// A show template: the running order, timing, music beds and leveling.
///
/// ```
/// use assembly_core::arrange::Template;
///
/// let t: Template = serde_json::from_str(r#"{
///     "segments": [
///         {"segment_type": "intro", "asset": "intro", "crossfade_s": 0.0},
///         {"segment_type": "content", "asset": "content"},
///         {"segment_type": "outro", "asset": "outro", "fade_out_s": 2.0}
///     ],
///     "timing": {"content_start_offset_s": -1.5},
///     "background_music_rules": [{"asset": "bed", "volume_db": -18.0}]
/// }"#).unwrap();
/// t.validate().unwrap();
/// assert_eq!(t.background_music_rules[0].fade_out_s, 3.0); // documented default
/// assert_eq!(t.segment_id(1), "content-1");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The running order. No default: at least one segment is required.
    pub segments: Vec<Segment>,
    /// Content and outro offsets. Default: all `0.0`.
    #[serde(default)]
    pub timing: Timing,
    /// Music beds. Default: none.
    #[serde(default)]
    pub background_music_rules: Vec<BedRule>,
    /// Leveling of non-content segments. Default: see [`LevelingOptions`].
    #[serde(default)]
    pub leveling: LevelingOptions,
}

/// Largest absolute value accepted for any time field, in seconds (24 hours).
const MAX_SECONDS: f64 = 86_400.0;
/// Largest absolute gain accepted, in dB.
const MAX_GAIN_DB: f64 = 96.0;

fn check_time(field: impl FnOnce() -> String, v: f64, allow_negative: bool) -> Result<()> {
    if !v.is_finite() || v.abs() > MAX_SECONDS || (!allow_negative && v < 0.0) {
        let range = if allow_negative { "-86400..=86400" } else { "0..=86400" };
        return Err(Error::invalid_input(field(), format!("must be in {range} s, got {v}")));
    }
    Ok(())
}

fn check_db(field: impl FnOnce() -> String, v: f64, lo: f64, hi: f64) -> Result<()> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(Error::invalid_input(field(), format!("must be in {lo}..={hi} dB, got {v}")));
    }
    Ok(())
}

impl Template {
    /// A template of just these segments (no beds, default timing and leveling).
    pub fn new(segments: Vec<Segment>) -> Self {
        Self {
            segments,
            timing: Timing::default(),
            background_music_rules: Vec::new(),
            leveling: LevelingOptions::default(),
        }
    }

    /// The id of segment `index`: its `id`, or `"<type>-<index>"`. Panics if out of range.
    pub fn segment_id(&self, index: usize) -> String {
        let s = &self.segments[index];
        s.id.clone().unwrap_or_else(|| format!("{}-{index}", s.segment_type.as_str()))
    }

    /// Whether leveling applies to segment `index`. Panics if out of range.
    pub fn is_leveled(&self, index: usize) -> bool {
        let s = &self.segments[index];
        s.level.unwrap_or_else(|| self.leveling.apply_to_segments.contains(&s.segment_type))
    }

    /// Checks every value that needs no audio.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the first offending field as a path
    /// (`"template.segments[2].fade_in_s"`): no segments, an empty or duplicate id or asset,
    /// a non-finite or out-of-range time or gain.
    pub fn validate(&self) -> Result<()> {
        if self.segments.is_empty() {
            return Err(Error::invalid_input("template.segments", "at least one is required"));
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, s) in self.segments.iter().enumerate() {
            let f = |name: &str| format!("template.segments[{i}].{name}");
            let id = self.segment_id(i);
            if id.trim().is_empty() {
                return Err(Error::invalid_input(f("id"), "must not be empty"));
            }
            if !ids.insert(id.clone()) {
                return Err(Error::invalid_input(f("id"), format!("duplicate segment id {id:?}")));
            }
            if s.asset.trim().is_empty() {
                return Err(Error::invalid_input(f("asset"), "must not be empty"));
            }
            check_db(|| f("gain_db"), s.gain_db, -MAX_GAIN_DB, MAX_GAIN_DB)?;
            check_time(|| f("fade_in_s"), s.fade_in_s, false)?;
            check_time(|| f("fade_out_s"), s.fade_out_s, false)?;
            check_time(|| f("crossfade_s"), s.crossfade_s, false)?;
        }
        check_time(
            || "template.timing.content_start_offset_s".into(),
            self.timing.content_start_offset_s,
            true,
        )?;
        check_time(
            || "template.timing.outro_start_offset_s".into(),
            self.timing.outro_start_offset_s,
            true,
        )?;
        for (i, r) in self.background_music_rules.iter().enumerate() {
            let f = |name: &str| format!("template.background_music_rules[{i}].{name}");
            if r.asset.trim().is_empty() {
                return Err(Error::invalid_input(f("asset"), "must not be empty"));
            }
            if r.apply_to_segments.is_empty() {
                return Err(Error::invalid_input(f("apply_to_segments"), "names no segment type"));
            }
            check_time(|| f("start_offset_s"), r.start_offset_s, true)?;
            check_time(|| f("end_offset_s"), r.end_offset_s, true)?;
            check_time(|| f("fade_in_s"), r.fade_in_s, false)?;
            check_time(|| f("fade_out_s"), r.fade_out_s, false)?;
            check_time(|| f("loop_crossfade_s"), r.loop_crossfade_s, false)?;
            check_db(|| f("volume_db"), r.volume_db, -MAX_GAIN_DB, MAX_GAIN_DB)?;
            check_db(|| f("ducking.depth_db"), r.ducking.depth_db, 0.0, MAX_GAIN_DB)?;
            for (name, v) in [
                ("attack_ms", r.ducking.attack_ms),
                ("release_ms", r.ducking.release_ms),
                ("lookahead_ms", r.ducking.lookahead_ms),
                ("hold_ms", r.ducking.hold_ms),
            ] {
                if v > 60_000 {
                    return Err(Error::invalid_input(
                        f(&format!("ducking.{name}")),
                        format!("must be at most 60000 ms, got {v}"),
                    ));
                }
            }
        }
        let l = &self.leveling;
        check_db(|| "template.leveling.max_gain_db".into(), l.max_gain_db, 0.0, 48.0)?;
        check_db(
            || "template.leveling.legacy_target_dbfs".into(),
            l.legacy_target_dbfs,
            -60.0,
            0.0,
        )?;
        check_db(
            || "template.leveling.legacy_max_gain_db".into(),
            l.legacy_max_gain_db,
            0.0,
            48.0,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let r: BedRule = serde_json::from_str(r#"{"asset":"bed"}"#).unwrap();
        assert_eq!(r.fade_in_s, 2.0);
        assert_eq!(r.fade_out_s, 3.0);
        assert_eq!(r.volume_db, -15.0);
        assert_eq!(r.start_offset_s, 0.0);
        assert_eq!(r.apply_to_segments, vec![SegmentType::Content]);
        assert_eq!(r, BedRule::new("bed"));
        let d = DuckingOptions::default();
        assert_eq!((d.attack_ms, d.release_ms, d.lookahead_ms, d.hold_ms), (150, 500, 100, 1000));
        let s: Segment =
            serde_json::from_str(r#"{"segment_type":"sound_effect","asset":"x"}"#).unwrap();
        assert_eq!(s, Segment::new(SegmentType::SoundEffect, "x"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = serde_json::from_str::<Template>(
            r#"{"segments":[{"segment_type":"intro","asset":"a","gain":3}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `gain`"), "{e}");
        let e = serde_json::from_str::<Template>(r#"{"segments":[],"timng":{}}"#).unwrap_err();
        assert!(e.to_string().contains("timng"), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let mut t = Template::new(vec![
            Segment::new(SegmentType::Intro, "i"),
            Segment::new(SegmentType::Content, "c"),
        ]);
        t.validate().unwrap();
        t.segments[1].fade_in_s = f64::NAN;
        let e = t.validate().unwrap_err().to_string();
        assert!(e.contains("template.segments[1].fade_in_s"), "{e}");
        t.segments[1].fade_in_s = 0.0;
        t.segments[1].id = Some("intro-0".into());
        let e = t.validate().unwrap_err().to_string();
        assert!(e.contains("duplicate segment id"), "{e}");
        t.segments[1].id = None;
        t.background_music_rules.push(BedRule::new("bed"));
        t.background_music_rules[0].ducking.depth_db = -3.0;
        let e = t.validate().unwrap_err().to_string();
        assert!(e.contains("background_music_rules[0].ducking.depth_db"), "{e}");
        assert!(Template::new(vec![]).validate().is_err());
    }
}
