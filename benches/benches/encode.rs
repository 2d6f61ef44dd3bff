//! Encode benchmarks: MP3 (LAME, 128 kbit/s CBR) and FLAC on 60 s of synthesized stereo speech.
//!
//! Throughput is in frames, so criterion's `elem/s` divided by 44 100 is the x-realtime factor.
//! CBR MP3 is encoded by worker threads; `mp3_cbr128_q5_1thread` pins it to one worker (the
//! sequential cost) and `mp3_cbr128_q5` uses one per core. Same output bytes either way.

use std::hint::black_box;
use std::num::{NonZeroU32, NonZeroUsize};

use assembly_core::encode::{self, Encoder, Mp3Bitrate, OutputFormat, Tags, WavSampleFormat};
use assembly_core::{AudioBuffer, synth};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const RATE: u32 = 44_100;
const SECONDS: usize = 60;

/// 60 s of stereo speech-like audio (two different "speakers"), built once outside the timer.
fn input() -> AudioBuffer {
    let rate = NonZeroU32::new(RATE).unwrap();
    let frames = RATE as usize * SECONDS;
    let left = synth::speech_like(rate, 1, -20.0, frames);
    let right = synth::speech_like(rate, 2, -22.0, frames);
    AudioBuffer::from_planar(rate, vec![left, right]).unwrap()
}

fn bench_encode(c: &mut Criterion) {
    let buf = input();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("encode");
    group.sample_size(10);
    group.throughput(Throughput::Elements(buf.frames() as u64));
    let cases = [
        ("mp3_cbr128_q5", OutputFormat::mp3_cbr(128)),
        ("mp3_cbr128_q2", OutputFormat::Mp3 { bitrate: Mp3Bitrate::Cbr { kbps: 128 }, quality: 2 }),
        ("flac16", OutputFormat::Flac { bits: 16 }),
        ("wav16", OutputFormat::Wav { sample_format: WavSampleFormat::Pcm16 }),
    ];
    for (name, format) in cases {
        let path = dir.path().join(format!("{name}.{}", format.extension()));
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(encode::write_file(&path, &buf, &format, &Tags::default()).unwrap())
            });
        });
    }
    // The same encoders held to one thread (MP3: one worker beside the caller; FLAC: no
    // second thread for half of each batch); the rows above use every core.
    for (name, format) in
        [("mp3_cbr128_q5", OutputFormat::mp3_cbr(128)), ("flac16", OutputFormat::Flac { bits: 16 })]
    {
        let path = dir.path().join(format!("one_thread.{}", format.extension()));
        group.bench_function(format!("{name}_1thread"), |b| {
            b.iter(|| {
                let (rate, ch, tags) = (buf.sample_rate(), buf.channel_count(), Tags::default());
                let one = NonZeroUsize::new(1);
                let mut enc =
                    Encoder::create_with_threads(&path, &format, rate, ch, &tags, one).unwrap();
                enc.write(&buf).unwrap();
                black_box(enc.finish().unwrap())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
