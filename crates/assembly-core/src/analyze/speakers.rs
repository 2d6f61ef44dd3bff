//! Speaker leveling: every labelled voice of the content at the same loudness.
//!
//! Each speaker's loudness is measured on their own words (gated BS.1770 over the word spans
//! of the source content, as the meter measures a programme), and the reference is the mean
//! of the measured speakers' loudness in LUFS, weighted by their speech time (central: the
//! energy mean of all words would sit near the loudest voice and push the quiet ones into
//! the boost cap). Each speaker's gain brings them to the reference, capped
//! by `max_boost_db` / `max_cut_db`; a speaker with less than `min_speech_s` of words (or too
//! quiet to gate) keeps 0 dB, with a warning. The gains become a [`GainEnvelope`] on the
//! source timeline that moves only between words: words (of any speakers) that overlap or
//! touch form one group with one gain (the lowest of its speakers': overlapping speech is not
//! fought over, and nobody is boosted into a louder voice), and between two groups with
//! different gains the gain moves by a raised-cosine ramp of at most `ramp_ms` centred in the
//! gap. Before the first word and after the last, the nearest group's gain holds, so room
//! tone between turns gets the gain of the speech around it and never more.
//!
//! [`Leveled`] applies the envelope to a source as it is read (no copy of the content).

use std::num::NonZeroU32;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dsp::db_to_gain;
use crate::dsp::meter::LoudnessMeter;
use crate::dsp::mix::raised_cosine;
use crate::error::{Error, Result};
use crate::transcript::Transcript;
use crate::warning::{Warning, WarningCode};
use crate::{CancelToken, FrameSource};

/// When the content is leveled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelingMode {
    /// Level the speakers when the transcript labels them (the default).
    #[default]
    Auto,
    /// Leave the content's levels as recorded.
    Off,
}

/// Speaker-leveling settings (the spec's `cleanup.leveling`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LevelingOptions {
    /// `auto` (default) or `off`.
    pub mode: LevelingMode,
    /// Largest boost for a quiet speaker, dB (0..=24). Default: `12`.
    pub max_boost_db: f64,
    /// Largest cut for a loud speaker, dB (0..=24). Default: `12`.
    pub max_cut_db: f64,
    /// Speech (summed word time) a speaker needs to be measured, seconds (0.5..=600).
    /// Default: `3`.
    pub min_speech_s: f64,
    /// Longest gain ramp between words, ms (1..=1000). Default: `40`.
    pub ramp_ms: f64,
}

impl Default for LevelingOptions {
    fn default() -> Self {
        Self {
            mode: LevelingMode::Auto,
            max_boost_db: 12.0,
            max_cut_db: 12.0,
            min_speech_s: 3.0,
            ramp_ms: 40.0,
        }
    }
}

impl LevelingOptions {
    /// Checks the ranges.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `leveling.<field>`.
    pub fn validate(&self) -> Result<()> {
        let check = |name: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Error::invalid_input(
                    format!("leveling.{name}"),
                    format!("must be in {lo}..={hi}, got {v}"),
                ))
            }
        };
        check("max_boost_db", self.max_boost_db, 0.0, 24.0)?;
        check("max_cut_db", self.max_cut_db, 0.0, 24.0)?;
        check("min_speech_s", self.min_speech_s, 0.5, 600.0)?;
        check("ramp_ms", self.ramp_ms, 1.0, 1000.0)
    }
}

/// One speaker's measurement and gain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerLevel {
    /// The transcript's label.
    pub speaker: String,
    /// Words with this label.
    pub words: usize,
    /// Summed length of those words, seconds.
    pub speech_s: f64,
    /// Loudness of the speaker's words as recorded, LUFS (`null` when too quiet to gate).
    #[serde(with = "crate::dsp::finite_or_null")]
    pub loudness_lufs: f64,
    /// The gain given to the speaker's words, dB (0 when not measured).
    pub gain_db: f64,
    /// Loudness of the speaker's words after the gain, LUFS (where overlapping speech took a
    /// lower gain, those words are quieter than this).
    #[serde(with = "crate::dsp::finite_or_null")]
    pub leveled_lufs: f64,
}

/// One step of a [`GainEnvelope`]: from frame `start`, over `ramp` frames, the gain moves
/// from the previous step's level to `gain_db` (a raised cosine), then holds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GainStep {
    /// First frame of the ramp (source timeline).
    pub start: u64,
    /// Ramp length, frames (0: a step at a silent gap of zero length).
    pub ramp: u64,
    /// The level held after the ramp, dB.
    pub gain_db: f64,
}

/// A gain over a source's frames that moves only at its steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GainEnvelope {
    /// The level before the first step, dB.
    pub initial_db: f64,
    /// The steps, in order, never overlapping.
    pub steps: Vec<GainStep>,
}

impl GainEnvelope {
    /// A constant envelope.
    pub fn flat(gain_db: f64) -> Self {
        Self { initial_db: gain_db, steps: Vec::new() }
    }

    /// Whether the envelope is 0 dB everywhere.
    pub fn is_unity(&self) -> bool {
        self.initial_db == 0.0 && self.steps.iter().all(|s| s.gain_db == 0.0)
    }

    /// Lowest and highest level, dB.
    pub fn range_db(&self) -> (f64, f64) {
        self.steps.iter().fold((self.initial_db, self.initial_db), |(lo, hi), s| {
            (lo.min(s.gain_db), hi.max(s.gain_db))
        })
    }

    /// The linear gain at `frame`.
    pub fn gain_at(&self, frame: u64) -> f32 {
        let k = self.steps.partition_point(|s| s.start <= frame);
        if k == 0 {
            return db_to_gain(self.initial_db) as f32;
        }
        let s = &self.steps[k - 1];
        let to = db_to_gain(s.gain_db) as f32;
        if frame >= s.start + s.ramp {
            return to;
        }
        let from_db = if k >= 2 { self.steps[k - 2].gain_db } else { self.initial_db };
        let from = db_to_gain(from_db) as f32;
        let w = raised_cosine((frame - s.start) as f64 / s.ramp as f64) as f32;
        from + (to - from) * w
    }

    /// Multiplies `planes` (frames from `start`) by the envelope.
    pub fn apply(&self, start: u64, planes: &mut [&mut [f32]]) {
        let n = planes.first().map_or(0, |p| p.len()) as u64;
        let mut at = 0u64;
        while at < n {
            let frame = start + at;
            // The next point where the gain may change.
            let k = self.steps.partition_point(|s| s.start <= frame);
            let in_ramp = k > 0 && frame < self.steps[k - 1].start + self.steps[k - 1].ramp;
            let next = if in_ramp {
                self.steps[k - 1].start + self.steps[k - 1].ramp
            } else {
                self.steps.get(k).map_or(u64::MAX, |s| s.start)
            };
            let end = next.min(start + n) - start;
            if in_ramp {
                for i in at..end {
                    let g = self.gain_at(start + i);
                    for p in planes.iter_mut() {
                        p[i as usize] *= g;
                    }
                }
            } else {
                let g = self.gain_at(frame);
                if g != 1.0 {
                    for p in planes.iter_mut() {
                        p[at as usize..end as usize].iter_mut().for_each(|x| *x *= g);
                    }
                }
            }
            at = end;
        }
    }
}

/// The speakers' measurements and the envelope that levels them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerLeveling {
    /// What every speaker is brought to, LUFS: the speech-time-weighted mean of the measured
    /// speakers' loudness.
    #[serde(with = "crate::dsp::finite_or_null")]
    pub reference_lufs: f64,
    /// Loudness of all labelled words together as recorded, LUFS.
    #[serde(with = "crate::dsp::finite_or_null")]
    pub words_lufs: f64,
    /// Every labelled speaker, in order of first word.
    pub speakers: Vec<SpeakerLevel>,
    /// The gain over the content's source frames.
    pub envelope: GainEnvelope,
}

/// Measures the labelled speakers of `transcript` on `content` and plans their gains (see the
/// module docs). `None` when no word has a speaker label or `options.mode` is `off`.
///
/// # Errors
///
/// [`Error::InvalidInput`] for bad options; [`Error::Cancelled`].
pub fn level_speakers(
    content: &dyn FrameSource,
    transcript: &Transcript,
    options: &LevelingOptions,
    cancel: &CancelToken,
) -> Result<Option<(SpeakerLeveling, Vec<Warning>)>> {
    options.validate()?;
    if options.mode == LevelingMode::Off {
        return Ok(None);
    }
    let rate = content.sample_rate();
    let frames = content.frames();
    let r = f64::from(rate.get());
    let span = |start_s: f64, end_s: f64| -> Range<u64> {
        let a = ((start_s * r).round().max(0.0) as u64).min(frames);
        let b = ((end_s * r).round().max(0.0) as u64).min(frames);
        a..b.max(a)
    };
    // Labelled words as (span, speaker index), by start.
    let mut names: Vec<String> = Vec::new();
    let mut words: Vec<(Range<u64>, usize)> = Vec::new();
    for w in transcript.words() {
        let Some(name) = w.speaker.as_deref() else { continue };
        let k = match names.iter().position(|n| n == name) {
            Some(k) => k,
            None => {
                names.push(name.to_string());
                names.len() - 1
            }
        };
        let s = span(w.start_s, w.end_s);
        if !s.is_empty() {
            words.push((s, k));
        }
    }
    if names.is_empty() {
        return Ok(None);
    }
    words.sort_by_key(|(s, k)| (s.start, s.end, *k));
    let loudness = measure_words(content, &words, names.len(), cancel)?;
    let mut warnings = Vec::new();
    let mut speakers = Vec::with_capacity(names.len());
    let mut measured = Vec::with_capacity(names.len());
    for (k, name) in names.into_iter().enumerate() {
        let (count, speech) = words
            .iter()
            .filter(|(_, s)| *s == k)
            .fold((0usize, 0u64), |(c, f), (w, _)| (c + 1, f + (w.end - w.start)));
        let speech_s = speech as f64 / r;
        let l = loudness.speakers[k];
        let ok = speech_s >= options.min_speech_s && l.is_finite();
        if !ok {
            warnings.push(Warning::new(
                WarningCode::SpeakerNotLeveled,
                format!(
                    "speaker \"{name}\": {speech_s:.1} s of words{}, left at its recorded level \
                     (leveling needs {:.1} s)",
                    if l.is_finite() { "" } else { " too quiet to measure" },
                    options.min_speech_s
                ),
            ));
        }
        measured.push(ok);
        speakers.push(SpeakerLevel {
            speaker: name,
            words: count,
            speech_s,
            loudness_lufs: l,
            gain_db: 0.0,
            leveled_lufs: l,
        });
    }
    let (sum, weight) = speakers
        .iter()
        .zip(&measured)
        .filter(|(_, ok)| **ok)
        .fold((0.0, 0.0), |(s, w), (sp, _)| (s + sp.loudness_lufs * sp.speech_s, w + sp.speech_s));
    let reference = if weight > 0.0 { sum / weight } else { f64::NEG_INFINITY };
    for (s, ok) in speakers.iter_mut().zip(&measured) {
        if *ok {
            s.gain_db =
                (reference - s.loudness_lufs).clamp(-options.max_cut_db, options.max_boost_db);
            s.leveled_lufs = s.loudness_lufs + s.gain_db;
        }
    }
    let gains: Vec<f64> = speakers.iter().map(|s| s.gain_db).collect();
    let ramp = (options.ramp_ms / 1000.0 * r).round().max(1.0) as u64;
    let envelope = envelope(&words, &gains, ramp);
    let leveling =
        SpeakerLeveling { reference_lufs: reference, words_lufs: loudness.all, speakers, envelope };
    Ok(Some((leveling, warnings)))
}

/// Integrated loudness of each speaker's words and of all words.
struct WordLoudness {
    speakers: Vec<f64>,
    all: f64,
}

fn measure_words(
    content: &dyn FrameSource,
    words: &[(Range<u64>, usize)],
    speakers: usize,
    cancel: &CancelToken,
) -> Result<WordLoudness> {
    let ch = content.channel_count();
    let rate = content.sample_rate().get();
    let mut meters: Vec<LoudnessMeter> =
        (0..speakers).map(|_| LoudnessMeter::new(ch, rate, false)).collect::<Result<_>>()?;
    let mut all = LoudnessMeter::new(ch, rate, false)?;
    const BLOCK: u64 = 65_536;
    let mut buf = vec![vec![0.0f32; BLOCK as usize]; ch];
    // The reference meter sees every frame once: a word overlapping earlier ones counts
    // there only from where they ended.
    let mut covered = 0u64;
    for (i, (w, k)) in words.iter().enumerate() {
        if i % 256 == 0 {
            cancel.check()?;
        }
        let mut at = w.start;
        while at < w.end {
            let n = (w.end - at).min(BLOCK) as usize;
            let mut outs: Vec<&mut [f32]> = buf.iter_mut().map(|p| &mut p[..n]).collect();
            content.read(at, &mut outs);
            let planes: Vec<&[f32]> = buf.iter().map(|p| &p[..n]).collect();
            meters[*k].add_planar(&planes)?;
            let skip = (covered.saturating_sub(at) as usize).min(n);
            if skip < n {
                let rest: Vec<&[f32]> = planes.iter().map(|p| &p[skip..]).collect();
                all.add_planar(&rest)?;
            }
            at += n as u64;
            covered = covered.max(at);
        }
    }
    cancel.check()?;
    let speakers =
        meters.iter().map(|m| m.finish().map(|l| l.integrated_lufs)).collect::<Result<_>>()?;
    Ok(WordLoudness { speakers, all: all.finish()?.integrated_lufs })
}

/// The envelope for `words` (sorted by start) whose speakers have `gains`: groups of
/// overlapping or touching words get the lowest of their speakers' gains; the gain moves in
/// the middle of the gap between two groups, over at most `ramp` frames.
pub(crate) fn envelope(words: &[(Range<u64>, usize)], gains: &[f64], ramp: u64) -> GainEnvelope {
    let mut groups: Vec<(Range<u64>, f64)> = Vec::new();
    for (w, k) in words {
        let g = gains[*k];
        match groups.last_mut() {
            Some((r, gg)) if w.start <= r.end => {
                r.end = r.end.max(w.end);
                *gg = gg.min(g);
            }
            _ => groups.push((w.clone(), g)),
        }
    }
    let Some(first) = groups.first() else { return GainEnvelope::flat(0.0) };
    let mut env = GainEnvelope::flat(first.1);
    let mut level = first.1;
    for pair in groups.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.1 == level {
            continue;
        }
        let gap = b.0.start - a.0.end;
        let len = ramp.min(gap);
        let start = a.0.end + (gap - len) / 2;
        env.steps.push(GainStep { start, ramp: len, gain_db: b.1 });
        level = b.1;
    }
    env
}

/// A source read through a [`GainEnvelope`] (frames count from the source's start); with no
/// envelope, the source as it is.
pub struct Leveled<'a> {
    /// The source.
    pub src: &'a dyn FrameSource,
    /// The gain over its frames.
    pub envelope: Option<&'a GainEnvelope>,
}

impl FrameSource for Leveled<'_> {
    fn sample_rate(&self) -> NonZeroU32 {
        self.src.sample_rate()
    }

    fn channel_count(&self) -> usize {
        self.src.channel_count()
    }

    fn frames(&self) -> u64 {
        self.src.frames()
    }

    fn read(&self, start: u64, out: &mut [&mut [f32]]) {
        self.src.read(start, out);
        if let Some(env) = self.envelope {
            let ch = self.src.channel_count().min(out.len());
            env.apply(start, &mut out[..ch]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_gain_moves_only_in_gaps_and_overlaps_take_the_lower_gain() {
        // Speaker 0 (+6 dB) words at 0..100 and 150..250; speaker 1 (-3 dB) at 400..500,
        // overlapping speaker 0 at 480..600; speaker 1 alone again at 700..800.
        let words = vec![(0..100, 0), (150..250, 0), (400..500, 1), (480..600, 0), (700..800, 1)];
        let env = envelope(&words, &[6.0, -3.0], 40);
        // Groups: 0..100 (+6), 150..250 (+6), 400..600 (min: -3), 700..800 (-3).
        assert_eq!(env.initial_db, 6.0);
        assert_eq!(env.steps, vec![GainStep { start: 305, ramp: 40, gain_db: -3.0 }]);
        for w in &words {
            let g: Vec<f32> = w.0.clone().map(|f| env.gain_at(f)).collect();
            assert!(g.iter().all(|&x| x == g[0]), "gain moves inside word {w:?}");
        }
        assert!(
            (env.gain_at(325) - ((db_to_gain(6.0) + db_to_gain(-3.0)) / 2.0) as f32).abs() < 1e-6
        );
        assert_eq!(env.range_db(), (-3.0, 6.0));
    }

    #[test]
    fn a_gap_shorter_than_the_ramp_takes_the_whole_gap() {
        let env = envelope(&[(0..100, 0), (110..200, 1)], &[0.0, 6.0], 40);
        assert_eq!(env.steps, vec![GainStep { start: 100, ramp: 10, gain_db: 6.0 }]);
        assert_eq!(env.gain_at(99), 1.0);
        assert_eq!(env.gain_at(110), db_to_gain(6.0) as f32);
    }

    proptest! {
        /// The envelope is continuous (no jump larger than a ramp step allows), bounded by
        /// the gains, and `apply` gives the same samples in any block size.
        #[test]
        fn envelope_is_continuous_bounded_and_block_size_free(
            gaps in proptest::collection::vec((1u64..400, 1u64..400, 0usize..3), 1..20),
            block in 1usize..700,
        ) {
            let gains = [-12.0, 0.0, 9.0];
            let mut words = Vec::new();
            let mut at = 0u64;
            for (gap, len, k) in &gaps {
                at += gap;
                words.push((at..at + len, *k));
                at += len;
            }
            let env = envelope(&words, &gains, 40);
            let n = at + 100;
            let (lo, hi) = (db_to_gain(-12.0) as f32, db_to_gain(9.0) as f32);
            let mut prev = env.gain_at(0);
            for f in 1..n {
                let g = env.gain_at(f);
                prop_assert!(g >= lo * 0.9999 && g <= hi * 1.0001);
                // Outside the ramps the gain holds; inside one it moves at most the raised
                // cosine's steepest slope (pi/2 of the step per ramp length) per frame.
                match env.steps.iter().find(|s| s.start <= f && f <= s.start + s.ramp) {
                    None => prop_assert_eq!(g, prev, "jump at {}", f),
                    Some(s) => {
                        let max = (hi - lo) * std::f32::consts::FRAC_PI_2 / s.ramp as f32;
                        prop_assert!((g - prev).abs() <= max + 1e-6, "jump at {}", f);
                    }
                }
                prev = g;
            }
            for (w, _) in &words {
                let g0 = env.gain_at(w.start);
                prop_assert!(w.clone().all(|f| env.gain_at(f) == g0), "gain moves inside {:?}", w);
            }
            let ones: Vec<f32> = vec![1.0; n as usize];
            let mut whole = ones.clone();
            env.apply(0, &mut [whole.as_mut_slice()]);
            let mut blocks = ones;
            for (i, c) in blocks.chunks_mut(block).enumerate() {
                env.apply((i * block) as u64, &mut [c]);
            }
            prop_assert_eq!(whole, blocks);
        }
    }
}
