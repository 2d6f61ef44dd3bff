//! The Assembler: one spec, staged runs with progress, cancellation, checkpoints and a report.
//!
//! Stages run in order — Load, Analyze, Edit, Arrange, Master, Render — each calling the
//! module named after it. With a work folder, the small result of every stage after Load is
//! checkpointed (see `checkpoint`), so a killed job resumes after its last completed stage;
//! decoded audio is decoded again, never stored.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::analyze::activity::{ActivityMap, ActivityOptions};
use crate::analyze::adaptive::{AdaptiveLeveling, level_adaptive};
use crate::analyze::clean::{CleanMode, CleaningReport, HumReport, clean};
use crate::analyze::hum::{ON_PROMINENCE_DB, PROMINENCE_DB, detect_hum_above};
use crate::analyze::loudness::{self, Loudness, LoudnessMeter};
use crate::analyze::speakers::{
    GainEnvelope, Leveled, LevelingMode, SpeakerLeveling, level_speakers,
};
use crate::arrange::{
    self, Arrangement, Leveling, Placement, PodcastChapters, Segment, SegmentType, Template,
};
use crate::checkpoint::{CLEANED_CONTENT, CheckpointStore, KeyHasher, Loaded};
use crate::edit::{self, Clip, EditPlan, EditStats, EditedAudio, PlanEntry};
use crate::encode::{self, CoverArt, Encoder, Tags};
use crate::error::{Error, Result};
use crate::load::{self, DecodeOptions, WorkingFormat};
use crate::master::{
    EncodeMeasurement, EncodeRequest, LocalRepair, MasterOptions, VerifyReport, verify_encoded_from,
};
use crate::progress::{ProgressSink, Reporter, Stage};
use crate::render::{self, MasterPlan, Mix, MixMeasurement, RenderOptions, Sources};
use crate::spec::{CONTENT_ASSET, Spec};
use crate::transcript::{CueOptions, Transcript, Word};
use crate::warning::Warning;
use crate::{AudioBuffer, CancelToken, Chapter, CompactAudio, FrameSource, frames_to_ms};

/// Runs one assembly job described by a [`Spec`].
///
/// `new` validates everything that needs no audio and reports every problem at once;
/// [`run`](Self::run) then fails only for data-dependent reasons.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{Assembler, CancelToken, NoProgress, Spec, encode, synth};
///
/// let dir = tempfile::tempdir().unwrap();
/// let rate = NonZeroU32::new(44_100).unwrap();
/// let talk = synth::mono(rate, synth::speech_like(rate, 7, -24.0, 44_100 * 5));
/// let content = dir.path().join("raw.wav");
/// encode::write_file(&content, &talk, &encode::OutputFormat::wav16(), &Default::default()).unwrap();
///
/// let spec = Spec::from_json(&format!(r#"{{
///     "version": 1,
///     "content": {content:?},
///     "output": {{"path": {out:?}, "encoding": {{"format": "wav"}}}}
/// }}"#, out = dir.path().join("episode.wav"))).unwrap();
/// let report = Assembler::new(spec).unwrap().run(&mut NoProgress, &CancelToken::new()).unwrap();
/// assert!((report.loudness_out.unwrap().integrated_lufs + 16.0).abs() < 0.5);
/// assert_eq!(report.output.channels, 2);
/// ```
#[derive(Debug)]
pub struct Assembler {
    spec: Spec,
    fault: Option<Stage>,
}

/// The result of [`Assembler::plan`]: what would be done, without rendering.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The content's edit list.
    pub edit: EditPlan,
    /// Segments and beds on the episode timeline.
    pub arrangement: Arrangement,
    /// Predicted episode duration, ms.
    pub duration_ms: u64,
    /// Chapters of the episode.
    pub chapters: Vec<Chapter>,
    /// Speaker leveling: each labelled speaker's level and gain, and the gain envelope's
    /// steps on the source timeline.
    pub leveling: Option<SpeakerLeveling>,
    /// Adaptive leveling (no speaker labels): the phrases' envelope on the source timeline.
    pub adaptive_leveling: Option<AdaptiveLeveling>,
}

/// The written episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputReport {
    /// Where it is.
    pub path: PathBuf,
    /// Duration, ms.
    pub duration_ms: u64,
    /// Length, frames.
    pub frames: u64,
    /// Size, bytes.
    pub size_bytes: u64,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Channels.
    pub channels: usize,
}

/// Counts of what the edit did.
pub type Counts = EditStats;

/// Everything a run did. Serializable to JSON (`output.report` writes it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The episode file.
    pub output: OutputReport,
    /// Loudness of the raw content as decoded.
    pub loudness_in: Loudness,
    /// Loudness of the output: measured while rendering (lossless) or decoded back (lossy).
    pub loudness_out: Option<Loudness>,
    /// The mastering decision.
    pub master: MasterPlan,
    /// The decode-and-measure check of a lossy output.
    pub verify: Option<VerifyReport>,
    /// Speaker leveling: each labelled speaker's loudness before and after, its gain, and
    /// the gain envelope (`None` without speaker labels or with leveling off).
    #[serde(default)]
    pub leveling: Option<SpeakerLeveling>,
    /// Adaptive leveling of content without speaker labels: the speech level and the gain
    /// envelope (`None` with speaker labels, without speech, or with leveling off).
    #[serde(default)]
    pub adaptive_leveling: Option<AdaptiveLeveling>,
    /// Cleaning: noise measured and reduced (speech-to-noise ratio, noise floor before and
    /// after, whether it engaged).
    pub cleaning: CleaningReport,
    /// Every edit, with source and output times and its reason.
    pub edits: Vec<PlanEntry>,
    /// Counts: fillers, pauses, cuts, inserts, seconds removed.
    pub counts: Counts,
    /// Segment placements on the episode timeline.
    pub placements: Vec<Placement>,
    /// Transcript words re-timed to the episode.
    pub words: Vec<Word>,
    /// Chapters of the episode.
    pub chapters: Vec<Chapter>,
    /// Sidecar files written.
    pub sidecars: Vec<PathBuf>,
    /// Non-fatal findings, each with a [`WarningCode`](crate::WarningCode) and a message:
    /// rejected checkpoints, then the edit plan's, then the arrangement's.
    pub warnings: Vec<Warning>,
    /// Wall time per stage, ms.
    pub stage_ms: BTreeMap<Stage, u64>,
    /// Stages whose checkpoint was reused instead of recomputed.
    pub stages_resumed: Vec<Stage>,
}

/// Analysis checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Analysis {
    content_loudness: Loudness,
    content_frames: u64,
    /// The speakers' levels and gain envelope (labelled transcript, leveling on).
    leveling: Option<SpeakerLeveling>,
    leveling_warnings: Vec<Warning>,
    /// The adaptive leveler's envelope (no speaker labels, leveling on).
    adaptive: Option<AdaptiveLeveling>,
    /// What cleaning measured and did.
    cleaning: CleaningReport,
    /// The cleaned content, when cleaning engaged (stored beside the checkpoint as bytes).
    #[serde(skip)]
    cleaned: Option<CompactAudio>,
}

impl Analysis {
    /// The gain envelope the content is read through, if any.
    fn envelope(&self) -> Option<&GainEnvelope> {
        self.leveling.as_ref().map(|l| &l.envelope).or(self.adaptive.as_ref().map(|a| &a.envelope))
    }
}

/// The content as the edit reads it: the decoded source through the leveling envelope.
fn leveled<'a>(inputs: &'a Inputs, envelope: Option<&'a GainEnvelope>) -> Leveled<'a> {
    Leveled { src: &inputs.content, envelope }
}

/// Arrange checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Arranged {
    arrangement: Arrangement,
    leveling: Leveling,
    speech: Vec<(u64, u64)>,
    chapters: Vec<Chapter>,
    content_start_frame: u64,
}

/// Decoded inputs at the working rate.
struct Inputs {
    /// The content, kept compactly (an hour of speech is ~0.2 GB instead of 635 MB as f32).
    content: CompactAudio,
    /// By asset id; ids naming one file share its audio.
    assets: BTreeMap<String, Arc<AudioBuffer>>,
    /// The assets the cleanup inserts (clips, sound effects), copied once.
    clips: Vec<Clip>,
    transcript: Option<Transcript>,
    /// The content's speech activity, analyzed at most once per run (edit and arrange both
    /// may need it).
    activity: OnceCell<ActivityMap>,
    /// What decoding the inputs and parsing the transcript found, for the report.
    warnings: Vec<Warning>,
}

impl Inputs {
    fn activity(&self, options: &ActivityOptions, cancel: &CancelToken) -> Result<&ActivityMap> {
        if let Some(a) = self.activity.get() {
            return Ok(a);
        }
        let a = ActivityMap::analyze_cancellable(&self.content, options, cancel)?;
        Ok(self.activity.get_or_init(|| a))
    }
}

impl Assembler {
    /// Validates `spec` (every problem at once, each with its JSON path) and returns an
    /// assembler ready to run it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSpec`] listing every problem.
    pub fn new(spec: Spec) -> Result<Self> {
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(Error::InvalidSpec { problems });
        }
        Ok(Self { spec, fault: None })
    }

    /// Reads a spec file (relative paths are relative to its folder) and validates it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if unreadable; [`Error::InvalidSpec`] listing every problem.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::new(Spec::from_file(path)?)
    }

    /// The validated spec.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Test hook: panic inside `stage` to prove panics become [`Error::Internal`].
    #[doc(hidden)]
    pub fn inject_panic(&mut self, stage: Stage) {
        self.fault = Some(stage);
    }

    fn fault_point(&self, stage: Stage) {
        if self.fault == Some(stage) {
            panic!("injected fault in stage {stage}");
        }
    }

    fn working_format(&self) -> Result<WorkingFormat> {
        let rate = NonZeroU32::new(self.spec.output.sample_rate)
            .ok_or_else(|| Error::invalid_input("output.sample_rate", "must be > 0"))?;
        Ok(WorkingFormat { rate, channels: self.spec.output.channels })
    }

    fn template(&self) -> Template {
        self.spec.template.clone().unwrap_or_else(|| {
            Template::new(vec![Segment::new(SegmentType::Content, CONTENT_ASSET)])
        })
    }

    /// Plans the job without rendering: decodes, analyzes, edits and arranges, and returns
    /// the edit list, the placements and the predicted duration.
    ///
    /// # Errors
    ///
    /// Data errors of the inputs (decode, transcript); [`Error::Cancelled`].
    pub fn plan(&self, cancel: &CancelToken) -> Result<Plan> {
        let mut sink = crate::progress::NoProgress;
        guard(|| {
            let mut rep = Reporter::new(&mut sink, cancel.clone());
            let mut inputs = self.load(&mut rep, cancel)?;
            // The same analysis as a run: the leveling the plan shows is the one applied, and
            // the edit's splices are searched in the cleaned content, as a run's are.
            let mut analysis = self.analyze(&inputs, cancel, &mut |_| {})?;
            if let Some(cleaned) = analysis.cleaned.take() {
                inputs.content = cleaned;
            }
            let edit = self.edit_plan(&inputs, cancel)?;
            let arranged = self.arrange(&inputs, &edit, analysis.envelope(), cancel)?;
            Ok(Plan {
                duration_ms: arranged.arrangement.total_ms,
                chapters: arranged.chapters,
                arrangement: arranged.arrangement,
                edit,
                leveling: analysis.leveling,
                adaptive_leveling: analysis.adaptive,
            })
        })
    }

    /// Runs the job: Load, Analyze, Edit, Arrange, Master, Render. Progress goes to
    /// `progress` (throttled; a sink returning `Break` cancels `cancel`); `cancel` is checked
    /// per packet and block. On error or cancellation no output and no temp file is left.
    ///
    /// # Errors
    ///
    /// Data errors of the inputs; [`Error::Cancelled`]; [`Error::Internal`] for a bug (a
    /// panic inside a stage never unwinds past `run`).
    pub fn run(&self, progress: &mut dyn ProgressSink, cancel: &CancelToken) -> Result<Report> {
        guard(|| self.run_inner(progress, cancel))
    }

    fn job_key(&self) -> Result<String> {
        let mut k = KeyHasher::new();
        let spec = serde_json::to_vec(&self.spec)
            .map_err(|e| Error::internal(format!("cannot serialize spec: {e}")))?;
        k.part("spec", &spec);
        k.file("content", &self.spec.content)?;
        for (id, p) in &self.spec.assets {
            k.file(id, p)?;
        }
        if let Some(p) = self.spec.transcript.as_ref().and_then(|t| t.path.as_ref()) {
            k.file("transcript", p)?;
        }
        if let Some(p) = &self.spec.output.tags.cover {
            k.file("cover", p)?;
        }
        Ok(k.finish())
    }

    fn run_inner(&self, progress: &mut dyn ProgressSink, cancel: &CancelToken) -> Result<Report> {
        let store = match &self.spec.work_dir {
            Some(dir) => Some(CheckpointStore::open(dir, self.job_key()?)?),
            None => None,
        };
        // Temp files of a killed earlier run of this job (episode, sidecars, the codec
        // prediction's scratch excerpt).
        for p in self.output_paths() {
            crate::atomic::remove_stale_temps(p);
        }
        for scratch in crate::predict::scratch_files(&self.codec_scratch_path()) {
            let _ = std::fs::remove_file(&scratch);
            crate::atomic::remove_stale_temps(&scratch);
        }
        for k in 0..8 {
            let _ = std::fs::remove_file(self.attempt_path(k));
            let _ = std::fs::remove_file(self.chunks_path(k as u32 + 1));
        }
        let mut rep = Reporter::new(progress, cancel.clone());
        let mut stage_ms = BTreeMap::new();
        let mut resumed = Vec::new();
        let mut warnings = Vec::new();

        // Loads a stage's checkpoint, or computes and stores it.
        macro_rules! staged {
            ($stage:expr, $ty:ty, $compute:expr) => {{
                let t0 = Instant::now();
                rep.start($stage, concat!("starting ", stringify!($stage)));
                self.fault_point($stage);
                let cached: Option<$ty> = match store.as_ref().map(|s| s.load::<$ty>($stage)) {
                    Some(Loaded::Hit(v)) => Some(v),
                    Some(Loaded::Rejected(why)) => {
                        warnings.push(why);
                        None
                    }
                    _ => None,
                };
                let value: $ty = match cached {
                    Some(v) => {
                        resumed.push($stage);
                        v
                    }
                    None => {
                        let v: $ty = $compute?;
                        cancel.check()?;
                        if let Some(s) = &store {
                            s.save($stage, &v)?;
                        }
                        v
                    }
                };
                rep.end($stage, concat!("finished ", stringify!($stage)));
                stage_ms.insert($stage, t0.elapsed().as_millis() as u64);
                value
            }};
        }

        let t0 = Instant::now();
        rep.start(Stage::Load, "decoding inputs");
        self.fault_point(Stage::Load);
        let mut inputs = self.load(&mut rep, cancel)?;
        warnings.extend(inputs.warnings.iter().cloned());
        rep.end(Stage::Load, "inputs decoded");
        stage_ms.insert(Stage::Load, t0.elapsed().as_millis() as u64);

        let mut analysis = staged!(
            Stage::Analyze,
            Analysis,
            self.analyze(&inputs, cancel, &mut |f| rep.update(Stage::Analyze, f, "reducing noise"))
        );
        if !analysis.cleaning.plan().is_empty() {
            let cleaned = self.cleaned_content(&inputs, &mut analysis, store.as_ref(), cancel);
            let (content, why) = cleaned?;
            warnings.extend(why);
            inputs.content = content;
        }
        let edit_plan = staged!(Stage::Edit, EditPlan, self.edit_plan(&inputs, cancel));
        if edit_plan.source_frames != analysis.content_frames {
            return Err(Error::internal("edit checkpoint does not match the decoded content"));
        }
        let leveling = analysis.envelope();
        let arranged =
            staged!(Stage::Arrange, Arranged, self.arrange(&inputs, &edit_plan, leveling, cancel));

        let content = leveled(&inputs, leveling);
        let edited = EditedAudio::new(&content, &edit_plan, &inputs.clips)?;
        let mut sources = Sources::new();
        sources.insert(CONTENT_ASSET, &edited);
        for (id, a) in &inputs.assets {
            sources.insert(id.as_str(), a.as_ref() as &dyn FrameSource);
        }
        let speech: Vec<Range<u64>> = arranged.speech.iter().map(|&(a, b)| a..b).collect();
        let channels = self.spec.output.channels;
        let mix =
            Mix::new(&arranged.arrangement, &sources, channels, &arranged.leveling.gains, &speech)?;
        let rate = arranged.arrangement.rate;
        let render_opts = RenderOptions::default();

        // The mix measurement, kept for the codec prediction (measured again only when the
        // master stage was resumed and the prediction needs to re-plan).
        let mut measured: Option<MixMeasurement> = None;
        let master_plan = staged!(Stage::Master, MasterPlan, {
            let mut p = |f: f64| rep.update(Stage::Master, f * 0.5, "measuring the mix");
            let m = render::measure_mix(&mix, &render_opts, cancel, &mut p)?;
            let mut p = |f: f64| rep.update(Stage::Master, 0.5 + f * 0.5, "planning the master");
            let plan =
                render::plan_master(&mix, &m, &self.spec.master, &render_opts, cancel, &mut p);
            measured = Some(m);
            plan
        });
        let mut measurement = || -> Result<MixMeasurement> {
            match &measured {
                Some(m) => Ok(m.clone()),
                None => {
                    let m = render::measure_mix(&mix, &render_opts, cancel, &mut |_| {})?;
                    Ok(measured.insert(m).clone())
                }
            }
        };

        let t0 = Instant::now();
        rep.start(Stage::Render, "rendering");
        self.fault_point(Stage::Render);
        let rendered = (|| {
            let (output, loudness_out, verify) = self.render(
                &mix,
                rate,
                &master_plan,
                &mut measurement,
                &arranged.chapters,
                &mut rep,
                cancel,
            )?;
            let mut report = Report {
                output,
                loudness_in: analysis.content_loudness,
                loudness_out,
                master: master_plan.clone(),
                verify,
                leveling: analysis.leveling.clone(),
                adaptive_leveling: analysis.adaptive.clone(),
                cleaning: analysis.cleaning.clone(),
                edits: edit_plan.entries.clone(),
                counts: edit_plan.stats.clone(),
                placements: arranged.arrangement.placements.clone(),
                words: Vec::new(),
                chapters: arranged.chapters.clone(),
                sidecars: Vec::new(),
                warnings: std::mem::take(&mut warnings),
                stage_ms: BTreeMap::new(),
                stages_resumed: std::mem::take(&mut resumed),
            };
            report.warnings.extend(analysis.leveling_warnings.iter().cloned());
            report.warnings.extend(edit_plan.warnings.iter().cloned());
            report.warnings.extend(arranged.arrangement.warnings.iter().cloned());
            self.write_sidecars(&inputs, &edit_plan, &arranged, leveling, &mut report, cancel)?;
            stage_ms.insert(Stage::Render, t0.elapsed().as_millis() as u64);
            report.stage_ms = std::mem::take(&mut stage_ms);
            if let Some(p) = &self.spec.output.report {
                let json = serde_json::to_vec_pretty(&report)
                    .map_err(|e| Error::internal(format!("cannot serialize report: {e}")))?;
                crate::atomic::write_atomic(p, &json)?;
            }
            cancel.check()?;
            Ok(report)
        })();
        let report = match rendered {
            Ok(r) => r,
            Err(e) => {
                // A failed or cancelled run leaves no output behind, even if the episode file
                // was already renamed into place (e.g. cancelled while verifying).
                self.remove_outputs();
                return Err(e);
            }
        };
        rep.end(Stage::Render, "done");
        Ok(report)
    }

    /// Every file the spec asks to write: the episode and its sidecars.
    fn output_paths(&self) -> impl Iterator<Item = &PathBuf> {
        let o = &self.spec.output;
        let sidecars = [
            &o.report,
            &o.words,
            &o.srt,
            &o.vtt,
            &o.chapters_json,
            &o.cleaned_content,
            &o.review_html,
        ];
        std::iter::once(&o.path).chain(sidecars.into_iter().flatten())
    }

    /// A hidden scratch file beside the output: `.<output name>.<what>.tmp`.
    fn beside_output(&self, what: &str) -> PathBuf {
        let out = &self.spec.output.path;
        let name = out.file_name().map_or("output".into(), |n| n.to_string_lossy());
        out.with_file_name(format!(".{name}.{what}.tmp"))
    }

    /// Where verify attempt `k`'s output waits while later attempts are encoded.
    fn attempt_path(&self, k: usize) -> PathBuf {
        self.beside_output(&format!("attempt-{k}"))
    }

    /// Where attempt `k`'s encoder keeps its chunks for the next attempt to reuse.
    fn chunks_path(&self, k: u32) -> PathBuf {
        self.beside_output(&format!("chunks-{k}"))
    }

    /// Where the codec prediction encodes its excerpts (removed after each).
    fn codec_scratch_path(&self) -> PathBuf {
        self.beside_output("codec-excerpt")
    }

    fn remove_outputs(&self) {
        for p in self.output_paths() {
            let _ = std::fs::remove_file(p);
            crate::atomic::remove_stale_temps(p);
        }
    }

    fn load(&self, rep: &mut Reporter<'_>, cancel: &CancelToken) -> Result<Inputs> {
        let fmt = self.working_format()?;
        let opts = DecodeOptions { limits: self.spec.limits.clone(), ..DecodeOptions::default() };
        let total = 1 + self.spec.assets.len();
        // Every input's warnings go to the report, each message prefixed by the input's name.
        let mut warnings = Vec::new();
        let mut note = |from: &str, ws: Vec<Warning>| {
            warnings.extend(
                ws.into_iter().map(|w| Warning::new(w.code, format!("{from}: {}", w.message))),
            );
        };
        let decode =
            |path: &Path, channels: Option<usize>| -> Result<(AudioBuffer, Vec<Warning>)> {
                let d = load::decode_file(path, &opts, cancel)?;
                // Content keeps its channel count (mono speech stays mono until the mix), at most 2.
                let ch = channels.unwrap_or(d.audio.channel_count().min(2));
                let audio = load::into_working_format(
                    d.audio,
                    &WorkingFormat { rate: fmt.rate, channels: ch },
                    cancel,
                )?;
                Ok((audio, d.warnings))
            };
        rep.update(Stage::Load, 0.0, "decoding content");
        let (content, content_warnings) =
            load::decode_file_compact(&self.spec.content, &opts, fmt.rate, CONTENT_BITS, cancel)?;
        note("content", content_warnings);
        // Each distinct file once, however many asset ids name it.
        let mut decoded = 0;
        let assets = load::decode_each_once(&self.spec.assets, |id, path| {
            decoded += 1;
            rep.update(Stage::Load, decoded as f64 / total as f64, "decoding assets");
            let (audio, asset_warnings) = decode(path, None)?;
            note(&format!("asset {id:?}"), asset_warnings);
            Ok(audio)
        })?;
        let transcript = match &self.spec.transcript {
            None => None,
            Some(t) => {
                let text = match (&t.path, &t.inline) {
                    (Some(p), _) => {
                        std::fs::read_to_string(p).map_err(|e| Error::io("read", p, e))?
                    }
                    (None, Some(serde_json::Value::String(s))) => s.clone(),
                    (None, Some(v)) => v.to_string(),
                    (None, None) => return Err(Error::invalid_input("transcript", "no source")),
                };
                let (transcript, transcript_warnings) = Transcript::parse(&text, t.format)?;
                note("transcript", transcript_warnings);
                Some(transcript)
            }
        };
        let clips = self.clips(&assets)?;
        Ok(Inputs { content, assets, clips, transcript, activity: OnceCell::new(), warnings })
    }

    /// Measures the content's loudness. When a later stage will need the speech activity
    /// (pause removal, ducking without a transcript, adaptive leveling, noise reduction), it
    /// is analyzed at the same time on a second thread: both read the whole content, and the
    /// two passes take about as long. When noise reduction engages (decided on that map),
    /// the content is cleaned and its loudness and speakers are measured again on the
    /// cleaned audio, which the returned analysis carries.
    fn analyze(
        &self,
        inputs: &Inputs,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(f64),
    ) -> Result<Analysis> {
        let c = &self.spec.cleanup;
        let labelled = inputs
            .transcript
            .as_ref()
            .is_some_and(|t| t.words().iter().any(|w| w.speaker.is_some()));
        // Without speaker labels the adaptive leveler needs the activity map.
        let adaptive_on = !labelled && c.leveling.mode == LevelingMode::Auto;
        let cleaning_on = c.noise.mode != CleanMode::Off || c.hum.mode != CleanMode::Off;
        let wants_activity = inputs.activity.get().is_none()
            && (c.remove_pauses || inputs.transcript.is_none() || adaptive_on || cleaning_on);
        let content = &inputs.content;
        let transcript = inputs.transcript.as_ref();
        let known = inputs.activity.get();
        let speakers = |audio: &dyn FrameSource| match transcript {
            Some(t) if labelled => level_speakers(audio, t, &c.leveling, cancel),
            _ => Ok(None),
        };
        let (content_loudness, (activity, leveling, adaptive)) = crate::par::join(
            || loudness::measure_source(content, cancel),
            || {
                let activity = wants_activity
                    .then(|| ActivityMap::analyze_cancellable(content, &c.activity, cancel))
                    .transpose();
                // Content that will be denoised has its speakers measured after cleaning only.
                let denoising = match (&activity, known) {
                    (Ok(Some(map)), _) | (_, Some(map)) => c.noise.decide(map).engaged,
                    _ => false,
                };
                let leveling = if denoising { Ok(None) } else { speakers(content) };
                let adaptive = match (&activity, known) {
                    (Ok(Some(map)), _) | (_, Some(map)) if adaptive_on => {
                        level_adaptive(map, &c.leveling)
                    }
                    _ => None,
                };
                (activity, leveling, adaptive)
            },
        );
        if let Some(a) = activity? {
            let _ = inputs.activity.set(a);
        }
        let map = inputs.activity.get();
        let mut cleaning = CleaningReport {
            noise: map.map(|map| c.noise.decide(map)),
            hum: match (c.hum.mode, map) {
                (CleanMode::Off, _) | (_, None) => None,
                (mode, Some(map)) => {
                    // The quiet parts: silent runs of 30 ms and more.
                    let quiet = map.silent_runs(3 * map.hop_frames() as u64);
                    let min = if mode == CleanMode::On { ON_PROMINENCE_DB } else { PROMINENCE_DB };
                    let hum = detect_hum_above(content, &quiet, min, cancel)?;
                    Some(HumReport { mode, engaged: hum.is_some(), hum })
                }
            },
        };
        let plan = cleaning.plan();
        let (content_loudness, leveling, cleaned) = match map {
            Some(map) if !plan.is_empty() => {
                let hop = map.hop_frames();
                let threads = crate::par::threads();
                let cleaned = clean(content, &plan, CONTENT_BITS, hop, threads, cancel, progress)?;
                if let Some(n) = &mut cleaning.noise {
                    n.noise_floor_after_db = Some(cleaned.noise_floor_db);
                }
                let audio = &cleaned.audio;
                let (l, s) = crate::par::join(
                    || loudness::measure_source(audio, cancel),
                    || speakers(audio),
                );
                (l?, s?, Some(cleaned.audio))
            }
            _ => (content_loudness?, leveling?, None),
        };
        let (leveling, leveling_warnings) = match leveling {
            Some((l, w)) => (Some(l), w),
            None => (None, Vec::new()),
        };
        Ok(Analysis {
            content_loudness,
            content_frames: content.frames(),
            leveling,
            leveling_warnings,
            adaptive,
            cleaning,
            cleaned,
        })
    }

    /// The cleaned content of an analysis that engaged cleaning: the one it computed (then
    /// checkpointed beside it), or on a resumed run the checkpointed one, or computed again
    /// (the same samples: cleaning is deterministic) when that is missing or damaged, with
    /// the reason as a warning.
    ///
    /// The speech activity map stays the raw content's: it is analyzed in `analyze`, before
    /// the content is replaced (pause removal and ducking see the same map either way).
    fn cleaned_content(
        &self,
        inputs: &Inputs,
        analysis: &mut Analysis,
        store: Option<&CheckpointStore>,
        cancel: &CancelToken,
    ) -> Result<(CompactAudio, Option<Warning>)> {
        if let Some(c) = analysis.cleaned.take() {
            if let Some(s) = store {
                s.save_bytes(Stage::Analyze, CLEANED_CONTENT, &c.to_bytes())?;
            }
            return Ok((c, None));
        }
        // Resumed: later stages that need the speech activity read it from the raw content,
        // as an uninterrupted run does, so it is analyzed before the content is replaced.
        let hop = inputs.activity(&self.spec.cleanup.activity, cancel)?.hop_frames();
        let mut why = None;
        if let Some(s) = store {
            match s.load_bytes(Stage::Analyze, CLEANED_CONTENT, CompactAudio::from_bytes) {
                Loaded::Hit(c) if c.frames() == inputs.content.frames() => return Ok((c, None)),
                Loaded::Rejected(w) => why = Some(w),
                _ => {}
            }
        }
        let plan = analysis.cleaning.plan();
        let threads = crate::par::threads();
        let c = clean(&inputs.content, &plan, CONTENT_BITS, hop, threads, cancel, &mut |_| {})?;
        if let Some(s) = store {
            s.save_bytes(Stage::Analyze, CLEANED_CONTENT, &c.audio.to_bytes())?;
        }
        Ok((c.audio, why))
    }

    fn clips(&self, assets: &BTreeMap<String, Arc<AudioBuffer>>) -> Result<Vec<Clip>> {
        let c = &self.spec.cleanup;
        let mut ids: Vec<&str> = c.inserts.iter().map(|i| i.clip.as_str()).collect();
        ids.extend(c.sound_effects.iter().map(|s| s.clip.as_str()));
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(|id| {
                let audio = assets
                    .get(id)
                    .map(|a| AudioBuffer::clone(a))
                    .ok_or_else(|| Error::invalid_input("cleanup", format!("no asset {id:?}")))?;
                Ok(Clip { id: id.to_string(), audio })
            })
            .collect()
    }

    fn edit_plan(&self, inputs: &Inputs, cancel: &CancelToken) -> Result<EditPlan> {
        let c = &self.spec.cleanup;
        // Only pause removal reads the activity map; `plan_with` would analyze it itself.
        let activity =
            if c.remove_pauses { Some(inputs.activity(&c.activity, cancel)?) } else { None };
        edit::plan_with(
            &inputs.content,
            inputs.transcript.as_ref(),
            &inputs.clips,
            c,
            activity,
            cancel,
        )
    }

    fn arrange(
        &self,
        inputs: &Inputs,
        plan: &EditPlan,
        leveling: Option<&GainEnvelope>,
        cancel: &CancelToken,
    ) -> Result<Arranged> {
        let template = self.template();
        let rate = self.working_format()?.rate;
        let frames = |id: &str| {
            if id == CONTENT_ASSET {
                Some(plan.output_frames)
            } else {
                inputs.assets.get(id).map(|a| a.frames() as u64)
            }
        };
        let arrangement = arrange::place(&template, rate, frames)?;
        let content_start_frame = arrangement
            .placements
            .iter()
            .find(|p| p.asset == CONTENT_ASSET)
            .map_or(0, |p| p.start_frame);

        // Speech on the episode timeline: re-timed words when there is a transcript, else the
        // content's detected activity mapped through the edit.
        let map = plan.time_map();
        let mut speech: Vec<(u64, u64)> = match &inputs.transcript {
            Some(t) => plan
                .retime(t)
                .words()
                .iter()
                .map(|w| {
                    let s = crate::seconds_to_frames(w.start_s, rate);
                    let e = crate::seconds_to_frames(w.end_s, rate);
                    (s, e.max(s))
                })
                .collect(),
            None => {
                let act = inputs.activity(&self.spec.cleanup.activity, cancel)?;
                act.speech_intervals(u64::from(rate.get()) / 4)
                    .into_iter()
                    .filter_map(|r| map.map_span_frames(r.start, r.end))
                    .collect()
            }
        };
        for s in &mut speech {
            s.0 += content_start_frame;
            s.1 += content_start_frame;
        }

        let content = leveled(inputs, leveling);
        let edited = EditedAudio::new(&content, plan, &inputs.clips)?;
        let lookup = |id: &str| -> Option<&dyn FrameSource> {
            if id == CONTENT_ASSET {
                Some(&edited)
            } else {
                inputs.assets.get(id).map(|a| a.as_ref() as &dyn FrameSource)
            }
        };
        let leveling = arrange::level_segments(
            &template,
            &arrangement,
            lookup,
            self.spec.output.channels,
            cancel,
        )?;
        let content_segment = arrangement
            .placements
            .iter()
            .find(|p| p.asset == CONTENT_ASSET)
            .map(|p| p.segment_id.clone());
        let chapters = arrange::chapters(
            &template,
            &arrangement,
            &self.spec.output.content_chapters,
            content_segment.as_deref(),
            |ms| {
                let f = crate::ms_to_frames(ms, rate);
                frames_to_ms(map.map_frame(f), rate)
            },
        )?;
        Ok(Arranged { arrangement, leveling, speech, chapters, content_start_frame })
    }

    fn tags(&self, chapters: &[Chapter]) -> Result<Tags> {
        let t = &self.spec.output.tags;
        let cover = match &t.cover {
            Some(p) => {
                let data = std::fs::read(p).map_err(|e| Error::io("read", p, e))?;
                Some(CoverArt::from_bytes(data).map_err(|e| match e {
                    Error::InvalidInput { detail, .. } => {
                        Error::invalid_input("output.tags.cover", detail)
                    }
                    other => other,
                })?)
            }
            None => None,
        };
        Ok(Tags {
            title: t.title.clone(),
            artist: t.artist.clone(),
            album: t.album.clone(),
            comment: t.comment.clone(),
            date: t.date.clone(),
            track: t.track,
            cover,
            chapters: chapters.to_vec(),
        })
    }

    /// Renders and encodes the episode. A lossy output is planned for its codec first
    /// ([`predict::plan_for_codec`]: excerpts encoded and decoded, the limiter's ceiling
    /// lowered by the overshoot, the gain re-planned), so one full encode lands; if the
    /// decoded output still misses, the verify loop tries again, each lower ceiling with its
    /// gain re-planned.
    #[allow(clippy::too_many_arguments)]
    fn render(
        &self,
        mix: &Mix<'_>,
        rate: NonZeroU32,
        plan: &MasterPlan,
        measurement: &mut dyn FnMut() -> Result<MixMeasurement>,
        chapters: &[Chapter],
        rep: &mut Reporter<'_>,
        cancel: &CancelToken,
    ) -> Result<(OutputReport, Option<Loudness>, Option<VerifyReport>)> {
        let out = &self.spec.output;
        let tags = self.tags(chapters)?;
        let lossy = matches!(out.encoding, encode::OutputFormat::Mp3 { .. });
        let opts = RenderOptions { measure_output: !lossy, ..RenderOptions::default() };
        let mut attempt = 0u32;
        // Every attempt's encode, in order.
        let mut encoded: Vec<(encode::EncodedInfo, Option<Loudness>)> = Vec::new();
        // The last encode's chunks (CBR MP3), for a local repair to reuse; kept only when a
        // later attempt may come. Dropping it removes its scratch file.
        let mut chunks: Option<encode::ChunkCache> = None;
        let keep_chunks = lossy && self.spec.verify.max_attempts > 1;
        let mut render_once = |p: &MasterPlan, rep: &mut Reporter<'_>| -> Result<_> {
            attempt += 1;
            let mut enc = Encoder::create(&out.path, &out.encoding, rate, out.channels, &tags)?;
            if keep_chunks {
                enc.keep_chunks(&self.chunks_path(attempt), chunks.take())?;
            }
            let n = attempt;
            let mut progress = |f: f64| {
                rep.update(Stage::Render, f.min(0.99), &format!("rendering (attempt {n})"))
            };
            let outcome =
                render::render_final(mix, p, &opts, |b| enc.write(b), cancel, &mut progress)?;
            let (info, kept) = enc.finish_keeping_chunks()?;
            let stats = kept.as_ref().map(encode::ChunkCache::stats);
            chunks = kept;
            encoded.push((info, outcome.output));
            Ok(stats)
        };
        let verify = if lossy {
            rep.update(Stage::Render, 0.0, "predicting the codec");
            let scratch = self.codec_scratch_path();
            let (first, prediction) = if self.spec.verify.predict_codec {
                let (first, prediction) = crate::predict::plan_for_codec(
                    mix,
                    plan,
                    measurement,
                    &self.spec.master,
                    &out.encoding,
                    &scratch,
                    cancel,
                )?;
                (first, Some(prediction))
            } else {
                (plan.clone(), None)
            };
            let start =
                EncodeRequest { target_lufs: plan.target_lufs, ceiling_dbtp: first.ceiling_dbtp };
            // The plan for the limiter ceiling the verify loop asks for: a lower ceiling comes
            // with the gain re-planned for it, so the loudness stays on target.
            let mut current = first;
            // The previous attempt's request, the plan it rendered and how far its decoded
            // true peak went over the goal's ceiling, dB.
            let mut last: Option<(EncodeRequest, MasterPlan, f64)> = None;
            // Each attempt's file is set aside once measured; the closest goes back in place.
            let mut parked: Vec<crate::predict::Scratch> = Vec::new();
            let mut report = verify_encoded_from(
                plan.target_lufs,
                plan.ceiling_dbtp,
                Some(start),
                &self.spec.verify,
                |req| {
                    // On target but over the ceiling: lower the ceiling only where the
                    // decoded file went over (same gain), so only those chunks change.
                    let repair = match (&last, parked.last()) {
                        (Some((prev, prev_plan, prev_over)), Some(file))
                            if (req.target_lufs - prev.target_lufs).abs() < 1e-9
                                && req.ceiling_dbtp < prev.ceiling_dbtp
                                && *prev_over > 0.0 =>
                        {
                            let prev_over = *prev_over;
                            let rule = crate::predict::RepairRule {
                                ceiling_dbtp: plan.ceiling_dbtp,
                                over_db: prev_over,
                                step_db: self.spec.verify.peak_step_db,
                            };
                            let windows =
                                crate::predict::decoded_overs(&file.0, rule.floor_dbtp(), cancel)?;
                            let stretches =
                                encode::independent_stretches(&out.encoding, rate, mix.frames());
                            let dips = crate::predict::repair_dips(
                                prev_plan, &windows, &rule, &stretches, rate,
                            );
                            (dips != prev_plan.ceiling_dips)
                                .then(|| MasterPlan { ceiling_dips: dips, ..prev_plan.clone() })
                        }
                        _ => None,
                    };
                    let local = repair.is_some();
                    let p = match repair {
                        Some(p) => p,
                        None => {
                            if (req.ceiling_dbtp - current.ceiling_dbtp).abs() > 1e-9 {
                                let opts = MasterOptions {
                                    target_lufs: Some(plan.target_lufs),
                                    ceiling_dbtp: Some(req.ceiling_dbtp),
                                    ..self.spec.master.clone()
                                };
                                let m = measurement()?;
                                let ro = RenderOptions::default();
                                current =
                                    render::plan_master(mix, &m, &opts, &ro, cancel, &mut |_| {})?;
                            }
                            let mut p = current.clone();
                            p.gain_db += req.target_lufs - plan.target_lufs;
                            p
                        }
                    };
                    let stats = render_once(&p, rep)?;
                    let decoded = measure_file(&out.path, cancel)?;
                    let aside = self.attempt_path(parked.len());
                    std::fs::rename(&out.path, &aside)
                        .map_err(|e| Error::io("rename", &out.path, e))?;
                    parked.push(crate::predict::Scratch(aside));
                    let repair = local.then(|| LocalRepair {
                        ceiling_dips: p.ceiling_dips.clone(),
                        chunks_encoded: stats.map(|s| s.encoded),
                        chunks_reused: stats.map(|s| s.reused),
                    });
                    last = Some((*req, p, decoded.true_peak_dbtp - plan.ceiling_dbtp));
                    Ok(EncodeMeasurement { rendered: None, decoded, repair })
                },
            )?;
            report.prediction = prediction;
            let kept =
                parked.get(report.kept_attempt).ok_or_else(|| Error::internal("no attempt"))?;
            std::fs::rename(&kept.0, &out.path).map_err(|e| Error::io("rename", &out.path, e))?;
            let (info, measured) = encoded.swap_remove(report.kept_attempt);
            encoded = vec![(info, measured)];
            Some(report)
        } else {
            render_once(plan, rep)?;
            None
        };
        let (info, measured) =
            encoded.pop().ok_or_else(|| Error::internal("render produced no output"))?;
        let loudness_out = match &verify {
            Some(v) => v.attempts.get(v.kept_attempt).map(|a| a.measured.decoded),
            None => measured,
        };
        Ok((
            OutputReport {
                path: info.path,
                duration_ms: info.duration_ms,
                frames: info.frames,
                size_bytes: info.bytes,
                sample_rate: rate.get(),
                channels: out.channels,
            },
            loudness_out,
            verify,
        ))
    }

    fn write_sidecars(
        &self,
        inputs: &Inputs,
        plan: &EditPlan,
        arranged: &Arranged,
        leveling: Option<&GainEnvelope>,
        report: &mut Report,
        cancel: &CancelToken,
    ) -> Result<()> {
        let out = &self.spec.output;
        let rate = arranged.arrangement.rate;
        if let Some(t) = &inputs.transcript {
            let offset_s = arranged.content_start_frame as f64 / f64::from(rate.get());
            let episode = plan.retime(t).retimed(
                &|s, e| Some((s + offset_s, e + offset_s)),
                &|s| s + offset_s,
                &|_| None,
            );
            report.words = episode.words().to_vec();
            let cues = CueOptions::default();
            for (path, text) in [
                (&out.words, out.words.as_ref().map(|_| episode.to_native()).transpose()?),
                (&out.srt, out.srt.as_ref().map(|_| episode.to_srt(&cues))),
                (&out.vtt, out.vtt.as_ref().map(|_| episode.to_vtt(&cues))),
            ] {
                if let (Some(p), Some(text)) = (path, text) {
                    crate::atomic::write_atomic(p, text.as_bytes())?;
                    report.sidecars.push(p.clone());
                }
            }
        }
        if let Some(p) = &out.chapters_json {
            let json = PodcastChapters::from_chapters(&arranged.chapters).to_json()?;
            crate::atomic::write_atomic(p, json.as_bytes())?;
            report.sidecars.push(p.clone());
        }
        if let Some(p) = &out.cleaned_content {
            let content = leveled(inputs, leveling);
            let edited = EditedAudio::new(&content, plan, &inputs.clips)?;
            let ch = edited.channel_count();
            let mut enc = Encoder::create(p, &out.encoding, rate, ch, &Tags::default())?;
            let block = 65_536u64;
            // One block buffer, reused; only the last (shorter) block shrinks it.
            let mut buf = AudioBuffer::silence(rate, ch, block as usize)?;
            let mut pos = 0u64;
            while pos < edited.frames() {
                cancel.check()?;
                let n = (edited.frames() - pos).min(block) as usize;
                buf.truncate(n);
                let mut planes: Vec<&mut [f32]> =
                    buf.planes_mut().iter_mut().map(Vec::as_mut_slice).collect();
                edited.read(pos, &mut planes);
                enc.write(&buf)?;
                pos += n as u64;
            }
            enc.finish()?;
            report.sidecars.push(p.clone());
        }
        if let Some(p) = &out.review_html {
            self.write_review(p, inputs, plan, arranged, report, cancel)?;
            report.sidecars.push(p.clone());
        }
        if let Some(p) = &out.report {
            report.sidecars.push(p.clone());
        }
        Ok(())
    }

    /// The review page: the written episode decoded once more for its waveform and loudness
    /// curve, with the edits, bands and words of this run (`review`).
    fn write_review(
        &self,
        path: &Path,
        inputs: &Inputs,
        plan: &EditPlan,
        arranged: &Arranged,
        report: &Report,
        cancel: &CancelToken,
    ) -> Result<()> {
        let out = &self.spec.output;
        let title = out.tags.title.clone().unwrap_or_else(|| {
            out.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        });
        let review = crate::review::ReviewInputs {
            episode: &report.output.path,
            episode_frames: report.output.frames,
            title,
            plan,
            transcript: inputs.transcript.as_ref(),
            arrangement: &arranged.arrangement,
            content_start_frame: arranged.content_start_frame,
            target_lufs: report.master.target_lufs,
            measured: report.loudness_out.map(|l| (l.integrated_lufs, l.true_peak_dbtp)),
        };
        crate::review::write_page(path, &review, cancel)?;
        Ok(())
    }
}

/// Grid of the stored content, bits: exact for 16-bit sources, and far below the noise of
/// lossy ones (see `compact`).
const CONTENT_BITS: u32 = 16;

/// Decodes the file at `path` block by block into a loudness meter (true peak included),
/// holding no more than one block of its audio.
fn measure_file(path: &Path, cancel: &CancelToken) -> Result<Loudness> {
    let mut meter: Option<LoudnessMeter> = None;
    let d =
        load::decode_file_streaming(path, &DecodeOptions::default(), cancel, &mut |rate, b| {
            if meter.is_none() {
                meter = Some(LoudnessMeter::new(b.len(), rate, true)?);
            }
            meter.as_mut().map_or(Ok(()), |m| m.add_planar(b))
        })?;
    match meter {
        Some(m) => m.finish(),
        None => LoudnessMeter::new(1, d.info.sample_rate, true)?.finish(),
    }
}

/// Runs `f`, turning a panic into [`Error::Internal`].
fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            Err(Error::internal(format!("panic: {}", crate::error::panic_message(&*payload))))
        }
    }
}
