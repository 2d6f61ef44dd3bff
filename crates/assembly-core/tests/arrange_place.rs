//! Placement invariants over random templates: never a panic; either an error naming a
//! field or placements that follow the rules exactly.

use std::num::NonZeroU32;

use assembly_core::arrange::{BedRule, Segment, SegmentType, Template, place};
use assembly_core::render::{Mix, Sources};
use assembly_core::{AudioBuffer, FrameSource};
use proptest::prelude::*;

const R: NonZeroU32 = NonZeroU32::new(8_000).unwrap();

fn kind(k: u8) -> SegmentType {
    [
        SegmentType::Intro,
        SegmentType::Content,
        SegmentType::Outro,
        SegmentType::Commercial,
        SegmentType::Transition,
        SegmentType::SoundEffect,
    ][k as usize % 6]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_templates_place_by_the_rules(
        segs in prop::collection::vec((0u8..6, 0usize..4, 0.0f64..3.0, 0.0f64..2.0, 0.0f64..2.0), 1..8),
        lens in prop::collection::vec(1u64..40_000, 4),
        content_off in -5.0f64..5.0,
        outro_off in -5.0f64..5.0,
        bed in prop::option::of((0u8..6, -3.0f64..3.0, -3.0f64..3.0)),
    ) {
        let mut t = Template::new(
            segs.iter()
                .map(|&(k, a, xf, fi, fo)| Segment {
                    crossfade_s: xf,
                    fade_in_s: fi,
                    fade_out_s: fo,
                    ..Segment::new(kind(k), format!("a{a}"))
                })
                .collect(),
        );
        t.timing.content_start_offset_s = content_off;
        t.timing.outro_start_offset_s = outro_off;
        if let Some((k, so, eo)) = bed {
            let mut r = BedRule::new("a0");
            r.apply_to_segments = vec![kind(k)];
            r.start_offset_s = so;
            r.end_offset_s = eo;
            t.background_music_rules.push(r);
        }
        let len_of = |id: &str| id[1..].parse::<usize>().ok().and_then(|i| lens.get(i).copied());
        match place(&t, R, len_of) {
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("template."), "error must name a field: {}", msg);
            }
            Ok(a) => {
                let mut prev_start = 0;
                let mut cursor = 0;
                for (p, s) in a.placements.iter().zip(&t.segments) {
                    let len = len_of(&s.asset).unwrap();
                    prop_assert_eq!(p.end_frame - p.start_frame, len);
                    prop_assert!(p.start_frame >= prev_start);
                    prop_assert!(p.fade_in_frames + p.fade_out_frames <= len);
                    prop_assert!(p.crossfade_in_frames <= len && p.crossfade_out_frames <= len);
                    prev_start = p.start_frame;
                    cursor = cursor.max(p.end_frame);
                }
                for b in &a.beds {
                    prop_assert!(b.end_frame > b.start_frame);
                    prop_assert!(b.fade_in_frames + b.fade_out_frames <= b.frames());
                    prop_assert!(b.loop_crossfade_frames <= b.asset_frames / 4);
                    cursor = cursor.max(b.end_frame);
                }
                prop_assert_eq!(a.total_frames, cursor);
                // And the plan renders without panicking, to the planned length.
                let bufs: Vec<AudioBuffer> = lens
                    .iter()
                    .map(|&n| AudioBuffer::mono(R, assembly_core::synth::white_noise(n, 0.3, n as usize)))
                    .collect();
                let mut sources = Sources::new();
                for (i, b) in bufs.iter().enumerate() {
                    sources.insert(format!("a{i}"), b);
                }
                let mix = Mix::new(&a, &sources, 2, &[], &[0..1000, 5000..90_000]).unwrap();
                let n = mix.frames() as usize;
                let mut l = vec![0.0f32; n];
                let mut r = vec![0.0f32; n];
                mix.read(0, &mut [&mut l, &mut r]);
                prop_assert!(l.iter().all(|s| s.is_finite()));
            }
        }
    }
}
