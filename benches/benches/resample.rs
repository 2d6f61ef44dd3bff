//! Resampling throughput: 60 s of stereo 44.1 kHz speech-like audio.
//!
//! Throughput is in input frames; divide by 44,100 for x-realtime.

use std::hint::black_box;
use std::num::NonZeroU32;

use assembly_core::{AudioBuffer, CancelToken, load, synth};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SECONDS: usize = 60;

fn hz(r: u32) -> NonZeroU32 {
    NonZeroU32::new(r).expect("non-zero rate")
}

/// 60 s of stereo 44.1 kHz: speech-like left, white noise right (content does not change the
/// cost, but it keeps the work honest).
fn input() -> AudioBuffer {
    let rate = hz(44_100);
    let n = 44_100 * SECONDS;
    AudioBuffer::from_planar(
        rate,
        vec![synth::speech_like(rate, 1, -20.0, n), synth::white_noise(2, 0.1, n)],
    )
    .expect("equal-length planes")
}

fn resample(c: &mut Criterion) {
    let buf = input();
    let cancel = CancelToken::new();
    let mut group = c.benchmark_group("resample");
    group.sample_size(10);
    group.throughput(Throughput::Elements(buf.frames() as u64));
    // The FFT path (every standard rate pair) and the async sinc fallback (odd ratios).
    for (name, to) in
        [("fft_44k1_to_48k_stereo_60s", 48_000), ("sinc_44k1_to_44k101_stereo_60s", 44_101)]
    {
        group.bench_function(name, |b| {
            b.iter_with_large_drop(|| load::resample(black_box(&buf), hz(to), &cancel))
        });
    }
    group.finish();
}

criterion_group!(benches, resample);
criterion_main!(benches);
