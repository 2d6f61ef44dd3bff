//! Render stage: mix + gain + true-peak limiter of a 60-minute stereo episode, no encoding.
//!
//! The episode: 60 min of mono speech-like content (built by repeating 5 synthesized
//! minutes), a stereo music intro and outro, a looping stereo bed under the content, ducked
//! under speech runs, intro/outro leveled to the content, all at 44.1 kHz, mastered to -16 LUFS / -1 dBTP.
//! Inputs are built once, outside the timer. Set `RENDER_BENCH_MINUTES` to change the
//! length. Besides criterion's statistics it prints x-realtime for each part.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::ops::Range;
use std::time::{Duration, Instant};

use assembly_core::arrange::{Template, level_segments, place};
use assembly_core::master::MasterOptions;
use assembly_core::render::{
    Mix, RenderOptions, Sources, measure_mix, plan_master, render_final, render_mastered,
};
use assembly_core::{AudioBuffer, CancelToken, FrameSource, synth};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const R: NonZeroU32 = NonZeroU32::new(44_100).unwrap();

struct Episode {
    intro: AudioBuffer,
    talk: AudioBuffer,
    outro: AudioBuffer,
    bed: AudioBuffer,
    template: Template,
}

fn minutes() -> usize {
    std::env::var("RENDER_BENCH_MINUTES").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}

fn episode() -> Episode {
    let chunk = synth::speech_like(R, 42, -24.0, 44_100 * 300);
    let total = 44_100 * 60 * minutes();
    let mut talk = Vec::with_capacity(total);
    while talk.len() < total {
        let n = (total - talk.len()).min(chunk.len());
        talk.extend_from_slice(&chunk[..n]);
    }
    let template = benches::episode_template();
    Episode {
        intro: synth::multi(R, synth::music_like(R, 1, -16.0, 44_100 * 15), 2),
        talk: synth::mono(R, talk),
        outro: synth::multi(R, synth::music_like(R, 2, -16.0, 44_100 * 20), 2),
        bed: synth::multi(R, synth::music_like(R, 3, -20.0, 44_100 * 45), 2),
        template,
    }
}

/// Speech runs: 8 s talking, 0.6 s pause (bridged), with a 2.5 s pause every 30 s.
fn speech(start: u64, end: u64) -> Vec<Range<u64>> {
    let mut v = Vec::new();
    let mut t = start;
    let mut k = 0u64;
    while t < end {
        let len = 8 * 44_100;
        v.push(t..(t + len).min(end));
        k += 1;
        t += len + if k.is_multiple_of(4) { 110_250 } else { 26_460 };
    }
    v
}

fn bench(c: &mut Criterion) {
    let ep = episode();
    let mut sources = Sources::new();
    sources.insert("intro", &ep.intro).insert("talk", &ep.talk).insert("outro", &ep.outro);
    sources.insert("bed", &ep.bed);
    let arr = place(&ep.template, R, |id| sources.frames(id)).unwrap();
    let content = arr.placement("content-1").unwrap();
    let speech = speech(content.start_frame, content.end_frame);
    let levels =
        level_segments(&ep.template, &arr, |id| sources.get(id), 2, &CancelToken::new()).unwrap();
    let mix = Mix::new(&arr, &sources, 2, &levels.gains, &speech).unwrap();
    let frames = mix.frames();
    let seconds = frames as f64 / 44_100.0;
    let opts = RenderOptions::default();
    let cancel = CancelToken::new();
    let master = MasterOptions::default();

    // One timed run of each part, printed as x-realtime.
    let t = Instant::now();
    let m = measure_mix(&mix, &opts, &cancel, &mut |_| {}).unwrap();
    let t_measure = t.elapsed();
    let t = Instant::now();
    let plan = plan_master(&mix, &m, &master, &opts, &cancel, &mut |_| {}).unwrap();
    let t_plan = t.elapsed();
    let t = Instant::now();
    let outcome = render_final(
        &mix,
        &plan,
        &opts,
        |b| {
            black_box(b);
            Ok(())
        },
        &cancel,
        &mut |_| {},
    )
    .unwrap();
    let t_final = t.elapsed();
    let t = Instant::now();
    let mut block = vec![vec![0.0f32; 8192]; 2];
    let mut pos = 0u64;
    while pos < frames {
        let mut refs: Vec<&mut [f32]> = block.iter_mut().map(|b| b.as_mut_slice()).collect();
        mix.read(pos, &mut refs);
        black_box(&block);
        pos += 8192;
    }
    let t_mix = t.elapsed();
    let x = |d: Duration| seconds / d.as_secs_f64();
    eprintln!(
        "render {:.0} min stereo @44.1k: mix only {:.2} s ({:.0}x) | measure pass {:.2} s ({:.0}x) | \
         plan {:.3} s ({} correction passes, predicted loss {:.3} LU) | final pass mix+gain+limiter \
         {:.2} s ({:.0}x, limited {} frames, max GR {:.2} dB) | total two-pass {:.2} s ({:.0}x)",
        seconds / 60.0,
        t_mix.as_secs_f64(),
        x(t_mix),
        t_measure.as_secs_f64(),
        x(t_measure),
        t_plan.as_secs_f64(),
        plan.correction_passes,
        plan.predicted_limiter_loss_lu,
        t_final.as_secs_f64(),
        x(t_final),
        outcome.limiter.limited_frames,
        outcome.limiter.max_reduction_db,
        (t_measure + t_plan + t_final).as_secs_f64(),
        x(t_measure + t_plan + t_final),
    );

    let mut g = c.benchmark_group("render");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(frames));
    g.bench_function("final_pass_mix_gain_limiter", |b| {
        b.iter(|| {
            render_final(
                &mix,
                &plan,
                &opts,
                |b| {
                    black_box(b);
                    Ok(())
                },
                &cancel,
                &mut |_| {},
            )
            .unwrap()
        })
    });
    g.bench_function("two_pass_mastered", |b| {
        b.iter(|| {
            render_mastered(
                &mix,
                &master,
                &opts,
                |b| {
                    black_box(b);
                    Ok(())
                },
                &cancel,
                &mut |_| {},
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
