//! Non-fatal findings: repaired input, snapped positions, skipped operations.

use serde::{Deserialize, Serialize};

/// What a [`Warning`] is about, as a stable machine-readable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningCode {
    /// A word time was negative and was clamped to 0.
    NegativeTime,
    /// A word ended before it started; its end was set to its start.
    EndBeforeStart,
    /// A word had no text and was dropped.
    EmptyWord,
    /// Words were not in time order and were sorted by start.
    Unsorted,
    /// A word overlapped the next one; its end was trimmed to the next word's start.
    Overlap,
    /// A word lay (partly) past the end of the audio; it was clamped or dropped.
    PastEnd,
    /// A word had no times; they were interpolated from its neighbours.
    MissingTimes,
    /// The transcript holds more channels or alternatives than the one that was read.
    ExtraChannels,
    /// A retake keyword had no sentence break within the lookback; the cut starts at the bound.
    NoSentenceBreak,
    /// An insert position fell inside a word or a removed range and was moved.
    InsertMoved,
    /// A cut range lay (partly) outside the audio and was clipped.
    RangeClipped,
    /// An operation was dropped because a higher-precedence one covers it.
    Overridden,
    /// The pause-removal cap was reached; shorter pauses were left as they are.
    PauseCapReached,
    /// An option key was not recognised and was ignored.
    UnknownOption,
    // Load (decoding an input).
    /// The end of the file could not be read (a damaged tail); it was decoded front to back.
    UnreadableEnd,
    /// The MP4 edit list's empty edits (a start delay) were ignored.
    EmptyEditIgnored,
    /// The MP4 edit list has more than one edit; only the first was applied.
    ExtraEditsIgnored,
    /// The MP4 edit list could not be read; no encoder priming was trimmed.
    EditListUnread,
    /// The file has more tags than are kept; the rest were dropped.
    TagsDropped,
    /// The stream ends early (a truncated file?); the audio up to there was kept.
    Truncated,
    /// The stream changes format mid-file (a chained stream); only the first part was decoded.
    ChainedStream,
    /// Decoding stopped at unreadable data; the audio before it was kept.
    DamagedData,
    /// The header's channel count differs from the audio's; the audio's was used.
    ChannelMismatch,
    /// A packet could not be decoded and was replaced by silence of its length.
    CorruptPacket,
    /// More warnings of this input were left out; the message says how many.
    MoreWarnings,
    // Arrange (placing segments and beds).
    /// The first segment's crossfade has nothing to cross and was ignored.
    CrossfadeIgnored,
    /// A music bed span was empty after its offsets and was skipped.
    EmptyBed,
    // Analyze (speaker leveling).
    /// A labelled speaker had too little speech to measure and was left at its level.
    SpeakerNotLeveled,
    // Checkpoints.
    /// A stage's checkpoint could not be used (unreadable, corrupt, or of another job or
    /// library version); the stage was recomputed.
    CheckpointRecomputed,
}

/// A non-fatal finding, with a human-readable message.
///
/// ```
/// use assembly_core::{Warning, WarningCode};
/// let w = Warning::new(WarningCode::Overlap, "2 words overlapped");
/// assert_eq!(serde_json::to_string(&w).unwrap(), r#"{"code":"overlap","message":"2 words overlapped"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    /// What kind of finding this is.
    pub code: WarningCode,
    /// What happened, with counts and positions.
    pub message: String,
}

impl Warning {
    /// A warning with `code` and `message`.
    pub fn new(code: WarningCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}
