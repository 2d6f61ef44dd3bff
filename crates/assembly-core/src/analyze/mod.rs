//! Analysis stage: loudness measurement (and, later, speech activity and silence maps).

pub mod loudness;
