//! Speaker leveling (issue 19, labelled speakers): a conversation whose voices were recorded
//! at −9, 0 and +6 dB comes out with every voice at the same loudness, measured per speaker
//! over the output's own word spans (BS.1770, gated), with the gain moving only between words
//! and the room tone between turns never lifted beyond the speech around it.

use std::num::NonZeroU32;
use std::path::Path;

use assembly_core::analyze::loudness::{Loudness, measure};
use assembly_core::encode::{OutputFormat, Tags, write_file};
use assembly_core::load::{DecodeOptions, decode_file};
use assembly_core::{Assembler, AudioBuffer, CancelToken, NoProgress, Report, Spec, synth};

const R: NonZeroU32 = NonZeroU32::new(44_100).unwrap();
const SR: f64 = 44_100.0;

struct Conversation {
    audio: Vec<f32>,
    /// `{word, start, end, speaker}` in seconds.
    words: Vec<serde_json::Value>,
    /// Room-tone gaps between turns, frames.
    turn_gaps: Vec<(usize, usize)>,
}

/// Speakers at `offsets_db` around −24 dBFS taking turns of 6–10 words (each word a
/// speech-like burst of 250–450 ms, 90 ms apart), turns 0.8 s apart over room tone at
/// −62 dBFS; every fourth turn starts 200 ms before the previous one ends (overlap).
fn conversation(offsets_db: &[f64], seconds: usize) -> Conversation {
    let n = 44_100 * seconds;
    let mut audio = synth::white_noise(99, 10f64.powf(-62.0 / 20.0), n);
    let mut words = Vec::new();
    let mut turn_gaps = Vec::new();
    let mut rng = synth::Rng::new(7);
    let mut at = 44_100usize / 2;
    let mut turn = 0usize;
    'outer: loop {
        let k = turn % offsets_db.len();
        let level = -24.0 + offsets_db[k];
        let count = 6 + (rng.next_f64() * 5.0) as usize;
        for w in 0..count {
            let len = ((0.25 + 0.2 * rng.next_f64()) * SR) as usize;
            if at + len + 44_100 > n {
                break 'outer;
            }
            let x = synth::speech_like(R, (turn * 100 + w) as u64, level, len);
            for (o, s) in audio[at..at + len].iter_mut().zip(&x) {
                *o += s;
            }
            words.push(serde_json::json!({
                "word": format!("w{turn}x{w}"),
                "start": at as f64 / SR,
                "end": (at + len) as f64 / SR,
                "speaker": format!("S{}", k + 1),
            }));
            at += len + (0.09 * SR) as usize;
        }
        turn += 1;
        if turn.is_multiple_of(4) {
            at -= (0.29 * SR) as usize; // 200 ms into the last word
        } else {
            turn_gaps.push((at, at + (0.8 * SR) as usize - (0.09 * SR) as usize));
            at += (0.8 * SR) as usize - (0.09 * SR) as usize;
        }
    }
    Conversation { audio, words, turn_gaps }
}

fn run(dir: &Path, c: &Conversation, extra: &str, encoding: &str) -> Report {
    let content = synth::multi(R, c.audio.clone(), 2);
    write_file(&dir.join("in.wav"), &content, &OutputFormat::wav16(), &Tags::default()).unwrap();
    std::fs::write(dir.join("words.json"), serde_json::to_string(&c.words).unwrap()).unwrap();
    let json = format!(
        r#"{{"version": 1, "content": "in.wav",
            "transcript": {{"format": "words", "path": "words.json"}},
            "cleanup": {{"remove_fillers": false, "remove_pauses": false {extra}}},
            "output": {{"path": "episode", "encoding": {encoding}, "report": "report.json"}}}}"#
    );
    let mut spec = Spec::from_json(&json).unwrap();
    spec.resolve_paths(dir);
    Assembler::new(spec).unwrap().run(&mut NoProgress, &CancelToken::new()).unwrap()
}

/// Per speaker: the output's loudness over that speaker's words (the report's re-timed
/// words), by concatenating the spans.
fn per_speaker(out: &AudioBuffer, report: &Report) -> Vec<(String, f64)> {
    let mut names: Vec<String> =
        report.words.iter().filter_map(|w| w.speaker.clone()).collect::<Vec<_>>();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let mut planes = vec![Vec::new(); out.channel_count()];
            for w in report.words.iter().filter(|w| w.speaker.as_deref() == Some(&name)) {
                let (a, b) = ((w.start_s * SR) as usize, (w.end_s * SR) as usize);
                for (p, c) in planes.iter_mut().zip(out.planes()) {
                    p.extend_from_slice(&c[a.min(c.len())..b.min(c.len())]);
                }
            }
            let l = measure(&AudioBuffer::from_planar(R, planes).unwrap()).unwrap();
            (name, l.integrated_lufs)
        })
        .collect()
}

fn spread(levels: &[(String, f64)]) -> f64 {
    let v: Vec<f64> = levels.iter().map(|l| l.1).collect();
    v.iter().copied().fold(f64::MIN, f64::max) - v.iter().copied().fold(f64::MAX, f64::min)
}

fn rms_db(x: &[f32]) -> f64 {
    let e = x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    10.0 * e.max(1e-30).log10()
}

fn decoded(dir: &Path) -> AudioBuffer {
    decode_file(&dir.join("episode"), &DecodeOptions::default(), &CancelToken::new()).unwrap().audio
}

#[test]
fn three_speakers_at_minus_9_0_plus_6_db_come_out_within_1_5_lu() {
    let c = conversation(&[-9.0, 0.0, 6.0], 90);
    // Before: the same job with leveling off.
    let off_dir = tempfile::tempdir().unwrap();
    let off = run(off_dir.path(), &c, r#", "leveling": {"mode": "off"}"#, r#"{"format": "wav"}"#);
    assert!(off.leveling.is_none());
    let before = per_speaker(&decoded(off_dir.path()), &off);
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &c, "", r#"{"format": "wav"}"#);
    let out = decoded(dir.path());
    let after = per_speaker(&out, &r);
    let lra = |dir: &Path| measure(&decoded(dir)).unwrap().range_lu;
    let (lra_before, lra_after) = (lra(off_dir.path()), lra(dir.path()));
    eprintln!("before {before:?} spread {:.2} LU, LRA {lra_before:.1}", spread(&before));
    eprintln!("after  {after:?} spread {:.2} LU, LRA {lra_after:.1}", spread(&after));
    assert!(spread(&before) > 13.0, "{before:?}");
    assert!(spread(&after) <= 1.5, "{after:?}");
    assert!(lra_after <= 8.0 && lra_after < lra_before, "{lra_before} -> {lra_after}");
    // The report: each speaker's gain, opposite to its offset, and the envelope's range.
    let lv = r.leveling.as_ref().unwrap();
    let gains: Vec<f64> = lv.speakers.iter().map(|s| s.gain_db).collect();
    assert!(gains[0] > gains[1] && gains[1] > gains[2], "{gains:?}");
    assert!(((gains[0] - gains[2]) - 15.0).abs() < 1.0, "{gains:?}");
    assert!(gains.iter().all(|g| g.abs() < 12.0), "no cap reached: {gains:?}");
    let (lo, hi) = lv.envelope.range_db();
    assert!((lo - gains[2]).abs() < 1e-9 && (hi - gains[0]).abs() < 1e-9);
    for s in &lv.speakers {
        assert!((s.leveled_lufs - lv.reference_lufs).abs() < 1e-9, "{s:?}");
    }
    // Room tone between turns: against the job with leveling off (whose master gain differs),
    // it rises by no more than the speech on either side of it rose (+0.5 dB for the noise
    // measurement): no pumping of the pauses.
    let off_out = decoded(off_dir.path());
    let rise =
        |a: usize, b: usize| rms_db(&out.planes()[0][a..b]) - rms_db(&off_out.planes()[0][a..b]);
    let span = |w: &serde_json::Value| {
        ((w["start"].as_f64().unwrap() * SR) as usize, (w["end"].as_f64().unwrap() * SR) as usize)
    };
    for &(a, b) in &c.turn_gaps {
        let before = c.words.iter().map(span).rfind(|w| w.1 <= a).unwrap();
        let after = c.words.iter().map(span).find(|w| w.0 >= b).unwrap();
        let speech = rise(before.0, before.1).max(rise(after.0, after.1));
        let tone = rise(a + 2205, b - 2205); // the gap's middle, clear of word tails
        assert!(tone <= speech + 0.5, "room tone at {a} rose {tone:.1} dB, speech {speech:.1}");
    }
    // No gain step inside a word: no ramp of the applied envelope reaches into any word's
    // span (source frames; words overlapping in time included).
    for w in &c.words {
        let (a, b) = span(w);
        for st in &lv.envelope.steps {
            let (s0, s1) = (st.start as usize, (st.start + st.ramp.max(1)) as usize);
            assert!(s1 <= a || s0 >= b, "ramp {st:?} inside word {w}");
        }
    }
    assert!(lv.envelope.steps.len() >= 10, "{:?}", lv.envelope.steps);
}

#[test]
fn a_single_well_levelled_speaker_is_left_alone() {
    let c = conversation(&[0.0], 40);
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &c, "", r#"{"format": "wav"}"#);
    let lv = r.leveling.as_ref().unwrap();
    assert_eq!(lv.speakers.len(), 1);
    assert!(lv.speakers[0].gain_db.abs() < 0.5, "{lv:?}");
    assert!(lv.envelope.steps.is_empty());
}

#[test]
fn leveling_keeps_the_one_encode_guarantees() {
    let c = conversation(&[-9.0, 0.0, 6.0], 60);
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &c, "", r#"{"format": "mp3"}"#);
    let l: Loudness = r.loudness_out.unwrap();
    let v = r.verify.as_ref().unwrap();
    assert_eq!(v.attempts.len(), 1, "{v:#?}");
    assert!((l.integrated_lufs + 16.0).abs() <= 0.2, "{l:?}");
    assert!(l.true_peak_dbtp <= -1.0, "{l:?}");
    let after = per_speaker(&decoded(dir.path()), &r);
    assert!(spread(&after) <= 1.5, "{after:?}");
}

#[test]
fn a_speaker_with_too_little_speech_is_left_alone_with_a_warning() {
    let mut c = conversation(&[-6.0, 0.0], 40);
    // Relabel all but two words of S1 as S2's... S1 keeps two words (< 3 s).
    let mut kept = 0;
    for w in &mut c.words {
        if w["speaker"] == "S1" {
            kept += 1;
            if kept > 2 {
                w["speaker"] = serde_json::json!("S2");
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &c, "", r#"{"format": "wav"}"#);
    let lv = r.leveling.as_ref().unwrap();
    let s1 = lv.speakers.iter().find(|s| s.speaker == "S1").unwrap();
    assert_eq!(s1.gain_db, 0.0);
    assert!(
        r.warnings.iter().any(|w| w.code == assembly_core::WarningCode::SpeakerNotLeveled
            && w.message.contains("\"S1\"")),
        "{:?}",
        r.warnings
    );
}

/// The same conversation without speaker labels: the adaptive leveler (driven by the speech
/// activity) brings the voices within 3 LU.
#[test]
fn without_labels_the_adaptive_leveler_brings_the_voices_within_3_lu() {
    let mut c = conversation(&[-9.0, 0.0, 6.0], 90);
    // Speakers for the measurement, then the labels removed from the job's transcript.
    let speakers: Vec<String> =
        c.words.iter().map(|w| w["speaker"].as_str().unwrap().to_string()).collect();
    for w in &mut c.words {
        w.as_object_mut().unwrap().remove("speaker");
    }
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &c, "", r#"{"format": "wav"}"#);
    assert!(r.leveling.is_none());
    let a = r.adaptive_leveling.as_ref().expect("adaptive leveling");
    let (lo, hi) = a.envelope.range_db();
    eprintln!("adaptive: {} phrases, gains {lo:.1}..{hi:.1} dB", a.phrases);
    assert!(lo >= -12.0 && hi <= 12.0 && hi - lo > 6.0, "{lo} {hi}");
    let mut labelled = r.clone();
    for (w, s) in labelled.words.iter_mut().zip(&speakers) {
        w.speaker = Some(s.clone());
    }
    let out = decoded(dir.path());
    let after = per_speaker(&out, &labelled);
    eprintln!(
        "adaptive: {after:?} spread {:.2} LU, LRA {:.1}",
        spread(&after),
        measure(&out).unwrap().range_lu
    );
    assert!(spread(&after) <= 3.0, "{after:?}");
}

/// One well-levelled voice without labels: the adaptive leveler's dead band leaves it alone.
#[test]
fn without_labels_a_single_well_levelled_voice_is_left_alone() {
    let mut c = conversation(&[0.0], 40);
    for w in &mut c.words {
        w.as_object_mut().unwrap().remove("speaker");
    }
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &c, "", r#"{"format": "wav"}"#);
    let a = r.adaptive_leveling.as_ref().expect("adaptive leveling");
    let (lo, hi) = a.envelope.range_db();
    assert!(lo > -0.5 && hi < 0.5, "{lo} {hi}: {:?}", a.envelope.steps.len());
}

#[test]
fn adaptive_leveling_keeps_the_one_encode_guarantees() {
    let mut c = conversation(&[-9.0, 0.0, 6.0], 60);
    for w in &mut c.words {
        w.as_object_mut().unwrap().remove("speaker");
    }
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &c, "", r#"{"format": "mp3"}"#);
    assert!(r.adaptive_leveling.is_some());
    let l: Loudness = r.loudness_out.unwrap();
    let v = r.verify.as_ref().unwrap();
    assert_eq!(v.attempts.len(), 1, "{v:#?}");
    assert!((l.integrated_lufs + 16.0).abs() <= 0.2, "{l:?}");
    assert!(l.true_peak_dbtp <= -1.0, "{l:?}");
}
