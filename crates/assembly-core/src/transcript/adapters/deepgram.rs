//! Deepgram pre-recorded response: `results.channels[0].alternatives[0].words[]` with `word`,
//! `punctuated_word` (preferred when present), `start`/`end` in **seconds**, `confidence`,
//! `speaker`. Other channels, alternatives, utterances and paragraphs are re-timed on write.

use serde_json::Value;

use super::{Collector, SECONDS, WordShape};
use crate::error::{Error, Result};
use crate::transcript::json::{self, Step, Unit};
use crate::transcript::{Parsed, TranscriptFormat};
use crate::warning::{Warning, WarningCode};

const SHAPE: WordShape = WordShape {
    text: &["punctuated_word", "word"],
    times: &[SECONDS],
    confidence: &["confidence"],
    times_optional: false,
};

pub(crate) fn parse(input: &str) -> Result<Parsed> {
    let value = json::parse_doc(input)?;
    let channels = value
        .get("results")
        .and_then(|r| r.get("channels"))
        .ok_or_else(|| Error::invalid_input("transcript.results.channels", "missing"))?;
    let channels = json::as_array(channels, &|| "transcript.results.channels".into())?;
    let first = channels
        .first()
        .ok_or_else(|| Error::invalid_input("transcript.results.channels", "empty"))?;
    let words = first
        .get("alternatives")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|a| a.get("words"));
    if words.is_none() {
        return Err(Error::invalid_input(
            "transcript.results.channels[0].alternatives[0].words",
            "missing",
        ));
    }
    let mut warnings = Vec::new();
    if channels.len() > 1 {
        warnings.push(Warning::new(
            WarningCode::ExtraChannels,
            format!("{} channels transcribed; only channel 0 is read", channels.len()),
        ));
    }
    let path = vec![
        Step::Key("results".into()),
        Step::Key("channels".into()),
        Step::Index(0),
        Step::Key("alternatives".into()),
        Step::Index(0),
        Step::Key("words".into()),
    ];
    let mut c = Collector::new(value);
    c.read_array(path.clone(), &SHAPE)?;
    c.doc.collect_times(
        &[("start", Unit::Seconds), ("end", Unit::Seconds), ("duration", Unit::Seconds)],
        &[SECONDS],
        &["words"],
        &[path],
    );
    c.finish(TranscriptFormat::Deepgram, false, warnings)
}
