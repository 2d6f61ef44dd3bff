//! Analysis stage: loudness measurement, speech activity and silence maps, speaker leveling.

pub mod activity;
pub mod loudness;
pub mod speakers;
