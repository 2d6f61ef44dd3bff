//! The review page (`output.review_html`): one self-contained HTML file showing what the
//! automatic edit did, for a producer to check before publishing.
//!
//! The page shows the episode's waveform (min and max per column), its short-term loudness
//! (BS.1770, 3 s windows) against the master target, the template's segments and music beds
//! as bands, every edit as a marker with its reason and its source and episode times, and the
//! transcript with removed words struck through. Clicking a marker plays the episode from
//! [`PREROLL_S`] before the join through an `<audio>` element that names the episode by a
//! path relative to the page.
//!
//! Everything the page draws is computed here, in Rust, from the written episode file
//! (decoded once more, block by block: [`scan_file`]); the page's script only draws it. The
//! data travels as JSON inside the page, escaped so no transcript word or reason can end the
//! script or inject markup ([`page_html`]). No network, no external script. See
//! `docs/review.md`.

use std::num::NonZeroU32;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::arrange::Arrangement;
use crate::dsp::meter::{FastMeter, short_term_from_subs, sub_block_frames};
use crate::edit::{EditPlan, EntryKind, PlanEntry, Reason};
use crate::error::{Error, Result};
use crate::load::{self, DecodeOptions};
use crate::transcript::Transcript;
use crate::{CancelToken, frames_to_ms};

/// Seconds of episode a marker click plays before its join.
pub const PREROLL_S: f64 = 3.0;

/// Columns of the waveform overview (a page is rarely wider than this in pixels).
pub const WAVEFORM_COLUMNS: usize = 2_000;

/// Most points of the loudness curve: longer episodes space them wider than 100 ms.
pub const LOUDNESS_POINTS: usize = 2_000;

/// The waveform overview: per column, the lowest and highest sample over all channels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Waveform {
    /// Frames per column (the last column may be shorter).
    pub column_frames: u64,
    /// Seconds per column.
    pub column_s: f64,
    /// Lowest sample of each column (0 for an empty one).
    pub min: Vec<f32>,
    /// Highest sample of each column (0 for an empty one).
    pub max: Vec<f32>,
}

/// The short-term loudness curve: point `k` is the 3 s window ending at `(k + 1)·step_s`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoudnessCurve {
    /// Seconds between points (a multiple of 100 ms).
    pub step_s: f64,
    /// Window length, seconds (3, BS.1770 short-term).
    pub window_s: f64,
    /// Short-term loudness, LUFS; `None` (JSON `null`) below the −70 LUFS gate.
    pub lufs: Vec<Option<f64>>,
}

/// Streaming scan of an episode: the waveform columns and the K-weighted 100 ms energies,
/// fed block by block (it holds no audio).
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::review::EpisodeScan;
///
/// let rate = NonZeroU32::new(8_000).unwrap();
/// let mut scan = EpisodeScan::new(1, rate, 8_000, 4).unwrap();
/// let ramp: Vec<f32> = (0..8_000).map(|i| i as f32 / 8_000.0).collect();
/// scan.add(&[&ramp]).unwrap();
/// let (wave, _) = scan.finish();
/// assert_eq!(wave.column_frames, 2_000);
/// assert_eq!(wave.min, vec![0.0, 0.25, 0.5, 0.75]);
/// ```
pub struct EpisodeScan {
    rate: NonZeroU32,
    channels: usize,
    column_frames: u64,
    pos: u64,
    min: Vec<f32>,
    max: Vec<f32>,
    meter: FastMeter,
}

impl EpisodeScan {
    /// A scan of `total_frames` frames of `channels` channels at `rate`, in at most `columns`
    /// waveform columns of equal width (frames fed past `total_frames` count in the last).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for no channels or no columns.
    pub fn new(
        channels: usize,
        rate: NonZeroU32,
        total_frames: u64,
        columns: usize,
    ) -> Result<Self> {
        if channels == 0 || columns == 0 {
            return Err(Error::invalid_input(
                "review",
                format!("cannot scan {channels} channels into {columns} columns"),
            ));
        }
        let column_frames = total_frames.div_ceil(columns as u64).max(1);
        let n = total_frames.div_ceil(column_frames).max(1) as usize;
        Ok(Self {
            rate,
            channels,
            column_frames,
            pos: 0,
            min: vec![f32::INFINITY; n],
            max: vec![f32::NEG_INFINITY; n],
            meter: FastMeter::new(channels, rate),
        })
    }

    /// Feeds planar channel slices of equal length, one per channel of the scan.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if the channel count or the slices' lengths differ.
    pub fn add(&mut self, planes: &[&[f32]]) -> Result<()> {
        crate::buffer::check_planes(planes, self.channels, "review")?;
        let n = planes.first().map_or(0, |p| p.len());
        let last = self.min.len() - 1;
        let mut i = 0usize;
        while i < n {
            let col = ((self.pos / self.column_frames) as usize).min(last);
            let room = if col == last {
                n - i
            } else {
                ((col as u64 + 1) * self.column_frames - self.pos) as usize
            };
            let m = room.min(n - i);
            let (lo, hi) = (&mut self.min[col], &mut self.max[col]);
            for p in planes {
                for &x in &p[i..i + m] {
                    *lo = lo.min(x);
                    *hi = hi.max(x);
                }
            }
            i += m;
            self.pos += m as u64;
        }
        self.meter.add(planes);
        Ok(())
    }

    /// The waveform and the short-term loudness curve (at most [`LOUDNESS_POINTS`] points,
    /// every 100 ms when the episode is short enough).
    pub fn finish(self) -> (Waveform, LoudnessCurve) {
        // 1e-4 of full scale is far below a pixel; it keeps the JSON short.
        let fix = |v: f32| if v.is_finite() { round_to(f64::from(v), 1e-4) as f32 } else { 0.0 };
        let subs = self.meter.sub_blocks();
        let step = subs.len().div_ceil(LOUDNESS_POINTS).max(1);
        let sub_s = sub_block_frames(self.rate) as f64 / f64::from(self.rate.get());
        (
            Waveform {
                column_frames: self.column_frames,
                column_s: self.column_frames as f64 / f64::from(self.rate.get()),
                min: self.min.into_iter().map(fix).collect(),
                max: self.max.into_iter().map(fix).collect(),
            },
            LoudnessCurve {
                step_s: step as f64 * sub_s,
                window_s: 3.0,
                lufs: short_term_from_subs(subs, step)
                    .into_iter()
                    .map(|v| v.map(|v| round_to(v, 0.01)))
                    .collect(),
            },
        )
    }
}

/// Decodes the episode at `path` block by block into an [`EpisodeScan`] of
/// [`WAVEFORM_COLUMNS`] columns over `frames` frames (the encoder's count).
///
/// # Errors
///
/// As [`load::decode_file_streaming`]; [`Error::Cancelled`].
pub fn scan_file(
    path: &Path,
    frames: u64,
    cancel: &CancelToken,
) -> Result<(Waveform, LoudnessCurve)> {
    let mut scan: Option<EpisodeScan> = None;
    let d =
        load::decode_file_streaming(path, &DecodeOptions::default(), cancel, &mut |rate, b| {
            if scan.is_none() {
                let rate = NonZeroU32::new(rate).ok_or_else(|| Error::internal("zero rate"))?;
                scan = Some(EpisodeScan::new(b.len(), rate, frames, WAVEFORM_COLUMNS)?);
            }
            scan.as_mut().map_or(Ok(()), |s| s.add(b))
        })?;
    let scan = match scan {
        Some(s) => s,
        None => {
            let rate = NonZeroU32::new(d.info.sample_rate).unwrap_or(NonZeroU32::MIN);
            EpisodeScan::new(1, rate, frames, WAVEFORM_COLUMNS)?
        }
    };
    Ok(scan.finish())
}

/// A segment or a music bed on the episode timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Band {
    /// The segment id or the bed's asset.
    pub label: String,
    /// The segment type (`intro`, `content`, …) or `bed`.
    pub kind: String,
    /// Start, seconds.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
}

/// The segments and beds of `arrangement` as bands, segments first.
pub fn bands(arrangement: &Arrangement) -> (Vec<Band>, Vec<Band>) {
    let ms = |v: u64| v as f64 / 1000.0;
    let segments = arrangement
        .placements
        .iter()
        .map(|p| Band {
            label: p.segment_id.clone(),
            kind: json_name(&p.segment_type),
            start_s: ms(p.start_ms),
            end_s: ms(p.end_ms),
        })
        .collect();
    let beds = arrangement
        .beds
        .iter()
        .map(|b| Band {
            label: b.asset.clone(),
            kind: "bed".into(),
            start_s: ms(b.start_ms),
            end_s: ms(b.end_ms),
        })
        .collect();
    (segments, beds)
}

/// A serde enum's JSON name (`SegmentType::SoundEffect` → `sound_effect`).
fn json_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// One edit on the page: a marker at its join on the episode timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Marker {
    /// `remove`, `replace` or `insert`.
    pub kind: String,
    /// Why (`filler`, `pause`, `flubber`, …).
    pub reason: String,
    /// What exactly (the matched words, the pause lengths, the clip).
    pub detail: String,
    /// Start on the source recording, seconds.
    pub source_start_s: f64,
    /// End on the source recording, seconds.
    pub source_end_s: f64,
    /// Start on the episode, seconds (the join for a removal).
    pub episode_start_s: f64,
    /// End on the episode, seconds.
    pub episode_end_s: f64,
    /// Where a click starts playing: [`PREROLL_S`] before the start, at least 0.
    pub play_from_s: f64,
}

/// The edit list as markers: each entry's content-timeline output times moved by
/// `content_start_ms`, where the content begins on the episode (whole milliseconds, so the
/// seconds in the page are exact to the ms).
///
/// ```
/// use assembly_core::edit::{EntryKind, PlanEntry, Reason};
/// use assembly_core::review::markers;
///
/// let e = PlanEntry {
///     kind: EntryKind::Remove, reason: Reason::Filler,
///     source_start_ms: 4_000, source_end_ms: 4_300,
///     output_start_ms: 2_000, output_end_ms: 2_000, detail: "um".into(),
/// };
/// let m = markers(&[e], 10_000);
/// assert_eq!((m[0].episode_start_s, m[0].play_from_s), (12.0, 9.0));
/// assert_eq!(m[0].reason, "filler");
/// ```
pub fn markers(entries: &[PlanEntry], content_start_ms: u64) -> Vec<Marker> {
    let s = |ms: u64| ms as f64 / 1000.0;
    let preroll_ms = (PREROLL_S * 1000.0) as u64;
    entries
        .iter()
        .map(|e| {
            let start = content_start_ms + e.output_start_ms;
            Marker {
                kind: json_name(&e.kind),
                reason: json_name(&e.reason),
                detail: e.detail.clone(),
                source_start_s: s(e.source_start_ms),
                source_end_s: s(e.source_end_ms),
                episode_start_s: s(start),
                episode_end_s: s(content_start_ms + e.output_end_ms),
                play_from_s: s(start.saturating_sub(preroll_ms)),
            }
        })
        .collect()
}

/// `v` rounded to a multiple of `step` (shorter JSON: ms for times, 0.01 LU, 1e-4 of full
/// scale).
fn round_to(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

/// One transcript word on the page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewWord {
    /// The word as the episode has it (censored words masked when the plan masks them);
    /// removed words as transcribed.
    pub text: String,
    /// Speaker label, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// Start on the source recording, seconds.
    pub source_start_s: f64,
    /// Start on the episode, seconds; `None` for a removed word.
    pub episode_start_s: Option<f64>,
    /// Why it was removed (the edit covering most of it); `None` for a kept word.
    pub removed_by: Option<String>,
}

/// Every word of `transcript` in source order: kept words with their episode start (the
/// same re-timing as the report's `words`), removed words (50% or more of their span cut)
/// with the reason of the edit that covers most of them.
pub fn review_words(
    transcript: &Transcript,
    plan: &EditPlan,
    content_start_s: f64,
) -> Vec<ReviewWord> {
    let map = plan.time_map();
    let retimed = plan.retime(transcript);
    let mut kept = retimed.words().iter();
    transcript
        .words()
        .iter()
        .map(|w| {
            let episode = map.map_span_s(w.start_s, w.end_s).and_then(|_| kept.next());
            let (text, episode_start_s, removed_by) = match episode {
                Some(k) => {
                    (k.text.clone(), Some(round_to(content_start_s + k.start_s, 1e-3)), None)
                }
                None => {
                    (w.text.clone(), None, Some(covering_reason(&plan.entries, w.start_s, w.end_s)))
                }
            };
            ReviewWord {
                text,
                speaker: w.speaker.clone(),
                source_start_s: round_to(w.start_s, 1e-3),
                episode_start_s,
                removed_by,
            }
        })
        .collect()
}

/// The reason of the removal or replacement overlapping `start_s..end_s` the most.
fn covering_reason(entries: &[PlanEntry], start_s: f64, end_s: f64) -> String {
    let mut best: Option<(f64, Reason)> = None;
    for e in entries.iter().filter(|e| e.kind != EntryKind::Insert) {
        let (a, b) = (e.source_start_ms as f64 / 1000.0, e.source_end_ms as f64 / 1000.0);
        let overlap = b.min(end_s) - a.max(start_s);
        if overlap >= 0.0 && best.is_none_or(|(o, _)| overlap > o) {
            best = Some((overlap, e.reason));
        }
    }
    best.map_or_else(|| "edit".into(), |(_, r)| json_name(&r))
}

/// Everything the page shows, as it is embedded (JSON) in the page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewData {
    /// The episode's title (tag), or its file name.
    pub title: String,
    /// The episode's path relative to the page's folder, percent-encoded ([`relative_url`]).
    pub audio_src: String,
    /// Episode length, seconds.
    pub duration_s: f64,
    /// The master's loudness target, LUFS.
    pub target_lufs: f64,
    /// The episode's measured integrated loudness, LUFS.
    pub integrated_lufs: Option<f64>,
    /// The episode's measured true peak, dBTP.
    pub true_peak_dbtp: Option<f64>,
    /// [`PREROLL_S`].
    pub preroll_s: f64,
    /// The waveform overview.
    pub waveform: Waveform,
    /// The short-term loudness curve.
    pub loudness: LoudnessCurve,
    /// Template segments.
    pub segments: Vec<Band>,
    /// Music beds.
    pub beds: Vec<Band>,
    /// One marker per edit.
    pub edits: Vec<Marker>,
    /// The transcript, removed words included.
    pub words: Vec<ReviewWord>,
}

/// The parts of a finished run the page is made of (plain data; see [`write_page`]).
pub struct ReviewInputs<'a> {
    /// The written episode.
    pub episode: &'a Path,
    /// Its length in frames (the encoder's count).
    pub episode_frames: u64,
    /// Its sample rate (an output may be written at another rate than the arrangement's).
    pub episode_rate: NonZeroU32,
    /// Its title.
    pub title: String,
    /// The content's edit plan.
    pub plan: &'a EditPlan,
    /// The source transcript, if any.
    pub transcript: Option<&'a Transcript>,
    /// The episode timeline.
    pub arrangement: &'a Arrangement,
    /// First frame of the content on the episode.
    pub content_start_frame: u64,
    /// The master's target, LUFS.
    pub target_lufs: f64,
    /// The measured integrated loudness and true peak of the episode.
    pub measured: Option<(f64, f64)>,
}

/// Scans the episode, builds the page and writes it to `path` atomically (temp file in its
/// folder, renamed into place). Returns the page's size in bytes.
///
/// # Errors
///
/// Decoding the episode ([`scan_file`]); [`Error::Io`] naming `path`; [`Error::Cancelled`].
pub fn write_page(path: &Path, inputs: &ReviewInputs<'_>, cancel: &CancelToken) -> Result<u64> {
    let (waveform, loudness) = scan_file(inputs.episode, inputs.episode_frames, cancel)?;
    let rate = inputs.arrangement.rate;
    let content_start_ms = frames_to_ms(inputs.content_start_frame, rate);
    let content_start_s = content_start_ms as f64 / 1000.0;
    let (segments, beds) = bands(inputs.arrangement);
    let finite = |v: f64| v.is_finite().then_some(v);
    let data = ReviewData {
        title: inputs.title.clone(),
        audio_src: relative_src(path, inputs.episode)?,
        duration_s: frames_to_ms(inputs.episode_frames, inputs.episode_rate) as f64 / 1000.0,
        target_lufs: inputs.target_lufs,
        integrated_lufs: inputs.measured.and_then(|m| finite(m.0)),
        true_peak_dbtp: inputs.measured.and_then(|m| finite(m.1)),
        preroll_s: PREROLL_S,
        waveform,
        loudness,
        segments,
        beds,
        edits: markers(&inputs.plan.entries, content_start_ms),
        words: inputs
            .transcript
            .map(|t| review_words(t, inputs.plan, content_start_s))
            .unwrap_or_default(),
    };
    let html = page_html(&data)?;
    cancel.check()?;
    crate::atomic::write_atomic(path, html.as_bytes())?;
    Ok(html.len() as u64)
}

/// The path of `audio` relative to the folder of the page at `page` (both resolved through
/// the file system), as a percent-encoded relative URL.
///
/// # Errors
///
/// [`Error::Io`] if either cannot be resolved (the episode must exist, the page's folder too).
pub fn relative_src(page: &Path, audio: &Path) -> Result<String> {
    let dir = match page.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&dir).map_err(|e| Error::io("resolve", &dir, e))?;
    let audio = std::fs::canonicalize(audio).map_err(|e| Error::io("resolve", audio, e))?;
    Ok(relative_url(&dir, &audio))
}

/// The relative URL from folder `from_dir` to file `to` (both absolute), each path segment
/// percent-encoded (everything but `A–Z a–z 0–9 - . _ ~`).
///
/// ```
/// use std::path::Path;
/// use assembly_core::review::relative_url;
///
/// assert_eq!(relative_url(Path::new("/s/out"), Path::new("/s/out/ep.mp3")), "ep.mp3");
/// assert_eq!(
///     relative_url(Path::new("/s/pages/x"), Path::new("/s/out/my ep#1.mp3")),
///     "../../out/my%20ep%231.mp3"
/// );
/// ```
pub fn relative_url(from_dir: &Path, to: &Path) -> String {
    let parts = |p: &Path| -> Vec<Vec<u8>> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.as_encoded_bytes().to_vec()),
                _ => None,
            })
            .collect()
    };
    let (from, to) = (parts(from_dir), parts(to));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut segments: Vec<String> = vec!["..".into(); from.len() - common];
    segments.extend(to[common..].iter().map(|s| percent_encode(s)));
    segments.join("/")
}

fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// JSON for embedding in a `<script>` element: `<`, `>`, `&` and the two JavaScript line
/// separators written as `\uXXXX` escapes, so no string in it can close the element, open a
/// comment or start markup. The value parses back unchanged.
///
/// ```
/// use assembly_core::review::script_json;
///
/// let s = script_json(&serde_json::json!({"w": "</script><b>&"})).unwrap();
/// assert_eq!(s, r#"{"w":"\u003c/script\u003e\u003cb\u003e\u0026"}"#);
/// ```
///
/// # Errors
///
/// [`Error::Internal`] if `value` cannot be serialized.
pub fn script_json<T: Serialize>(value: &T) -> Result<String> {
    let json = serde_json::to_string(value)
        .map_err(|e| Error::internal(format!("cannot serialize the review data: {e}")))?;
    let mut out = String::with_capacity(json.len() + 64);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Text for HTML element content or a quoted attribute: `& < > " '` as entities.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's markup, style and script (no data, no network).
const TEMPLATE: &str = include_str!("review/page.html");

/// The complete page for `data`: the template with the title and the audio path filled in
/// and the data embedded as JSON ([`script_json`]).
///
/// # Errors
///
/// [`Error::Internal`] if the data cannot be serialized.
pub fn page_html(data: &ReviewData) -> Result<String> {
    let json = script_json(data)?;
    let (title, src) = (html_escape(&data.title), html_escape(&data.audio_src));
    // One pass over the template: a value is never scanned for placeholders.
    let mut out = String::with_capacity(TEMPLATE.len() + json.len() + 256);
    let mut rest = TEMPLATE;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| Error::internal("review template: unclosed placeholder"))?;
        out.push_str(match &after[..end] {
            "TITLE" => &title,
            "AUDIO_SRC" => &src,
            "DATA" => &json,
            other => return Err(Error::internal(format!("review template: unknown {other:?}"))),
        });
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

    fn scan(buf: &crate::AudioBuffer, columns: usize, block: usize) -> (Waveform, LoudnessCurve) {
        let mut s =
            EpisodeScan::new(buf.channel_count(), buf.sample_rate(), buf.frames() as u64, columns)
                .unwrap();
        let mut i = 0;
        while i < buf.frames() {
            let e = (i + block).min(buf.frames());
            let planes: Vec<&[f32]> = buf.planes().iter().map(|p| &p[i..e]).collect();
            s.add(&planes).unwrap();
            i = e;
        }
        s.finish()
    }

    /// `REVIEW_SCAN_FILE=episode.mp3 cargo test -p assembly-core --lib review::tests::scan_cost
    /// -- --ignored --nocapture`: what `output.review_html` adds to a run, best of 3: decoding
    /// the episode into the scan, and building the page.
    #[test]
    #[ignore = "a speed measurement, not a check"]
    fn scan_cost() {
        let path = std::env::var("REVIEW_SCAN_FILE").expect("REVIEW_SCAN_FILE");
        let path = Path::new(&path);
        let frames = load::probe_file(path, &Default::default()).map(|p| p.frames).unwrap();
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let (waveform, loudness) = scan_file(path, frames, &CancelToken::new()).unwrap();
            let words = (0..10_000)
                .map(|i| ReviewWord {
                    text: format!("word{i}"),
                    speaker: None,
                    source_start_s: i as f64,
                    episode_start_s: Some(i as f64),
                    removed_by: None,
                })
                .collect();
            let mut d = data(words, Vec::new());
            d.waveform = waveform;
            d.loudness = loudness;
            let html = page_html(&d).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            assert!(html.len() > 10_000);
        }
        println!("{}: {frames} frames, review scan + page {best:.3} s", path.display());
    }

    #[test]
    fn waveform_columns_hold_each_columns_min_and_max_whatever_the_block_size() {
        let rate = NonZeroU32::new(8_000).unwrap();
        // 10 columns of 100 frames: column k is a square wave of amplitude k/10, and the
        // right channel holds a single spike of +0.95 in column 3.
        let left: Vec<f32> = (0..1_000)
            .map(|i| {
                let a = (i / 100) as f32 / 10.0;
                if i % 2 == 0 { a } else { -a }
            })
            .collect();
        let mut right = vec![0.0f32; 1_000];
        right[345] = 0.95;
        let buf = crate::AudioBuffer::from_planar(rate, vec![left, right]).unwrap();
        for block in [1, 7, 100, 333, 1_000] {
            let (w, _) = scan(&buf, 10, block);
            assert_eq!(w.column_frames, 100);
            assert_eq!(w.min.len(), 10);
            for k in 0..10 {
                let a = k as f32 / 10.0;
                assert_eq!(w.min[k], -a, "column {k}, block {block}");
                let hi = if k == 3 { 0.95 } else { a };
                assert_eq!(w.max[k], hi, "column {k}, block {block}");
            }
        }
    }

    #[test]
    fn a_block_of_the_wrong_shape_is_an_error() {
        let rate = NonZeroU32::new(8_000).unwrap();
        let mut s = EpisodeScan::new(2, rate, 100, 10).unwrap();
        let e = s.add(&[&[0.0; 10]]).unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{e}");
        assert!(s.add(&[&[0.0; 10], &[0.0; 9]]).is_err());
        assert!(EpisodeScan::new(0, rate, 100, 10).is_err());
        assert!(EpisodeScan::new(1, rate, 100, 0).is_err());
    }

    #[test]
    fn waveform_of_an_uneven_length_has_a_shorter_last_column() {
        let rate = NonZeroU32::new(8_000).unwrap();
        let x: Vec<f32> = (0..1_050).map(|i| i as f32 / 2_000.0).collect();
        let (w, _) = scan(&synth::mono(rate, x), 10, 64);
        // ceil(1050 / 10) = 105 frames a column, 10 columns, the last 105 frames long too.
        assert_eq!((w.column_frames, w.max.len()), (105, 10));
        assert_eq!(w.max[9], 1_049.0 / 2_000.0);
        assert_eq!(w.min[1], 105.0 / 2_000.0);
        assert!((w.column_s - 105.0 / 8_000.0).abs() < 1e-12);
    }

    #[test]
    fn loudness_curve_reads_a_known_sine_and_noise_level() {
        let rate = NonZeroU32::new(48_000).unwrap();
        // EBU Tech 3341 case 1: a 1 kHz stereo sine at −23 dBFS reads −23 LUFS.
        let sine = synth::sine(rate, 1_000.0, synth::db_to_amp(-23.0), 48_000 * 10);
        let (_, c) = scan(&synth::multi(rate, sine, 2), 10, 4_096);
        assert_eq!(c.lufs.len(), 100);
        assert!((c.step_s - 0.1).abs() < 1e-12 && c.window_s == 3.0);
        // After 3 s the window is full: −23 within 0.05 LU.
        for (k, v) in c.lufs.iter().enumerate().skip(29) {
            assert!((v.unwrap() + 23.0).abs() < 0.05, "point {k}: {v:?}");
        }
        // At 1.5 s half the window is still the silence before the start: −3 dB.
        assert!((c.lufs[14].unwrap() + 26.01).abs() < 0.05, "{:?}", c.lufs[14]);

        // White noise (mono, uniform, −20 dBFS RMS): K-weighting lifts the ~90% of a flat
        // spectrum above 2 kHz by its +4 dB shelf, so it reads ~−16.9 LUFS; every full
        // window reads what ebur128 measures for the whole (steady) noise.
        let a = synth::db_to_amp(-20.0) * 3f64.sqrt();
        let noise = synth::white_noise(5, a, 48_000 * 6);
        let buf = synth::mono(rate, noise);
        let reference = crate::dsp::meter::reference(&buf).integrated_lufs;
        let (_, c) = scan(&buf, 10, 1_000);
        assert!((reference + 16.85).abs() < 0.1, "{reference}");
        for v in &c.lufs[29..] {
            assert!((v.unwrap() - reference).abs() < 0.2, "{v:?} vs {reference}");
        }
    }

    #[test]
    fn loudness_curve_of_silence_is_null_and_long_episodes_are_thinned() {
        let rate = NonZeroU32::new(8_000).unwrap();
        let (_, c) = scan(&synth::mono(rate, vec![0.0; 8_000 * 5]), 10, 8_000);
        assert_eq!(c.lufs, vec![None; 50]);
        // 250 s of 100 ms sub-blocks is 2,500 sub-blocks: every 2nd one, 1,250 points.
        let (_, c) = scan(&synth::mono(rate, vec![0.0; 8_000 * 250]), 10, 65_536);
        assert_eq!(c.lufs.len(), 1_250);
        assert!((c.step_s - 0.2).abs() < 1e-12);
    }

    fn entry(kind: EntryKind, reason: Reason, src: (u64, u64), out: (u64, u64)) -> PlanEntry {
        PlanEntry {
            kind,
            reason,
            source_start_ms: src.0,
            source_end_ms: src.1,
            output_start_ms: out.0,
            output_end_ms: out.1,
            detail: String::new(),
        }
    }

    #[test]
    fn one_marker_per_edit_at_its_episode_time_with_preroll_clamped_at_zero() {
        let entries = vec![
            entry(EntryKind::Remove, Reason::Filler, (1_000, 1_400), (1_000, 1_000)),
            entry(EntryKind::Replace, Reason::Censor, (5_000, 5_300), (4_600, 4_900)),
            entry(EntryKind::Insert, Reason::Clip, (8_000, 8_000), (7_600, 9_600)),
        ];
        let m = markers(&entries, 500);
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].kind.as_str(), m[0].reason.as_str()), ("remove", "filler"));
        assert_eq!(m[0].episode_start_s, 1.5);
        assert_eq!(m[0].play_from_s, 0.0);
        assert_eq!((m[1].episode_start_s, m[1].play_from_s), (5.1, 2.1));
        assert_eq!((m[1].source_start_s, m[1].source_end_s), (5.0, 5.3));
        assert_eq!((m[2].reason.as_str(), m[2].episode_end_s), ("clip", 10.1));
    }

    #[test]
    fn removed_words_are_exactly_the_words_the_edit_dropped() {
        use crate::transcript::Word;
        let rate = NonZeroU32::new(16_000).unwrap();
        let mut s = synth::sine(rate, 220.0, 0.3, 16_000 * 6);
        for x in &mut s[4_800..8_000] {
            *x = 0.0;
        }
        for x in &mut s[16_000..64_000] {
            *x = 0.0;
        }
        let words = vec![
            Word::new("Hello", 0.0, 0.3),
            Word::new("um", 0.5, 1.0),
            Word::new("</script><b>world", 4.0, 6.0),
        ];
        let (t, _) = Transcript::from_words(words).unwrap();
        let audio = synth::mono(rate, s);
        let plan =
            crate::edit::plan(&audio, Some(&t), &[], &crate::edit::CleanupOptions::default())
                .unwrap();
        let w = review_words(&t, &plan, 2.0);
        assert_eq!(w.len(), 3);
        let removed: Vec<&str> =
            w.iter().filter(|w| w.removed_by.is_some()).map(|w| w.text.as_str()).collect();
        assert_eq!(removed, ["um"]);
        assert_eq!(w[1].removed_by.as_deref(), Some("filler"));
        // Kept words carry the report's re-timing, moved by the content's start.
        let retimed = plan.retime(&t);
        assert_eq!(w[0].episode_start_s, Some(2.0 + retimed.words()[0].start_s));
        assert_eq!(w[2].episode_start_s, Some(2.0 + retimed.words()[1].start_s));
        assert_eq!(w.iter().filter(|w| w.episode_start_s.is_none()).count(), 1);
    }

    fn data(words: Vec<ReviewWord>, edits: Vec<Marker>) -> ReviewData {
        ReviewData {
            title: "Show <i>\"1\"</i> {{DATA}}".into(),
            audio_src: "ep.mp3".into(),
            duration_s: 10.0,
            target_lufs: -16.0,
            integrated_lufs: Some(-16.1),
            true_peak_dbtp: None,
            preroll_s: PREROLL_S,
            waveform: Waveform { column_frames: 1, column_s: 1.0, min: vec![0.0], max: vec![0.0] },
            loudness: LoudnessCurve { step_s: 0.1, window_s: 3.0, lufs: vec![None] },
            segments: Vec::new(),
            beds: Vec::new(),
            edits,
            words,
        }
    }

    #[test]
    fn user_text_cannot_break_out_of_the_script_or_the_markup() {
        let word = ReviewWord {
            text: "</script><b>bold</b><!--".into(),
            speaker: None,
            source_start_s: 1.0,
            episode_start_s: None,
            removed_by: Some("filler".into()),
        };
        let mut m = markers(&[entry(EntryKind::Remove, Reason::Cut, (0, 10), (0, 0))], 0);
        m[0].detail = "a </SCRIPT> & <img src=x onerror=alert(1)>".into();
        let d = data(vec![word], m);
        let html = page_html(&d).unwrap();
        // The only script end tags are the template's own.
        let template_ends = TEMPLATE.to_ascii_lowercase().matches("</script").count();
        assert_eq!(html.to_ascii_lowercase().matches("</script").count(), template_ends);
        assert!(!html.contains("<b>bold") && !html.contains("<img src=x"));
        assert!(!html.contains("<!--"));
        assert!(
            html.contains("<title>Show &lt;i&gt;&quot;1&quot;&lt;/i&gt; {{DATA}} · review</title>")
        );
        // The embedded JSON parses back to the same strings.
        let start = html.find("id=\"review-data\">").unwrap() + "id=\"review-data\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        let v: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(v["words"][0]["text"], "</script><b>bold</b><!--");
        assert_eq!(v["edits"][0]["detail"], "a </SCRIPT> & <img src=x onerror=alert(1)>");
        // Nothing on the network.
        for needle in ["http://", "https://", "src=\"//", "<link"] {
            assert!(!html.contains(needle), "{needle}");
        }
    }

    #[test]
    fn relative_urls_climb_and_encode() {
        assert_eq!(relative_url(Path::new("/a/b"), Path::new("/a/b/c.mp3")), "c.mp3");
        assert_eq!(
            relative_url(Path::new("/a/b/c"), Path::new("/a/x/é 1.mp3")),
            "../../x/%C3%A9%201.mp3"
        );
        assert_eq!(relative_url(Path::new("/"), Path::new("/q?.mp3")), "q%3F.mp3");
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("pages");
        std::fs::create_dir(&sub).unwrap();
        let ep = dir.path().join("my episode.mp3");
        std::fs::write(&ep, b"x").unwrap();
        assert_eq!(relative_src(&sub.join("r.html"), &ep).unwrap(), "../my%20episode.mp3");
        let missing = relative_src(&sub.join("r.html"), &dir.path().join("none.mp3"));
        assert!(matches!(missing, Err(Error::Io { .. })), "{missing:?}");
    }
}
