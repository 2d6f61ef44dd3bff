//! OpenAI Whisper (API `verbose_json`, the `openai-whisper` package) and faster-whisper JSON:
//! times in **seconds**. Words come from top-level `words` (API with word granularity), else
//! from `segments[].words` (`word`, `start`, `end`, `probability`); without word timestamps
//! the segments themselves are read as cues.

use super::{Collector, SECONDS, WordShape, member};
use crate::error::{Error, Result};
use crate::transcript::json::{self, Step, Unit};
use crate::transcript::{Parsed, TranscriptFormat};
use crate::warning::{Warning, WarningCode};

const WORD: WordShape = WordShape {
    text: &["word"],
    times: &[SECONDS],
    confidence: &["probability"],
    times_optional: false,
};

const SEGMENT: WordShape =
    WordShape { text: &["text"], times: &[SECONDS], confidence: &[], times_optional: false };

pub(crate) fn parse(input: &str) -> Result<Parsed> {
    let value = json::parse_doc(input)?;
    let obj = json::as_object(&value, &|| "transcript".into())?;
    let mut paths = Vec::new();
    let mut cue_level = false;
    let mut warnings = Vec::new();
    if member(obj, "words").is_some() {
        paths.push(vec![Step::Key("words".into())]);
    } else {
        let segments = member(obj, "segments")
            .ok_or_else(|| Error::invalid_input("transcript", "missing `words` and `segments`"))?;
        let segments = json::as_array(segments, &|| "transcript.segments".into())?;
        for (i, seg) in segments.iter().enumerate() {
            if seg.get("words").is_some_and(|w| !w.is_null()) {
                paths.push(vec![
                    Step::Key("segments".into()),
                    Step::Index(i),
                    Step::Key("words".into()),
                ]);
            }
        }
        if paths.is_empty() && !segments.is_empty() {
            paths.push(vec![Step::Key("segments".into())]);
            cue_level = true;
            warnings.push(Warning::new(
                WarningCode::MissingTimes,
                "no word timestamps: segments are used as cues (transcribe with word timestamps \
                 for word-level editing)",
            ));
        }
    }
    let mut c = Collector::new(value);
    let shape = if cue_level { &SEGMENT } else { &WORD };
    for p in &paths {
        c.read_array(p.clone(), shape)?;
    }
    c.doc.collect_times(
        &[("start", Unit::Seconds), ("end", Unit::Seconds), ("duration", Unit::Seconds)],
        &[SECONDS],
        &["words"],
        &paths,
    );
    c.finish(TranscriptFormat::Whisper, cue_level, warnings)
}
