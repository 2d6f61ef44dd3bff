//! WhisperX aligned output: `segments[].words[]` with `word`, `start`/`end` in **seconds**,
//! `score`, optional `speaker` (else the segment's). Words the aligner could not place (often
//! numerals) have no times: they are spread evenly between their timed neighbours (or the
//! segment bounds) with a [`MissingTimes`](crate::WarningCode::MissingTimes) warning.

use super::{Collector, SECONDS, WordShape, member};
use crate::error::{Error, Result};
use crate::transcript::json::{self, Step, Unit};
use crate::transcript::{Parsed, TranscriptFormat};
use crate::warning::{Warning, WarningCode};

const SHAPE: WordShape =
    WordShape { text: &["word"], times: &[SECONDS], confidence: &["score"], times_optional: true };

pub(crate) fn parse(input: &str) -> Result<Parsed> {
    let value = json::parse_doc(input)?;
    let obj = json::as_object(&value, &|| "transcript".into())?;
    let segments = member(obj, "segments")
        .ok_or_else(|| Error::invalid_input("transcript.segments", "missing"))?;
    let segments = json::as_array(segments, &|| "transcript.segments".into())?;
    // Per segment: bounds and speaker, to fill gaps.
    let mut seg_info = Vec::new();
    let mut paths = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let field = || format!("transcript.segments[{i}]");
        let so = json::as_object(seg, &field)?;
        let start = json::opt_time(so, "start", Unit::Seconds, &field)?;
        let end = json::opt_time(so, "end", Unit::Seconds, &field)?;
        let speaker = json::opt_string(so, "speaker", &field)?;
        if member(so, "words").is_some() {
            paths.push(vec![
                Step::Key("segments".into()),
                Step::Index(i),
                Step::Key("words".into()),
            ]);
            seg_info.push((start, end, speaker));
        }
    }
    let mut c = Collector::new(value);
    let mut seg_of_word = Vec::new();
    for (si, p) in paths.iter().enumerate() {
        let before = c.raw.len();
        c.read_array(p.clone(), &SHAPE)?;
        seg_of_word.extend(std::iter::repeat_n(si, c.raw.len() - before));
    }
    // Fill speakers from segments, then interpolate missing times.
    for (k, (w, _)) in c.raw.iter_mut().enumerate() {
        if w.speaker.is_none() {
            w.speaker = seg_info[seg_of_word[k]].2.clone();
        }
    }
    let mut missing = 0usize;
    let mut first_missing = None;
    let n = c.raw.len();
    let mut k = 0;
    while k < n {
        if c.raw[k].0.start_s.is_some() && c.raw[k].0.end_s.is_some() {
            k += 1;
            continue;
        }
        // A run of words lacking a start or end: [k, j).
        let mut j = k;
        while j < n && (c.raw[j].0.start_s.is_none() || c.raw[j].0.end_s.is_none()) {
            j += 1;
        }
        let seg = &seg_info[seg_of_word[k]];
        let lo = if k > 0 {
            c.raw[k - 1].0.end_s.unwrap_or(0.0)
        } else {
            c.raw[k].0.start_s.or(seg.0).unwrap_or(0.0)
        };
        let hi = if j < n {
            c.raw[j].0.start_s.unwrap_or(lo)
        } else {
            c.raw[j - 1].0.end_s.or(seg.1).unwrap_or(lo)
        };
        let hi = hi.max(lo);
        let step = (hi - lo) / (j - k) as f64;
        for (r, slot) in c.raw[k..j].iter_mut().enumerate() {
            let w = &mut slot.0;
            let s = lo + step * r as f64;
            let e = lo + step * (r + 1) as f64;
            w.start_s = Some(w.start_s.unwrap_or(s).clamp(lo, hi));
            w.end_s = Some(w.end_s.unwrap_or(e).clamp(lo, hi));
            missing += 1;
            first_missing.get_or_insert_with(|| w.text.clone());
        }
        k = j;
    }
    let mut warnings = Vec::new();
    if let Some(first) = first_missing {
        warnings.push(Warning::new(
            WarningCode::MissingTimes,
            format!("{missing} words had no times and were interpolated (first: {first:?})"),
        ));
    }
    c.doc.collect_times(
        &[("start", Unit::Seconds), ("end", Unit::Seconds)],
        &[SECONDS],
        &["word_segments", "words"],
        &paths,
    );
    c.finish(TranscriptFormat::WhisperX, false, warnings)
}
