//! Decode benchmarks: MP3 (128 kbit/s) and FLAC of 60 s of synthesized stereo speech, decoded
//! from memory. The encoded bytes are made once, outside the timer.
//!
//! Throughput is in frames, so criterion's `elem/s` divided by 44 100 is the x-realtime factor.

use std::hint::black_box;
use std::num::NonZeroU32;

use assembly_core::encode::{self, OutputFormat, Tags};
use assembly_core::load::{self, DecodeOptions};
use assembly_core::{AudioBuffer, CancelToken, synth};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const RATE: u32 = 44_100;
const SECONDS: usize = 60;

fn encoded(format: &OutputFormat) -> Vec<u8> {
    let rate = NonZeroU32::new(RATE).unwrap();
    let frames = RATE as usize * SECONDS;
    let left = synth::speech_like(rate, 1, -20.0, frames);
    let right = synth::speech_like(rate, 2, -22.0, frames);
    let buf = AudioBuffer::from_planar(rate, vec![left, right]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("in.{}", format.extension()));
    encode::write_file(&path, &buf, format, &Tags::default()).unwrap();
    std::fs::read(path).unwrap()
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    group.throughput(Throughput::Elements((RATE as usize * SECONDS) as u64));
    let opts = DecodeOptions::default();
    let cancel = CancelToken::new();
    for (name, format) in
        [("mp3_128k", OutputFormat::mp3_cbr(128)), ("flac16", OutputFormat::Flac { bits: 16 })]
    {
        let bytes = encoded(&format);
        group.bench_function(name, |b| {
            b.iter(|| black_box(load::decode_bytes(&bytes, &opts, &cancel).unwrap()));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
