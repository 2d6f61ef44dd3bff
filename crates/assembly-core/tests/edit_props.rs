//! Property tests of the edit stage over random transcripts, audio and operation lists:
//! exact output lengths, re-timed words in order and inside the output, a monotonic time map,
//! untouched kept audio, and no panics on any input.

mod edit_support;

use assembly_core::edit::{
    self, CleanupOptions, Clip, EditPlan, EditedAudio, InsertClip, MsRange, PauseDetection,
    SegmentSource, SoundEffect,
};
use assembly_core::synth::{self, Rng};
use assembly_core::transcript::{Transcript, TranscriptFormat, Word};
use assembly_core::{AudioBuffer, FrameSource};
use edit_support::*;
use proptest::prelude::*;

const SR: u32 = 8_000;
const VOCAB: [&str; 14] = [
    "um", "Uh,", "you", "know", "the", "flubber", "damn", "boom", "so", "I", "mean—", "yes.", "ok",
    "well",
];

struct Case {
    audio: AudioBuffer,
    transcript: Option<Transcript>,
    options: CleanupOptions,
    clips: Vec<Clip>,
}

/// Audio, words and options from `seed` and the switches.
fn build(seed: u64, seconds: f64, n_words: usize, chaos: bool, channels: usize, bits: u32) -> Case {
    let r = rate(SR);
    let n = (seconds * f64::from(SR)) as usize;
    let mut rng = Rng::new(seed);
    let mut s = synth::speech_like(r, seed, -20.0, n);
    for (x, v) in s.iter_mut().zip(synth::white_noise(seed ^ 7, 0.001, n)) {
        *x += v;
    }
    // Long silences at random places, so that pauses exist.
    for _ in 0..3 {
        let a = (rng.next_f64() * n as f64) as usize;
        let len = (rng.next_f64() * 2.5 * f64::from(SR)) as usize;
        for x in &mut s[a..(a + len).min(n)] {
            *x = 0.0;
        }
    }
    let audio = if channels == 1 { synth::mono(r, s) } else { synth::multi(r, s, channels) };
    let mut words = Vec::new();
    let mut t = rng.next_f64() * 0.5;
    for _ in 0..n_words {
        let len = 0.05 + rng.next_f64() * 0.4;
        let text = VOCAB[(rng.next_u64() % VOCAB.len() as u64) as usize];
        if chaos && rng.next_f64() < 0.3 {
            // Overlapping, reversed, negative, past the end.
            let a = rng.bipolar() * seconds * 1.3;
            let b = a + rng.bipolar();
            words.push(Word::new(text, a, b));
        } else {
            words.push(Word::new(text, t, t + len));
        }
        t += len + rng.next_f64() * if rng.next_f64() < 0.15 { 2.5 } else { 0.3 };
    }
    let transcript =
        if bits & 1 == 0 { Some(Transcript::from_words(words).unwrap().0) } else { None };
    let mut o = CleanupOptions::default();
    o.splice.refine_edges = bits & 2 == 0;
    o.filler_words = vec!["um".into(), "uh".into(), "you know".into(), "i mean".into()];
    o.filler_lead_trim_ms = (rng.next_u64() % 200) as u32;
    o.filler_tail_trim_ms = (rng.next_u64() % 100) as u32;
    o.pause_compression_ratio = rng.next_f64();
    o.max_pause_s = 0.3 + rng.next_f64() * 1.5;
    o.target_pause_s = o.max_pause_s * rng.next_f64();
    if bits & 4 != 0 {
        o.max_pause_removal_pct = Some(rng.next_f64() * 30.0);
    }
    o.pause_detection = match (bits >> 3) % 3 {
        0 => PauseDetection::Auto,
        1 => PauseDetection::Transcript,
        _ => PauseDetection::Audio,
    };
    o.flubber.max_edit_distance = (bits >> 5) % 2;
    o.censor.enabled = bits & 64 != 0;
    o.censor.words = vec!["damn".into()];
    o.censor.match_word_length = bits & 128 != 0;
    for _ in 0..(rng.next_u64() % 3) {
        let a = (rng.next_f64() * seconds * 1000.0) as u64;
        o.cuts_ms.push(MsRange { start_ms: a, end_ms: a + 1 + (rng.next_f64() * 800.0) as u64 });
    }
    let clips = vec![
        Clip {
            id: "ad".into(),
            audio: synth::mono(r, synth::sine(r, 600.0, 0.3, 1 + (rng.next_u64() % 4000) as usize)),
        },
        Clip {
            id: "fx".into(),
            audio: synth::multi(
                r,
                synth::white_noise(seed, 0.2, 1 + (rng.next_u64() % 3000) as usize),
                2,
            ),
        },
    ];
    for _ in 0..(rng.next_u64() % 3) {
        o.inserts.push(InsertClip {
            clip: "ad".into(),
            at_s: rng.next_f64() * seconds * 1.1,
            silence_before_ms: (rng.next_u64() % 600) as u32,
            silence_after_ms: (rng.next_u64() % 600) as u32,
            snap_to_word_gap: rng.next_f64() < 0.7,
        });
    }
    if bits & 256 != 0 {
        o.sound_effects.push(SoundEffect { trigger: "boom".into(), clip: "fx".into() });
    }
    Case { audio, transcript, options: o, clips }
}

/// Source frames kept and frames inserted; source and replaced segments must be disjoint and
/// in source order.
fn kept_and_inserted(plan: &EditPlan) -> (u64, u64) {
    let mut last_end = 0;
    let (mut kept, mut inserted) = (0, 0);
    for s in &plan.segments {
        match &s.source {
            SegmentSource::Source { source_start_frame } => {
                assert!(*source_start_frame >= last_end, "source segments overlap or go back");
                last_end = source_start_frame + s.frames;
                kept += s.frames;
            }
            SegmentSource::Replaced { source_start_frame, source_frames, .. } => {
                assert!(*source_start_frame >= last_end);
                // The replaced source frames count as removed, the replacement as inserted.
                last_end = source_start_frame + source_frames;
                inserted += s.frames;
            }
            _ => inserted += s.frames,
        }
    }
    assert!(last_end <= plan.source_frames);
    (kept, inserted)
}

fn check(case: &Case) {
    let plan =
        edit::plan(&case.audio, case.transcript.as_ref(), &case.clips, &case.options).unwrap();
    let n = case.audio.frames() as u64;
    let sr = f64::from(SR);

    // Output length = input − removed + inserted, to the sample.
    let (kept, inserted) = kept_and_inserted(&plan);
    let removed = n - kept;
    assert_eq!(plan.output_frames, n - removed + inserted);
    assert!((plan.stats.removed_s * sr - removed as f64).abs() < 0.5);
    assert!((plan.stats.inserted_s * sr - inserted as f64).abs() < 0.5);
    let edited = EditedAudio::new(&case.audio, &plan, &case.clips).unwrap();
    assert_eq!(edited.frames(), plan.output_frames);
    let out = edited.render_to_buffer();
    assert_eq!(out.frames() as u64, plan.output_frames);
    assert!(out.planes().iter().flatten().all(|x| x.is_finite() && x.abs() <= 2.0));

    // Kept audio is untouched outside fades and crossfades.
    assert_source_untouched(&case.audio, &plan, &out);

    // The time map is monotonic and ends at the output's end.
    let map = plan.time_map();
    let mut probes: Vec<u64> = (0..200).map(|i| i * n / 199).collect();
    for s in &plan.segments {
        if let SegmentSource::Source { source_start_frame } = s.source {
            probes.extend([
                source_start_frame.saturating_sub(1),
                source_start_frame,
                source_start_frame + s.frames,
            ]);
        }
    }
    probes.sort_unstable();
    let mapped: Vec<u64> = probes.iter().map(|&f| map.map_frame(f)).collect();
    assert!(mapped.windows(2).all(|w| w[0] <= w[1]), "time map not monotonic");
    assert!(mapped.iter().all(|&m| m <= plan.output_frames));
    assert_eq!(map.map_frame(n), plan.output_frames);

    if let Some(t) = &case.transcript {
        // Re-timed words: in order, non-overlapping, inside the output.
        let rt = plan.retime(t);
        let dur = plan.output_frames as f64 / sr;
        let mut prev_end = 0.0;
        for w in rt.words() {
            assert!(
                w.start_s <= w.end_s && w.start_s >= prev_end - 1e-9 && w.end_s <= dur + 1e-9,
                "{w:?}"
            );
            prev_end = w.end_s;
        }
        assert!(rt.len() <= t.len());
        // A word no operation touched keeps every frame, in one source segment.
        let ms = |f: u64| f * 1000 / u64::from(SR);
        for w in t.words() {
            let (a, b) = ((w.start_s * sr).round() as u64, ((w.end_s * sr).round() as u64).min(n));
            if a >= b {
                continue;
            }
            let touched = plan
                .entries
                .iter()
                .any(|e| e.source_start_ms <= ms(b) + 1 && ms(a) <= e.source_end_ms + 1);
            if !touched {
                let inside = plan.segments.iter().any(|s| match s.source {
                    SegmentSource::Source { source_start_frame } => {
                        source_start_frame <= a && b <= source_start_frame + s.frames
                    }
                    _ => false,
                });
                assert!(inside, "untouched word {w:?} is not kept whole");
                let (o0, o1) = map.map_span_frames(a, b).expect("untouched word dropped");
                assert_eq!(o1 - o0, b - a);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn edit_invariants(
        seed in any::<u64>(),
        seconds in 0.5f64..6.0,
        n_words in 0usize..40,
        chaos in any::<bool>(),
        channels in 1usize..3,
        bits in any::<u32>(),
    ) {
        check(&build(seed, seconds, n_words, chaos, channels, bits));
    }

    #[test]
    fn parsing_never_panics(input in "[\\[\\]{}\",:0-9a-z_. \\-\\n>]{0,200}", k in 0usize..7) {
        let format = TranscriptFormat::ALL[k];
        let _ = Transcript::parse(&input, format);
    }

    #[test]
    fn mutated_provider_json_never_panics(k in 0usize..6, pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let (name, format) = [
            ("assemblyai.json", TranscriptFormat::AssemblyAi),
            ("whisper_api.json", TranscriptFormat::Whisper),
            ("faster_whisper.json", TranscriptFormat::Whisper),
            ("whisperx.json", TranscriptFormat::WhisperX),
            ("deepgram.json", TranscriptFormat::Deepgram),
            ("backend_words.json", TranscriptFormat::Words),
        ][k];
        let path = format!("{}/tests/data/transcripts/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut bytes = std::fs::read(path).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        bytes.truncate(cut.index(bytes.len() * 2).max(bytes.len() / 2));
        if let Ok((t, _)) = Transcript::parse_bytes(&bytes, format) {
            let _ = t.to_native().unwrap();
            let r = rate(SR);
            let audio = synth::mono(r, vec![0.0; SR as usize * 3]);
            let plan = edit::plan(&audio, Some(&t), &[], &CleanupOptions::default()).unwrap();
            let _ = plan.retime(&t).to_native().unwrap();
        }
    }
}

#[test]
fn known_hard_cases() {
    // Empty audio, words everywhere, all switches on.
    for (seconds, n_words, bits) in
        [(0.0, 5, 0), (0.01, 3, 0x1ff), (3.0, 0, 0x1fe), (4.0, 40, 0x1c0)]
    {
        check(&build(9, seconds, n_words, true, 1, bits));
    }
}
