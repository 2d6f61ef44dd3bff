//! Transcripts: a word-timed model, adapters for the providers' formats, validation and
//! repair, and writers (back to the input's own shape, SRT, WebVTT).
//!
//! Every adapter declares the unit its provider uses; nothing guesses whether a number is
//! seconds or milliseconds. Times in the model are `f64` seconds (`start_s`, `end_s`); the
//! edit stage converts them to sample frames with the working rate.
//!
//! | format | adapter | unit | words from |
//! |---|---|---|---|
//! | [`TranscriptFormat::Words`] | backend word list | `start`/`end` seconds, `start_ms`/`end_ms` ms (by key) | a bare list or `{"words": [...]}` |
//! | [`TranscriptFormat::AssemblyAi`] | AssemblyAI transcript | ms | `words` |
//! | [`TranscriptFormat::Whisper`] | OpenAI Whisper / faster-whisper verbose JSON | seconds | `words`, else `segments[].words`, else segments (cue level) |
//! | [`TranscriptFormat::WhisperX`] | WhisperX aligned JSON | seconds | `segments[].words` (missing times interpolated) |
//! | [`TranscriptFormat::Deepgram`] | Deepgram pre-recorded response | seconds | `results.channels[0].alternatives[0].words` |
//! | [`TranscriptFormat::Srt`] | SubRip | `HH:MM:SS,mmm` | cues (cue level) |
//! | [`TranscriptFormat::WebVtt`] | WebVTT | `[HH:]MM:SS.mmm` | cues (cue level) |
//!
//! # Examples
//!
//! ```
//! use assembly_core::transcript::{Transcript, TranscriptFormat};
//!
//! let json = r#"[{"word": "Hello", "start": 0.0, "end": 0.1, "speaker": "A"},
//!                {"word": "world", "start_ms": 300, "end_ms": 500, "speaker": "A"}]"#;
//! let (t, warnings) = Transcript::parse(json, TranscriptFormat::Words).unwrap();
//! assert!(warnings.is_empty());
//! assert_eq!(t.words()[1].start_s, 0.3);
//! assert_eq!(t.words()[1].speaker.as_deref(), Some("A"));
//! ```

mod adapters;
mod json;
mod repair;
mod writers;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::warning::Warning;

pub use writers::CueOptions;

use json::{Doc, WordLoc};

/// One transcribed word (or, for cue-level formats, one cue), with times in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Word {
    /// The token as transcribed, punctuation included (`"Uh,"`).
    pub text: String,
    /// Start, in seconds from the start of the audio.
    pub start_s: f64,
    /// End, in seconds from the start of the audio (`>= start_s`).
    pub end_s: f64,
    /// Speaker label, when the provider diarized. Default: `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// Recognition confidence in `[0, 1]`, when given. Default: `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
}

impl Word {
    /// A word without speaker or confidence.
    pub fn new(text: impl Into<String>, start_s: f64, end_s: f64) -> Self {
        Self { text: text.into(), start_s, end_s, speaker: None, confidence: None }
    }
}

/// Which adapter reads a transcript. Serialized in snake_case (`"assemblyai"`, `"webvtt"`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TranscriptFormat {
    /// The backend's word list: `{word|text, start, end, speaker, confidence}` with `start`/`end`
    /// in seconds or `start_ms`/`end_ms` in milliseconds; a bare list or `{"words": [...]}`.
    #[serde(rename = "words")]
    Words,
    /// AssemblyAI transcript JSON (`words[]` with `text`, `start`/`end` in ms).
    #[serde(rename = "assemblyai")]
    AssemblyAi,
    /// OpenAI Whisper / faster-whisper verbose JSON (seconds; word `probability`).
    #[serde(rename = "whisper")]
    Whisper,
    /// WhisperX aligned output (seconds; words may lack times).
    #[serde(rename = "whisperx")]
    WhisperX,
    /// Deepgram pre-recorded response (seconds; `punctuated_word` preferred).
    #[serde(rename = "deepgram")]
    Deepgram,
    /// SubRip subtitles (cue level).
    #[serde(rename = "srt")]
    Srt,
    /// WebVTT captions (cue level).
    #[serde(rename = "webvtt")]
    WebVtt,
}

impl TranscriptFormat {
    /// Every format, in a fixed order.
    pub const ALL: [TranscriptFormat; 7] = [
        Self::Words,
        Self::AssemblyAi,
        Self::Whisper,
        Self::WhisperX,
        Self::Deepgram,
        Self::Srt,
        Self::WebVtt,
    ];

    /// The name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Words => "words",
            Self::AssemblyAi => "assemblyai",
            Self::Whisper => "whisper",
            Self::WhisperX => "whisperx",
            Self::Deepgram => "deepgram",
            Self::Srt => "srt",
            Self::WebVtt => "webvtt",
        }
    }
}

impl fmt::Display for TranscriptFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TranscriptFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|f| f.name()).collect();
            Error::invalid_input(
                "transcript.format",
                format!("unknown format {s:?}, expected one of {}", names.join(", ")),
            )
        })
    }
}

/// Where a transcript came from, kept so it can be written back in its own shape.
#[derive(Clone, Debug, PartialEq)]
enum Origin {
    /// Built from words in code; written back as the backend word list.
    Words,
    /// A provider's JSON document.
    Json { format: TranscriptFormat, doc: Box<Doc>, primary: Vec<usize>, cue_level: bool },
    /// SRT or WebVTT: one word per cue.
    Cues { format: TranscriptFormat },
}

/// What an adapter hands back before validation.
pub(crate) struct Parsed {
    words: Vec<Word>,
    locs: Vec<Option<WordLoc>>,
    origin: Origin,
    warnings: Vec<Warning>,
}

/// A validated transcript: words sorted by start, non-overlapping, with finite non-negative
/// times and non-empty text.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    words: Vec<Word>,
    locs: Vec<Option<WordLoc>>,
    origin: Origin,
}

impl Transcript {
    /// Parses `input` with the adapter for `format`, then validates and repairs it
    /// (see [`Transcript::from_words`] for the repairs). Returns the warnings for every repair.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the field (`transcript.words[3].start`) or line
    /// (`transcript line 12`) when the input is not in the declared format, a time is not a
    /// finite number, or a required field is missing.
    pub fn parse(input: &str, format: TranscriptFormat) -> Result<(Transcript, Vec<Warning>)> {
        let input = input.strip_prefix('\u{feff}').unwrap_or(input);
        let parsed = match format {
            TranscriptFormat::Words => adapters::backend::parse(input)?,
            TranscriptFormat::AssemblyAi => adapters::assemblyai::parse(input)?,
            TranscriptFormat::Whisper => adapters::whisper::parse(input)?,
            TranscriptFormat::WhisperX => adapters::whisperx::parse(input)?,
            TranscriptFormat::Deepgram => adapters::deepgram::parse(input)?,
            TranscriptFormat::Srt => adapters::srt::parse(input)?,
            TranscriptFormat::WebVtt => adapters::vtt::parse(input)?,
        };
        let Parsed { mut words, mut locs, origin, mut warnings } = parsed;
        warnings.extend(repair::repair(&mut words, &mut locs)?);
        Ok((Transcript { words, locs, origin }, warnings))
    }

    /// [`Transcript::parse`] on bytes that must be UTF-8 (a leading BOM is skipped).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the bytes are not UTF-8, else as [`Transcript::parse`].
    pub fn parse_bytes(
        input: &[u8],
        format: TranscriptFormat,
    ) -> Result<(Transcript, Vec<Warning>)> {
        let text = std::str::from_utf8(input)
            .map_err(|e| Error::invalid_input("transcript", format!("not UTF-8 text: {e}")))?;
        Self::parse(text, format)
    }

    /// A transcript from words built in code, validated and repaired:
    ///
    /// - a negative time is clamped to 0 ([`NegativeTime`](crate::WarningCode::NegativeTime));
    /// - an end before its start is set to the start ([`EndBeforeStart`](crate::WarningCode::EndBeforeStart));
    /// - a word whose text is empty or blank is dropped ([`EmptyWord`](crate::WarningCode::EmptyWord));
    /// - words out of order are sorted by start, stably ([`Unsorted`](crate::WarningCode::Unsorted));
    /// - a word overlapping the next has its end trimmed to the next start ([`Overlap`](crate::WarningCode::Overlap)).
    ///
    /// Warnings are aggregated per kind (a count and the first word concerned).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `words[i].start_s`/`end_s` if a time is NaN or infinite.
    pub fn from_words(mut words: Vec<Word>) -> Result<(Transcript, Vec<Warning>)> {
        let mut locs = vec![None; words.len()];
        let warnings = repair::repair(&mut words, &mut locs)?;
        Ok((Transcript { words, locs, origin: Origin::Words }, warnings))
    }

    /// The words, sorted and non-overlapping.
    pub fn words(&self) -> &[Word] {
        &self.words
    }

    /// Consumes the transcript, returning its words.
    pub fn into_words(self) -> Vec<Word> {
        self.words
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when there are no words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The format it was read from ([`TranscriptFormat::Words`] for words built in code).
    pub fn format(&self) -> TranscriptFormat {
        match &self.origin {
            Origin::Words => TranscriptFormat::Words,
            Origin::Json { format, .. } | Origin::Cues { format } => *format,
        }
    }

    /// True when each entry is a caption cue (SRT, WebVTT, Whisper without word times), not a
    /// single word.
    pub fn is_cue_level(&self) -> bool {
        match &self.origin {
            Origin::Words => false,
            Origin::Json { cue_level, .. } => *cue_level,
            Origin::Cues { .. } => true,
        }
    }

    /// Fits the words to audio of `duration_s` seconds: words starting at or after the end are
    /// dropped, words ending after it are clamped ([`PastEnd`](crate::WarningCode::PastEnd)).
    pub fn fit_to_duration(&mut self, duration_s: f64) -> Vec<Warning> {
        repair::fit_to_duration(&mut self.words, &mut self.locs, duration_s)
    }

    /// A copy re-timed by `span` (word start/end in seconds → new start/end, or `None` to drop
    /// the word) and `point` (any other time), with word text optionally replaced by `text`.
    pub(crate) fn retimed(
        &self,
        span: &dyn Fn(f64, f64) -> Option<(f64, f64)>,
        point: &dyn Fn(f64) -> f64,
        text: &dyn Fn(usize) -> Option<String>,
    ) -> Transcript {
        let mut words = Vec::with_capacity(self.words.len());
        let mut locs = Vec::with_capacity(self.words.len());
        for (i, (w, loc)) in self.words.iter().zip(&self.locs).enumerate() {
            if let Some((s, e)) = span(w.start_s, w.end_s) {
                let mut w = w.clone();
                w.start_s = s;
                w.end_s = e;
                if let Some(t) = text(i) {
                    w.text = t;
                }
                words.push(w);
                locs.push(loc.clone());
            }
        }
        let origin = match &self.origin {
            Origin::Json { format, doc, primary, cue_level } => {
                let mut doc = doc.clone();
                for sp in &mut doc.spans {
                    match span(sp.start_s, sp.end_s) {
                        Some((s, e)) => {
                            sp.start_s = s;
                            sp.end_s = e;
                        }
                        None => sp.kept = false,
                    }
                }
                for p in &mut doc.points {
                    p.value_s = point(p.value_s);
                }
                Origin::Json {
                    format: *format,
                    doc,
                    primary: primary.clone(),
                    cue_level: *cue_level,
                }
            }
            other => other.clone(),
        };
        Transcript { words, locs, origin }
    }

    /// Writes the transcript in the shape it was read in: a provider's JSON document with its
    /// words (and every other time field it carries: segments, utterances, durations) updated
    /// and removed words deleted; SRT or WebVTT text for cue formats; the backend word list
    /// (`{"words": [{"word", "start", "end", "speaker", "confidence"}]}`, seconds) for words
    /// built in code.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if the JSON cannot be serialized (it always can).
    pub fn to_native(&self) -> Result<String> {
        match &self.origin {
            Origin::Words => writers::backend_json(&self.words),
            Origin::Json { doc, primary, .. } => {
                let words: Vec<(WordLoc, f64, f64)> = self
                    .words
                    .iter()
                    .zip(&self.locs)
                    .filter_map(|(w, l)| l.clone().map(|l| (l, w.start_s, w.end_s)))
                    .collect();
                let value = doc.render(&words, primary);
                serde_json::to_string_pretty(&value)
                    .map_err(|e| Error::internal(format!("serializing transcript: {e}")))
            }
            Origin::Cues { format: TranscriptFormat::WebVtt } => {
                Ok(writers::vtt(&self.words, true, &CueOptions::default()))
            }
            Origin::Cues { .. } => Ok(writers::srt(&self.words, true, &CueOptions::default())),
        }
    }

    /// SubRip text. Word-level transcripts are grouped into cues by `options`; cue-level ones
    /// keep one cue per entry.
    pub fn to_srt(&self, options: &CueOptions) -> String {
        writers::srt(&self.words, self.is_cue_level(), options)
    }

    /// WebVTT text (speakers as `<v Speaker>` voice tags). Grouping as [`Transcript::to_srt`].
    pub fn to_vtt(&self, options: &CueOptions) -> String {
        writers::vtt(&self.words, self.is_cue_level(), options)
    }
}
