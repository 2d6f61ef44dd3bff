//! Python bindings of `assembly-core`: the private `podcast_assembly._native` module.
//!
//! This crate only converts values, handles the GIL and maps errors; every piece of audio
//! work is `assembly-core`'s. Python arguments are converted to Rust values first, then the
//! whole run happens inside [`Python::detach`] (the GIL released); the GIL is re-taken only
//! to call the progress callback. Every entry point is wrapped in `guarded`, so a Rust
//! panic reaches Python as `InternalError` (an `AssemblyError`), never as `PanicException`.

use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use assembly_core as core;
use assembly_core::edit::CleanupOptions;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyOSError, PyPermissionError, PyTimeoutError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

create_exception!(_native, AssemblyError, PyException, "Root of every podcast_assembly error.");
create_exception!(_native, DecodeError, AssemblyError, "An input is damaged or not audio.");
create_exception!(
    _native,
    UnsupportedFormatError,
    AssemblyError,
    "An input's container or codec cannot be decoded."
);
create_exception!(
    _native,
    InvalidSpecError,
    AssemblyError,
    "The spec (or an option) is invalid; `.errors` lists every problem."
);
create_exception!(
    _native,
    LimitExceededError,
    AssemblyError,
    "An input is larger than the configured limits allow."
);
create_exception!(_native, CancelledError, AssemblyError, "The run was cancelled.");
create_exception!(_native, EncodeError, AssemblyError, "Writing an output failed in the encoder.");
create_exception!(
    _native,
    InternalError,
    AssemblyError,
    "A bug (a caught panic); please report it."
);

/// Maps a core error to the matching Python exception.
fn to_py(py: Python<'_>, err: core::Error) -> PyErr {
    let msg = err.to_string();
    match err {
        core::Error::Io { path, source, .. } => {
            let errno = source.raw_os_error().unwrap_or(0);
            let args = (errno, msg, path.display().to_string());
            match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(args),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(args),
                _ => PyOSError::new_err(args),
            }
        }
        core::Error::UnsupportedFormat { .. } => UnsupportedFormatError::new_err(msg),
        core::Error::Decode { .. } => DecodeError::new_err(msg),
        core::Error::LimitExceeded { .. } => LimitExceededError::new_err(msg),
        core::Error::InvalidInput { field, detail } => {
            spec_error(py, msg, vec![core::SpecProblem::new(field, detail)])
        }
        core::Error::InvalidSpec { problems } => spec_error(py, msg, problems),
        core::Error::Encode { .. } => EncodeError::new_err(msg),
        core::Error::Cancelled => CancelledError::new_err(msg),
        _ => InternalError::new_err(msg),
    }
}

/// An `InvalidSpecError` carrying `.errors` (dicts `{path, message}`) and `.problems`
/// (tuples `(path, message)`).
fn spec_error(py: Python<'_>, msg: String, problems: Vec<core::SpecProblem>) -> PyErr {
    let err = InvalidSpecError::new_err(msg);
    let fill = || -> PyResult<()> {
        let errors = PyList::empty(py);
        let tuples = PyList::empty(py);
        for p in &problems {
            let d = PyDict::new(py);
            d.set_item("path", &p.path)?;
            d.set_item("message", &p.message)?;
            errors.append(d)?;
            tuples.append((&p.path, &p.message))?;
        }
        let value = err.value(py);
        value.setattr("errors", errors)?;
        value.setattr("problems", tuples)?;
        Ok(())
    };
    match fill() {
        Ok(()) => err,
        Err(e) => e,
    }
}

/// Runs `f`, turning a panic into `InternalError` so it never escapes as `PanicException`.
fn guarded<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(InternalError::new_err(format!("internal error: panic: {what}")))
        }
    }
}

/// `json.loads(text)`.
fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

/// `json.dumps(obj, default=os.fspath)` (so `pathlib.Path` values serialize).
fn json_dumps(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = obj.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("default", py.import("os")?.getattr("fspath")?)?;
    kwargs.set_item("allow_nan", false)?;
    py.import("json")?.call_method("dumps", (obj,), Some(&kwargs))?.extract()
}

fn to_json_string<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value)
        .map_err(|e| InternalError::new_err(format!("internal error: cannot serialize: {e}")))
}

/// Reads a spec from a dict, a JSON string, or a path (str or `os.PathLike`) to a spec file.
fn spec_from_py(obj: &Bound<'_, PyAny>) -> PyResult<core::Spec> {
    let py = obj.py();
    if obj.cast::<PyDict>().is_ok() {
        let json = json_dumps(obj)?;
        return core::Spec::from_json(&json).map_err(|e| to_py(py, e));
    }
    let path: PathBuf = if let Ok(s) = obj.cast::<PyString>() {
        let s: String = s.extract()?;
        if s.trim_start().starts_with('{') {
            return core::Spec::from_json(&s).map_err(|e| to_py(py, e));
        }
        PathBuf::from(s)
    } else if obj.hasattr("__fspath__")? {
        py.import("os")?.call_method1("fspath", (obj,))?.extract::<PathBuf>()?
    } else {
        return Err(PyTypeError::new_err(
            "spec must be a dict, a JSON string, or a path to a spec file",
        ));
    };
    core::Spec::from_file(&path).map_err(|e| to_py(py, e))
}

/// Raises `FileNotFoundError` / `PermissionError` for an input file that is missing or
/// unreadable, before the full validation lists every other problem.
fn check_inputs(spec: &core::Spec) -> PyResult<()> {
    let mut inputs: Vec<(String, &Path)> = vec![("content".into(), spec.content.as_path())];
    for (id, p) in &spec.assets {
        inputs.push((format!("assets.{id}"), p.as_path()));
    }
    if let Some(p) = spec.transcript.as_ref().and_then(|t| t.path.as_ref()) {
        inputs.push(("transcript.path".into(), p.as_path()));
    }
    for (i, o) in spec.outputs().iter().enumerate() {
        if let Some(p) = &o.tags.cover {
            inputs.push((format!("{}.tags.cover", spec.output_field(i)), p.as_path()));
        }
    }
    for (field, path) in inputs {
        if let Err(e) = std::fs::File::open(path) {
            let errno = e.raw_os_error().unwrap_or(0);
            let args = (errno, format!("{field}: cannot open: {e}"), path.display().to_string());
            match e.kind() {
                std::io::ErrorKind::NotFound => return Err(PyFileNotFoundError::new_err(args)),
                std::io::ErrorKind::PermissionDenied => {
                    return Err(PyPermissionError::new_err(args));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A thread-safe cancellation flag. Pass it to `run`/`submit`/`assemble_episode` and call
/// `cancel()` from any thread; the run stops at its next block with `CancelledError`.
#[pyclass(frozen, module = "podcast_assembly._native")]
struct CancelToken {
    inner: core::CancelToken,
}

#[pymethods]
impl CancelToken {
    #[new]
    fn new() -> Self {
        Self { inner: core::CancelToken::new() }
    }

    /// Requests cancellation (idempotent, callable from any thread).
    fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether `cancel()` was called.
    fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    fn __repr__(&self) -> String {
        format!(
            "CancelToken(cancelled={})",
            if self.inner.is_cancelled() { "True" } else { "False" }
        )
    }
}

fn token_of(cancel: Option<&Bound<'_, CancelToken>>) -> core::CancelToken {
    cancel.map(|c| c.get().inner.clone()).unwrap_or_default()
}

/// One progress report: stage name, fraction of that stage, overall fraction, message.
#[pyclass(frozen, module = "podcast_assembly._native")]
struct ProgressEvent {
    #[pyo3(get)]
    stage: String,
    #[pyo3(get)]
    stage_fraction: f64,
    #[pyo3(get)]
    overall: f64,
    #[pyo3(get)]
    message: String,
}

impl ProgressEvent {
    fn from_core(e: &core::ProgressEvent) -> Self {
        Self {
            stage: e.stage.name().to_string(),
            stage_fraction: e.stage_fraction,
            overall: e.overall,
            message: e.message.clone(),
        }
    }

    fn copy(&self) -> Self {
        Self {
            stage: self.stage.clone(),
            stage_fraction: self.stage_fraction,
            overall: self.overall,
            message: self.message.clone(),
        }
    }
}

#[pymethods]
impl ProgressEvent {
    fn __repr__(&self) -> String {
        format!(
            "ProgressEvent(stage={:?}, stage_fraction={:.3}, overall={:.3}, message={:?})",
            self.stage, self.stage_fraction, self.overall, self.message
        )
    }
}

/// The outcome of a run. Fields are attributes; `to_dict()` returns a fresh plain dict.
#[pyclass(frozen, module = "podcast_assembly._native")]
struct Report {
    data: Py<PyDict>,
}

impl Report {
    fn from_core(py: Python<'_>, r: &core::Report) -> PyResult<Self> {
        let mut v = serde_json::to_value(r)
            .map_err(|e| InternalError::new_err(format!("internal error: {e}")))?;
        if let Some(obj) = v.as_object_mut() {
            use serde_json::json;
            let o = &r.output;
            obj.insert("final_path".into(), json!(o.path.display().to_string()));
            obj.insert("duration_ms".into(), json!(o.duration_ms));
            obj.insert("size_bytes".into(), json!(o.size_bytes));
            obj.insert("sample_rate".into(), json!(o.sample_rate));
            obj.insert("channels".into(), json!(o.channels));
            let loudness = |l: Option<&core::analyze::loudness::Loudness>| {
                l.map_or(serde_json::Value::Null, |l| {
                    json!({
                        "integrated_lufs": finite(l.integrated_lufs),
                        "true_peak_dbtp": finite(l.true_peak_dbtp),
                        "lra": finite(l.range_lu),
                        "sample_peak_dbfs": finite(l.sample_peak_dbfs),
                    })
                })
            };
            obj.insert("loudness".into(), loudness(r.loudness_out.as_ref()));
            // Every output in the backend's flat shape, with its own target and ceiling.
            let outputs: Vec<serde_json::Value> = r
                .outputs
                .iter()
                .map(|x| {
                    let o = &x.output;
                    json!({
                        "path": o.path.display().to_string(),
                        "duration_ms": o.duration_ms,
                        "frames": o.frames,
                        "size_bytes": o.size_bytes,
                        "sample_rate": o.sample_rate,
                        "channels": o.channels,
                        "loudness": loudness(x.loudness.as_ref()),
                        "target_lufs": x.master.target_lufs,
                        "ceiling_dbtp": x.master.ceiling_dbtp,
                        "encodes": x.verify.as_ref().map_or(1, |v| v.attempts.len()),
                    })
                })
                .collect();
            obj.insert("outputs".into(), serde_json::Value::Array(outputs));
            // The backend's word shape: {word, start, end, speaker}, seconds.
            let words: Vec<serde_json::Value> = r
                .words
                .iter()
                .map(|w| {
                    json!({"word": w.text, "start": w.start_s, "end": w.end_s, "speaker": w.speaker})
                })
                .collect();
            obj.insert("words".into(), serde_json::Value::Array(words));
            // The same words on the cleaned content's own timeline: those inside the first
            // content placement, shifted to its start.
            let content_words: Vec<serde_json::Value> = r
                .placements
                .iter()
                .find(|p| p.asset == core::CONTENT_ASSET)
                .map(|p| {
                    let rate = f64::from(o.sample_rate.max(1));
                    let (start, end) = (p.start_frame as f64 / rate, p.end_frame as f64 / rate);
                    r.words
                        .iter()
                        .filter(|w| w.start_s >= start - 1e-9 && w.end_s <= end + 1e-9)
                        .map(|w| {
                            json!({"word": w.text, "start": w.start_s - start,
                                   "end": w.end_s - start, "speaker": w.speaker})
                        })
                        .collect()
                })
                .unwrap_or_default();
            obj.insert("content_words".into(), serde_json::Value::Array(content_words));
            let mut stats = serde_json::to_value(&r.counts)
                .map_err(|e| InternalError::new_err(format!("internal error: {e}")))?;
            if let Some(s) = stats.as_object_mut() {
                s.insert("stage_ms".into(), serde_json::to_value(&r.stage_ms).unwrap_or_default());
            }
            obj.insert("stats".into(), stats);
        }
        let text = to_json_string(&v)?;
        let data = json_loads(py, &text)?.cast_into::<PyDict>()?.unbind();
        Ok(Self { data })
    }

    fn field<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.data.bind(py).get_item(key)? {
            Some(v) => Ok(v),
            None => Ok(py.None().into_bound(py)),
        }
    }
}

fn finite(x: f64) -> serde_json::Value {
    if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null }
}

#[pymethods]
impl Report {
    /// The episode file.
    #[getter]
    fn final_path<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "final_path")
    }
    /// Episode duration in ms.
    #[getter]
    fn duration_ms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "duration_ms")
    }
    /// Episode file size in bytes.
    #[getter]
    fn size_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "size_bytes")
    }
    /// Output sample rate in Hz.
    #[getter]
    fn sample_rate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "sample_rate")
    }
    /// Output channels.
    #[getter]
    fn channels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "channels")
    }
    /// Output loudness `{integrated_lufs, true_peak_dbtp, lra, sample_peak_dbfs}` or None.
    #[getter]
    fn loudness<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "loudness")
    }
    /// Every output in the spec's order (the first is the one `final_path` names): each a
    /// dict `{path, duration_ms, frames, size_bytes, sample_rate, channels, loudness,
    /// target_lufs, ceiling_dbtp, encodes}`, `loudness` as measured on the written file.
    #[getter]
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "outputs")
    }
    /// Content loudness before processing.
    #[getter]
    fn loudness_in<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "loudness_in")
    }
    /// Segment placements on the episode timeline.
    #[getter]
    fn placements<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "placements")
    }
    /// Words re-timed to the episode, `{word, start, end, speaker}` in seconds.
    #[getter]
    fn words<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "words")
    }
    /// Words on the cleaned content's own timeline (the content placement's start is 0).
    #[getter]
    fn content_words<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "content_words")
    }
    /// Every edit with source and output times and its reason.
    #[getter]
    fn edits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "edits")
    }
    /// Chapters on the episode timeline.
    #[getter]
    fn chapters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "chapters")
    }
    /// Counts (fillers, pauses, cuts, …) plus `stage_ms`.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "stats")
    }
    /// Sidecar files written.
    #[getter]
    fn sidecars<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "sidecars")
    }
    /// Warnings, as `{code, message}` dicts.
    #[getter]
    fn warnings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "warnings")
    }
    /// Speaker leveling, or `None` (no speaker labels, or leveling off): `reference_lufs`,
    /// `words_lufs`, `speakers` (each `speaker`, `words`, `speech_s`, `loudness_lufs`,
    /// `gain_db`, `leveled_lufs`) and the gain `envelope` (`initial_db`, `steps` of `start`,
    /// `ramp` in content frames and `gain_db`).
    #[getter]
    fn leveling<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "leveling")
    }
    /// Adaptive leveling of content without speaker labels, or `None`: `speech_level_db`,
    /// `phrases` and the gain `envelope` (as in `leveling`).
    #[getter]
    fn adaptive_leveling<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "adaptive_leveling")
    }

    /// Cleaning: `noise` (or `None` when the speech activity was not analyzed): `mode`,
    /// `engaged`, `speech_level_db`, `noise_floor_db`, `speech_to_noise_db`,
    /// `noise_floor_after_db` (`None` unless engaged) and `strength`; and `hum` (or `None`
    /// with hum removal off): `mode`, `engaged` and the detected `hum` (`fundamental_hz`,
    /// `harmonics`), `None` when none was found.
    #[getter]
    fn cleaning<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "cleaning")
    }

    /// A fresh deep copy of the whole report as plain dicts and lists.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("copy")?.call_method1("deepcopy", (self.data.bind(py),))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Report(final_path={}, duration_ms={}, size_bytes={})",
            self.field(py, "final_path")?.repr()?,
            self.field(py, "duration_ms")?,
            self.field(py, "size_bytes")?
        ))
    }
}

/// Calls the Python progress callback (re-taking the GIL) and remembers its exception.
struct PySink<'a> {
    callback: Option<&'a Py<PyAny>>,
    error: Option<PyErr>,
    job: Option<&'a JobShared>,
}

impl PySink<'_> {
    fn on_event(&mut self, e: &core::ProgressEvent) -> ControlFlow<()> {
        if let Some(job) = self.job {
            lock(&job.state).last = Some(ProgressEvent::from_core(e));
        }
        let Some(cb) = self.callback else { return ControlFlow::Continue(()) };
        if self.error.is_some() {
            return ControlFlow::Break(());
        }
        let result = Python::attach(|py| -> PyResult<()> {
            let event = Bound::new(py, ProgressEvent::from_core(e))?;
            cb.bind(py).call1((event,))?;
            Ok(())
        });
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => {
                self.error = Some(err);
                ControlFlow::Break(())
            }
        }
    }
}

/// Runs `assembler` with the GIL released; a callback exception wins over the resulting
/// `Cancelled`.
fn run_detached(
    py: Python<'_>,
    assembler: &core::Assembler,
    callback: Option<&Py<PyAny>>,
    cancel: &core::CancelToken,
) -> PyResult<Report> {
    let (result, cb_error) = py.detach(|| {
        let mut sink = PySink { callback, error: None, job: None };
        let mut f = |e: &core::ProgressEvent| sink.on_event(e);
        let r = assembler.run(&mut f, cancel);
        (r, sink.error)
    });
    if let Some(err) = cb_error {
        return Err(err);
    }
    match result {
        Ok(r) => Report::from_core(py, &r),
        Err(e) => Err(to_py(py, e)),
    }
}

/// A validated assembly job. `Assembler(spec)` takes a dict, a JSON string, or a path to a
/// spec file (relative paths in a file resolve against its folder) and validates at once.
#[pyclass(frozen, module = "podcast_assembly._native")]
struct Assembler {
    inner: Arc<core::Assembler>,
}

#[pymethods]
impl Assembler {
    #[new]
    fn new(spec: &Bound<'_, PyAny>) -> PyResult<Self> {
        guarded(|| {
            let py = spec.py();
            let spec = spec_from_py(spec)?;
            // Opening the inputs can block (a FIFO without a writer, a hung network mount):
            // done without the GIL, so the interpreter's other threads (a service's heartbeats
            // and watchdog, signal handlers) go on meanwhile.
            let built = py.detach(|| -> PyResult<core::Result<core::Assembler>> {
                check_inputs(&spec)?;
                Ok(core::Assembler::new(spec))
            })?;
            let inner = built.map_err(|e| to_py(py, e))?;
            Ok(Self { inner: Arc::new(inner) })
        })
    }

    /// The validated spec as a dict (paths resolved).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| json_loads(py, &to_json_string(self.inner.spec())?))
    }

    /// Plans the job without rendering (GIL released): the edit list, the placements and the
    /// predicted duration, as a dict.
    #[pyo3(signature = (cancel=None))]
    fn plan<'py>(
        &self,
        py: Python<'py>,
        cancel: Option<&Bound<'py, CancelToken>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        guarded(|| {
            let token = token_of(cancel);
            let inner = &self.inner;
            let plan = py.detach(|| inner.plan(&token)).map_err(|e| to_py(py, e))?;
            json_loads(py, &to_json_string(&plan)?)
        })
    }

    /// Runs the job with the GIL released, calling `progress(event)` (GIL re-taken) on each
    /// throttled progress event. If `progress` raises, the run stops (the token is cancelled)
    /// and that exception is raised.
    #[pyo3(signature = (progress=None, cancel=None))]
    fn run(
        &self,
        py: Python<'_>,
        progress: Option<Py<PyAny>>,
        cancel: Option<&Bound<'_, CancelToken>>,
    ) -> PyResult<Report> {
        guarded(|| {
            let token = token_of(cancel);
            run_detached(py, &self.inner, progress.as_ref(), &token)
        })
    }

    /// Starts the job on a native thread and returns its `Job` handle at once.
    #[pyo3(signature = (progress=None, cancel=None))]
    fn submit(
        &self,
        progress: Option<Py<PyAny>>,
        cancel: Option<&Bound<'_, CancelToken>>,
    ) -> PyResult<Job> {
        guarded(|| {
            let shared = Arc::new(JobShared {
                state: Mutex::new(JobState { status: "running", last: None, outcome: None }),
                done: Condvar::new(),
                cancel: token_of(cancel),
            });
            let assembler = Arc::clone(&self.inner);
            let job = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("podcast-assembly-job".into())
                .spawn(move || job_thread(&assembler, progress, &job))
                .map_err(|e| InternalError::new_err(format!("cannot start a job thread: {e}")))?;
            Ok(Job { shared })
        })
    }

    /// Test hook: make the run panic inside `stage` (proves panics become `InternalError`).
    fn _with_injected_panic(&self, py: Python<'_>, stage: &str) -> PyResult<Assembler> {
        let stage = core::Stage::ALL
            .iter()
            .copied()
            .find(|s| s.name() == stage)
            .ok_or_else(|| PyTypeError::new_err(format!("no stage {stage:?}")))?;
        let mut a = core::Assembler::new(self.inner.spec().clone()).map_err(|e| to_py(py, e))?;
        a.inject_panic(stage);
        Ok(Self { inner: Arc::new(a) })
    }
}

struct JobState {
    status: &'static str,
    last: Option<ProgressEvent>,
    outcome: Option<PyResult<Py<Report>>>,
}

struct JobShared {
    state: Mutex<JobState>,
    done: Condvar,
    cancel: core::CancelToken,
}

fn lock(m: &Mutex<JobState>) -> MutexGuard<'_, JobState> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn job_thread(assembler: &core::Assembler, progress: Option<Py<PyAny>>, job: &JobShared) {
    let run = catch_unwind(AssertUnwindSafe(|| {
        let mut sink = PySink { callback: progress.as_ref(), error: None, job: Some(job) };
        let mut f = |e: &core::ProgressEvent| sink.on_event(e);
        let r = assembler.run(&mut f, &job.cancel);
        (r, sink.error)
    }));
    let (outcome, status) = Python::attach(|py| {
        let outcome: PyResult<Py<Report>> = match run {
            Ok((_, Some(err))) => Err(err),
            Ok((Ok(r), None)) => Report::from_core(py, &r).and_then(|r| Py::new(py, r)),
            Ok((Err(e), None)) => Err(to_py(py, e)),
            Err(_) => Err(InternalError::new_err("internal error: panic in the job thread")),
        };
        let status = match &outcome {
            Ok(_) => "done",
            Err(e) if e.is_instance_of::<CancelledError>(py) => "cancelled",
            Err(_) => "failed",
        };
        drop(progress);
        (outcome, status)
    });
    let mut st = lock(&job.state);
    st.outcome = Some(outcome);
    st.status = status;
    job.done.notify_all();
}

/// A job running on a native thread (from `Assembler.submit`). `await job` in asyncio code
/// waits without blocking the event loop.
#[pyclass(frozen, module = "podcast_assembly._native")]
struct Job {
    shared: Arc<JobShared>,
}

impl Job {
    /// Waits (GIL released, signals checked every 50 ms) until done or `timeout` elapses.
    fn wait_done(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = match timeout {
            Some(t) if !(t.is_finite() && t >= 0.0) => {
                return Err(PyTypeError::new_err("timeout must be a finite number >= 0"));
            }
            Some(t) => Some(Instant::now() + Duration::from_secs_f64(t.min(1e9))),
            None => None,
        };
        loop {
            let slice = Duration::from_millis(50);
            let done = py.detach(|| {
                let st = lock(&self.shared.state);
                let wait = match deadline {
                    Some(d) => d.saturating_duration_since(Instant::now()).min(slice),
                    None => slice,
                };
                let (st, _) = self
                    .shared
                    .done
                    .wait_timeout_while(st, wait, |s| s.outcome.is_none())
                    .unwrap_or_else(|p| p.into_inner());
                st.outcome.is_some()
            });
            if done {
                return Ok(true);
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }
}

#[pymethods]
impl Job {
    /// `"running"`, `"done"`, `"failed"` or `"cancelled"`.
    #[getter]
    fn status(&self) -> &'static str {
        lock(&self.shared.state).status
    }

    /// The latest progress event, or None before the first.
    #[getter]
    fn progress(&self) -> Option<ProgressEvent> {
        lock(&self.shared.state).last.as_ref().map(ProgressEvent::copy)
    }

    /// Requests cancellation; the job ends with `CancelledError`.
    fn cancel(&self) {
        self.shared.cancel.cancel();
    }

    /// Whether the job has finished (in any way).
    fn done(&self) -> bool {
        lock(&self.shared.state).outcome.is_some()
    }

    /// Blocks (GIL released) until the job ends or `timeout` seconds pass; True if it ended.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        guarded(|| self.wait_done(py, timeout))
    }

    /// Waits like `wait`, then returns the `Report` or raises the job's exception;
    /// `TimeoutError` if `timeout` passed first.
    #[pyo3(signature = (timeout=None))]
    fn result(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<Report>> {
        guarded(|| {
            if !self.wait_done(py, timeout)? {
                return Err(PyTimeoutError::new_err("the job is still running"));
            }
            match &lock(&self.shared.state).outcome {
                Some(Ok(r)) => Ok(r.clone_ref(py)),
                Some(Err(e)) => Err(e.clone_ref(py)),
                None => Err(InternalError::new_err("internal error: job ended without outcome")),
            }
        })
    }

    fn __await__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
        let future =
            event_loop.call_method1("run_in_executor", (py.None(), slf.getattr("result")?))?;
        future.call_method0("__await__")
    }

    fn __repr__(&self) -> String {
        format!("Job(status={:?})", self.status())
    }
}

/// Reads the backend's camelCase cleanup options onto the defaults; returns the spec's
/// `cleanup` dict and the warnings (unknown keys) as `{code, message}` dicts.
#[pyfunction]
fn cleanup_from_backend<'py>(
    py: Python<'py>,
    options: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    guarded(|| {
        let json = json_dumps(options)?;
        let (opts, warnings) =
            CleanupOptions::from_backend_json(&json).map_err(|e| to_py(py, e))?;
        let dict = json_loads(py, &to_json_string(&opts)?)?;
        let warnings = json_loads(py, &to_json_string(&warnings)?)?;
        PyTuple::new(py, [dict, warnings])
    })
}

/// Reads an input's container, codec, rate, channels and exact length (`duration_ms`,
/// `frames`) without keeping its audio: from the header where it is exact, else from a pass
/// that counts frames. Runs with the GIL released; `limits` as in the spec's `limits` (a
/// dict, defaults for missing keys).
#[pyfunction]
#[pyo3(signature = (path, limits=None))]
fn probe<'py>(
    py: Python<'py>,
    path: PathBuf,
    limits: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    guarded(|| {
        let limits: core::Limits = match limits {
            None => core::Limits::default(),
            Some(obj) => serde_json::from_str(&json_dumps(obj)?)
                .map_err(|e| PyValueError::new_err(format!("invalid limits: {e}")))?,
        };
        let info =
            py.detach(|| core::load::probe_file(&path, &limits)).map_err(|e| to_py(py, e))?;
        json_loads(py, &to_json_string(&info)?)
    })
}

/// Test hook: panics inside the guarded boundary (proves it becomes `InternalError`).
#[pyfunction]
fn _panic_for_test() -> PyResult<()> {
    guarded(|| panic!("deliberate test panic"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Assembler>()?;
    m.add_class::<CancelToken>()?;
    m.add_class::<ProgressEvent>()?;
    m.add_class::<Report>()?;
    m.add_class::<Job>()?;
    m.add_function(wrap_pyfunction!(cleanup_from_backend, m)?)?;
    m.add_function(wrap_pyfunction!(probe, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add("AssemblyError", py.get_type::<AssemblyError>())?;
    m.add("DecodeError", py.get_type::<DecodeError>())?;
    m.add("UnsupportedFormatError", py.get_type::<UnsupportedFormatError>())?;
    m.add("InvalidSpecError", py.get_type::<InvalidSpecError>())?;
    m.add("LimitExceededError", py.get_type::<LimitExceededError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add("EncodeError", py.get_type::<EncodeError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}
