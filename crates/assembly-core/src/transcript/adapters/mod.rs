//! One adapter per provider format. Each declares its time unit.

pub(super) mod assemblyai;
pub(super) mod backend;
pub(super) mod deepgram;
pub(super) mod srt;
pub(super) mod vtt;
pub(super) mod whisper;
pub(super) mod whisperx;

use serde_json::{Map, Value};

use super::json::{self, Step, TimeKeys, Unit, WordLoc};
use super::{Origin, Parsed, TranscriptFormat, Word};
use crate::error::{Error, Result};
use crate::warning::Warning;

/// How an adapter reads one word object.
pub(super) struct WordShape {
    /// Keys holding the token, in order of preference.
    pub text: &'static [&'static str],
    /// Accepted start/end key pairs with their units, in order of preference.
    pub times: &'static [TimeKeys],
    /// Keys holding a confidence in [0, 1].
    pub confidence: &'static [&'static str],
    /// Whether a word may lack times (they are interpolated later).
    pub times_optional: bool,
}

/// A word read from JSON; times may be missing when the shape allows it.
pub(super) struct RawWord {
    pub text: String,
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    pub speaker: Option<String>,
    pub confidence: Option<f32>,
    pub keys: TimeKeys,
}

/// Reads one word object; `field` names it for errors (`transcript.words[3]`).
pub(super) fn read_word(
    v: &Value,
    shape: &WordShape,
    field: &dyn Fn() -> String,
) -> Result<RawWord> {
    let obj = json::as_object(v, field)?;
    let mut text = None;
    for key in shape.text {
        if let Some(t) = json::opt_string(obj, key, field)? {
            text = Some(t);
            break;
        }
    }
    let Some(text) = text else {
        return Err(Error::invalid_input(
            field(),
            format!("missing the word text (`{}`)", shape.text.join("` or `")),
        ));
    };
    let mut found: Option<(TimeKeys, Option<f64>, Option<f64>)> = None;
    for keys in shape.times {
        let s = json::opt_time(obj, keys.start, keys.unit, field)?;
        let e = json::opt_time(obj, keys.end, keys.unit, field)?;
        match (&found, s.is_some() || e.is_some()) {
            (None, true) => found = Some((keys.clone(), s, e)),
            (Some((first, fs, fe)), true) => {
                // Both unit spellings present: they must agree to the millisecond.
                let agree = |a: Option<f64>, b: Option<f64>| match (a, b) {
                    (Some(a), Some(b)) => (a - b).abs() <= 0.0015,
                    _ => true,
                };
                if !agree(*fs, s) || !agree(*fe, e) {
                    return Err(Error::invalid_input(
                        field(),
                        format!(
                            "`{}`/`{}` and `{}`/`{}` disagree",
                            first.start, first.end, keys.start, keys.end
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    let (keys, start_s, end_s) = match found {
        Some(f) => f,
        None => (shape.times[0].clone(), None, None),
    };
    if !shape.times_optional {
        if start_s.is_none() {
            return Err(Error::invalid_input(field(), format!("missing `{}`", keys.start)));
        }
        if end_s.is_none() {
            return Err(Error::invalid_input(field(), format!("missing `{}`", keys.end)));
        }
    }
    let speaker = json::opt_string(obj, "speaker", field)?;
    let mut confidence = None;
    for key in shape.confidence {
        if let Some(c) = json::opt_confidence(obj, key, field)? {
            confidence = Some(c);
            break;
        }
    }
    Ok(RawWord { text, start_s, end_s, speaker, confidence, keys })
}

/// Collects the words of the arrays at `paths` (each must be an array of word objects).
pub(super) struct Collector {
    pub doc: json::Doc,
    pub primary: Vec<usize>,
    pub raw: Vec<(RawWord, WordLoc)>,
}

impl Collector {
    pub(super) fn new(value: Value) -> Self {
        Self { doc: json::Doc::new(value), primary: Vec::new(), raw: Vec::new() }
    }

    /// Reads every word of the array at `path`.
    pub(super) fn read_array(&mut self, path: Vec<Step>, shape: &WordShape) -> Result<()> {
        let root = "transcript";
        let value = json::get(&self.doc.value, &path)
            .ok_or_else(|| Error::invalid_input(json::path_string(root, &path), "missing"))?;
        let items = json::as_array(value, &|| json::path_string(root, &path))?;
        let mut words = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let field = || {
                let mut p = path.clone();
                p.push(Step::Index(i));
                json::path_string(root, &p)
            };
            words.push((i, read_word(item, shape, &field)?));
        }
        let array = self.doc.array_id(path);
        if !self.primary.contains(&array) {
            self.primary.push(array);
        }
        for (index, w) in words {
            let loc = WordLoc { array, index, keys: w.keys.clone() };
            self.raw.push((w, loc));
        }
        Ok(())
    }

    /// Finishes into [`Parsed`]; every word must have times by now.
    pub(super) fn finish(
        self,
        format: TranscriptFormat,
        cue_level: bool,
        warnings: Vec<Warning>,
    ) -> Result<Parsed> {
        let mut words = Vec::with_capacity(self.raw.len());
        let mut locs = Vec::with_capacity(self.raw.len());
        for (w, loc) in self.raw {
            let (Some(start_s), Some(end_s)) = (w.start_s, w.end_s) else {
                let path = &self.doc.arrays[loc.array];
                let mut p = path.clone();
                p.push(Step::Index(loc.index));
                return Err(Error::invalid_input(
                    json::path_string("transcript", &p),
                    "missing times",
                ));
            };
            words.push(Word {
                text: w.text,
                start_s,
                end_s,
                speaker: w.speaker,
                confidence: w.confidence,
            });
            locs.push(Some(loc));
        }
        Ok(Parsed {
            words,
            locs,
            origin: Origin::Json {
                format,
                doc: Box::new(self.doc),
                primary: self.primary,
                cue_level,
            },
            warnings,
        })
    }
}

/// The object member `key` of `obj`, if present and not null.
pub(super) fn member<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(super) const SECONDS: TimeKeys = TimeKeys { start: "start", end: "end", unit: Unit::Seconds };
pub(super) const MILLIS_PLAIN: TimeKeys =
    TimeKeys { start: "start", end: "end", unit: Unit::Millis };
pub(super) const MILLIS_SUFFIXED: TimeKeys =
    TimeKeys { start: "start_ms", end: "end_ms", unit: Unit::Millis };

/// Parses a cue timestamp `[HH:]MM:SS(,|.)mmm` to seconds; hours may have any number of digits.
pub(super) fn parse_timestamp(s: &str) -> Option<f64> {
    let s = s.trim();
    let (hms, frac) = s.rsplit_once([',', '.'])?;
    if frac.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: u64 = frac.parse::<u64>().ok()? * 10u64.pow(3 - frac.len() as u32);
    let parts: Vec<&str> = hms.split(':').collect();
    let num = |p: &str| -> Option<u64> {
        if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            p.parse().ok()
        }
    };
    let (h, m, sec) = match parts.as_slice() {
        [m, s] => (0, num(m)?, num(s)?),
        [h, m, s] => (num(h)?, num(m)?, num(s)?),
        _ => return None,
    };
    if m >= 60 || sec >= 60 {
        return None;
    }
    Some((h * 3600 + m * 60 + sec) as f64 + ms as f64 / 1000.0)
}

/// Removes markup tags (`<i>`, `<v Bob>`, `{\an8}`) and decodes the common entities.
pub(super) fn strip_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => {
                for d in chars.by_ref() {
                    if d == '>' {
                        break;
                    }
                }
            }
            '{' if chars.peek() == Some(&'\\') => {
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&lrm;", "")
        .replace("&rlm;", "")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("00:00:01,500"), Some(1.5));
        assert_eq!(parse_timestamp("01:02:03.004"), Some(3723.004));
        assert_eq!(parse_timestamp("02:03.5"), Some(123.5));
        assert_eq!(parse_timestamp("100:00:00.000"), Some(360_000.0));
        assert_eq!(parse_timestamp("00:61:00.000"), None);
        assert_eq!(parse_timestamp("00:00:01"), None);
        assert_eq!(parse_timestamp("aa:00:01.000"), None);
        assert_eq!(parse_timestamp("-1:00:01.000"), None);
    }

    #[test]
    fn markup() {
        assert_eq!(strip_markup("<v Bob>Hi <i>there</i> &amp; you"), "Hi there & you");
        assert_eq!(strip_markup("{\\an8}Top"), "Top");
    }
}
