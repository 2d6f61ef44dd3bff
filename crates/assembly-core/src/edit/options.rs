//! Cleanup options: what the edit stage removes, replaces and inserts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analyze::activity::ActivityOptions;
use crate::analyze::clean::{CleanMode, HumOptions, NoiseOptions};
use crate::analyze::speakers::{LevelingMode, LevelingOptions};
use crate::error::{Error, Result};
use crate::warning::{Warning, WarningCode};

/// Everything the edit stage does, with the backend's defaults.
///
/// Field names carry their unit (`*_ms` integer milliseconds, `*_s` seconds). The backend's
/// camelCase shape is read by [`CleanupOptions::from_backend_json`].
///
/// ```
/// use assembly_core::edit::CleanupOptions;
/// let o: CleanupOptions = serde_json::from_str(r#"{"max_pause_s": 2.0}"#).unwrap();
/// assert_eq!(o.target_pause_s, 0.5);
/// assert_eq!(o.filler_words, ["um", "uh", "er", "ah"]);
/// assert!(serde_json::from_str::<CleanupOptions>(r#"{"max_pause": 2.0}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanupOptions {
    /// Remove filler words and phrases. Default: `true`.
    pub remove_fillers: bool,
    /// Filler words and multi-word phrases, matched case- and punctuation-insensitively,
    /// longest phrase first. Default: `["um", "uh", "er", "ah"]`.
    pub filler_words: Vec<String>,
    /// A filler cut starts this much before the filler's transcribed start (transcripts tend
    /// to start words late), never before the previous word's end, in ms. Default: `60`.
    pub filler_lead_trim_ms: u32,
    /// A filler cut ends this much after the filler's transcribed end, never after the next
    /// word's start, in ms. Default: `0`.
    pub filler_tail_trim_ms: u32,
    /// Words never removed as fillers or inside a retake (matched like fillers). Default: `[]`.
    pub protected_words: Vec<String>,
    /// Shorten long pauses. Default: `true`.
    pub remove_pauses: bool,
    /// Where pauses come from. Default: `auto` (transcript gaps when there are words, else
    /// the audio).
    pub pause_detection: PauseDetection,
    /// A pause longer than this is shortened, in seconds. Default: `1.5`.
    pub max_pause_s: f64,
    /// A shortened pause keeps at least this long, in seconds. Default: `0.5`.
    pub target_pause_s: f64,
    /// A shortened pause keeps `max(target_pause_s, ratio × pause)`; `0` shortens every long
    /// pause to exactly the target. Default: `0.4`.
    pub pause_compression_ratio: f64,
    /// Cap on the audio removed by pause shortening, in percent of the input duration; the
    /// longest pauses are shortened first and the cap stops the rest. `None` = no cap.
    /// Default: `None`.
    pub max_pause_removal_pct: Option<f64>,
    /// Trim the silence (or room tone) before the content's first speech and after its last
    /// to `edge_keep_s`, removing only audio without activity. Default: `true`.
    pub trim_edges: bool,
    /// Silence kept at each edge by `trim_edges` (an edge shorter than this is left alone),
    /// in seconds, 0..=60. Default: `0.5`.
    pub edge_keep_s: f64,
    /// Retake removal by spoken keyword. Default: see [`FlubberOptions`].
    pub flubber: FlubberOptions,
    /// Explicit retake ranges to remove, in ms. Default: `[]`.
    pub flubber_cuts_ms: Vec<MsRange>,
    /// Explicit ranges to remove, in ms. Default: `[]`.
    pub cuts_ms: Vec<MsRange>,
    /// Bleeping listed words. Default: see [`CensorOptions`] (off).
    pub censor: CensorOptions,
    /// Clips inserted at source times. Default: `[]`.
    pub inserts: Vec<InsertClip>,
    /// Sound effects replacing trigger words. Default: `[]`.
    pub sound_effects: Vec<SoundEffect>,
    /// How cut edges are placed and joined. Default: see [`SpliceOptions`].
    pub splice: SpliceOptions,
    /// The silence detector used to verify and find pauses. Default: see
    /// [`ActivityOptions`](crate::analyze::activity::ActivityOptions).
    pub activity: ActivityOptions,
    /// Every labelled speaker brought to the same loudness. Default: see
    /// [`LevelingOptions`] (on when the transcript labels speakers).
    pub leveling: LevelingOptions,
    /// Noise reduction (RNNoise) of the content before it is measured. Default: see
    /// [`NoiseOptions`] (`auto`: only when the speech-to-noise ratio is below 35 dB).
    pub noise: NoiseOptions,
    /// Mains-hum removal of the content (notches on the detected harmonics). Default: see
    /// [`HumOptions`] (`auto`: only when hum is detected in the quiet parts).
    pub hum: HumOptions,
}

impl Default for CleanupOptions {
    fn default() -> Self {
        Self {
            remove_fillers: true,
            filler_words: ["um", "uh", "er", "ah"].map(String::from).to_vec(),
            filler_lead_trim_ms: 60,
            filler_tail_trim_ms: 0,
            protected_words: Vec::new(),
            remove_pauses: true,
            pause_detection: PauseDetection::Auto,
            max_pause_s: 1.5,
            target_pause_s: 0.5,
            pause_compression_ratio: 0.4,
            max_pause_removal_pct: None,
            trim_edges: true,
            edge_keep_s: 0.5,
            flubber: FlubberOptions::default(),
            flubber_cuts_ms: Vec::new(),
            cuts_ms: Vec::new(),
            censor: CensorOptions::default(),
            inserts: Vec::new(),
            sound_effects: Vec::new(),
            splice: SpliceOptions::default(),
            activity: ActivityOptions::default(),
            leveling: LevelingOptions::default(),
            noise: NoiseOptions::default(),
            hum: HumOptions::default(),
        }
    }
}

/// Where pauses are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseDetection {
    /// Transcript gaps (verified silent) when the transcript has words, else the audio.
    Auto,
    /// Gaps between transcript words, shortened only where the audio is silent.
    Transcript,
    /// Silent runs of the audio, ignoring any transcript.
    Audio,
}

/// A range of the input, in ms (`start_ms < end_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsRange {
    /// Start, in ms from the start of the input. Required.
    pub start_ms: u64,
    /// End (exclusive), in ms. Required.
    pub end_ms: u64,
}

/// Retake removal: the speaker says the keyword after a flubbed take; the take (back to the
/// previous sentence break, within a bounded lookback) and the keyword are removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlubberOptions {
    /// Look for the keyword. Default: `true`.
    pub enabled: bool,
    /// The keyword (one or more words). Default: `"flubber"`.
    pub keyword: String,
    /// Largest edit distance per word still counted as the keyword (0 = exact; transcribers
    /// write "flubber" as "flober", "blubber"). Default: `0`.
    pub max_edit_distance: u32,
    /// How far back the flubbed take may start, in seconds. Default: `15.0`.
    pub lookback_s: f64,
    /// A silence at least this long counts as a sentence break, in seconds. Default: `0.75`.
    pub break_gap_s: f64,
}

impl Default for FlubberOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            keyword: "flubber".into(),
            max_edit_distance: 0,
            lookback_s: 15.0,
            break_gap_s: 0.75,
        }
    }
}

/// What a censored word becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CensorMode {
    /// A sine beep.
    Beep,
    /// Silence.
    Silence,
}

/// Bleeping listed words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CensorOptions {
    /// Censor the listed words. Default: `false`.
    pub enabled: bool,
    /// Words and phrases to censor (matched like fillers). Default: `[]`.
    pub words: Vec<String>,
    /// Beep or silence. Default: `beep`.
    pub mode: CensorMode,
    /// Length of the replacement, in ms. Default: `250`.
    pub beep_ms: u32,
    /// Make the replacement exactly as long as the censored word instead. Default: `false`.
    pub match_word_length: bool,
    /// Beep frequency, in Hz. Default: `1000.0`.
    pub beep_freq_hz: f64,
    /// Beep peak level, in dBFS. Default: `-12.0`.
    pub beep_gain_db: f64,
    /// Fade in and out of the beep (and of the audio around it), in ms. Default: `5`.
    pub fade_ms: u32,
    /// Replace a censored word's text in re-timed transcripts with asterisks. Default: `true`.
    pub mask_transcript: bool,
}

impl Default for CensorOptions {
    fn default() -> Self {
        Self {
            enabled: false,
            words: Vec::new(),
            mode: CensorMode::Beep,
            beep_ms: 250,
            match_word_length: false,
            beep_freq_hz: 1000.0,
            beep_gain_db: -12.0,
            fade_ms: 5,
            mask_transcript: true,
        }
    }
}

/// A clip inserted into the content at a source time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsertClip {
    /// Id of the clip (see [`Clip`](super::Clip)). Required.
    pub clip: String,
    /// Where, in seconds of the input. Required.
    pub at_s: f64,
    /// Silence before the clip, in ms. Default: `500`.
    #[serde(default = "default_clip_silence_ms")]
    pub silence_before_ms: u32,
    /// Silence after the clip, in ms. Default: `500`.
    #[serde(default = "default_clip_silence_ms")]
    pub silence_after_ms: u32,
    /// Move the position out of a word to the nearest word gap. Default: `true`.
    #[serde(default = "default_true")]
    pub snap_to_word_gap: bool,
}

fn default_clip_silence_ms() -> u32 {
    500
}

fn default_true() -> bool {
    true
}

/// A sound effect that replaces every occurrence of a trigger word or phrase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoundEffect {
    /// The trigger (matched like fillers). Required.
    pub trigger: String,
    /// Id of the effect clip. Required.
    pub clip: String,
}

/// How cut edges are placed and joined.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpliceOptions {
    /// Move each cut edge to the quietest short window nearby, then to a zero crossing.
    /// `false` keeps edges exactly where the operations put them ("exact-span mode"; the
    /// crossfade still applies and does not change any length). Default: `true`.
    pub refine_edges: bool,
    /// How far an edge may move, each way, in ms (never into a kept word). Default: `30`.
    pub search_ms: u32,
    /// Length of the window whose energy is minimised, in ms. Default: `5`.
    pub quiet_window_ms: u32,
    /// How far to look for a rising zero crossing, each way, in ms. Default: `5`.
    pub zero_crossing_ms: u32,
    /// Crossfade length at a join in silence, in ms. Default: `4`.
    pub min_crossfade_ms: u32,
    /// Crossfade length at a join in full-level sound, in ms. Default: `20`.
    pub max_crossfade_ms: u32,
}

impl Default for SpliceOptions {
    fn default() -> Self {
        Self {
            refine_edges: true,
            search_ms: 30,
            quiet_window_ms: 5,
            zero_crossing_ms: 5,
            min_crossfade_ms: 4,
            max_crossfade_ms: 20,
        }
    }
}

fn check(ok: bool, field: &str, detail: impl FnOnce() -> String) -> Result<()> {
    if ok { Ok(()) } else { Err(Error::invalid_input(format!("cleanup.{field}"), detail())) }
}

impl CleanupOptions {
    /// Options that cut exactly the operations' spans: no filler lead/tail trim and no edge
    /// refinement (crossfades stay; they never change a length).
    pub fn exact_span() -> Self {
        Self {
            filler_lead_trim_ms: 0,
            filler_tail_trim_ms: 0,
            splice: SpliceOptions { refine_edges: false, ..SpliceOptions::default() },
            ..Self::default()
        }
    }

    /// Checks every field's range.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the field (`cleanup.max_pause_s`, …).
    pub fn validate(&self) -> Result<()> {
        let finite_pos = |v: f64| v.is_finite() && v > 0.0;
        check(finite_pos(self.max_pause_s) && self.max_pause_s <= 3600.0, "max_pause_s", || {
            format!("must be in (0, 3600] seconds, got {}", self.max_pause_s)
        })?;
        check(
            self.target_pause_s.is_finite()
                && self.target_pause_s >= 0.0
                && self.target_pause_s <= self.max_pause_s,
            "target_pause_s",
            || {
                format!(
                    "must be in [0, max_pause_s = {}], got {}",
                    self.max_pause_s, self.target_pause_s
                )
            },
        )?;
        check((0.0..=60.0).contains(&self.edge_keep_s), "edge_keep_s", || {
            format!("must be in [0, 60] seconds, got {}", self.edge_keep_s)
        })?;
        check(
            (0.0..=1.0).contains(&self.pause_compression_ratio),
            "pause_compression_ratio",
            || format!("must be in [0, 1], got {}", self.pause_compression_ratio),
        )?;
        if let Some(p) = self.max_pause_removal_pct {
            check((0.0..=100.0).contains(&p), "max_pause_removal_pct", || {
                format!("must be in [0, 100], got {p}")
            })?;
        }
        check(self.filler_lead_trim_ms <= 1000, "filler_lead_trim_ms", || {
            format!("must be at most 1000, got {}", self.filler_lead_trim_ms)
        })?;
        check(self.filler_tail_trim_ms <= 1000, "filler_tail_trim_ms", || {
            format!("must be at most 1000, got {}", self.filler_tail_trim_ms)
        })?;
        let f = &self.flubber;
        check(
            !f.enabled || !super::matcher::tokens(&f.keyword).is_empty(),
            "flubber.keyword",
            || format!("{:?} has no letters or digits", f.keyword),
        )?;
        check(f.max_edit_distance <= 3, "flubber.max_edit_distance", || {
            format!("must be at most 3, got {}", f.max_edit_distance)
        })?;
        check(
            f.lookback_s.is_finite() && (0.0..=600.0).contains(&f.lookback_s),
            "flubber.lookback_s",
            || format!("must be in [0, 600] seconds, got {}", f.lookback_s),
        )?;
        check(f.break_gap_s.is_finite() && f.break_gap_s > 0.0, "flubber.break_gap_s", || {
            format!("must be a positive number of seconds, got {}", f.break_gap_s)
        })?;
        for (name, list) in [("flubber_cuts_ms", &self.flubber_cuts_ms), ("cuts_ms", &self.cuts_ms)]
        {
            for (i, r) in list.iter().enumerate() {
                check(r.start_ms < r.end_ms, &format!("{name}[{i}]"), || {
                    format!("start_ms {} must be before end_ms {}", r.start_ms, r.end_ms)
                })?;
            }
        }
        let c = &self.censor;
        check(c.beep_ms <= 60_000, "censor.beep_ms", || {
            format!("must be at most 60000, got {}", c.beep_ms)
        })?;
        check(c.beep_freq_hz.is_finite() && c.beep_freq_hz > 0.0, "censor.beep_freq_hz", || {
            format!("must be a positive frequency, got {}", c.beep_freq_hz)
        })?;
        check(c.beep_gain_db.is_finite() && c.beep_gain_db <= 0.0, "censor.beep_gain_db", || {
            format!("must be at most 0 dBFS, got {}", c.beep_gain_db)
        })?;
        check(c.fade_ms <= 1000, "censor.fade_ms", || {
            format!("must be at most 1000, got {}", c.fade_ms)
        })?;
        for (i, ins) in self.inserts.iter().enumerate() {
            check(ins.at_s.is_finite() && ins.at_s >= 0.0, &format!("inserts[{i}].at_s"), || {
                format!("must be a non-negative number of seconds, got {}", ins.at_s)
            })?;
            for (name, v) in [
                ("silence_before_ms", ins.silence_before_ms),
                ("silence_after_ms", ins.silence_after_ms),
            ] {
                check(v <= 60_000, &format!("inserts[{i}].{name}"), || {
                    format!("must be at most 60000, got {v}")
                })?;
            }
        }
        for (i, s) in self.sound_effects.iter().enumerate() {
            check(
                !super::matcher::tokens(&s.trigger).is_empty(),
                &format!("sound_effects[{i}].trigger"),
                || format!("{:?} has no letters or digits", s.trigger),
            )?;
        }
        let s = &self.splice;
        check(s.search_ms <= 200, "splice.search_ms", || {
            format!("must be at most 200, got {}", s.search_ms)
        })?;
        check((1..=50).contains(&s.quiet_window_ms), "splice.quiet_window_ms", || {
            format!("must be 1..=50, got {}", s.quiet_window_ms)
        })?;
        check(s.zero_crossing_ms <= 50, "splice.zero_crossing_ms", || {
            format!("must be at most 50, got {}", s.zero_crossing_ms)
        })?;
        check(
            s.min_crossfade_ms <= s.max_crossfade_ms && s.max_crossfade_ms <= 200,
            "splice.max_crossfade_ms",
            || {
                format!(
                    "need min_crossfade_ms ({}) <= max_crossfade_ms ({}) <= 200",
                    s.min_crossfade_ms, s.max_crossfade_ms
                )
            },
        )?;
        self.activity.validate()?;
        self.leveling.validate()?;
        self.noise.validate()
    }

    /// Reads the backend's camelCase cleanup options (DESIGN §5), given as JSON text, onto the
    /// defaults:
    /// `removeFillers`, `fillerWords`, `fillerLeadTrimMs`, `removePauses`, `maxPauseSeconds`,
    /// `targetPauseSeconds`, `pauseCompressionRatio`, `maxPauseRemovalPct`, `trimEdges`,
    /// `maxEdgeSilenceSeconds` (the kept edge silence, `edge_keep_s`), `flubberEnabled`,
    /// `flubberKeyword`, `flubber_cuts_ms` (also `flubberCutsMs`; items `{start_ms, end_ms}`,
    /// `{startMs, endMs}` or `[start, end]`), `censorEnabled`, `censorWords`, `censorBeepMs`,
    /// `censorBeepFreq`, `censorBeepGainDb`, `insertedClips` (items `{clip, atSeconds,
    /// silenceBeforeMs, silenceAfterMs}`), `soundEffects` (items `{trigger, clip}`), and the
    /// speaker leveling: `levelSpeakers` (bool), `levelingMaxBoostDb`, `levelingMaxCutDb`, and
    /// noise reduction: `noiseReduction` (`"auto"`, `"on"`, `"off"` or a boolean),
    /// `noiseReductionStrength` (0..1), and hum removal: `humRemoval` (`"auto"`, `"on"`,
    /// `"off"` or a boolean). A `null` value keeps the default. Keys it does not know are ignored with an
    /// [`UnknownOption`](crate::WarningCode::UnknownOption) warning each.
    ///
    /// ```
    /// use assembly_core::edit::CleanupOptions;
    /// let json = r#"{"maxPauseSeconds": 2.0, "fillerWords": ["um", "you know"]}"#;
    /// let (o, warnings) = CleanupOptions::from_backend_json(json).unwrap();
    /// assert_eq!(o.max_pause_s, 2.0);
    /// assert_eq!(o.filler_words, ["um", "you know"]);
    /// assert!(warnings.is_empty());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `json` is not a JSON object, naming the backend key when a
    /// value has the wrong type, and whatever [`CleanupOptions::validate`] finds.
    pub fn from_backend_json(json: &str) -> Result<(Self, Vec<Warning>)> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Error::invalid_input("cleanup", format!("not valid JSON: {e}")))?;
        let obj = value.as_object().ok_or_else(|| {
            Error::invalid_input("cleanup", "expected an object of cleanup options")
        })?;
        let mut o = Self::default();
        let mut warnings = Vec::new();
        for (key, v) in obj {
            if v.is_null() {
                continue;
            }
            let field = || format!("cleanup.{key}");
            match key.as_str() {
                "removeFillers" => o.remove_fillers = b(v, &field)?,
                "fillerWords" => o.filler_words = strings(v, &field)?,
                "fillerLeadTrimMs" => o.filler_lead_trim_ms = ms_u32(v, &field)?,
                "fillerTailTrimMs" => o.filler_tail_trim_ms = ms_u32(v, &field)?,
                "protectedWords" => o.protected_words = strings(v, &field)?,
                "removePauses" => o.remove_pauses = b(v, &field)?,
                "maxPauseSeconds" => o.max_pause_s = num(v, &field)?,
                "targetPauseSeconds" => o.target_pause_s = num(v, &field)?,
                "pauseCompressionRatio" => o.pause_compression_ratio = num(v, &field)?,
                "maxPauseRemovalPct" => o.max_pause_removal_pct = Some(num(v, &field)?),
                "trimEdges" => o.trim_edges = b(v, &field)?,
                "maxEdgeSilenceSeconds" => o.edge_keep_s = num(v, &field)?,
                "flubberEnabled" | "removeFlubbers" => o.flubber.enabled = b(v, &field)?,
                "flubberKeyword" => o.flubber.keyword = string(v, &field)?,
                "flubber_cuts_ms" | "flubberCutsMs" => o.flubber_cuts_ms = ranges(v, &field)?,
                "cuts_ms" | "cutsMs" => o.cuts_ms = ranges(v, &field)?,
                "censorEnabled" => o.censor.enabled = b(v, &field)?,
                "censorWords" => o.censor.words = strings(v, &field)?,
                "censorBeepMs" => o.censor.beep_ms = ms_u32(v, &field)?,
                "censorBeepFreq" => o.censor.beep_freq_hz = num(v, &field)?,
                "censorBeepGainDb" => o.censor.beep_gain_db = num(v, &field)?,
                "levelSpeakers" => {
                    o.leveling.mode =
                        if b(v, &field)? { LevelingMode::Auto } else { LevelingMode::Off };
                }
                "levelingMaxBoostDb" => o.leveling.max_boost_db = num(v, &field)?,
                "levelingMaxCutDb" => o.leveling.max_cut_db = num(v, &field)?,
                "noiseReduction" => o.noise.mode = CleanMode::parse(&field(), v)?,
                "noiseReductionStrength" => o.noise.strength = num(v, &field)?,
                "humRemoval" => o.hum.mode = CleanMode::parse(&field(), v)?,
                "insertedClips" => {
                    let items = v
                        .as_array()
                        .ok_or_else(|| Error::invalid_input(field(), "expected a list"))?;
                    o.inserts = items
                        .iter()
                        .enumerate()
                        .map(|(i, it)| insert_clip(it, &|| format!("cleanup.{key}[{i}]")))
                        .collect::<Result<_>>()?;
                }
                "soundEffects" => {
                    let items = v
                        .as_array()
                        .ok_or_else(|| Error::invalid_input(field(), "expected a list"))?;
                    o.sound_effects = items
                        .iter()
                        .enumerate()
                        .map(|(i, it)| {
                            let f = || format!("cleanup.{key}[{i}]");
                            let m = it
                                .as_object()
                                .ok_or_else(|| Error::invalid_input(f(), "expected an object"))?;
                            let get = |k: &str| {
                                m.get(k).ok_or_else(|| {
                                    Error::invalid_input(format!("{}.{k}", f()), "missing")
                                })
                            };
                            Ok(SoundEffect {
                                trigger: string(get("trigger")?, &|| format!("{}.trigger", f()))?,
                                clip: string(get("clip")?, &|| format!("{}.clip", f()))?,
                            })
                        })
                        .collect::<Result<_>>()?;
                }
                _ => warnings.push(Warning::new(
                    WarningCode::UnknownOption,
                    format!("unknown cleanup option {key:?} ignored"),
                )),
            }
        }
        o.validate()?;
        Ok((o, warnings))
    }
}

fn b(v: &Value, field: &dyn Fn() -> String) -> Result<bool> {
    v.as_bool().ok_or_else(|| Error::invalid_input(field(), "expected true or false"))
}

fn num(v: &Value, field: &dyn Fn() -> String) -> Result<f64> {
    v.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| Error::invalid_input(field(), "expected a finite number"))
}

fn ms_u32(v: &Value, field: &dyn Fn() -> String) -> Result<u32> {
    let x = num(v, field)?;
    if (0.0..=u32::MAX as f64).contains(&x) {
        Ok(x.round() as u32)
    } else {
        Err(Error::invalid_input(field(), format!("expected a non-negative number of ms, got {x}")))
    }
}

fn string(v: &Value, field: &dyn Fn() -> String) -> Result<String> {
    v.as_str().map(str::to_string).ok_or_else(|| Error::invalid_input(field(), "expected a string"))
}

fn strings(v: &Value, field: &dyn Fn() -> String) -> Result<Vec<String>> {
    let items =
        v.as_array().ok_or_else(|| Error::invalid_input(field(), "expected a list of strings"))?;
    items.iter().enumerate().map(|(i, s)| string(s, &|| format!("{}[{i}]", field()))).collect()
}

fn ranges(v: &Value, field: &dyn Fn() -> String) -> Result<Vec<MsRange>> {
    let items =
        v.as_array().ok_or_else(|| Error::invalid_input(field(), "expected a list of ranges"))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let f = || format!("{}[{i}]", field());
        let (s, e) = match it {
            Value::Array(pair) if pair.len() == 2 => (&pair[0], &pair[1]),
            Value::Object(m) => {
                let s = m.get("start_ms").or_else(|| m.get("startMs"));
                let e = m.get("end_ms").or_else(|| m.get("endMs"));
                match (s, e) {
                    (Some(s), Some(e)) => (s, e),
                    _ => return Err(Error::invalid_input(f(), "expected {start_ms, end_ms}")),
                }
            }
            _ => {
                return Err(Error::invalid_input(
                    f(),
                    "expected [start_ms, end_ms] or {start_ms, end_ms}",
                ));
            }
        };
        let start_ms = u64::from(ms_u32(s, &f)?);
        let end_ms = u64::from(ms_u32(e, &f)?);
        out.push(MsRange { start_ms, end_ms });
    }
    Ok(out)
}

fn insert_clip(v: &Value, field: &dyn Fn() -> String) -> Result<InsertClip> {
    let m = v.as_object().ok_or_else(|| Error::invalid_input(field(), "expected an object"))?;
    let sub = |k: &str| format!("{}.{k}", field());
    let clip = m
        .get("clip")
        .or_else(|| m.get("clipId"))
        .ok_or_else(|| Error::invalid_input(sub("clip"), "missing"))
        .and_then(|c| string(c, &|| sub("clip")))?;
    let at_s = match (
        m.get("atSeconds").or_else(|| m.get("at_s")),
        m.get("atMs").or_else(|| m.get("at_ms")),
    ) {
        (Some(s), _) => num(s, &|| sub("atSeconds"))?,
        (None, Some(ms)) => num(ms, &|| sub("atMs"))? / 1000.0,
        (None, None) => return Err(Error::invalid_input(sub("atSeconds"), "missing")),
    };
    let mut out = InsertClip {
        clip,
        at_s,
        silence_before_ms: default_clip_silence_ms(),
        silence_after_ms: default_clip_silence_ms(),
        snap_to_word_gap: true,
    };
    if let Some(v) = m.get("silenceMs").filter(|v| !v.is_null()) {
        let ms = ms_u32(v, &|| sub("silenceMs"))?;
        out.silence_before_ms = ms;
        out.silence_after_ms = ms;
    }
    if let Some(v) = m.get("silenceBeforeMs").filter(|v| !v.is_null()) {
        out.silence_before_ms = ms_u32(v, &|| sub("silenceBeforeMs"))?;
    }
    if let Some(v) = m.get("silenceAfterMs").filter(|v| !v.is_null()) {
        out.silence_after_ms = ms_u32(v, &|| sub("silenceAfterMs"))?;
    }
    Ok(out)
}
