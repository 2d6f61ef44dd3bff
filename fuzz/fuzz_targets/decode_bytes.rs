//! Any bytes through `load::decode_bytes`: must return audio within the limits or an error.
//!
//! libfuzzer-sys makes every panic abort, including ones `decode_bytes` would catch inside
//! symphonia and turn into `Error::Decode`, so the fuzzer reports those too.

#![no_main]

use assembly_core::load::{DecodeOptions, decode_bytes};
use assembly_core::{CancelToken, Error, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = DecodeOptions {
        limits: Limits {
            max_duration_s: 600.0,
            max_channels: 8,
            max_file_bytes: 4 << 20,
            max_decoded_bytes: 64 << 20,
            max_corrupt_packets: 64,
            ..Limits::default()
        },
        gapless: true,
        threads: None,
    };
    match decode_bytes(data, &opts, &CancelToken::new()) {
        Ok(d) => {
            let a = &d.audio;
            let bytes = a.frames() as u64 * a.channel_count() as u64 * 4;
            assert!(bytes <= opts.limits.max_decoded_bytes, "decoded {bytes} bytes");
            assert!(a.channel_count() <= usize::from(opts.limits.max_channels));
            assert_eq!(d.info.frames, a.frames() as u64);
        }
        Err(Error::Decode { .. } | Error::UnsupportedFormat { .. } | Error::LimitExceeded { .. }) => {}
        Err(other) => panic!("unexpected error variant: {other:?}"),
    }
});
