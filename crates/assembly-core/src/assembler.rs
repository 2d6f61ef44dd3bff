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
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::analyze::activity::{ActivityMap, ActivityOptions};
use crate::analyze::adaptive::{AdaptiveLeveling, level_adaptive};
use crate::analyze::clean::{CleanMode, CleaningReport, HumReport, clean};
use crate::analyze::hum::{ON_PROMINENCE_DB, PROMINENCE_DB, detect_hum_above};
use crate::analyze::loudness::{self, Loudness};
use crate::analyze::speakers::{
    GainEnvelope, Leveled, LevelingMode, SpeakerLeveling, level_speakers,
};
use crate::arrange::{
    self, Arrangement, Leveling, Placement, PodcastChapters, Segment, SegmentType, Template,
};
use crate::checkpoint::{CLEANED_CONTENT, CheckpointStore, KeyHasher, Loaded};
use crate::edit::{self, Clip, EditPlan, EditStats, EditedAudio, PlanEntry};
use crate::encode::{Encoder, Tags};
use crate::error::{Error, Result};
use crate::load::{self, DecodeOptions, WorkingFormat};
use crate::master::VerifyReport;
use crate::progress::{ProgressSink, Reporter, Stage};
use crate::render::{self, MasterPlan, Mix, Sources};
use crate::spec::{CONTENT_ASSET, OutputSpec, Spec};
use crate::transcript::{CueOptions, Transcript, Word};
use crate::warning::Warning;
use crate::{AudioBuffer, CancelToken, Chapter, CompactAudio, FrameSource, frames_to_ms};

mod output;

use self::output::{OutputJob, RateSink, render_outputs};
pub use self::output::{OutputReport, OutputResult};

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

/// Counts of what the edit did.
pub type Counts = EditStats;

/// Everything a run did. Serializable to JSON (`output.report` writes it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The episode file (the first output's, when there are several: `outputs` lists all).
    pub output: OutputReport,
    /// Loudness of the raw content as decoded.
    pub loudness_in: Loudness,
    /// Loudness of the (first) output: measured while rendering (lossless) or decoded back
    /// (lossy).
    pub loudness_out: Option<Loudness>,
    /// The (first output's) mastering decision.
    pub master: MasterPlan,
    /// The decode-and-measure check of the (first) output, when lossy.
    pub verify: Option<VerifyReport>,
    /// Every output, in the spec's order (the first is the one the fields above describe):
    /// each file with its measured loudness, its master plan and its verify check.
    #[serde(default)]
    pub outputs: Vec<OutputResult>,
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

    /// The first output: its sample rate is the working rate, its content chapters apply
    /// to every output.
    fn main_output(&self) -> &OutputSpec {
        // `new` refused a spec without outputs.
        &self.spec.outputs()[0]
    }

    /// The working format: the first output's sample rate, and the most channels any output
    /// has (a mono output is mixed down from it).
    fn working_format(&self) -> Result<WorkingFormat> {
        let field = self.spec.output_field(0);
        let rate = NonZeroU32::new(self.main_output().sample_rate)
            .ok_or_else(|| Error::invalid_input(format!("{field}.sample_rate"), "must be > 0"))?;
        let channels = self.spec.outputs().iter().map(|o| o.channels).max().unwrap_or(2);
        Ok(WorkingFormat { rate, channels })
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
        for (i, o) in self.spec.outputs().iter().enumerate() {
            if let Some(p) = &o.tags.cover {
                k.file(&format!("cover {i}"), p)?;
            }
        }
        Ok(k.finish())
    }

    fn run_inner(&self, progress: &mut dyn ProgressSink, cancel: &CancelToken) -> Result<Report> {
        let store = match &self.spec.work_dir {
            Some(dir) => Some(CheckpointStore::open(dir, self.job_key()?)?),
            None => None,
        };
        // Temp files of a killed earlier run of this job (outputs, sidecars); the scratch
        // files beside each output are removed once its job is built, below.
        for p in self.output_paths() {
            crate::atomic::remove_stale_temps(p);
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
        let rate = arranged.arrangement.rate;
        let outs = self.spec.outputs();
        // One first pass over the mix per channel count, shared by the outputs that have it.
        let mut counts: Vec<usize> = outs.iter().map(|o| o.channels).collect();
        counts.sort_unstable();
        counts.dedup();
        let measured: Vec<Mutex<Option<render::MixMeasurement>>> =
            counts.iter().map(|_| Mutex::new(None)).collect();
        let jobs = outs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let slot = counts.iter().position(|&c| c == o.channels).unwrap_or(0);
                Ok(OutputJob {
                    spec: o,
                    field: self.spec.output_field(i),
                    master: o.master.clone().unwrap_or_else(|| self.spec.master.clone()),
                    verify: &self.spec.verify,
                    mix: Mix::new(
                        &arranged.arrangement,
                        &sources,
                        o.channels,
                        &arranged.leveling.gains,
                        &speech,
                    )?,
                    working_rate: rate,
                    measured: &measured[slot],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for job in &jobs {
            job.remove_stale_scratch();
        }

        // Each output's own mastering decision (its target and ceiling over its mix).
        let n = jobs.len() as f64;
        let plans = staged!(Stage::Master, Vec<MasterPlan>, {
            jobs.iter()
                .enumerate()
                .map(|(i, job)| {
                    job.plan(cancel, &mut |f| {
                        rep.update(Stage::Master, (i as f64 + f) / n, "planning the master")
                    })
                })
                .collect::<Result<Vec<_>>>()
        });
        if plans.len() != jobs.len() {
            return Err(Error::internal("master checkpoint does not match the outputs"));
        }

        let t0 = Instant::now();
        rep.start(Stage::Render, "rendering");
        self.fault_point(Stage::Render);
        let rendered = (|| {
            let mut results = render_outputs(&jobs, &plans, &arranged.chapters, &mut rep, cancel)?;
            let first = results.first().cloned().ok_or_else(|| Error::internal("no output"))?;
            let mut report = Report {
                output: first.output,
                loudness_in: analysis.content_loudness,
                loudness_out: first.loudness,
                master: first.master,
                verify: first.verify,
                outputs: std::mem::take(&mut results),
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
            let reports = outs.iter().filter_map(|o| o.report.as_ref());
            for p in reports {
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

    /// Every file the spec asks to write: each output and its sidecars.
    fn output_paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.spec.outputs().iter().flat_map(|o| {
            std::iter::once(&o.path).chain(o.sidecars().into_iter().filter_map(|(_, p)| p))
        })
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
            self.working_format()?.channels,
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
            &self.main_output().content_chapters,
            content_segment.as_deref(),
            |ms| {
                let f = crate::ms_to_frames(ms, rate);
                frames_to_ms(map.map_frame(f), rate)
            },
        )?;
        Ok(Arranged { arrangement, leveling, speech, chapters, content_start_frame })
    }

    /// Every output's sidecars (the report's is written last, by the caller): re-timed
    /// transcripts and chapters are the same for every output; the cleaned content is
    /// written in its output's encoding and sample rate, the review page shows its output.
    fn write_sidecars(
        &self,
        inputs: &Inputs,
        plan: &EditPlan,
        arranged: &Arranged,
        leveling: Option<&GainEnvelope>,
        report: &mut Report,
        cancel: &CancelToken,
    ) -> Result<()> {
        let rate = arranged.arrangement.rate;
        let cues = CueOptions::default();
        let episode = inputs.transcript.as_ref().map(|t| {
            let offset_s = arranged.content_start_frame as f64 / f64::from(rate.get());
            plan.retime(t).retimed(
                &|s, e| Some((s + offset_s, e + offset_s)),
                &|s| s + offset_s,
                &|_| None,
            )
        });
        if let Some(e) = &episode {
            report.words = e.words().to_vec();
        }
        for (i, out) in self.spec.outputs().iter().enumerate() {
            if let Some(episode) = &episode {
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
                self.write_cleaned(p, out, inputs, plan, rate, leveling, cancel)?;
                report.sidecars.push(p.clone());
            }
            if let Some(p) = &out.review_html {
                let result = report.outputs.get(i).ok_or_else(|| Error::internal("no output"))?;
                self.write_review(p, out, inputs, plan, arranged, result, cancel)?;
                report.sidecars.push(p.clone());
            }
            if let Some(p) = &out.report {
                report.sidecars.push(p.clone());
            }
        }
        Ok(())
    }

    /// The cleaned content alone (edited and leveled, not mixed or mastered) in `out`'s
    /// encoding and sample rate.
    #[allow(clippy::too_many_arguments)]
    fn write_cleaned(
        &self,
        path: &Path,
        out: &OutputSpec,
        inputs: &Inputs,
        plan: &EditPlan,
        rate: NonZeroU32,
        leveling: Option<&GainEnvelope>,
        cancel: &CancelToken,
    ) -> Result<()> {
        let content = leveled(inputs, leveling);
        let edited = EditedAudio::new(&content, plan, &inputs.clips)?;
        let ch = edited.channel_count();
        let out_rate = NonZeroU32::new(out.sample_rate).unwrap_or(rate);
        let enc = Encoder::create(path, &out.encoding, out_rate, ch, &Tags::default())?;
        let mut sink = RateSink::new(enc, rate, out_rate, ch)?;
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
            sink.write(&buf)?;
            pos += n as u64;
        }
        sink.finish()?.finish()?;
        Ok(())
    }

    /// The review page of one output: the written file decoded once more for its waveform
    /// and loudness curve, with the edits, bands and words of this run (`review`).
    #[allow(clippy::too_many_arguments)]
    fn write_review(
        &self,
        path: &Path,
        out: &OutputSpec,
        inputs: &Inputs,
        plan: &EditPlan,
        arranged: &Arranged,
        result: &OutputResult,
        cancel: &CancelToken,
    ) -> Result<()> {
        let title = out.tags.title.clone().unwrap_or_else(|| {
            out.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        });
        let review = crate::review::ReviewInputs {
            episode: &result.output.path,
            episode_frames: result.output.frames,
            episode_rate: NonZeroU32::new(result.output.sample_rate)
                .unwrap_or(arranged.arrangement.rate),
            title,
            plan,
            transcript: inputs.transcript.as_ref(),
            arrangement: &arranged.arrangement,
            content_start_frame: arranged.content_start_frame,
            target_lufs: result.master.target_lufs,
            measured: result.loudness.map(|l| (l.integrated_lufs, l.true_peak_dbtp)),
        };
        crate::review::write_page(path, &review, cancel)?;
        Ok(())
    }
}

/// Grid of the stored content, bits: exact for 16-bit sources, and far below the noise of
/// lossy ones (see `compact`).
const CONTENT_BITS: u32 = 16;

/// Runs `f`, turning a panic into [`Error::Internal`].
fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            Err(Error::internal(format!("panic: {}", crate::error::panic_message(&*payload))))
        }
    }
}
