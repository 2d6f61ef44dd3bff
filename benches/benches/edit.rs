//! Edit stage: planning a 60-minute episode (about 9,000 words, 200 fillers, 100 long
//! pauses) on 60 minutes of 44.1 kHz mono audio, splice refinement included; the activity
//! analysis alone; and reading the edited result block by block — from an `AudioBuffer` and
//! from the `CompactAudio` the Assembler keeps the content in (storing it is benched too).

use std::hint::black_box;
use std::num::NonZeroU32;

use assembly_core::analyze::activity::{ActivityMap, ActivityOptions};
use assembly_core::edit::{self, CleanupOptions, EditedAudio};
use assembly_core::transcript::{Transcript, Word};
use assembly_core::{CancelToken, CompactAudio, FrameSource, synth};
use criterion::{Criterion, criterion_group, criterion_main};

fn episode() -> (assembly_core::AudioBuffer, Transcript) {
    let rate = NonZeroU32::new(44_100).expect("non-zero");
    let s = synth::spoken_words(rate, 42, 3600.0, -20.0, -60.0, 200.0, 100.0);
    eprintln!(
        "synthetic episode: {} words, {} fillers, {} long pauses, {} frames",
        s.words.len(),
        s.fillers,
        s.long_pauses,
        s.samples.len()
    );
    let words = s.words.iter().map(|w| Word::new(w.text.clone(), w.start_s, w.end_s)).collect();
    let (t, _) = Transcript::from_words(words).expect("valid words");
    (synth::mono(rate, s.samples), t)
}

/// Reads a mono source whole in 4096-frame blocks, as the renderer does.
fn read_in_blocks(src: &dyn FrameSource) -> f32 {
    let mut block = vec![0.0f32; 4096];
    let mut pos = 0;
    let mut acc = 0.0f32;
    while pos < src.frames() {
        src.read(pos, &mut [block.as_mut_slice()]);
        acc += block[0];
        pos += 4096;
    }
    black_box(acc)
}

fn bench_edit(c: &mut Criterion) {
    let (audio, transcript) = episode();
    let options = CleanupOptions::default();
    let plan = edit::plan(&audio, Some(&transcript), &[], &options).expect("plan");
    eprintln!(
        "plan: {} entries, {} fillers removed, {} pauses shortened, {:.1} s removed, {} crossfades",
        plan.entries.len(),
        plan.stats.fillers_removed,
        plan.stats.pauses_shortened,
        plan.stats.removed_s,
        plan.crossfades.len()
    );
    let activity = ActivityMap::analyze(&audio, &options.activity).expect("activity");

    let mut g = c.benchmark_group("edit");
    g.sample_size(10);
    g.bench_function("plan_60min_44k1_mono", |b| {
        b.iter(|| edit::plan(black_box(&audio), Some(&transcript), &[], &options).expect("plan"))
    });
    g.bench_function("plan_60min_reusing_activity", |b| {
        b.iter(|| {
            edit::plan_with(
                black_box(&audio),
                Some(&transcript),
                &[],
                &options,
                Some(&activity),
                &CancelToken::new(),
            )
            .expect("plan")
        })
    });
    g.bench_function("activity_60min_44k1_mono", |b| {
        b.iter(|| {
            ActivityMap::analyze(black_box(&audio), &ActivityOptions::default()).expect("activity")
        })
    });
    g.bench_function("read_edited_60min_4096_blocks", |b| {
        let edited = EditedAudio::new(&audio, &plan, &[]).expect("reader");
        b.iter(|| read_in_blocks(&edited))
    });
    let compact = CompactAudio::from_buffer(&audio, 16).expect("compact");
    eprintln!(
        "compact: {} bytes, {:.2} bits a sample",
        compact.stored_bytes(),
        compact.stored_bytes() as f64 * 8.0 / audio.frames() as f64
    );
    g.bench_function("compact_store_60min", |b| {
        b.iter(|| CompactAudio::from_buffer(black_box(&audio), 16).expect("compact"))
    });
    g.bench_function("activity_60min_compact", |b| {
        b.iter(|| {
            ActivityMap::analyze(black_box(&compact), &ActivityOptions::default())
                .expect("activity")
        })
    });
    g.bench_function("read_edited_60min_compact_4096_blocks", |b| {
        let edited = EditedAudio::new(&compact, &plan, &[]).expect("reader");
        b.iter(|| read_in_blocks(&edited))
    });
    g.finish();
}

criterion_group!(benches, bench_edit);
criterion_main!(benches);
