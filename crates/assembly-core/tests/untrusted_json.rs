//! Untrusted JSON: random and mutated specs and transcripts through `Spec::from_json`,
//! `Assembler::new` and `Transcript::parse`. Never a panic; every `InvalidSpec` problem names a
//! JSON path rooted at a spec field; every transcript error is `InvalidInput` naming the field
//! or line; every transcript that parses keeps its documented invariants and writes back.
//!
//! Mutations start from valid documents (a spec using every section, the provider samples in
//! `tests/data/transcripts/`) so most cases get past the first parse error and reach the deeper
//! checks: keys deleted, values replaced by other types, unknown keys inserted, numbers made
//! huge, negative, fractional or out of range (`1e999`, `NaN`), strings randomized, the text
//! truncated or spliced.

use std::path::{Component, Path, PathBuf};

use assembly_core::transcript::{CueOptions, Transcript, TranscriptFormat};
use assembly_core::{Assembler, Error, Spec};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

/// The spec's top-level fields: every problem path must start with one of them.
const SPEC_FIELDS: [&str; 11] = [
    "version",
    "content",
    "assets",
    "transcript",
    "cleanup",
    "template",
    "master",
    "verify",
    "output",
    "limits",
    "work_dir",
];

/// A valid spec touching every section, written out with every default made explicit (so the
/// mutator can reach every field).
fn base_spec() -> Value {
    let compact = json!({
        "version": 1,
        "content": "raw.wav",
        "assets": {"intro": "intro.wav", "outro": "outro.wav", "bed": "bed.wav", "ding": "ding.wav"},
        "transcript": {"format": "words", "inline": [
            {"word": "Hello", "start": 0.1, "end": 0.4},
            {"word": "um", "start": 0.5, "end": 0.7},
            {"word": "world", "start": 0.9, "end": 1.3}
        ]},
        "cleanup": {
            "inserts": [{"clip": "ding", "at_s": 2.0}],
            "sound_effects": [{"trigger": "applause", "clip": "ding"}],
            "cuts_ms": [{"start_ms": 100, "end_ms": 200}],
            "flubber_cuts_ms": [{"start_ms": 300, "end_ms": 350}],
            "censor": {"enabled": true, "words": ["darn"]}
        },
        "template": {
            "segments": [
                {"segment_type": "intro", "asset": "intro", "chapter_title": "Intro"},
                {"segment_type": "content", "asset": "content", "chapter_title": "Talk"},
                {"segment_type": "outro", "asset": "outro"}
            ],
            "timing": {"content_start_offset_s": -0.5, "outro_start_offset_s": -0.5},
            "background_music_rules": [{"asset": "bed", "apply_to_segments": ["content"]}]
        },
        "output": {
            "path": "out/episode.mp3",
            "tags": {"title": "T", "artist": "A", "track": 3, "cover": "cover.png"},
            "content_chapters": [{"title": "Part", "start_ms": 1000, "end_ms": 2000}],
            "report": "out/report.json",
            "words": "out/words.json",
            "srt": "out/episode.srt",
            "vtt": "out/episode.vtt",
            "chapters_json": "out/chapters.json",
            "cleaned_content": "out/clean.mp3",
            "review_html": "out/review.html"
        },
        "work_dir": "work"
    });
    let spec = Spec::from_json(&compact.to_string()).expect("the base spec parses");
    serde_json::to_value(&spec).expect("a spec serializes")
}

/// A scratch folder holding the files the base spec names (validation only checks that they
/// exist and are readable).
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["raw.wav", "intro.wav", "outro.wav", "bed.wav", "ding.wav", "cover.png"] {
        std::fs::write(dir.path().join(f), b"not audio, only has to exist").unwrap();
    }
    std::fs::create_dir(dir.path().join("out")).unwrap();
    dir
}

/// `p` reduced to its plain components under `dir`: a mutated spec never makes validation
/// probe (or create its write-test file in) a folder outside the scratch folder.
fn confine(dir: &Path, p: &mut PathBuf) {
    let parts: Vec<_> = p
        .components()
        .filter_map(|c| if let Component::Normal(s) = c { Some(s.to_owned()) } else { None })
        .collect();
    let mut out = dir.to_path_buf();
    if parts.is_empty() {
        out.push("empty");
    }
    out.extend(parts);
    *p = out;
}

fn confine_all(dir: &Path, spec: &mut Spec) {
    spec.for_each_path_mut(|p| confine(dir, p));
}

/// Checks an error from `Spec::from_json` or `Assembler::new`: every problem is at `$`, under
/// a spec field, or names an unknown top-level key.
fn check_spec_error(e: &Error, text: &str) -> std::result::Result<(), TestCaseError> {
    let Error::InvalidSpec { problems } = e else {
        return Err(TestCaseError::fail(format!("not InvalidSpec: {e:?}\n{text}")));
    };
    prop_assert!(!problems.is_empty(), "InvalidSpec without problems\n{}", text);
    for p in problems {
        prop_assert!(!p.message.is_empty(), "{:?}", p);
        let root = p.path.split(['.', '[']).next().unwrap_or("");
        prop_assert!(
            p.path == "$"
                || SPEC_FIELDS.contains(&root)
                || (p.path == root && p.message.starts_with(&format!("unknown field `{root}`")))
                || (p.path.starts_with("[\"") && p.message.starts_with("unknown field")),
            "problem path {:?} is not rooted at a spec field ({})\n{}",
            p.path,
            p.message,
            text
        );
    }
    Ok(())
}

/// Parses and validates one spec text, checking the error contract.
fn check_spec(dir: &Path, text: &str) -> std::result::Result<bool, TestCaseError> {
    let mut spec = match Spec::from_json(text) {
        Ok(s) => s,
        Err(e) => {
            check_spec_error(&e, text)?;
            return Ok(false);
        }
    };
    confine_all(dir, &mut spec);
    match Assembler::new(spec) {
        Ok(_) => Ok(true),
        Err(e) => {
            check_spec_error(&e, text)?;
            Ok(false)
        }
    }
}

/// Checks one transcript parse: a valid transcript or `InvalidInput` naming the field.
fn check_transcript(
    text: &str,
    format: TranscriptFormat,
) -> std::result::Result<(), TestCaseError> {
    match Transcript::parse(text, format) {
        Ok((t, _)) => {
            let words = t.words();
            for w in words {
                prop_assert!(w.start_s.is_finite() && w.start_s >= 0.0, "{}: {:?}", format, w);
                prop_assert!(w.end_s.is_finite() && w.end_s >= w.start_s, "{}: {:?}", format, w);
                prop_assert!(!w.text.trim().is_empty(), "{}: empty word {:?}", format, w);
            }
            for p in words.windows(2) {
                prop_assert!(
                    p[0].end_s <= p[1].start_s,
                    "{}: unsorted or overlapping {:?}",
                    format,
                    p
                );
            }
            prop_assert!(t.to_native().is_ok(), "{}: cannot write back", format);
            let _ = t.to_srt(&CueOptions::default());
            let _ = t.to_vtt(&CueOptions::default());
        }
        Err(Error::InvalidInput { field, detail }) => {
            prop_assert!(
                field.starts_with("transcript") || field.starts_with("words["),
                "{}: error field {:?} ({})",
                format,
                field,
                detail
            );
        }
        Err(other) => {
            return Err(TestCaseError::fail(format!("{format}: not InvalidInput: {other:?}")));
        }
    }
    Ok(())
}

/// One step down a JSON tree.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Item(usize),
}

/// Every node's path, root first.
fn paths(v: &Value) -> Vec<Vec<Step>> {
    fn walk(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(here.clone());
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    here.push(Step::Key(k.clone()));
                    walk(c, here, out);
                    here.pop();
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    here.push(Step::Item(i));
                    walk(c, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn node<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Item(i) => v.get_mut(*i),
    })
}

/// What to do to one node.
#[derive(Clone, Debug)]
enum Mutation {
    /// Remove it from its parent (the root is replaced by `null`).
    Delete,
    /// Replace it by another value.
    Replace(Value),
    /// Add an unknown key (objects) or an element (arrays); other nodes are replaced.
    Insert(String, Value),
    /// Turn it into a string holding its JSON text (a number becomes `"3"`).
    Stringify,
    /// Wrap it in an array.
    Wrap,
}

fn apply(root: &mut Value, path: &[Step], m: &Mutation) {
    if let (Mutation::Delete, Some((last, parent))) = (m, path.split_last()) {
        match (node(root, parent), last) {
            (Some(Value::Object(o)), Step::Key(k)) => {
                o.remove(k);
            }
            (Some(Value::Array(a)), Step::Item(i)) if *i < a.len() => {
                a.remove(*i);
            }
            _ => {}
        }
        return;
    }
    let Some(n) = node(root, path) else { return };
    match m {
        Mutation::Delete => *n = Value::Null,
        Mutation::Replace(v) => *n = v.clone(),
        Mutation::Insert(k, v) => match n {
            Value::Object(o) => {
                o.insert(k.clone(), v.clone());
            }
            Value::Array(a) => a.push(v.clone()),
            other => *other = v.clone(),
        },
        Mutation::Stringify => *n = Value::String(n.to_string()),
        Mutation::Wrap => *n = Value::Array(vec![n.take()]),
    }
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("content".to_string()),
        Just("intro".to_string()),
        Just("out/x.wav".to_string()),
        Just("../../x".to_string()),
        Just("/".to_string()),
        Just("NaN".to_string()),
        Just("-inf".to_string()),
        Just("mp3".to_string()),
        Just("wav".to_string()),
        Just("cbr".to_string()),
        Just("00:00:01,000 --> 00:00:00,500".to_string()),
        "[a-z_]{1,12}",
        "\\PC{0,24}",
    ]
}

fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1)),
        Just(json!(2)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(u32::MAX as u64 + 1)),
        Just(json!(f64::MAX)),
        Just(json!(-f64::MAX)),
        Just(json!(f64::MIN_POSITIVE)),
        Just(json!(1e-300)),
        Just(json!(-0.0)),
        Just(json!(0.5)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|x| json!(x)),
        any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(|x| json!(x)),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any_number(),
        any_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn any_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::Delete),
        4 => any_value().prop_map(Mutation::Replace),
        3 => any_number().prop_map(Mutation::Replace),
        2 => (prop_oneof![Just("colour".to_string()), "[a-z_]{1,10}"], any_value())
            .prop_map(|(k, v)| Mutation::Insert(k, v)),
        1 => Just(Mutation::Stringify),
        1 => Just(Mutation::Wrap),
    ]
}

/// Changes to the serialized text that a `Value` cannot express.
#[derive(Clone, Debug)]
enum TextEdit {
    /// Replace the n-th number literal by this token (`1e999`, `NaN`, `-0`, …).
    Number(Index, &'static str),
    /// Cut the text at this byte (moved back to a char boundary).
    Truncate(Index),
    /// Insert this text at this byte.
    Splice(Index, String),
}

fn any_text_edit() -> impl Strategy<Value = TextEdit> {
    let token = prop::sample::select(vec![
        "1e999",
        "-1e999",
        "NaN",
        "Infinity",
        "-0",
        "18446744073709551616",
        "-9223372036854775809",
        "1.7976931348623157e309",
        "0.0000000000000000000000000001",
        "1e-400",
        "00",
        "1.",
        "\"1\"",
    ]);
    prop_oneof![
        (any::<Index>(), token).prop_map(|(i, t)| TextEdit::Number(i, t)),
        any::<Index>().prop_map(TextEdit::Truncate),
        (any::<Index>(), prop_oneof![Just("{".to_string()), Just("]".to_string()), "\\PC{0,8}"])
            .prop_map(|(i, s)| TextEdit::Splice(i, s)),
    ]
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn edit_text(s: &str, e: &TextEdit) -> String {
    match e {
        TextEdit::Number(i, token) => {
            // Byte ranges of number literals (digits with sign, dot and exponent).
            let b = s.as_bytes();
            let mut spans = Vec::new();
            let mut k = 0;
            while k < b.len() {
                let starts = b[k].is_ascii_digit()
                    || (b[k] == b'-' && b.get(k + 1).is_some_and(u8::is_ascii_digit));
                let after_word = k > 0 && (b[k - 1].is_ascii_alphanumeric() || b[k - 1] == b'_');
                if starts && !after_word {
                    let j = k
                        + 1
                        + b[k + 1..]
                            .iter()
                            .take_while(|c| c.is_ascii_digit() || b".eE+-".contains(c))
                            .count();
                    spans.push(k..j);
                    k = j;
                } else {
                    k += 1;
                }
            }
            if spans.is_empty() {
                return s.to_string();
            }
            let r = spans[i.index(spans.len())].clone();
            format!("{}{token}{}", &s[..r.start], &s[r.end..])
        }
        TextEdit::Truncate(i) => s[..floor_char_boundary(s, i.index(s.len() + 1))].to_string(),
        TextEdit::Splice(i, t) => {
            let at = floor_char_boundary(s, i.index(s.len() + 1));
            format!("{}{t}{}", &s[..at], &s[at..])
        }
    }
}

fn mutate(
    mut v: Value,
    muts: &[(Index, Mutation)],
    text: &Option<TextEdit>,
) -> (String, Vec<String>) {
    let mut log = Vec::new();
    for (at, m) in muts {
        let all = paths(&v);
        let path = &all[at.index(all.len())];
        log.push(format!("{path:?}: {m:?}"));
        apply(&mut v, path, m);
    }
    let s = v.to_string();
    match text {
        Some(e) => {
            log.push(format!("{e:?}"));
            (edit_text(&s, e), log)
        }
        None => (s, log),
    }
}

#[test]
fn the_base_spec_is_valid_so_mutations_reach_every_check() {
    let dir = scratch();
    let text = base_spec().to_string();
    assert!(check_spec(dir.path(), &text).unwrap(), "{text}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_specs_give_errors_with_paths_never_a_panic(
        muts in prop::collection::vec((any::<Index>(), any_mutation()), 1..5),
        text_edit in prop::option::weighted(0.25, any_text_edit()),
    ) {
        let dir = scratch();
        let (text, _log) = mutate(base_spec(), &muts, &text_edit);
        check_spec(dir.path(), &text)?;
    }

    #[test]
    fn random_json_specs_give_errors_with_paths(v in any_value(), bytes in "\\PC{0,64}") {
        let dir = scratch();
        check_spec(dir.path(), &v.to_string())?;
        check_spec(dir.path(), &bytes)?;
    }
}

/// The provider samples, each with the format it is in.
fn samples() -> Vec<(TranscriptFormat, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/transcripts");
    [
        ("backend_words.json", TranscriptFormat::Words),
        ("assemblyai.json", TranscriptFormat::AssemblyAi),
        ("whisper_api.json", TranscriptFormat::Whisper),
        ("faster_whisper.json", TranscriptFormat::Whisper),
        ("whisperx.json", TranscriptFormat::WhisperX),
        ("deepgram.json", TranscriptFormat::Deepgram),
        ("episode.srt", TranscriptFormat::Srt),
        ("episode.vtt", TranscriptFormat::WebVtt),
    ]
    .into_iter()
    .map(|(f, fmt)| (fmt, std::fs::read_to_string(dir.join(f)).unwrap()))
    .collect()
}

#[test]
fn every_sample_parses_in_its_own_format() {
    for (fmt, text) in samples() {
        let (t, _) = Transcript::parse(&text, fmt).unwrap_or_else(|e| panic!("{fmt}: {e}"));
        assert!(t.len() >= 2, "{fmt}: {} words", t.len());
        check_transcript(&text, fmt).unwrap();
    }
}

/// Line-level edits for the cue formats.
#[derive(Clone, Debug)]
enum LineEdit {
    Drop(Index),
    Duplicate(Index),
    Swap(Index, Index),
    Replace(Index, String),
}

fn any_line_edit() -> impl Strategy<Value = LineEdit> {
    let line = prop_oneof![
        Just(String::new()),
        Just("WEBVTT".to_string()),
        Just("99".to_string()),
        Just("00:00:05,000 --> 00:00:01,000".to_string()),
        Just("99:99:99,999 --> 99:99:99,999".to_string()),
        Just("00:00:01.000 --> 00:00:02.000 align:start".to_string()),
        Just("18446744073709551616:00:00,000 --> 1:00".to_string()),
        Just("-00:00:01,000 --> 00:00:01,000".to_string()),
        Just("NOTE x".to_string()),
        Just("<b>".to_string()),
        "\\PC{0,30}",
    ];
    prop_oneof![
        any::<Index>().prop_map(LineEdit::Drop),
        any::<Index>().prop_map(LineEdit::Duplicate),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
        (any::<Index>(), line).prop_map(|(i, l)| LineEdit::Replace(i, l)),
    ]
}

fn edit_lines(text: &str, edits: &[LineEdit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match e {
            LineEdit::Drop(i) => {
                lines.remove(i.index(n));
            }
            LineEdit::Duplicate(i) => {
                let l = lines[i.index(n)].clone();
                lines.insert(i.index(n), l);
            }
            LineEdit::Swap(a, b) => lines.swap(a.index(n), b.index(n)),
            LineEdit::Replace(i, l) => lines[i.index(n)] = l.clone(),
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_transcripts_parse_or_name_the_field_in_every_format(
        sample in any::<Index>(),
        muts in prop::collection::vec((any::<Index>(), any_mutation()), 0..4),
        lines in prop::collection::vec(any_line_edit(), 0..4),
        text_edit in prop::option::weighted(0.3, any_text_edit()),
    ) {
        let all = samples();
        let (own, text) = &all[sample.index(all.len())];
        let text = match serde_json::from_str::<Value>(text) {
            Ok(v) => mutate(v, &muts, &text_edit).0,
            Err(_) => {
                let t = edit_lines(text, &lines);
                match &text_edit { Some(e) => edit_text(&t, e), None => t }
            }
        };
        check_transcript(&text, *own)?;
        for fmt in TranscriptFormat::ALL {
            check_transcript(&text, fmt)?;
        }
    }

    #[test]
    fn random_transcripts_parse_or_name_the_field(v in any_value(), s in "\\PC{0,80}") {
        for fmt in TranscriptFormat::ALL {
            check_transcript(&v.to_string(), fmt)?;
            check_transcript(&s, fmt)?;
        }
    }
}

#[test]
fn syntax_errors_and_positional_specs_are_reported_where_they_are() {
    let problems = |text: &str| match Spec::from_json(text) {
        Err(Error::InvalidSpec { problems }) => problems,
        other => panic!("{text}: {other:?}"),
    };
    // serde would read a struct from an array by field position; a spec is an object.
    let p = problems(r#"[1, "raw.wav", {}, null, {}, null, {}, {}, {"path": "o.mp3"}]"#);
    assert_eq!(p[0].path, "$");
    // A syntax error inside an object names the innermost field read so far, never `?`.
    assert_eq!(problems("{")[0].path, "$");
    assert_eq!(problems(r#"{"version": 1, "output": {"path": "o.mp3", "#)[0].path, "output");
    // An unknown key that is empty or not a plain word is quoted, never an empty path.
    assert_eq!(problems(r#"{"": 1}"#)[0].path, r#"[""]"#);
    assert_eq!(problems(r#"{"output": {"a.b": 1}}"#)[0].path, r#"output["a.b"]"#);
    assert_eq!(
        problems(r#"{"version": 1, "template": {"segments": [{"asset": 7}]}}"#)[0].path,
        "template.segments[0].asset"
    );
}
