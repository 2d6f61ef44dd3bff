//! Validation and documented repairs of word lists.

use super::Word;
use super::json::WordLoc;
use crate::error::{Error, Result};
use crate::warning::{Warning, WarningCode};

/// Counts repairs of one kind and remembers the first word concerned.
struct Tally {
    code: WarningCode,
    count: usize,
    first: Option<(usize, String)>,
}

impl Tally {
    fn new(code: WarningCode) -> Self {
        Self { code, count: 0, first: None }
    }

    fn hit(&mut self, index: usize, text: &str) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((index, text.to_string()));
        }
    }

    fn finish(self, what: &str, out: &mut Vec<Warning>) {
        if let Some((i, text)) = self.first {
            let plural = if self.count == 1 { "word" } else { "words" };
            out.push(Warning::new(
                self.code,
                format!("{} {plural} {what} (first: word {i}, {text:?})", self.count),
            ));
        }
    }
}

/// Applies the repairs documented on [`super::Transcript::from_words`]; `locs` stays parallel.
pub(super) fn repair(
    words: &mut Vec<Word>,
    locs: &mut Vec<Option<WordLoc>>,
) -> Result<Vec<Warning>> {
    debug_assert_eq!(words.len(), locs.len());
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if !w.start_s.is_finite() {
            return Err(Error::invalid_input(format!("words[{i}].start_s"), "not a finite number"));
        }
        if !w.end_s.is_finite() {
            return Err(Error::invalid_input(format!("words[{i}].end_s"), "not a finite number"));
        }
    }
    let mut negative = Tally::new(WarningCode::NegativeTime);
    let mut reversed = Tally::new(WarningCode::EndBeforeStart);
    let mut empty = Tally::new(WarningCode::EmptyWord);
    let mut keep = vec![true; words.len()];
    for (i, w) in words.iter_mut().enumerate() {
        if w.start_s < 0.0 || w.end_s < 0.0 {
            negative.hit(i, &w.text);
            w.start_s = w.start_s.max(0.0);
            w.end_s = w.end_s.max(0.0);
        }
        if w.end_s < w.start_s {
            reversed.hit(i, &w.text);
            w.end_s = w.start_s;
        }
        let trimmed = w.text.trim();
        if trimmed.is_empty() {
            empty.hit(i, &w.text);
            keep[i] = false;
        } else if trimmed.len() != w.text.len() {
            w.text = trimmed.to_string();
        }
    }
    negative.finish("had negative times, clamped to 0", &mut out);
    reversed.finish("ended before they started; end set to start", &mut out);
    empty.finish("had no text and were dropped", &mut out);
    if keep.iter().any(|k| !k) {
        let mut it = keep.iter();
        words.retain(|_| *it.next().unwrap_or(&true));
        let mut it = keep.iter();
        locs.retain(|_| *it.next().unwrap_or(&true));
    }

    let unsorted = words.windows(2).filter(|p| p[1].start_s < p[0].start_s).count();
    if unsorted > 0 {
        let mut idx: Vec<usize> = (0..words.len()).collect();
        idx.sort_by(|&a, &b| words[a].start_s.total_cmp(&words[b].start_s));
        let w2: Vec<Word> = idx.iter().map(|&i| words[i].clone()).collect();
        let l2: Vec<Option<WordLoc>> = idx.iter().map(|&i| locs[i].clone()).collect();
        *words = w2;
        *locs = l2;
        out.push(Warning::new(
            WarningCode::Unsorted,
            format!("{unsorted} words started before the previous word; sorted by start"),
        ));
    }

    let mut overlap = Tally::new(WarningCode::Overlap);
    for i in 1..words.len() {
        let next_start = words[i].start_s;
        let prev = &mut words[i - 1];
        if prev.end_s > next_start {
            overlap.hit(i - 1, &prev.text);
            prev.end_s = next_start.max(prev.start_s);
        }
    }
    overlap.finish("overlapped the next word; ends trimmed to the next start", &mut out);
    Ok(out)
}

/// Drops words starting at or after `duration_s`, clamps ends past it.
pub(super) fn fit_to_duration(
    words: &mut Vec<Word>,
    locs: &mut Vec<Option<WordLoc>>,
    duration_s: f64,
) -> Vec<Warning> {
    let mut out = Vec::new();
    if !duration_s.is_finite() {
        return out;
    }
    let mut clamped = Tally::new(WarningCode::PastEnd);
    let mut dropped = Tally::new(WarningCode::PastEnd);
    let mut keep = Vec::with_capacity(words.len());
    for (i, w) in words.iter_mut().enumerate() {
        if w.start_s >= duration_s {
            dropped.hit(i, &w.text);
            keep.push(false);
        } else {
            if w.end_s > duration_s {
                clamped.hit(i, &w.text);
                w.end_s = duration_s;
            }
            keep.push(true);
        }
    }
    let msg =
        format!("started at or after the end of the audio ({duration_s:.3} s) and were dropped");
    dropped.finish(&msg, &mut out);
    let msg = format!("ended after the end of the audio ({duration_s:.3} s) and were clamped");
    clamped.finish(&msg, &mut out);
    let mut it = keep.iter();
    words.retain(|_| *it.next().unwrap_or(&true));
    let mut it = keep.iter();
    locs.retain(|_| *it.next().unwrap_or(&true));
    out
}
