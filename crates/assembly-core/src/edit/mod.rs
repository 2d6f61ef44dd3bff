//! Edit stage: transcript-driven cleaning on the content's source timeline.
//!
//! [`plan`] turns the content audio, an optional [`Transcript`] and [`CleanupOptions`] into
//! an [`EditPlan`]: removed ranges with a reason (filler, pause, retake, cut, sound effect),
//! replaced ranges (censor beeps), inserted clips, the refined splice points and crossfades,
//! statistics and warnings. Nothing is rendered: [`EditedAudio`] reads the edited content
//! block by block from the source, the plan and the clips, and [`EditPlan::retime`] maps the
//! transcript to the output timeline. See `docs/editing.md` for every operation and rule.
//!
//! One module per concern: `fillers`, `pauses`, `flubber`, `cuts`, `censor`, `inserts`
//! produce operations; `merge` combines them by precedence; `splice` moves cut edges to
//! quiet zero crossings and sizes crossfades; `plan` builds the serializable edit list;
//! `retime` maps times; `reader` renders.
//!
//! # Examples
//!
//! ```
//! use std::num::NonZeroU32;
//! use assembly_core::{edit, synth, FrameSource};
//! use assembly_core::transcript::{Transcript, Word};
//!
//! let rate = NonZeroU32::new(16_000).unwrap();
//! // Three "words" of tone with a 3 s silence before the last one.
//! let mut s = synth::sine(rate, 220.0, 0.3, 16_000 * 6);
//! for x in &mut s[4_800..8_000] { *x = 0.0 }   // 0.3–0.5 s gap
//! for x in &mut s[16_000..64_000] { *x = 0.0 } // 1.0–4.0 s pause
//! let words = vec![
//!     Word::new("Hello", 0.0, 0.3),
//!     Word::new("um", 0.5, 1.0),
//!     Word::new("world", 4.0, 6.0),
//! ];
//! let (t, _) = Transcript::from_words(words).unwrap();
//! let audio = synth::mono(rate, s);
//! let plan = edit::plan(&audio, Some(&t), &[], &edit::CleanupOptions::default()).unwrap();
//! assert_eq!(plan.stats.fillers_removed, 1);
//! assert_eq!(plan.stats.pauses_shortened, 1);
//! let out = edit::EditedAudio::new(&audio, &plan, &[]).unwrap();
//! assert_eq!(out.frames(), plan.output_frames);
//! assert!(out.frames() < 16_000 * 4);
//! let words = plan.retime(&t);
//! assert_eq!(words.words().len(), 2); // "um" is gone
//! ```

mod censor;
mod cuts;
mod fillers;
mod flubber;
mod inserts;
mod matcher;
mod merge;
mod options;
mod pauses;
mod plan;
mod reader;
mod retime;
mod splice;

use std::num::NonZeroU32;

pub use merge::{Fill, Reason};
pub use options::{
    CensorMode, CensorOptions, CleanupOptions, FlubberOptions, InsertClip, MsRange, PauseDetection,
    SoundEffect, SpliceOptions,
};
pub use plan::{Crossfade, EditPlan, EditStats, EntryKind, PlanEntry, PlanSegment, SegmentSource};
pub use reader::EditedAudio;
pub use retime::TimeMap;

use crate::analyze::activity::ActivityMap;
use crate::error::{Error, Result};
use crate::transcript::Transcript;
use crate::warning::Warning;
use crate::{AudioBuffer, CancelToken, FrameSource, ms_to_frames, seconds_to_frames};

/// A clip that can be inserted into the content (an inserted segment or a sound effect),
/// at the content's sample rate. Its channels are adapted when read.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    /// The id that [`InsertClip::clip`] and [`SoundEffect::clip`] refer to.
    pub id: String,
    /// The audio.
    pub audio: AudioBuffer,
}

/// A transcript word on the frame grid, with its normalized tokens.
#[derive(Clone, Debug)]
pub(crate) struct WordSpan {
    pub start: u64,
    pub end: u64,
    pub tokens: Vec<String>,
    pub text: String,
}

/// Everything the operations look at.
pub(crate) struct Ctx<'a> {
    pub audio: &'a dyn FrameSource,
    pub rate: NonZeroU32,
    pub n: u64,
    pub words: Vec<WordSpan>,
    pub activity: Option<&'a ActivityMap>,
    pub clips: &'a [Clip],
}

impl Ctx<'_> {
    pub(crate) fn ms(&self, ms: u64) -> u64 {
        ms_to_frames(ms, self.rate)
    }

    pub(crate) fn secs(&self, s: f64) -> u64 {
        seconds_to_frames(s, self.rate)
    }

    pub(crate) fn word_tokens(&self) -> Vec<Vec<String>> {
        self.words.iter().map(|w| w.tokens.clone()).collect()
    }

    pub(crate) fn clip(&self, id: &str, field: &str) -> Result<&Clip> {
        self.clips.iter().find(|c| c.id == id).ok_or_else(|| {
            Error::invalid_input(field, format!("no clip with id {id:?} was supplied"))
        })
    }

    /// Start of the first word starting at or after `pos` (or `n`), and end of the last word
    /// ending at or before `pos` (or 0): the word-gap bounds around a position.
    pub(crate) fn prev_word_end(&self, pos: u64) -> u64 {
        // The last word starting before pos limits how far left an edge may go.
        let i = self.words.partition_point(|w| w.start < pos);
        if i == 0 { 0 } else { self.words[i - 1].end.min(pos) }
    }

    pub(crate) fn next_word_start(&self, pos: u64) -> u64 {
        let i = self.words.partition_point(|w| w.end <= pos);
        self.words.get(i).map_or(self.n, |w| w.start.max(pos))
    }
}

/// Plans the edit of `audio` with `options` (see [`plan_with`]).
///
/// # Errors
///
/// As [`plan_with`].
pub fn plan(
    audio: &dyn FrameSource,
    transcript: Option<&Transcript>,
    clips: &[Clip],
    options: &CleanupOptions,
) -> Result<EditPlan> {
    plan_with(audio, transcript, clips, options, None, &CancelToken::new())
}

/// Plans the edit of `audio`: finds fillers, pauses, retakes, cuts, censored words, inserts
/// and sound effects, merges them by precedence, refines every splice and returns the plan.
/// `activity` reuses an analysis of `audio` made with `options.activity` (it is computed
/// when pauses are on and none is given). The transcript is fitted to the audio's duration
/// first (warnings in the plan).
///
/// # Errors
///
/// [`Error::InvalidInput`] naming the field for invalid options, an unknown clip id, a clip at
/// another sample rate, or an activity map of other audio; [`Error::Cancelled`].
pub fn plan_with(
    audio: &dyn FrameSource,
    transcript: Option<&Transcript>,
    clips: &[Clip],
    options: &CleanupOptions,
    activity: Option<&ActivityMap>,
    cancel: &CancelToken,
) -> Result<EditPlan> {
    options.validate()?;
    let rate = audio.sample_rate();
    for (i, c) in clips.iter().enumerate() {
        if c.audio.sample_rate() != rate {
            return Err(Error::invalid_input(
                format!("clips[{i}]"),
                format!(
                    "clip {:?} is at {} Hz, the content at {rate} Hz: resample it first",
                    c.id,
                    c.audio.sample_rate()
                ),
            ));
        }
        if clips[..i].iter().any(|o| o.id == c.id) {
            return Err(Error::invalid_input(
                format!("clips[{i}]"),
                format!("duplicate clip id {:?}", c.id),
            ));
        }
    }
    let n = audio.frames();
    let mut warnings: Vec<Warning> = Vec::new();
    let mut words = Vec::new();
    if let Some(t) = transcript {
        let mut t = t.clone();
        warnings.extend(t.fit_to_duration(n as f64 / f64::from(rate.get())));
        for w in t.words() {
            let start = seconds_to_frames(w.start_s, rate).min(n);
            let end = seconds_to_frames(w.end_s, rate).min(n).max(start);
            words.push(WordSpan {
                start,
                end,
                tokens: matcher::tokens(&w.text),
                text: w.text.clone(),
            });
        }
    }
    let owned;
    let activity = match activity {
        Some(a) => {
            if a.frames() != n || a.sample_rate() != rate {
                return Err(Error::invalid_input(
                    "activity",
                    "the activity map was made from different audio",
                ));
            }
            Some(a)
        }
        None if options.remove_pauses || options.trim_edges => {
            owned = ActivityMap::analyze_cancellable(audio, &options.activity, cancel)?;
            Some(&owned)
        }
        None => None,
    };
    cancel.check()?;
    let ctx = Ctx { audio, rate, n, words, activity, clips };

    let mut ops = Vec::new();
    ops.extend(cuts::ops(&ctx, &options.cuts_ms, Reason::Cut, "cuts_ms", &mut warnings));
    ops.extend(cuts::ops(
        &ctx,
        &options.flubber_cuts_ms,
        Reason::Flubber,
        "flubber_cuts_ms",
        &mut warnings,
    ));
    if options.flubber.enabled {
        ops.extend(flubber::ops(&ctx, &options.flubber, &options.protected_words, &mut warnings));
    }
    if options.censor.enabled {
        ops.extend(censor::ops(&ctx, &options.censor));
    }
    ops.extend(inserts::sound_effect_ops(&ctx, &options.sound_effects)?);
    if options.remove_fillers {
        ops.extend(fillers::ops(&ctx, options));
    }
    ops.extend(inserts::clip_ops(&ctx, &options.inserts, &mut warnings)?);
    let mut merged = merge::merge(&ops, &mut warnings);
    if (options.remove_pauses || options.trim_edges)
        && let Some(act) = ctx.activity
    {
        cancel.check()?;
        let pause_ops = pauses::ops(&ctx, act, &merged, options, &mut warnings);
        if !pause_ops.is_empty() {
            ops.extend(pause_ops);
            let mut ignored = Vec::new();
            merged = merge::merge(&ops, &mut ignored);
        }
    }
    cancel.check()?;
    let refined = if options.splice.refine_edges {
        splice::refine(&ctx, merged, &options.splice)
    } else {
        merged
    };
    Ok(plan::build(&ctx, refined, options, warnings))
}
