//! Writers: the backend word list, SubRip and WebVTT.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Word;
use super::json::Unit;
use crate::error::{Error, Result};

/// How word-level transcripts are grouped into caption cues.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CueOptions {
    /// Most characters in one cue (two lines of 42). Default: `84`.
    pub max_chars: usize,
    /// Longest cue, in ms. Default: `7000`.
    pub max_duration_ms: u64,
    /// A silence longer than this between words starts a new cue, in ms. Default: `1000`.
    pub max_gap_ms: u64,
}

impl Default for CueOptions {
    fn default() -> Self {
        Self { max_chars: 84, max_duration_ms: 7000, max_gap_ms: 1000 }
    }
}

struct Cue {
    start_s: f64,
    end_s: f64,
    text: String,
    speaker: Option<String>,
}

fn ends_sentence(text: &str) -> bool {
    let t = text.trim_end_matches(['"', '\'', ')', ']', '”', '’']);
    t.ends_with(['.', '?', '!', '…'])
}

fn group(words: &[Word], cue_level: bool, o: &CueOptions) -> Vec<Cue> {
    let mut cues: Vec<Cue> = Vec::new();
    let mut open = false;
    for w in words {
        if open && !cue_level {
            let cue = cues.last_mut().filter(|c| {
                c.speaker == w.speaker
                    && (w.start_s - c.end_s) * 1000.0 <= o.max_gap_ms as f64
                    && (w.end_s - c.start_s) * 1000.0 <= o.max_duration_ms as f64
                    && c.text.chars().count() + 1 + w.text.chars().count() <= o.max_chars
            });
            if let Some(c) = cue {
                c.text.push(' ');
                c.text.push_str(&w.text);
                c.end_s = w.end_s;
                open = !ends_sentence(&w.text);
                continue;
            }
        }
        cues.push(Cue {
            start_s: w.start_s,
            end_s: w.end_s,
            text: w.text.clone(),
            speaker: w.speaker.clone(),
        });
        open = !ends_sentence(&w.text);
    }
    cues
}

fn timestamp(seconds: f64, sep: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    format!("{h:02}:{m:02}:{s:02}{sep}{ms:03}")
}

/// SubRip text.
pub(super) fn srt(words: &[Word], cue_level: bool, o: &CueOptions) -> String {
    let mut out = String::new();
    for (i, c) in group(words, cue_level, o).iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(c.start_s, ','),
            timestamp(c.end_s, ','),
            c.text
        ));
    }
    out
}

fn escape_vtt(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// WebVTT text; speakers become `<v Speaker>` voice tags.
pub(super) fn vtt(words: &[Word], cue_level: bool, o: &CueOptions) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for c in group(words, cue_level, o) {
        let text = escape_vtt(&c.text);
        let text = match &c.speaker {
            Some(s) => format!("<v {}>{text}", escape_vtt(s)),
            None => text,
        };
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            timestamp(c.start_s, '.'),
            timestamp(c.end_s, '.'),
            text
        ));
    }
    out
}

/// `{"words": [{"word", "start", "end", "speaker"?, "confidence"?}]}` with seconds.
pub(super) fn backend_json(words: &[Word]) -> Result<String> {
    let list: Vec<Value> = words
        .iter()
        .map(|w| {
            let mut o = json!({
                "word": w.text,
                "start": Unit::Seconds.to_json(w.start_s),
                "end": Unit::Seconds.to_json(w.end_s),
            });
            if let Some(map) = o.as_object_mut() {
                if let Some(s) = &w.speaker {
                    map.insert("speaker".into(), Value::from(s.clone()));
                }
                if let Some(c) = w.confidence {
                    map.insert("confidence".into(), Unit::Seconds.to_json(f64::from(c)));
                }
            }
            o
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "words": list }))
        .map_err(|e| Error::internal(format!("serializing transcript: {e}")))
}
