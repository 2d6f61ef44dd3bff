//! Transcript adapters on realistic samples of each provider's JSON (written from the
//! providers' documented shapes, in `tests/data/transcripts/`), malformed variants, repairs,
//! and write-back.

use assembly_core::transcript::{CueOptions, Transcript, TranscriptFormat, Word};
use assembly_core::{Error, WarningCode};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/data/transcripts/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The script every JSON fixture encodes: (text after trimming, start s, end s).
const SCRIPT: [(&str, f64, f64); 10] = [
    ("Um,", 0.25, 0.65),
    ("welcome", 1.1, 1.45),
    ("to", 1.45, 1.58),
    ("the", 1.58, 1.7),
    ("show.", 1.7, 2.1),
    ("Today", 4.4, 4.7),
    ("we", 4.7, 4.82),
    ("talk,", 4.82, 5.15),
    ("uh,", 5.3, 5.6),
    ("editing.", 5.7, 6.2),
];

fn assert_times(t: &Transcript) {
    assert_eq!(t.len(), SCRIPT.len());
    for (w, (_, s, e)) in t.words().iter().zip(SCRIPT) {
        assert!((w.start_s - s).abs() < 1e-9 && (w.end_s - e).abs() < 1e-9, "{w:?} vs {s}–{e}");
    }
}

fn invalid_field(e: Error) -> String {
    match e {
        Error::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn backend_words_mixed_units_by_key() {
    let (t, w) =
        Transcript::parse(&fixture("backend_words.json"), TranscriptFormat::Words).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_times(&t);
    assert_eq!(t.words()[0].text, "Um,");
    assert_eq!(t.words()[0].confidence, Some(0.91));
    assert_eq!(t.words()[5].speaker.as_deref(), Some("guest"));
    // Under a "words" key too.
    let wrapped = format!("{{\"words\": {}}}", fixture("backend_words.json"));
    let (t2, _) = Transcript::parse(&wrapped, TranscriptFormat::Words).unwrap();
    assert_eq!(t2.words(), t.words());
}

#[test]
fn backend_words_malformed() {
    let bad = [
        (r#"[{"word": "a", "end": 1.0}]"#, "transcript[0]"),
        (r#"[{"word": "a", "start": "0.5", "end": 1.0}]"#, "transcript[0].start"),
        (r#"[{"start": 0.5, "end": 1.0}]"#, "transcript[0]"),
        (r#"{"items": []}"#, "transcript"),
        (
            r#"[{"word": "a", "start": 0.5, "end": 1.0, "start_ms": 900, "end_ms": 1000}]"#,
            "transcript[0]",
        ),
        (r#"[{"word": "a", "start": 0.5, "end": 1.0}, 7]"#, "transcript[1]"),
        ("[{\"word\": \"a\", \"start\": 1e999, \"end\": 1.0}]", "transcript"),
        ("not json", "transcript"),
    ];
    for (input, field) in bad {
        let e = Transcript::parse(input, TranscriptFormat::Words).unwrap_err();
        assert_eq!(invalid_field(e), field, "{input}");
    }
}

#[test]
fn repairs_are_documented_and_warned() {
    let input = r#"[
        {"word": "b", "start": 2.0, "end": 1.5},
        {"word": "a", "start": -0.5, "end": 0.8},
        {"word": "  ", "start": 0.9, "end": 1.0},
        {"word": "c", "start": 2.5, "end": 3.5},
        {"word": "d", "start": 3.0, "end": 4.0}
    ]"#;
    let (t, warnings) = Transcript::parse(input, TranscriptFormat::Words).unwrap();
    let codes: Vec<WarningCode> = warnings.iter().map(|w| w.code).collect();
    assert_eq!(
        codes,
        [
            WarningCode::NegativeTime,
            WarningCode::EndBeforeStart,
            WarningCode::EmptyWord,
            WarningCode::Unsorted,
            WarningCode::Overlap
        ]
    );
    let got: Vec<(&str, f64, f64)> =
        t.words().iter().map(|w| (w.text.as_str(), w.start_s, w.end_s)).collect();
    assert_eq!(got, [("a", 0.0, 0.8), ("b", 2.0, 2.0), ("c", 2.5, 3.0), ("d", 3.0, 4.0)]);

    let e = Transcript::from_words(vec![Word::new("x", f64::NAN, 1.0)]).unwrap_err();
    assert_eq!(invalid_field(e), "words[0].start_s");

    let (mut t, _) = Transcript::from_words(vec![
        Word::new("a", 0.0, 1.0),
        Word::new("b", 1.5, 2.5),
        Word::new("c", 3.0, 3.5),
    ])
    .unwrap();
    let w = t.fit_to_duration(2.0);
    assert_eq!(w.len(), 2);
    assert!(w.iter().all(|w| w.code == WarningCode::PastEnd));
    assert_eq!(t.len(), 2);
    assert_eq!(t.words()[1].end_s, 2.0);
}

#[test]
fn assemblyai_sample() {
    let (t, w) =
        Transcript::parse(&fixture("assemblyai.json"), TranscriptFormat::AssemblyAi).unwrap();
    assert!(w.is_empty());
    assert_times(&t);
    assert_eq!(t.words()[0].speaker.as_deref(), Some("A"));
    assert_eq!(t.words()[8].confidence, Some(0.82));
}

#[test]
fn assemblyai_malformed() {
    let mut v: Value = serde_json::from_str(&fixture("assemblyai.json")).unwrap();
    v["status"] = json!("error");
    v["error"] = json!("Download error, unable to download https://example.invalid/x.mp3");
    let e = Transcript::parse(&v.to_string(), TranscriptFormat::AssemblyAi).unwrap_err();
    assert!(e.to_string().contains("Download error"), "{e}");
    assert_eq!(invalid_field(e), "transcript.status");

    let mut v: Value = serde_json::from_str(&fixture("assemblyai.json")).unwrap();
    v["words"][3]["end"] = json!("1700");
    let e = Transcript::parse(&v.to_string(), TranscriptFormat::AssemblyAi).unwrap_err();
    assert_eq!(invalid_field(e), "transcript.words[3].end");

    let mut v: Value = serde_json::from_str(&fixture("assemblyai.json")).unwrap();
    v.as_object_mut().unwrap().remove("words");
    let e = Transcript::parse(&v.to_string(), TranscriptFormat::AssemblyAi).unwrap_err();
    assert_eq!(invalid_field(e), "transcript.words");

    // Seconds fed to the ms adapter are not silently "fixed": they read as ms (0.25 ms …).
    let (t, _) = Transcript::parse(
        &fixture("whisper_api.json").replace("\"word\"", "\"text\""),
        TranscriptFormat::AssemblyAi,
    )
    .unwrap();
    assert!(t.words()[9].end_s < 0.01);
}

#[test]
fn whisper_api_and_faster_whisper_samples() {
    let (t, w) =
        Transcript::parse(&fixture("whisper_api.json"), TranscriptFormat::Whisper).unwrap();
    assert!(w.is_empty());
    assert_times(&t);
    assert!(!t.is_cue_level());
    let (t, w) =
        Transcript::parse(&fixture("faster_whisper.json"), TranscriptFormat::Whisper).unwrap();
    assert!(w.is_empty());
    assert_times(&t);
    assert_eq!(t.words()[0].text, "Um,", "leading space trimmed");
    assert_eq!(t.words()[8].confidence, Some(0.62));
}

#[test]
fn whisper_without_word_timestamps_reads_segments_as_cues() {
    let mut v: Value = serde_json::from_str(&fixture("whisper_api.json")).unwrap();
    v.as_object_mut().unwrap().remove("words");
    let (t, w) = Transcript::parse(&v.to_string(), TranscriptFormat::Whisper).unwrap();
    assert_eq!(w[0].code, WarningCode::MissingTimes);
    assert!(t.is_cue_level());
    assert_eq!(t.len(), 2);
    assert_eq!(t.words()[1].text, "Today we talk, uh, editing.");
    assert_eq!((t.words()[1].start_s, t.words()[1].end_s), (4.4, 6.2));

    let mut v: Value = serde_json::from_str(&fixture("faster_whisper.json")).unwrap();
    v["segments"][1]["words"][2]["start"] = Value::Null;
    let e = Transcript::parse(&v.to_string(), TranscriptFormat::Whisper).unwrap_err();
    assert_eq!(invalid_field(e), "transcript.segments[1].words[2]");
    let e = Transcript::parse("{\"text\": \"hi\"}", TranscriptFormat::Whisper).unwrap_err();
    assert_eq!(invalid_field(e), "transcript");
}

#[test]
fn whisperx_interpolates_missing_times() {
    let (t, w) = Transcript::parse(&fixture("whisperx.json"), TranscriptFormat::WhisperX).unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].code, WarningCode::MissingTimes);
    assert_eq!(t.len(), 11);
    let two = &t.words()[9];
    assert_eq!(two.text, "2");
    // Spread between "uh," (ends 5.6) and "edits." (starts 5.8).
    assert!((two.start_s - 5.6).abs() < 1e-9 && (two.end_s - 5.8).abs() < 1e-9, "{two:?}");
    // Speaker inherited from the segment when the word lacks one.
    assert_eq!(t.words()[6].speaker.as_deref(), Some("SPEAKER_01"));
    assert_eq!(t.words()[0].confidence, Some(0.71));

    let mut v: Value = serde_json::from_str(&fixture("whisperx.json")).unwrap();
    v["segments"][0]["words"][1]["start"] = json!(f64::MAX);
    v["segments"][0]["words"][1]["end"] = json!([1]);
    let e = Transcript::parse(&v.to_string(), TranscriptFormat::WhisperX).unwrap_err();
    assert_eq!(invalid_field(e), "transcript.segments[0].words[1].end");
}

#[test]
fn deepgram_sample() {
    let (t, w) = Transcript::parse(&fixture("deepgram.json"), TranscriptFormat::Deepgram).unwrap();
    assert!(w.is_empty());
    assert_times(&t);
    assert_eq!(t.words()[1].text, "Welcome", "punctuated_word preferred");
    assert_eq!(t.words()[5].speaker.as_deref(), Some("1"));

    let mut v: Value = serde_json::from_str(&fixture("deepgram.json")).unwrap();
    let ch = v["results"]["channels"][0].clone();
    v["results"]["channels"].as_array_mut().unwrap().push(ch);
    let (_, w) = Transcript::parse(&v.to_string(), TranscriptFormat::Deepgram).unwrap();
    assert_eq!(w[0].code, WarningCode::ExtraChannels);

    let mut v: Value = serde_json::from_str(&fixture("deepgram.json")).unwrap();
    v["results"]["channels"] = json!([]);
    let e = Transcript::parse(&v.to_string(), TranscriptFormat::Deepgram).unwrap_err();
    assert_eq!(invalid_field(e), "transcript.results.channels");
    let e = Transcript::parse("{\"metadata\": {}}", TranscriptFormat::Deepgram).unwrap_err();
    assert_eq!(invalid_field(e), "transcript.results.channels");
}

#[test]
fn srt_and_vtt_cues() {
    let (t, w) = Transcript::parse(&fixture("episode.srt"), TranscriptFormat::Srt).unwrap();
    assert!(w.is_empty());
    assert!(t.is_cue_level());
    let got: Vec<(&str, f64, f64)> =
        t.words().iter().map(|w| (w.text.as_str(), w.start_s, w.end_s)).collect();
    assert_eq!(
        got,
        [("Um, welcome to the show.", 0.25, 2.1), ("Today we talk, uh, editing.", 4.4, 6.2)]
    );

    let (t, _) = Transcript::parse(&fixture("episode.vtt"), TranscriptFormat::WebVtt).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t.words()[0].speaker.as_deref(), Some("Host"));
    assert_eq!(t.words()[1].speaker.as_deref(), Some("Guest"));
    assert_eq!(t.words()[1].text, "Today we talk, uh, editing & more.");
    assert_eq!((t.words()[0].start_s, t.words()[0].end_s), (0.25, 2.1));

    let e = Transcript::parse("1\n00:00:01,000 -> 00:00:02,000\nhi\n", TranscriptFormat::Srt)
        .unwrap_err();
    assert_eq!(invalid_field(e), "transcript line 1");
    let e = Transcript::parse("1\n00:00:01,000 --> 00:00:0x,000\nhi\n\n2\n", TranscriptFormat::Srt)
        .unwrap_err();
    assert_eq!(invalid_field(e), "transcript line 2");
    let e =
        Transcript::parse("00:01.000 --> 00:02.000\nhi\n", TranscriptFormat::WebVtt).unwrap_err();
    assert_eq!(invalid_field(e), "transcript line 1");
}

#[test]
fn native_round_trip_keeps_the_shape() {
    for (name, format) in [
        ("backend_words.json", TranscriptFormat::Words),
        ("assemblyai.json", TranscriptFormat::AssemblyAi),
        ("whisper_api.json", TranscriptFormat::Whisper),
        ("faster_whisper.json", TranscriptFormat::Whisper),
        ("whisperx.json", TranscriptFormat::WhisperX),
        ("deepgram.json", TranscriptFormat::Deepgram),
        ("episode.srt", TranscriptFormat::Srt),
        ("episode.vtt", TranscriptFormat::WebVtt),
    ] {
        let (t, _) = Transcript::parse(&fixture(name), format).unwrap();
        let out = t.to_native().unwrap();
        let (t2, w2) = Transcript::parse(&out, format).unwrap();
        assert!(w2.is_empty(), "{name}: {w2:?}");
        assert_eq!(t2.words(), t.words(), "{name}");
    }
    // Units are kept: AssemblyAI ms stay integers, backend ms keys stay ms.
    let (t, _) =
        Transcript::parse(&fixture("assemblyai.json"), TranscriptFormat::AssemblyAi).unwrap();
    let v: Value = serde_json::from_str(&t.to_native().unwrap()).unwrap();
    assert_eq!(v["words"][1]["start"], json!(1100));
    assert_eq!(v["utterances"][1]["words"][0]["end"], json!(4700));
    assert_eq!(v["id"], json!("6rlr37h2ut-6c1e-4f5a-9a8c-0d1b2c3d4e5f"));
    let (t, _) =
        Transcript::parse(&fixture("backend_words.json"), TranscriptFormat::Words).unwrap();
    let v: Value = serde_json::from_str(&t.to_native().unwrap()).unwrap();
    assert_eq!(v[5]["start_ms"], json!(4400));
    assert_eq!(v[0]["start"], json!(0.25));
}

#[test]
fn srt_and_vtt_writers_group_words_into_cues() {
    let (t, _) =
        Transcript::parse(&fixture("assemblyai.json"), TranscriptFormat::AssemblyAi).unwrap();
    let srt = t.to_srt(&CueOptions::default());
    assert_eq!(
        srt,
        "1\n00:00:00,250 --> 00:00:02,100\nUm, welcome to the show.\n\n\
         2\n00:00:04,400 --> 00:00:06,200\nToday we talk, uh, editing.\n\n"
    );
    let vtt = t.to_vtt(&CueOptions { max_chars: 12, ..CueOptions::default() });
    assert!(
        vtt.starts_with("WEBVTT\n\n00:00:00.250 --> 00:00:01.450\n<v A>Um, welcome\n\n"),
        "{vtt}"
    );
    let (back, _) = Transcript::parse(&vtt, TranscriptFormat::WebVtt).unwrap();
    assert_eq!(back.words().last().unwrap().end_s, 6.2);
    assert_eq!(back.words().last().unwrap().speaker.as_deref(), Some("B"));
}
