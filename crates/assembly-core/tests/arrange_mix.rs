//! Arrangement rendered: placements exact to the sample, equal-power crossfades, seamless
//! bed loops, ducking depth and timing, leveling to the host's loudness.

use std::num::NonZeroU32;
use std::ops::Range;

use assembly_core::analyze::loudness::measure;
use assembly_core::arrange::{
    BedRule, DuckingOptions, LevelingMode, Segment, SegmentType, Template, level_segments, place,
};
use assembly_core::render::{Mix, Sources};
use assembly_core::synth::{self, db_to_amp};
use assembly_core::{AudioBuffer, CancelToken, FrameSource};

const R: NonZeroU32 = NonZeroU32::new(48_000).unwrap();

fn render(mix: &Mix<'_>) -> AudioBuffer {
    let n = mix.frames() as usize;
    let mut planes = vec![vec![0.0f32; n]; mix.channel_count()];
    let mut refs: Vec<&mut [f32]> = planes.iter_mut().map(|p| p.as_mut_slice()).collect();
    mix.read(0, &mut refs);
    AudioBuffer::from_planar(R, planes).unwrap()
}

fn rms_db(x: &[f32]) -> f64 {
    let e = x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64;
    10.0 * e.log10()
}

#[test]
fn overlapping_placements_land_exactly_to_the_sample() {
    // Assets are silent except for marker impulses on their first and last frames.
    let marked = |len: usize, a: f32| synth::mono(R, synth::impulses(len, &[0, len - 1], a));
    let intro = marked(100_003, 0.5);
    let talk = marked(480_011, 0.25);
    let outro = marked(70_001, 0.125);
    let mut sources = Sources::new();
    sources.insert("intro", &intro).insert("talk", &talk).insert("outro", &outro);
    let mut t = Template::new(vec![
        Segment::new(SegmentType::Intro, "intro"),
        Segment::new(SegmentType::Content, "talk"),
        Segment::new(SegmentType::Outro, "outro"),
    ]);
    t.timing.content_start_offset_s = -0.75; // 36_000 frames under the intro
    t.timing.outro_start_offset_s = 0.5; // 24_000 frames of gap
    let a = place(&t, R, |id| sources.frames(id)).unwrap();
    let mix = Mix::new(&a, &sources, 1, &[], &[]).unwrap();
    let out = render(&mix);
    let c1 = 100_003 - 36_000;
    let o = c1 + 480_011 + 24_000;
    assert_eq!(out.frames(), o + 70_001);
    let hits: Vec<(usize, f32)> = out
        .channel(0)
        .iter()
        .enumerate()
        .filter(|(_, s)| **s != 0.0)
        .map(|(i, s)| (i, *s))
        .collect();
    assert_eq!(
        hits,
        vec![
            (0, 0.5),
            (c1, 0.25),
            (100_002, 0.5),
            (c1 + 480_010, 0.25),
            (o, 0.125),
            (o + 70_000, 0.125)
        ]
    );
    assert_eq!(a.placements[1].start_ms, 1_333); // 64_003 frames at 48 kHz = 1333.4 ms
}

#[test]
fn crossfades_are_equal_power() {
    // Two independent noises crossfaded over 1 s: the power through the crossfade stays flat.
    let a_sig = synth::mono(R, synth::white_noise(1, 0.5, 48_000 * 3));
    let b_sig = synth::mono(R, synth::white_noise(2, 0.5, 48_000 * 3));
    let mut sources = Sources::new();
    sources.insert("a", &a_sig).insert("b", &b_sig);
    let t = Template::new(vec![
        Segment::new(SegmentType::Intro, "a"),
        Segment { crossfade_s: 1.0, ..Segment::new(SegmentType::Content, "b") },
    ]);
    let a = place(&t, R, |id| sources.frames(id)).unwrap();
    assert_eq!(a.total_frames, 48_000 * 5);
    let out = render(&Mix::new(&a, &sources, 1, &[], &[]).unwrap());
    let reference = rms_db(&out.channel(0)[..48_000]);
    for w in (96_000..144_000).step_by(4_800) {
        let d = rms_db(&out.channel(0)[w..w + 4_800]) - reference;
        assert!(d.abs() < 0.5, "power at frame {w} is {d:+.2} dB off");
    }
}

/// A loopable asset whose end does not match its start: a 220 Hz tone (non-integer cycles)
/// with a slow tremolo, 1.3 s long.
fn unmatched_loop() -> AudioBuffer {
    let n = 62_400;
    let s: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f64 / 48_000.0;
            (0.5 * (1.0 + 0.3 * (std::f64::consts::TAU * 0.7 * t).sin())
                * (std::f64::consts::TAU * 220.0 * t + 0.4).sin()) as f32
        })
        .collect();
    synth::multi(R, s, 2)
}

/// Largest |second difference| (a high-pass: a click shows up as a spike) in `range`.
fn max_d2(x: &[f32], range: Range<usize>) -> f64 {
    range
        .filter(|&i| i > 0 && i + 1 < x.len())
        .map(|i| f64::from(x[i + 1] - 2.0 * x[i] + x[i - 1]).abs())
        .fold(0.0, f64::max)
}

fn bed_render(loop_crossfade_s: f64) -> (AudioBuffer, u64, u64) {
    let bed = unmatched_loop();
    let talk = synth::mono(R, vec![0.0; 48_000 * 8]);
    let mut sources = Sources::new();
    sources.insert("bed", &bed).insert("talk", &talk);
    let mut t = Template::new(vec![Segment::new(SegmentType::Content, "talk")]);
    let mut rule = BedRule::new("bed");
    rule.volume_db = 0.0;
    rule.fade_in_s = 0.0;
    rule.fade_out_s = 0.0;
    rule.loop_crossfade_s = loop_crossfade_s;
    rule.ducking.enabled = false;
    t.background_music_rules.push(rule);
    let a = place(&t, R, |id| sources.frames(id)).unwrap();
    let b = &a.beds[0];
    let period = b.asset_frames - b.loop_crossfade_frames;
    (render(&Mix::new(&a, &sources, 2, &[], &[]).unwrap()), period, b.loop_crossfade_frames)
}

#[test]
fn bed_loops_have_no_discontinuity() {
    let (out, period, xf) = bed_render(0.25);
    assert_eq!(xf, 12_000);
    let x = out.channel(0);
    // Elsewhere: the middle of each pass, away from any crossfade.
    let mut elsewhere = 0.0f64;
    let mut at_loops = 0.0f64;
    let mut k = 1u64;
    while (k * period) as usize + (xf as usize) < x.len() {
        let lp = (k * period) as usize;
        // The whole crossfade plus 5 ms either side of the loop point and of its end.
        at_loops = at_loops.max(max_d2(x, lp - 240..lp + xf as usize + 240));
        elsewhere =
            elsewhere.max(max_d2(x, lp + xf as usize + 2_000..lp + period as usize - 2_000));
        k += 1;
    }
    assert!(k >= 5, "expected several loops in 8 s, got {k}");
    println!("max |d2|: loops {at_loops:.5}, elsewhere {elsewhere:.5}");
    assert!(at_loops <= elsewhere * 1.5, "loop {at_loops} vs elsewhere {elsewhere}");
    // The same bed restarted without a crossfade clicks: the test can see a discontinuity.
    let (hard, period, _) = bed_render(0.0);
    let x = hard.channel(0);
    let lp = period as usize;
    let click = max_d2(x, lp - 240..lp + 240);
    assert!(click > elsewhere * 20.0, "a hard restart should click: {click} vs {elsewhere}");
}

#[test]
fn ducking_depth_lookahead_hold_and_release() {
    // A steady 1 kHz bed at 0 dB; speech runs given on the episode timeline.
    let bed = synth::multi(R, synth::sine(R, 1000.0, 0.5, 48_000 * 4), 2);
    let talk = synth::mono(R, vec![0.0; 48_000 * 20]);
    let mut sources = Sources::new();
    sources.insert("bed", &bed).insert("talk", &talk);
    let mut t = Template::new(vec![Segment::new(SegmentType::Content, "talk")]);
    let mut rule = BedRule::new("bed");
    rule.volume_db = 0.0;
    rule.fade_in_s = 0.0;
    rule.fade_out_s = 0.0;
    rule.loop_crossfade_s = 0.0; // 4 s of 1 kHz at 48 kHz loops seamlessly anyway
    rule.ducking = DuckingOptions {
        enabled: true,
        depth_db: 12.0,
        attack_ms: 200,
        release_ms: 600,
        lookahead_ms: 150,
        hold_ms: 1000,
    };
    t.background_music_rules.push(rule);
    let a = place(&t, R, |id| sources.frames(id)).unwrap();
    let ms = |v: u64| v * 48;
    // Words 5.0-6.0 s and 6.5-7.5 s (0.5 s gap: bridged), then 12.0-14.0 s.
    let speech = [ms(5_000)..ms(6_000), ms(6_500)..ms(7_500), ms(12_000)..ms(14_000)];
    let out = render(&Mix::new(&a, &sources, 2, &[], &speech).unwrap());
    let x = out.channel(0);
    let full = rms_db(&x[..ms(4_000) as usize]);
    let level =
        |from_ms: u64, to_ms: u64| rms_db(&x[ms(from_ms) as usize..ms(to_ms) as usize]) - full;
    // Every 50 ms window from the first word to the last of the run (gap included): -12 ±1 dB.
    for w in (5_000..7_500).step_by(50) {
        let l = level(w, w + 50);
        assert!((l + 12.0).abs() <= 1.0, "window at {w} ms: {l:+.2} dB");
    }
    // Fully down before the first word: the lookahead window [4.85 s, 5.0 s).
    assert!((level(4_850, 5_000) + 12.0).abs() <= 1.0, "{}", level(4_850, 5_000));
    // Untouched before the dip starts (4.65 s).
    assert!(level(4_550, 4_650).abs() <= 0.1, "{}", level(4_550, 4_650));
    // Back to full within the release: from 7.5 + 0.6 s on.
    assert!(level(8_100, 8_200).abs() <= 0.1, "{}", level(8_100, 8_200));
    assert!(level(7_500, 7_600) < -6.0, "still recovering right after the last word");
    // The second run dips too.
    assert!((level(12_000, 14_000) + 12.0).abs() <= 1.0);
}

fn leveling_setup(mode: LevelingMode) -> (AudioBuffer, Vec<(Range<usize>, f64)>) {
    // Host at -18 LUFS; an ad read at -30 LUFS and a station ID at -12 LUFS.
    let scale = |mut b: AudioBuffer, lufs: f64| {
        let g = db_to_amp(lufs - measure(&b).unwrap().integrated_lufs) as f32;
        b.planes_mut().iter_mut().flatten().for_each(|s| *s *= g);
        b
    };
    let host = scale(synth::mono(R, synth::speech_like(R, 1, -20.0, 48_000 * 30)), -18.0);
    let ad = scale(synth::mono(R, synth::speech_like(R, 2, -20.0, 48_000 * 10)), -30.0);
    let id = scale(synth::mono(R, synth::speech_like(R, 3, -20.0, 48_000 * 6)), -12.0);
    let mut sources = Sources::new();
    sources.insert("host", &host).insert("ad", &ad).insert("id", &id);
    let mut t = Template::new(vec![
        Segment::new(SegmentType::Intro, "id"),
        Segment::new(SegmentType::Content, "host"),
        Segment::new(SegmentType::Commercial, "ad"),
    ]);
    t.leveling.mode = mode;
    let a = place(&t, R, |id| sources.frames(id)).unwrap();
    let lev = level_segments(&t, &a, |id| sources.get(id), 2, &CancelToken::new()).unwrap();
    let out = render(&Mix::new(&a, &sources, 2, &lev.gains, &[]).unwrap());
    let spans = a
        .placements
        .iter()
        .map(|p| {
            let g =
                lev.gains.iter().find(|g| g.segment_id == p.segment_id).map_or(0.0, |g| g.gain_db);
            (p.start_frame as usize..p.end_frame as usize, g)
        })
        .collect();
    (out, spans)
}

#[test]
fn leveling_matches_segments_to_the_host() {
    let (out, spans) = leveling_setup(LevelingMode::MatchContent);
    let region = |r: &Range<usize>| {
        let planes = out.planes().iter().map(|p| p[r.clone()].to_vec()).collect();
        measure(&AudioBuffer::from_planar(R, planes).unwrap()).unwrap().integrated_lufs
    };
    let host = region(&spans[1].0);
    let id = region(&spans[0].0);
    let ad = region(&spans[2].0);
    println!("host {host:.2}, station id {id:.2}, ad {ad:.2} LUFS");
    assert!((ad - host).abs() <= 0.5, "ad {ad} vs host {host}");
    assert!((id - host).abs() <= 0.5, "id {id} vs host {host}");
}

#[test]
fn legacy_leveling_matches_mean_level_with_a_cap() {
    let (out, spans) = leveling_setup(LevelingMode::Legacy);
    // Legacy levels intro and commercial: the -12 LUFS ID is pulled down, the quiet ad is
    // boosted by at most 9 dB.
    let rms = |r: &Range<usize>| rms_db(&out.channel(0)[r.clone()]);
    let (id_gain, ad_gain) = (spans[0].1, spans[2].1);
    assert!(id_gain < 0.0 && ad_gain == 9.0, "{id_gain} {ad_gain}");
    assert!((rms(&spans[0].0) + 18.0).abs() < 0.01, "{}", rms(&spans[0].0));
    assert!(rms(&spans[2].0) < -18.5);
}

#[test]
fn inconsistent_plans_are_errors_not_panics() {
    let a_sig = synth::mono(R, synth::white_noise(1, 0.5, 48_000));
    let mut sources = Sources::new();
    sources.insert("a", &a_sig);
    let t = Template::new(vec![Segment::new(SegmentType::Content, "a")]);
    let good = place(&t, R, |id| sources.frames(id)).unwrap();
    // A plan edited (or deserialized) into nonsense is rejected with the field named.
    let mut bad = good.clone();
    bad.placements[0].fade_out_frames = 1 << 40;
    let e = Mix::new(&bad, &sources, 2, &[], &[]).unwrap_err().to_string();
    assert!(e.contains("arrangement.placements[0]"), "{e}");
    let mut bad = good.clone();
    bad.placements[0].end_frame = 0;
    bad.placements[0].start_frame = 10;
    assert!(Mix::new(&bad, &sources, 2, &[], &[]).is_err());
    // Zero or absurd channel counts, missing sources.
    assert!(Mix::new(&good, &sources, 0, &[], &[]).is_err());
    assert!(Mix::new(&good, &Sources::new(), 2, &[], &[]).is_err());
    // Ducking times far out of range are refused before any table is built.
    let huge = DuckingOptions { attack_ms: u32::MAX, ..DuckingOptions::default() };
    let e = assembly_core::arrange::DuckingEnvelope::new(&huge, R, &[0..10, 20..30]).unwrap_err();
    assert!(e.to_string().contains("ducking.attack_ms"), "{e}");
}

#[test]
fn block_reads_equal_one_whole_read_bit_for_bit() {
    // A ducked, looping bed under talk between an intro and an outro, crossfaded: every kind of
    // voice the mix renders, read in blocks that straddle its internal 4096-frame steps.
    let noise2 = |seed| synth::white_noise(seed, 0.3, 48_000);
    let intro = AudioBuffer::from_planar(R, vec![noise2(3), noise2(6)]).unwrap();
    let talk = synth::mono(R, synth::speech_like(R, 5, -20.0, 48_000 * 6));
    let outro = synth::multi(R, synth::white_noise(4, 0.3, 40_000), 2);
    let bed = unmatched_loop();
    let mut sources = Sources::new();
    sources.insert("intro", &intro).insert("talk", &talk).insert("outro", &outro);
    sources.insert("bed", &bed);
    let mut t = Template::new(vec![
        Segment::new(SegmentType::Intro, "intro"),
        Segment { crossfade_s: 0.4, ..Segment::new(SegmentType::Content, "talk") },
        Segment { crossfade_s: 0.3, ..Segment::new(SegmentType::Outro, "outro") },
    ]);
    let mut rule = BedRule::new("bed");
    rule.ducking.enabled = true;
    t.background_music_rules.push(rule);
    let a = place(&t, R, |id| sources.frames(id)).unwrap();
    let speech = vec![48_000u64 * 2..48_000 * 3, 48_000 * 4..48_000 * 5];
    let mix = Mix::new(&a, &sources, 2, &[], &speech).unwrap();
    let whole = render(&mix);
    let n = mix.frames() as usize;
    for block in [1usize, 1000, 4095, 4097, 10_007] {
        let mut planes = vec![vec![f32::NAN; n + 3]; 2];
        let mut at = 0usize;
        while at < n + 3 {
            let m = block.min(n + 3 - at);
            let mut refs: Vec<&mut [f32]> = planes.iter_mut().map(|p| &mut p[at..at + m]).collect();
            mix.read(at as u64, &mut refs);
            at += m;
        }
        for (c, plane) in planes.iter().enumerate() {
            let (got, want) = (&plane[..n], whole.channel(c));
            let bad = got.iter().zip(want).position(|(g, w)| g.to_bits() != w.to_bits());
            assert_eq!(bad, None, "block {block}, channel {c}: first difference");
            assert!(plane[n..].iter().all(|&s| s == 0.0), "past the end reads zeros");
        }
    }
    // Fewer planes than channels: channel 0 is still channel 0, not a downmix.
    let mut only = vec![0.0f32; n];
    mix.read(0, &mut [only.as_mut_slice()]);
    assert!(only.iter().zip(whole.channel(0)).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(whole.channel(0) != whole.channel(1), "the stereo intro differs between channels");
}
