//! The block renderer: a whole templated episode mastered into a sink; determinism,
//! block-size independence, random access, cancellation and progress.

use std::num::NonZeroU32;

use assembly_core::analyze::loudness::measure;
use assembly_core::arrange::{BedRule, Segment, SegmentType, Template, level_segments, place};
use assembly_core::master::MasterOptions;
use assembly_core::render::{Mix, RenderOptions, Sources, render_mastered};
use assembly_core::{AudioBuffer, CancelToken, Error, FrameSource, synth};

const R: NonZeroU32 = NonZeroU32::new(44_100).unwrap();

struct Assets {
    intro: AudioBuffer,
    talk: AudioBuffer,
    outro: AudioBuffer,
    bed: AudioBuffer,
}

fn assets() -> Assets {
    Assets {
        intro: synth::multi(R, synth::music_like(R, 1, -14.0, 44_100 * 8), 2),
        talk: synth::mono(R, synth::speech_like(R, 2, -26.0, 44_100 * 60)),
        outro: synth::multi(R, synth::music_like(R, 3, -16.0, 44_100 * 6), 2),
        bed: synth::multi(R, synth::music_like(R, 4, -20.0, 44_100 * 7), 2),
    }
}

fn template() -> Template {
    let mut t = Template::new(vec![
        Segment { fade_out_s: 1.5, ..Segment::new(SegmentType::Intro, "intro") },
        Segment::new(SegmentType::Content, "talk"),
        Segment { crossfade_s: 0.5, ..Segment::new(SegmentType::Outro, "outro") },
    ]);
    t.timing.content_start_offset_s = -1.0;
    t.background_music_rules.push(BedRule::new("bed"));
    t
}

fn render_episode(a: &Assets, opts: &RenderOptions) -> (AudioBuffer, u64) {
    let mut sources = Sources::new();
    sources.insert("intro", &a.intro).insert("talk", &a.talk).insert("outro", &a.outro);
    sources.insert("bed", &a.bed);
    let t = template();
    let arr = place(&t, R, |id| sources.frames(id)).unwrap();
    let lev = level_segments(&t, &arr, |id| sources.get(id), 2, &CancelToken::new()).unwrap();
    // Speech activity: the content's placement, in 400 ms "words" with 150 ms gaps.
    let c = arr.placement("content-1").unwrap();
    let speech: Vec<_> = (c.start_frame..c.end_frame)
        .step_by(24_255)
        .map(|s| s..(s + 17_640).min(c.end_frame))
        .collect();
    let mix = Mix::new(&arr, &sources, 2, &lev.gains, &speech).unwrap();
    let mut out = AudioBuffer::silence(R, 2, 0).unwrap();
    let mut last = 0.0;
    let mut calls = 0;
    let report = render_mastered(
        &mix,
        &MasterOptions::default(),
        opts,
        |b| out.append(b),
        &CancelToken::new(),
        &mut |f| {
            assert!(f >= last && f <= 1.0, "progress went from {last} to {f}");
            last = f;
            calls += 1;
        },
    )
    .unwrap();
    assert_eq!(last, 1.0);
    assert!(calls > 10);
    assert_eq!(report.outcome.frames, arr.total_frames);
    (out, arr.total_frames)
}

#[test]
fn a_templated_episode_masters_to_target_deterministically() {
    let a = assets();
    let (out, total) = render_episode(&a, &RenderOptions::default());
    assert_eq!(out.frames() as u64, total);
    assert_eq!(total, (8 + 60 - 1 + 6) * 44_100 - 22_050);
    let l = measure(&out).unwrap();
    println!("episode: {l:?}");
    assert!((l.integrated_lufs + 16.0).abs() <= 0.3, "{l:?}");
    assert!(l.true_peak_dbtp <= -1.0, "{l:?}");
    // Same inputs, same output, whatever the block size.
    let (again, _) = render_episode(&a, &RenderOptions::default());
    assert!(out == again, "two renders differ");
    let (small, _) =
        render_episode(&a, &RenderOptions { block_frames: 1024, ..Default::default() });
    assert!(out == small, "block size changed the output");
}

#[test]
fn mix_reads_are_consistent_at_any_position() {
    let a = assets();
    let mut sources = Sources::new();
    sources.insert("intro", &a.intro).insert("talk", &a.talk).insert("outro", &a.outro);
    sources.insert("bed", &a.bed);
    let arr = place(&template(), R, |id| sources.frames(id)).unwrap();
    let mix = Mix::new(&arr, &sources, 2, &[], &[0..1000, 400_000..900_000]).unwrap();
    let n = mix.frames() as usize;
    let mut whole = vec![vec![0.0f32; n]; 2];
    {
        let mut refs: Vec<&mut [f32]> = whole.iter_mut().map(|p| p.as_mut_slice()).collect();
        mix.read(0, &mut refs);
    }
    let mut rng = synth::Rng::new(3);
    for _ in 0..40 {
        let start = (rng.next_f64() * n as f64) as usize;
        let len = 1 + (rng.next_f64() * 20_000.0) as usize;
        let mut l = vec![1.0f32; len];
        let mut r = vec![1.0f32; len];
        mix.read(start as u64, &mut [&mut l, &mut r]);
        let end = (start + len).min(n);
        assert_eq!(&l[..end - start], &whole[0][start..end], "at {start}+{len}");
        assert_eq!(&r[..end - start], &whole[1][start..end]);
        assert!(l[end - start..].iter().all(|&s| s == 0.0), "past the end must be zeros");
    }
}

#[test]
fn cancellation_stops_the_render_with_cancelled() {
    let prog = synth::multi(R, synth::speech_like(R, 9, -20.0, 44_100 * 20), 2);
    let cancel = CancelToken::new();
    let mut blocks = 0;
    let c2 = cancel.clone();
    let err = render_mastered(
        &prog,
        &MasterOptions::default(),
        &RenderOptions::default(),
        |_| Ok(()),
        &cancel,
        &mut |_| {
            blocks += 1;
            if blocks == 5 {
                c2.cancel();
            }
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert_eq!(blocks, 5);
}

#[test]
fn sink_errors_propagate_and_bad_options_are_rejected() {
    let prog = synth::multi(R, synth::speech_like(R, 9, -20.0, 44_100 * 3), 2);
    let err = render_mastered(
        &prog,
        &MasterOptions::default(),
        &RenderOptions::default(),
        |_| Err(Error::encode("/tmp/x.mp3", "disk full")),
        &CancelToken::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    let err = render_mastered(
        &prog,
        &MasterOptions::default(),
        &RenderOptions { block_frames: 10, ..Default::default() },
        |_| Ok(()),
        &CancelToken::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("render.block_frames"), "{err}");
}
