//! Arrange stage: the show template, placement of segments on the episode timeline, music
//! beds with seamless loops, ducking under speech, leveling, and chapters.
//!
//! Everything here is planning: small, serializable values computed from the template and
//! the lengths (or loudness) of the audio. The [`crate::render`] module turns a plan into
//! sound.

mod place;
mod template;

pub use place::{Arrangement, BedPlacement, Placement, place};
pub use template::{
    BedRule, DuckingOptions, LevelingMode, LevelingOptions, Segment, SegmentType, Template, Timing,
};
