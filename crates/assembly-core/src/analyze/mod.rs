//! Analysis stage: loudness measurement, speech activity and silence maps, speaker leveling
//! (labelled speakers) and adaptive leveling (no labels).

pub mod activity;
pub mod adaptive;
pub mod clean;
pub mod denoise;
pub mod hum;
pub mod loudness;
pub mod speakers;
