//! Load stage: decode inputs and convert them to the working rate and channel layout.

mod remix;
mod resample;
mod working;

pub use remix::{ChannelLayout, MAX_UPMIX_CHANNELS, remix, remix_layout};
pub use resample::{MAX_RATE_RATIO, ResampleMethod, Resampler, resample, resampled_len};
pub use working::{WorkingFormat, to_working_format};
