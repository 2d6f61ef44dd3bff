//! The backend's word list: `{word|text, start, end, speaker, confidence}`.
//!
//! Unit by key name: `start`/`end` are seconds, `start_ms`/`end_ms` milliseconds. A word may
//! carry both spellings if they agree to the millisecond. The list is bare or under `"words"`.

use serde_json::Value;

use super::{Collector, MILLIS_SUFFIXED, SECONDS, WordShape};
use crate::error::{Error, Result};
use crate::transcript::json::{self, Step, Unit};
use crate::transcript::{Parsed, TranscriptFormat};

const SHAPE: WordShape = WordShape {
    text: &["word", "text"],
    times: &[SECONDS, MILLIS_SUFFIXED],
    confidence: &["confidence"],
    times_optional: false,
};

pub(crate) fn parse(input: &str) -> Result<Parsed> {
    let value = json::parse_doc(input)?;
    let path = match &value {
        Value::Array(_) => vec![],
        Value::Object(obj) if obj.get("words").is_some_and(Value::is_array) => {
            vec![Step::Key("words".into())]
        }
        other => {
            return Err(Error::invalid_input(
                "transcript",
                format!(
                    "expected a list of words or an object with a `words` list, found {}",
                    json::kind(other)
                ),
            ));
        }
    };
    let mut c = Collector::new(value);
    c.read_array(path.clone(), &SHAPE)?;
    c.doc.collect_times(
        &[
            ("start", Unit::Seconds),
            ("end", Unit::Seconds),
            ("start_ms", Unit::Millis),
            ("end_ms", Unit::Millis),
        ],
        &[SECONDS, MILLIS_SUFFIXED],
        &["words"],
        &[path],
    );
    c.finish(TranscriptFormat::Words, false, Vec::new())
}
