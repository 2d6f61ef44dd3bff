//! The job spec: everything one assembly needs, as versioned JSON with unknown fields rejected.
//!
//! `docs/spec.md` documents every field with its unit and default and ships a complete
//! example. Validation that needs no audio lives here too ([`Spec::problems`]), so an
//! [`Assembler`](crate::Assembler) can refuse a bad job before any heavy work, listing
//! every problem with its JSON path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arrange::{SegmentType, Template};
use crate::edit::CleanupOptions;
use crate::encode::{Mp3Bitrate, OutputFormat};
use crate::error::{Error, Result, SpecProblem};
use crate::master::{MasterOptions, VerifyOptions};
use crate::transcript::TranscriptFormat;
use crate::{Chapter, Limits};

/// The spec format version this library reads.
pub const SPEC_VERSION: u32 = 1;

/// The asset id under which the (edited) content is available to the template.
pub const CONTENT_ASSET: &str = "content";

/// One assembly job.
///
/// ```
/// use assembly_core::Spec;
///
/// let spec = Spec::from_json(r#"{
///     "version": 1,
///     "content": "raw.wav",
///     "output": {"path": "episode.mp3"}
/// }"#).unwrap();
/// assert_eq!(spec.outputs()[0].sample_rate, 44_100);
///
/// // Several outputs from one job: each its own format, channels and loudness.
/// let spec = Spec::from_json(r#"{
///     "version": 1,
///     "content": "raw.wav",
///     "outputs": [
///         {"path": "episode.mp3"},
///         {"path": "episode-mono.mp3", "channels": 1, "master": {"preset": "podcast_mono"}},
///         {"path": "episode.flac", "encoding": {"format": "flac"}}
///     ]
/// }"#).unwrap();
/// assert_eq!(spec.outputs().len(), 3);
/// assert!(Spec::from_json(r#"{"version": 1, "content": "a.wav"}"#).is_err());
/// assert!(Spec::from_json(r#"{"version": 1, "content": "a.wav", "output": {"path": "o.mp3"}, "colour": 1}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Spec format version; must be `1`. No default.
    pub version: u32,
    /// The raw recording to clean (any supported format). Available to the template as the
    /// asset `"content"`. No default.
    pub content: PathBuf,
    /// Other audio by id: intro, outro, ads, beds, inserted clips, sound effects.
    /// Default: `{}`.
    #[serde(default)]
    pub assets: BTreeMap<String, PathBuf>,
    /// The content's word-timed transcript. Default: none (audio-only cleaning).
    #[serde(default)]
    pub transcript: Option<TranscriptInput>,
    /// What to clean from the content. Default: see [`CleanupOptions`].
    #[serde(default)]
    pub cleanup: CleanupOptions,
    /// Running order, beds and leveling. Default: none (the content alone).
    #[serde(default)]
    pub template: Option<Template>,
    /// Loudness target and limiter. Default: preset `podcast_stereo` (−16 LUFS, −1 dBTP).
    #[serde(default)]
    pub master: MasterOptions,
    /// Decode-and-measure check of lossy outputs. Default: see [`VerifyOptions`].
    #[serde(default)]
    pub verify: VerifyOptions,
    /// What to write, when there is one output. Exactly one of `output` and `outputs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSpec>,
    /// Several outputs from one job (`docs/spec.md`, "Several outputs"): load, analysis,
    /// edit and arrangement run once; each output gets its own master plan, render and
    /// verify. The first is the main one: its sample rate is the working rate, and its
    /// `content_chapters` apply to all. Exactly one of `output` and `outputs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputSpec>,
    /// Caps on every input. Default: see [`Limits`].
    #[serde(default)]
    pub limits: Limits,
    /// Folder for stage checkpoints; a rerun with the same folder resumes after the last
    /// completed stage. Default: none (no checkpoints).
    #[serde(default)]
    pub work_dir: Option<PathBuf>,
}

/// Where the transcript comes from, and its shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptInput {
    /// Which provider's shape (this fixes the time unit). No default.
    pub format: TranscriptFormat,
    /// A file holding the transcript. Exactly one of `path` and `inline`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The transcript itself: JSON, or a string (SRT/WebVTT text). Exactly one of `path` and
    /// `inline`.
    #[serde(default)]
    pub inline: Option<serde_json::Value>,
}

/// What to write, and the sidecars.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The episode file. Its folder must exist and be writable. No default.
    pub path: PathBuf,
    /// Codec and its settings. Default: `{"format": "mp3", "bitrate": {"mode": "cbr",
    /// "kbps": 128}, "quality": 5}`.
    #[serde(default = "default_encoding")]
    pub encoding: OutputFormat,
    /// Output (and working) sample rate in Hz. Default: `44100`.
    #[serde(default = "default_rate")]
    pub sample_rate: u32,
    /// Output channels, 1 or 2. Default: `2`.
    #[serde(default = "default_channels")]
    pub channels: usize,
    /// Text tags and cover art. Default: none.
    #[serde(default)]
    pub tags: TagSpec,
    /// Chapters: one per segment with a `chapter_title`, plus these content chapters given
    /// in source-recording ms and re-timed through the edit. Default: `[]`.
    #[serde(default)]
    pub content_chapters: Vec<Chapter>,
    /// Report JSON sidecar. Default: none.
    #[serde(default)]
    pub report: Option<PathBuf>,
    /// Re-timed transcript in the input's own shape. Default: none.
    #[serde(default)]
    pub words: Option<PathBuf>,
    /// Re-timed transcript as SRT. Default: none.
    #[serde(default)]
    pub srt: Option<PathBuf>,
    /// Re-timed transcript as WebVTT. Default: none.
    #[serde(default)]
    pub vtt: Option<PathBuf>,
    /// Podcasting 2.0 JSON chapters. Default: none.
    #[serde(default)]
    pub chapters_json: Option<PathBuf>,
    /// The cleaned content alone (same encoding, not mastered). Default: none.
    #[serde(default)]
    pub cleaned_content: Option<PathBuf>,
    /// The review page: one self-contained HTML file with the episode's waveform, its
    /// short-term loudness against the target, the segments and beds, every edit as a
    /// marker and the transcript with removed words struck through (`docs/review.md`). Its
    /// `<audio>` plays the episode by a path relative to the page. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_html: Option<PathBuf>,
    /// Loudness target, true-peak ceiling and limiter for this output. Default: the job's
    /// `master`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<MasterOptions>,
}

impl OutputSpec {
    /// An output at `path` with every other field at its default (128 kbps stereo MP3 at
    /// 44.1 kHz, the job's `master`, no sidecars).
    ///
    /// ```
    /// use assembly_core::OutputSpec;
    ///
    /// let o = OutputSpec::new("episode.mp3");
    /// assert_eq!((o.sample_rate, o.channels), (44_100, 2));
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            encoding: default_encoding(),
            sample_rate: default_rate(),
            channels: default_channels(),
            tags: TagSpec::default(),
            content_chapters: Vec::new(),
            report: None,
            words: None,
            srt: None,
            vtt: None,
            chapters_json: None,
            cleaned_content: None,
            review_html: None,
            master: None,
        }
    }

    /// The sidecar files this output names, each with its field name.
    pub fn sidecars(&self) -> [(&'static str, Option<&PathBuf>); 7] {
        [
            ("report", self.report.as_ref()),
            ("words", self.words.as_ref()),
            ("srt", self.srt.as_ref()),
            ("vtt", self.vtt.as_ref()),
            ("chapters_json", self.chapters_json.as_ref()),
            ("cleaned_content", self.cleaned_content.as_ref()),
            ("review_html", self.review_html.as_ref()),
        ]
    }

    fn sidecars_mut(&mut self) -> [&mut Option<PathBuf>; 7] {
        [
            &mut self.report,
            &mut self.words,
            &mut self.srt,
            &mut self.vtt,
            &mut self.chapters_json,
            &mut self.cleaned_content,
            &mut self.review_html,
        ]
    }
}

/// Text tags and cover art for the output.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagSpec {
    /// Episode title. Default: none.
    #[serde(default)]
    pub title: Option<String>,
    /// Artist / host. Default: none.
    #[serde(default)]
    pub artist: Option<String>,
    /// Album / show. Default: none.
    #[serde(default)]
    pub album: Option<String>,
    /// Comment. Default: none.
    #[serde(default)]
    pub comment: Option<String>,
    /// Date, e.g. `"2026-11-29"`. Default: none.
    #[serde(default)]
    pub date: Option<String>,
    /// Track (episode) number. Default: none.
    #[serde(default)]
    pub track: Option<u32>,
    /// JPEG or PNG cover image. Default: none.
    #[serde(default)]
    pub cover: Option<PathBuf>,
}

fn default_encoding() -> OutputFormat {
    OutputFormat::Mp3 { bitrate: Mp3Bitrate::Cbr { kbps: 128 }, quality: 5 }
}

fn default_rate() -> u32 {
    44_100
}

fn default_channels() -> usize {
    2
}

impl Spec {
    /// Parses JSON. Unknown fields, wrong types and a wrong `version` are errors naming the
    /// field's JSON path. Semantic checks (files, ranges, references) are [`Spec::problems`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSpec`] with the path of the first field that does not parse.
    pub fn from_json(json: &str) -> Result<Self> {
        // serde also reads a struct from a JSON array, by field position; a spec is an object.
        if json.trim_start().starts_with('[') {
            return Err(Error::InvalidSpec {
                problems: vec![SpecProblem::new("$", "a spec is a JSON object, not an array")],
            });
        }
        let de = &mut serde_json::Deserializer::from_str(json);
        let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = json_path(e.path());
            Error::InvalidSpec { problems: vec![SpecProblem::new(path, e.inner().to_string())] }
        })?;
        if let Some(p) = spec.output_count_problem() {
            return Err(Error::InvalidSpec { problems: vec![p] });
        }
        if spec.version != SPEC_VERSION {
            return Err(Error::InvalidSpec {
                problems: vec![SpecProblem::new(
                    "version",
                    format!("this library reads version {SPEC_VERSION}, got {}", spec.version),
                )],
            });
        }
        Ok(spec)
    }

    /// Reads and parses a spec file; relative paths in it are taken relative to its folder.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read; as [`Spec::from_json`].
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let mut spec = Self::from_json(&text)?;
        spec.resolve_paths(path.parent().unwrap_or(Path::new("")));
        Ok(spec)
    }

    /// Makes every relative path in the spec relative to `base` instead.
    pub fn resolve_paths(&mut self, base: &Path) {
        self.for_each_path_mut(|p| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        });
    }

    /// Calls `f` on every path in the spec: inputs, assets, transcript, cover, every output
    /// and sidecar, and the work folder.
    pub fn for_each_path_mut(&mut self, mut f: impl FnMut(&mut PathBuf)) {
        f(&mut self.content);
        self.assets.values_mut().for_each(&mut f);
        if let Some(p) = self.transcript.as_mut().and_then(|t| t.path.as_mut()) {
            f(p);
        }
        for o in self.output.iter_mut().chain(self.outputs.iter_mut()) {
            f(&mut o.path);
            if let Some(p) = o.tags.cover.as_mut() {
                f(p);
            }
            o.sidecars_mut().into_iter().flatten().for_each(&mut f);
        }
        if let Some(p) = self.work_dir.as_mut() {
            f(p);
        }
    }

    /// Every output the job writes: `output` alone, or the `outputs` list (the first is the
    /// main one). Empty only for a spec that has neither (which [`Spec::problems`] reports).
    pub fn outputs(&self) -> &[OutputSpec] {
        match &self.output {
            Some(o) => std::slice::from_ref(o),
            None => &self.outputs,
        }
    }

    /// Every output, to change: as [`Spec::outputs`].
    pub fn outputs_mut(&mut self) -> &mut [OutputSpec] {
        match &mut self.output {
            Some(o) => std::slice::from_mut(o),
            None => &mut self.outputs,
        }
    }

    /// The JSON path of output `i`: `output` for the single form, `outputs[i]` for the list.
    pub fn output_field(&self, i: usize) -> String {
        if self.output.is_some() { "output".to_string() } else { format!("outputs[{i}]") }
    }

    /// Neither or both of `output` and `outputs`.
    fn output_count_problem(&self) -> Option<SpecProblem> {
        match (&self.output, self.outputs.is_empty()) {
            (Some(_), false) => Some(SpecProblem::new(
                "outputs",
                "give either \"output\" (one output) or \"outputs\" (a list), not both",
            )),
            (None, true) => Some(SpecProblem::new(
                "output",
                "missing: give \"output\" (one output) or \"outputs\" (a non-empty list)",
            )),
            _ => None,
        }
    }

    /// Every problem that can be found without decoding audio: files exist and are
    /// readable, values are in range, asset references resolve, output folders are
    /// writable. Empty when the spec is good.
    pub fn problems(&self) -> Vec<SpecProblem> {
        let mut out: Vec<SpecProblem> = self.output_count_problem().into_iter().collect();
        let mut push = |path: String, msg: String| out.push(SpecProblem::new(path, msg));
        let mut from_err = |prefix: &str, e: Error| match e {
            Error::InvalidInput { field, detail } => {
                let path = if field.starts_with(prefix) || prefix.is_empty() {
                    field
                } else {
                    format!("{prefix}.{field}")
                };
                push(path, detail)
            }
            other => push(prefix.to_string(), other.to_string()),
        };

        if let Err(e) = self.cleanup.validate() {
            from_err("cleanup", e);
        }
        if let Some(t) = &self.template
            && let Err(e) = t.validate()
        {
            from_err("template", e);
        }
        if let Err(e) = self.master.validate() {
            from_err("master", e);
        }
        for (i, o) in self.outputs().iter().enumerate() {
            let field = self.output_field(i);
            if let Some(m) = &o.master
                && let Err(e) = m.validate()
            {
                // The options name their fields from `master`: `outputs[1].master.target_lufs`.
                let e = match e {
                    Error::InvalidInput { field: f, detail } => {
                        Error::invalid_input(format!("{field}.{f}"), detail)
                    }
                    other => other,
                };
                from_err(&field, e);
            }
            match std::num::NonZeroU32::new(o.sample_rate) {
                Some(r) if (8_000..=192_000).contains(&r.get()) => {
                    if !(1..=2).contains(&o.channels) {
                        let why = format!("must be 1 or 2, got {}", o.channels);
                        from_err(&field, Error::invalid_input(format!("{field}.channels"), why));
                    } else if let Err(e) = o.encoding.validate(r, o.channels) {
                        from_err(&format!("{field}.encoding"), e);
                    }
                }
                _ => {
                    let why = format!("must be in 8000..=192000 Hz, got {}", o.sample_rate);
                    from_err(&field, Error::invalid_input(format!("{field}.sample_rate"), why));
                }
            }
            if i > 0 && !o.content_chapters.is_empty() {
                let why = "content chapters are given once, on the first output; they apply to all";
                from_err(&field, Error::invalid_input(format!("{field}.content_chapters"), why));
            }
        }
        let mut problems = out;
        self.file_problems(&mut problems);
        self.reference_problems(&mut problems);
        problems
    }

    fn file_problems(&self, out: &mut Vec<SpecProblem>) {
        let readable = |path: &Path| -> Option<String> {
            match std::fs::metadata(path) {
                Err(e) => Some(format!("cannot read {}: {e}", path.display())),
                Ok(m) if !m.is_file() => Some(format!("{} is not a file", path.display())),
                Ok(m) if m.len() > self.limits.max_file_bytes => Some(format!(
                    "{} is {} bytes, over limits.max_file_bytes ({})",
                    path.display(),
                    m.len(),
                    self.limits.max_file_bytes
                )),
                Ok(_) => std::fs::File::open(path)
                    .err()
                    .map(|e| format!("cannot open {}: {e}", path.display())),
            }
        };
        if let Some(m) = readable(&self.content) {
            out.push(SpecProblem::new("content", m));
        }
        for (id, p) in &self.assets {
            if let Some(m) = readable(p) {
                out.push(SpecProblem::new(format!("assets.{id}"), m));
            }
            if id == CONTENT_ASSET {
                out.push(SpecProblem::new(
                    format!("assets.{id}"),
                    "the id \"content\" is reserved for the content recording",
                ));
            }
        }
        if let Some(t) = &self.transcript {
            match (&t.path, &t.inline) {
                (Some(p), None) => {
                    if let Some(m) = readable(p) {
                        out.push(SpecProblem::new("transcript.path", m));
                    }
                }
                (None, Some(_)) => {}
                _ => out.push(SpecProblem::new(
                    "transcript",
                    "give exactly one of \"path\" and \"inline\"",
                )),
            }
        }
        let mut seen: Vec<&PathBuf> = vec![&self.content];
        let mut wants_transcript = None;
        for (i, o) in self.outputs().iter().enumerate() {
            let field = self.output_field(i);
            if let Some(p) = &o.tags.cover
                && let Some(m) = readable(p)
            {
                out.push(SpecProblem::new(format!("{field}.tags.cover"), m));
            }
            let files = std::iter::once(("path", Some(&o.path))).chain(o.sidecars());
            for (name, path) in files {
                let Some(path) = path else { continue };
                let at = format!("{field}.{name}");
                if seen.contains(&path) {
                    out.push(SpecProblem::new(
                        &at,
                        format!("{} is already used by another input or output", path.display()),
                    ));
                }
                seen.push(path);
                if let Some(m) = writable_folder(path) {
                    out.push(SpecProblem::new(&at, m));
                }
            }
            if o.words.is_some() || o.srt.is_some() || o.vtt.is_some() {
                wants_transcript.get_or_insert(format!("{field}.words"));
            }
        }
        if let Some(at) = wants_transcript
            && self.transcript.is_none()
        {
            out.push(SpecProblem::new(at, "re-timed transcripts need a \"transcript\""));
        }
    }

    fn reference_problems(&self, out: &mut Vec<SpecProblem>) {
        let known = |id: &str| id == CONTENT_ASSET || self.assets.contains_key(id);
        if let Some(t) = &self.template {
            for (i, s) in t.segments.iter().enumerate() {
                if !known(&s.asset) {
                    out.push(SpecProblem::new(
                        format!("template.segments[{i}].asset"),
                        format!("no asset {:?} in \"assets\"", s.asset),
                    ));
                }
                if s.asset == CONTENT_ASSET && s.segment_type != SegmentType::Content {
                    out.push(SpecProblem::new(
                        format!("template.segments[{i}].segment_type"),
                        "the content recording can only be a content segment",
                    ));
                }
            }
            if !t.segments.iter().any(|s| s.asset == CONTENT_ASSET) {
                out.push(SpecProblem::new(
                    "template.segments",
                    "no segment uses the content recording (asset \"content\")",
                ));
            }
            for (i, b) in t.background_music_rules.iter().enumerate() {
                if !self.assets.contains_key(&b.asset) {
                    out.push(SpecProblem::new(
                        format!("template.background_music_rules[{i}].asset"),
                        format!("no asset {:?} in \"assets\"", b.asset),
                    ));
                }
            }
        }
        for (i, c) in self.cleanup.inserts.iter().enumerate() {
            if !self.assets.contains_key(&c.clip) {
                out.push(SpecProblem::new(
                    format!("cleanup.inserts[{i}].clip"),
                    format!("no asset {:?} in \"assets\"", c.clip),
                ));
            }
        }
        for (i, c) in self.cleanup.sound_effects.iter().enumerate() {
            if !self.assets.contains_key(&c.clip) {
                out.push(SpecProblem::new(
                    format!("cleanup.sound_effects[{i}].clip"),
                    format!("no asset {:?} in \"assets\"", c.clip),
                ));
            }
        }
    }
}

/// `a.b[2].c` (a key that is empty or not a plain word in brackets: `a[""]`, `a["x.y"]`);
/// `$` for the document itself. Segments serde could not name (a syntax error
/// inside an object, before its key was read) are left out, so the path is the innermost
/// known field.
fn json_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                let plain = !key.is_empty()
                    && key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
                if !plain {
                    // `[""]`, `["a.b"]`: a key that would be empty or ambiguous bare.
                    out.push_str(&format!("[{key:?}]"));
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    if out.is_empty() { "$".to_string() } else { out }
}

/// `None` when `path`'s folder exists and a file can be created in it; else why not.
fn writable_folder(path: &Path) -> Option<String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.file_name().is_none() {
        return Some(format!("{} names no file", path.display()));
    }
    if !dir.is_dir() {
        return Some(format!("folder {} does not exist", dir.display()));
    }
    let probe = dir.join(format!(".podcast-assembly-write-test-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(e) => Some(format!("cannot write in {}: {e}", dir.display())),
    }
}
