//! Analysis stage: loudness measurement, speech activity and silence maps.

pub mod activity;
pub mod loudness;
