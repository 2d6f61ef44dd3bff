//! # assembly-core
//!
//! Turns a raw podcast recording plus a show template into a finished, mastered episode.
//!
//! The pipeline runs in stages, each a module named after it: `load` (decode, resample,
//! remix), `analyze` (loudness, speech activity), `edit`, `arrange`, `master`, and `encode`
//! (WAV, FLAC, MP3 with ID3). See `docs/architecture.md` in the repository.
//!
//! All audio inside is an [`AudioBuffer`]: planar `f32` with a non-zero rate and channel count.

pub mod analyze;
pub mod arrange;
mod assembler;
mod atomic;
mod buffer;
mod cancel;
mod checkpoint;
mod compact;
mod dsp;
pub mod edit;
pub mod encode;
mod error;
mod limits;
pub mod load;
pub mod master;
mod meta;
mod mp3;
mod par;
mod predict;
mod progress;
pub mod render;
pub mod review;
mod source;
mod spec;
#[doc(hidden)]
pub mod synth;
pub mod transcript;
mod warning;

pub use assembler::{Assembler, OutputReport, OutputResult, Plan, Report};
pub use atomic::{AtomicFile, write_atomic};
pub use buffer::{AudioBuffer, frames_to_ms, ms_to_frames, seconds_to_frames};
pub use cancel::CancelToken;
pub use compact::{CompactAudio, CompactBuilder};
pub use error::{BoxError, Error, Result, SpecProblem};
pub use limits::Limits;
pub use meta::Chapter;
pub use progress::{NoProgress, ProgressEvent, ProgressSink, Stage};
pub use source::FrameSource;
pub use spec::{CONTENT_ASSET, OutputSpec, SPEC_VERSION, Spec, TagSpec, TranscriptInput};
pub use warning::{Warning, WarningCode};
