//! Load stage: decode any supported input into one planar `f32` [`AudioBuffer`](crate::AudioBuffer).
//!
//! Decoding uses symphonia 0.6 (the only place it is imported). The container is detected
//! from the content, never from the file name; limits are checked against the header before
//! any large allocation; corrupt packets are skipped, counted and reported; every call into
//! the decoder is guarded so a panic on hostile input becomes an [`Error`](crate::Error).
//! See `docs/decoding.md` for the supported formats and the exact rules.

mod decode;
mod probe;

pub use decode::{DecodeOptions, Decoded, decode_bytes, decode_file, probe_bytes, probe_file};
pub use probe::{ProbeInfo, TagEntry};
