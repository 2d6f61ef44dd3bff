//! Loudness metering throughput: 60 s of stereo 44.1 kHz speech-like audio.
//!
//! Throughput is in frames; divide by 44,100 for x-realtime.

use std::hint::black_box;
use std::num::NonZeroU32;

use assembly_core::analyze::loudness::LoudnessMeter;
use assembly_core::{AudioBuffer, synth};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const SECONDS: usize = 60;

fn input() -> AudioBuffer {
    let rate = NonZeroU32::new(44_100).expect("non-zero rate");
    let n = 44_100 * SECONDS;
    AudioBuffer::from_planar(
        rate,
        vec![synth::speech_like(rate, 1, -20.0, n), synth::speech_like(rate, 2, -22.0, n)],
    )
    .expect("equal-length planes")
}

fn loudness(c: &mut Criterion) {
    let buf = input();
    let mut group = c.benchmark_group("loudness");
    group.sample_size(10);
    group.throughput(Throughput::Elements(buf.frames() as u64));
    // Integrated + range + sample peak only, then with the 4x oversampled true peak.
    for (name, true_peak) in [("integrated_stereo_60s", false), ("true_peak_stereo_60s", true)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || LoudnessMeter::new(2, 44_100, true_peak).expect("valid meter"),
                |mut meter| {
                    meter.add(black_box(&buf)).expect("matching channels");
                    meter.finish().expect("meter result")
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, loudness);
criterion_main!(benches);
