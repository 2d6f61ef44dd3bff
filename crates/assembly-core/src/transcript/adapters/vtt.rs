//! WebVTT (`.vtt`): a `WEBVTT` header, then cues `[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm [settings]`
//! with optional identifiers. Read at cue level; `<v Speaker>` voice tags become the speaker;
//! NOTE, STYLE and REGION blocks are skipped; markup and entities are removed.

use super::srt::parse_cues;
use crate::error::{Error, Result};
use crate::transcript::{Origin, Parsed, TranscriptFormat};

pub(crate) fn parse(input: &str) -> Result<Parsed> {
    let first = input.lines().next().unwrap_or("").trim_end_matches('\r');
    if !(first == "WEBVTT" || first.starts_with("WEBVTT ") || first.starts_with("WEBVTT\t")) {
        return Err(Error::invalid_input(
            "transcript line 1",
            "a WebVTT file starts with `WEBVTT`",
        ));
    }
    let words = parse_cues(input, true)?;
    let n = words.len();
    Ok(Parsed {
        words,
        locs: vec![None; n],
        origin: Origin::Cues { format: TranscriptFormat::WebVtt },
        warnings: Vec::new(),
    })
}
