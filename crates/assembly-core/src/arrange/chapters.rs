//! Chapters: from segment placements and caller-given chapters re-timed onto the episode,
//! and the Podcasting 2.0 JSON chapters sidecar.

use serde::{Deserialize, Serialize};

use super::place::Arrangement;
use super::template::{SegmentType, Template};
use crate::Chapter;
use crate::error::{Error, Result};

/// Builds the episode's chapter list.
///
/// - Each segment with a `chapter_title` starts a chapter at its placement.
/// - `content_chapters` (on the content's **source** timeline, in ms) belong to the content
///   segment `content_segment` (default: the first content segment). Each start is re-timed
///   with `time_map` (source ms → ms within the edited content, e.g. the edit list's time
///   map) and shifted to the segment's place on the episode; starts falling outside the
///   segment are dropped. At the same start, a caller chapter replaces a segment chapter.
/// - Chapters are sorted; each ends where the next starts, the last at the episode's end;
///   empty chapters are dropped. Caller `end_ms` values are ignored (chapters are
///   contiguous, as ID3 CHAP and Podcasting 2.0 players expect).
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::Chapter;
/// use assembly_core::arrange::{chapters, place, Segment, SegmentType, Template};
///
/// let rate = NonZeroU32::new(1000).unwrap(); // 1 frame = 1 ms
/// let t = Template::new(vec![
///     Segment { chapter_title: Some("Intro".into()), ..Segment::new(SegmentType::Intro, "i") },
///     Segment::new(SegmentType::Content, "c"),
/// ]);
/// let a = place(&t, rate, |id| Some(if id == "i" { 10_000 } else { 60_000 })).unwrap();
/// let topics = [Chapter { title: "Topic".into(), start_ms: 30_000, end_ms: 0, url: None }];
/// // The edit removed 5 s before the topic: source 30 s is 25 s into the edited content.
/// let list = chapters(&t, &a, &topics, None, |ms| ms - 5_000).unwrap();
/// assert_eq!(list.len(), 2);
/// assert_eq!((list[1].start_ms, list[1].end_ms), (35_000, 70_000));
/// assert_eq!(list[0].end_ms, 35_000);
/// ```
///
/// # Errors
///
/// [`Error::InvalidInput`] if `arrangement` does not belong to `template`, a caller chapter
/// has an empty title (naming `chapters[i].title`), there are caller chapters but no content
/// segment, or `content_segment` names no content segment.
pub fn chapters(
    template: &Template,
    arrangement: &Arrangement,
    content_chapters: &[Chapter],
    content_segment: Option<&str>,
    time_map: impl Fn(u64) -> u64,
) -> Result<Vec<Chapter>> {
    if arrangement.placements.len() != template.segments.len() {
        return Err(Error::invalid_input(
            "arrangement",
            "does not belong to this template (segment counts differ)",
        ));
    }
    // (start_ms, priority, title, url): priority 1 (caller) wins over 0 (segment).
    let mut starts: Vec<(u64, u8, String, Option<String>)> = Vec::new();
    for (p, s) in arrangement.placements.iter().zip(&template.segments) {
        if let Some(title) = s.chapter_title.as_ref().filter(|t| !t.trim().is_empty()) {
            starts.push((p.start_ms, 0, title.clone(), None));
        }
    }
    if !content_chapters.is_empty() {
        let target = match content_segment {
            Some(id) => arrangement
                .placements
                .iter()
                .find(|p| p.segment_id == id && p.segment_type == SegmentType::Content)
                .ok_or_else(|| {
                    Error::invalid_input(
                        "content_segment",
                        format!("{id:?} is not a content segment of this template"),
                    )
                })?,
            None => arrangement
                .placements
                .iter()
                .find(|p| p.segment_type == SegmentType::Content)
                .ok_or_else(|| {
                    Error::invalid_input("chapters", "chapters were given but there is no content")
                })?,
        };
        for (i, c) in content_chapters.iter().enumerate() {
            if c.title.trim().is_empty() {
                return Err(Error::invalid_input(format!("chapters[{i}].title"), "is empty"));
            }
            let start = target.start_ms.saturating_add(time_map(c.start_ms));
            if start < target.end_ms {
                starts.push((start, 1, c.title.clone(), c.url.clone()));
            }
        }
    }
    starts.sort_by_key(|s| (s.0, s.1));
    // At equal starts keep the last (caller over segment).
    let mut dedup: Vec<(u64, String, Option<String>)> = Vec::with_capacity(starts.len());
    for (start, _, title, url) in starts {
        match dedup.last_mut() {
            Some(last) if last.0 == start => *last = (start, title, url),
            _ => dedup.push((start, title, url)),
        }
    }
    let total = arrangement.total_ms;
    let mut out = Vec::with_capacity(dedup.len());
    for (i, (start, title, url)) in dedup.iter().enumerate() {
        let end = dedup.get(i + 1).map_or(total, |n| n.0).min(total);
        if end > *start {
            out.push(Chapter {
                title: title.clone(),
                start_ms: *start,
                end_ms: end,
                url: url.clone(),
            });
        }
    }
    Ok(out)
}

/// One chapter in the Podcasting 2.0 JSON chapters format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodcastChapter {
    /// Start, in seconds from the start of the episode.
    #[serde(rename = "startTime")]
    pub start_time: f64,
    /// End, in seconds.
    #[serde(rename = "endTime", default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// Title.
    pub title: String,
    /// Link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The Podcasting 2.0 JSON chapters document (`application/json+chapters`, version 1.2.0).
///
/// ```
/// use assembly_core::{Chapter, arrange::PodcastChapters};
///
/// let c = [Chapter { title: "Intro".into(), start_ms: 0, end_ms: 12_500, url: None }];
/// let json = PodcastChapters::from_chapters(&c).to_json().unwrap();
/// assert!(json.contains(r#""version": "1.2.0""#));
/// assert!(json.contains(r#""startTime": 0.0"#) && json.contains(r#""endTime": 12.5"#));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodcastChapters {
    /// Format version, `"1.2.0"`.
    pub version: String,
    /// The chapters, in order.
    pub chapters: Vec<PodcastChapter>,
}

impl PodcastChapters {
    /// Converts a chapter list (ms) to the JSON model (seconds).
    pub fn from_chapters(chapters: &[Chapter]) -> Self {
        Self {
            version: "1.2.0".into(),
            chapters: chapters
                .iter()
                .map(|c| PodcastChapter {
                    start_time: c.start_ms as f64 / 1000.0,
                    end_time: Some(c.end_ms as f64 / 1000.0),
                    title: c.title.clone(),
                    url: c.url.clone(),
                })
                .collect(),
        }
    }

    /// Pretty-printed JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if serialization fails (it should not).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::internal(format!("chapters json: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrange::{Segment, place};
    use std::num::NonZeroU32;

    const R: NonZeroU32 = NonZeroU32::new(48_000).unwrap();

    fn ch(title: &str, start_ms: u64) -> Chapter {
        Chapter { title: title.into(), start_ms, end_ms: 0, url: None }
    }

    #[test]
    fn segment_and_retimed_caller_chapters_merge_in_order() {
        let titled = |t: SegmentType, a: &str, title: &str| Segment {
            chapter_title: Some(title.into()),
            ..Segment::new(t, a)
        };
        let mut t = Template::new(vec![
            titled(SegmentType::Intro, "intro", "Intro"),
            titled(SegmentType::Content, "talk", "Main"),
            titled(SegmentType::Commercial, "ad", "Sponsor"),
            Segment::new(SegmentType::Content, "talk2"),
            titled(SegmentType::Outro, "outro", "Outro"),
        ]);
        t.timing.content_start_offset_s = -2.0;
        let lens = |id: &str| {
            Some(match id {
                "intro" => 480_000,   // 10 s
                "talk" => 2_880_000,  // 60 s
                "ad" => 720_000,      // 15 s
                "talk2" => 1_440_000, // 30 s
                _ => 240_000,         // 5 s
            })
        };
        let a = place(&t, R, lens).unwrap();
        // Content starts at 8 s. Edit removed 10 s of source before 40 s source.
        let map = |ms: u64| if ms < 30_000 { ms } else { ms.saturating_sub(10_000) };
        let caller =
            [ch("Cold open", 0), ch("Topic A", 20_000), ch("Topic B", 45_000), ch("Gone", 75_000)];
        let list = chapters(&t, &a, &caller, None, map).unwrap();
        let got: Vec<(&str, u64, u64)> =
            list.iter().map(|c| (c.title.as_str(), c.start_ms, c.end_ms)).collect();
        assert_eq!(
            got,
            vec![
                ("Intro", 0, 8_000),
                ("Cold open", 8_000, 28_000), // replaces "Main" at the same start
                ("Topic A", 28_000, 43_000),
                ("Topic B", 43_000, 68_000),
                ("Sponsor", 68_000, 113_000), // "Gone" maps past the content: dropped
                ("Outro", 113_000, 118_000),
            ]
        );
        let e = chapters(&t, &a, &[ch(" ", 0)], None, map).unwrap_err().to_string();
        assert!(e.contains("chapters[0].title"), "{e}");
        let e = chapters(&t, &a, &caller, Some("ad-2"), map).unwrap_err().to_string();
        assert!(e.contains("content_segment"), "{e}");
        let second = chapters(&t, &a, &[ch("Late", 1_000)], Some("content-3"), map).unwrap();
        assert!(second.iter().any(|c| c.title == "Late" && c.start_ms == 84_000), "{second:?}");
    }

    #[test]
    fn json_sidecar_round_trips() {
        let c = [
            Chapter { title: "A".into(), start_ms: 0, end_ms: 1_500, url: None },
            Chapter {
                title: "B".into(),
                start_ms: 1_500,
                end_ms: 9_001,
                url: Some("https://x".into()),
            },
        ];
        let doc = PodcastChapters::from_chapters(&c);
        let json = doc.to_json().unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["version"], "1.2.0");
        assert_eq!(v["chapters"][1]["startTime"], 1.5);
        assert_eq!(v["chapters"][1]["endTime"], 9.001);
        assert_eq!(v["chapters"][1]["url"], "https://x");
        assert!(v["chapters"][0].get("url").is_none());
        let back: PodcastChapters = serde_json::from_str(&json).unwrap();
        assert_eq!(back, doc);
    }
}
