//! Arrange stage: the show template, placement of segments on the episode timeline, music
//! beds with seamless loops, ducking under speech, leveling, and chapters.
//!
//! Everything here is planning: small, serializable values computed from the template and
//! the lengths (or loudness) of the audio. The [`crate::render`] module turns a plan into
//! sound.

mod chapters;
mod duck;
mod level;
mod place;
mod template;

pub use chapters::{PodcastChapter, PodcastChapters, chapters};
pub use duck::DuckingEnvelope;
pub use level::{Leveling, SegmentGain, level_segments};
pub use place::{Arrangement, BedPlacement, Placement, place};
pub use template::{
    BedRule, DuckingOptions, LevelingMode, LevelingOptions, Segment, SegmentType, Template, Timing,
};
