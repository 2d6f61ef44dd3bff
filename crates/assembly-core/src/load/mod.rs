//! Load stage: decode any supported input into one planar `f32` [`AudioBuffer`](crate::AudioBuffer),
//! then convert it to the working rate and channel layout.
//!
//! Decoding uses symphonia 0.6, with nanomp3 for MP3 (`mp3dec`) and libopus for Opus
//! (`opusdec`), both in one codec registry (`codecs`), and rate conversion rubato 5
//! (the only place any of them is imported). The container is detected from the content, never from the file name; limits
//! are checked against the header before any large allocation; corrupt packets are skipped,
//! counted and reported; every call into the decoder is guarded so a panic on hostile input
//! becomes an [`Error`](crate::Error). See `docs/decoding.md` and `docs/resampling.md`.

mod codecs;
mod decode;
mod matroska;
mod mp3dec;
mod once;
mod opusdec;
mod probe;
mod remix;
mod resample;
mod working;

pub use decode::{
    DecodeOptions, Decoded, decode_bytes, decode_file, decode_file_streaming, probe_bytes,
    probe_file,
};
pub(crate) use once::decode_each_once;
pub use probe::{ProbeInfo, TagEntry};
pub use remix::{ChannelLayout, MAX_UPMIX_CHANNELS, remix, remix_layout};
pub use resample::{MAX_RATE_RATIO, ResampleMethod, Resampler, resample, resampled_len};
pub(crate) use working::decode_file_compact;
pub use working::{WorkingFormat, into_working_format, to_working_format};
