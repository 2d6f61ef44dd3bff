//! SubRip (`.srt`): numbered cues `HH:MM:SS,mmm --> HH:MM:SS,mmm` then text lines. Read at cue
//! level: one [`Word`] per cue, text lines joined with a space, markup removed. Tolerates a
//! BOM, CRLF line ends, missing cue numbers, a `.` decimal separator and extra blank lines.

use super::{parse_timestamp, strip_markup};
use crate::error::{Error, Result};
use crate::transcript::{Origin, Parsed, TranscriptFormat, Word};

pub(crate) fn parse(input: &str) -> Result<Parsed> {
    let words = parse_cues(input, false)?;
    let n = words.len();
    Ok(Parsed {
        words,
        locs: vec![None; n],
        origin: Origin::Cues { format: TranscriptFormat::Srt },
        warnings: Vec::new(),
    })
}

/// Parses `start --> end[ settings]`; `line_no` is 1-based for the error.
pub(super) fn parse_timing(line: &str, line_no: usize) -> Result<(f64, f64)> {
    let bad = |detail: &str| {
        Error::invalid_input(format!("transcript line {line_no}"), detail.to_string())
    };
    let (a, rest) = line.split_once("-->").ok_or_else(|| bad("expected `start --> end`"))?;
    let b = rest.split_whitespace().next().ok_or_else(|| bad("missing end time"))?;
    let start = parse_timestamp(a).ok_or_else(|| bad(&format!("bad start time {:?}", a.trim())))?;
    let end = parse_timestamp(b).ok_or_else(|| bad(&format!("bad end time {b:?}")))?;
    Ok((start, end))
}

/// Cue blocks shared by SRT and WebVTT: `vtt` enables `<v Speaker>` extraction and skips
/// NOTE/STYLE/REGION blocks.
pub(super) fn parse_cues(input: &str, vtt: bool) -> Result<Vec<Word>> {
    let lines: Vec<&str> = input.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut words = Vec::new();
    let mut i = 0;
    if vtt {
        // Header block: "WEBVTT" line then anything up to the first blank line.
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
    }
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let block_start = i;
        let mut end = i;
        while end < lines.len() && !lines[end].trim().is_empty() {
            end += 1;
        }
        let block = &lines[block_start..end];
        i = end;
        if vtt {
            let first = block[0].trim_start();
            if first.starts_with("NOTE") || first == "STYLE" || first == "REGION" {
                continue;
            }
        }
        let Some(t) = block.iter().position(|l| l.contains("-->")) else {
            return Err(Error::invalid_input(
                format!("transcript line {}", block_start + 1),
                "cue without a `start --> end` timing line",
            ));
        };
        if t > 1 {
            return Err(Error::invalid_input(
                format!("transcript line {}", block_start + 1),
                "more than one line before the cue timing",
            ));
        }
        let (start_s, end_s) = parse_timing(block[t], block_start + t + 1)?;
        let raw = block[t + 1..].join(" ");
        let speaker = if vtt { voice(&raw) } else { None };
        let text = strip_markup(&raw).split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            continue;
        }
        words.push(Word { text, start_s, end_s, speaker, confidence: None });
    }
    Ok(words)
}

/// The speaker of the first `<v Name>` / `<v.class Name>` voice tag, if any.
fn voice(s: &str) -> Option<String> {
    let at = s.find("<v")?;
    let rest = &s[at + 2..];
    if !rest.starts_with([' ', '.', '\t']) {
        return None;
    }
    let close = rest.find('>')?;
    let inner = rest[..close].trim_start_matches(|c: char| c != ' ' && c != '\t');
    let name = inner.trim();
    if name.is_empty() { None } else { Some(name.to_string()) }
}
