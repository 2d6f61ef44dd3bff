//! Metadata shared by the decode and encode edges: chapters.

use serde::{Deserialize, Serialize};

/// A chapter on a timeline, in integer milliseconds.
///
/// ```
/// let c = assembly_core::Chapter { title: "Intro".into(), start_ms: 0, end_ms: 15_000, url: None };
/// assert_eq!(c.end_ms - c.start_ms, 15_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chapter {
    /// Chapter title.
    pub title: String,
    /// Start, in ms from the start of the audio.
    pub start_ms: u64,
    /// End (exclusive), in ms from the start of the audio.
    pub end_ms: u64,
    /// Optional link for the chapter. Default: `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}
