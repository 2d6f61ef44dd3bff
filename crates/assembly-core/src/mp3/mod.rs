//! MPEG audio layer III bitstream facts, parsed in one place:
//!
//! - the 4-byte frame header ([`Header`]): version, bitrate, sample rate, padding, CRC flag,
//!   channel mode, and from them the frame length, samples per frame, side-information length
//!   and where the main-data slot starts;
//! - the side information a bit-reservoir model needs (`main_data_begin`, `part2_3_length`,
//!   block types) and a whole stream's main-data slots as one coordinate ([`Stream`]);
//! - the CRC-16 of the LAME tag and the Info/Xing/LAME tag layout.
//!
//! A leaf: it imports nothing from this crate, so every stage (the MP3 decoder and parallel
//! decode in `load`, the LAME output, info tag and chunk joiner in `encode`) can use it without
//! depending on another stage.

mod crc;
mod frame;
mod header;
mod tag;

pub(crate) use crc::crc16_update;
pub(crate) use frame::Stream;
pub(crate) use header::{
    ChannelMode, Header, MAX_FRAME_SAMPLES, Version, frame_info, samples_per_frame,
};
pub(crate) use tag::{LAME_EXT_LEN, XING_BYTES, XING_FRAMES, XING_LEN, XING_QUALITY, XING_TOC};
