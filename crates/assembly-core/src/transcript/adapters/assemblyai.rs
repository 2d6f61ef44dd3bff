//! AssemblyAI transcript JSON: `words[]` with `text`, `start`/`end` in **milliseconds**,
//! `confidence`, `speaker`. Every other `start`/`end` (utterances, chapters, entities, …) is
//! milliseconds too; `audio_duration` is seconds.

use serde_json::Value;

use super::{Collector, MILLIS_PLAIN, WordShape, member};
use crate::error::{Error, Result};
use crate::transcript::json::{self, Step, Unit};
use crate::transcript::{Parsed, TranscriptFormat};

const SHAPE: WordShape = WordShape {
    text: &["text"],
    times: &[MILLIS_PLAIN],
    confidence: &["confidence"],
    times_optional: false,
};

pub(crate) fn parse(input: &str) -> Result<Parsed> {
    let value = json::parse_doc(input)?;
    let obj = json::as_object(&value, &|| "transcript".into())?;
    if let Some(Value::String(status)) = member(obj, "status")
        && status != "completed"
    {
        let detail = match member(obj, "error") {
            Some(Value::String(e)) => format!("transcript status is {status:?}: {e}"),
            _ => format!("transcript status is {status:?}, not \"completed\""),
        };
        return Err(Error::invalid_input("transcript.status", detail));
    }
    if member(obj, "words").is_none() {
        return Err(Error::invalid_input("transcript.words", "missing (no word timestamps)"));
    }
    let path = vec![Step::Key("words".into())];
    let mut c = Collector::new(value);
    c.read_array(path.clone(), &SHAPE)?;
    c.doc.collect_times(
        &[("start", Unit::Millis), ("end", Unit::Millis), ("audio_duration", Unit::Seconds)],
        &[MILLIS_PLAIN],
        &["words"],
        &[path],
    );
    c.finish(TranscriptFormat::AssemblyAi, false, Vec::new())
}
