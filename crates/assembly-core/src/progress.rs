//! Stages, progress events, and the one place where progress is throttled.

use std::fmt;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::CancelToken;

/// The named stages of an assembly run, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Decode every input once, resample and remix to the working format.
    Load,
    /// Speech activity, silence map, loudness per source.
    Analyze,
    /// Build the edit list from the transcript and the audio.
    Edit,
    /// Place the template's segments, plan beds and ducking.
    Arrange,
    /// Measure the planned mix, derive the gain, configure the limiter.
    Master,
    /// Render block by block through the limiter into the encoder; write sidecars.
    Render,
}

impl Stage {
    /// Every stage, in run order.
    pub const ALL: [Stage; 6] =
        [Stage::Load, Stage::Analyze, Stage::Edit, Stage::Arrange, Stage::Master, Stage::Render];

    /// The stage's lowercase name (`"load"`, …), as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Load => "load",
            Stage::Analyze => "analyze",
            Stage::Edit => "edit",
            Stage::Arrange => "arrange",
            Stage::Master => "master",
            Stage::Render => "render",
        }
    }

    /// Share of the whole run's work, from measured stage times on a 60-minute episode.
    /// The weights sum to 1.
    pub fn weight(self) -> f64 {
        match self {
            Stage::Load => 0.15,
            Stage::Analyze => 0.05,
            Stage::Edit => 0.05,
            Stage::Arrange => 0.02,
            Stage::Master => 0.13,
            Stage::Render => 0.60,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One progress report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// The stage running.
    pub stage: Stage,
    /// How much of this stage is done, 0.0 to 1.0.
    pub stage_fraction: f64,
    /// How much of the whole run is done, 0.0 to 1.0; never decreases within a run and is
    /// exactly 1.0 in the last event of a successful run.
    pub overall: f64,
    /// A short human-readable message (`"decoding content.mp3"`).
    pub message: String,
}

/// Receives progress events. Return `ControlFlow::Break(())` to ask the run to stop (it then
/// ends with [`crate::Error::Cancelled`]).
///
/// Closures implement it:
///
/// ```
/// use std::ops::ControlFlow;
/// use assembly_core::{ProgressEvent, ProgressSink};
///
/// let mut seen = Vec::new();
/// let mut sink = |e: &ProgressEvent| {
///     seen.push(e.overall);
///     ControlFlow::Continue(())
/// };
/// fn takes_sink(_: &mut dyn ProgressSink) {}
/// takes_sink(&mut sink);
/// ```
pub trait ProgressSink: Send {
    /// Called with each (throttled) event.
    fn on_progress(&mut self, event: &ProgressEvent) -> ControlFlow<()>;
}

impl<F> ProgressSink for F
where
    F: FnMut(&ProgressEvent) -> ControlFlow<()> + Send,
{
    fn on_progress(&mut self, event: &ProgressEvent) -> ControlFlow<()> {
        self(event)
    }
}

/// A sink that ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn on_progress(&mut self, _: &ProgressEvent) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// The one place progress is throttled: stage starts and ends always go through, updates in
/// between at most once per `interval` (100 ms by default, so ~10 per second). Computes the
/// overall fraction from stage weights and keeps it monotonic. When the sink asks to stop, the
/// reporter cancels the run's token.
pub(crate) struct Reporter<'a> {
    sink: &'a mut dyn ProgressSink,
    cancel: CancelToken,
    interval: Duration,
    last_emit: Option<Instant>,
    overall: f64,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(sink: &'a mut dyn ProgressSink, cancel: CancelToken) -> Self {
        Self { sink, cancel, interval: Duration::from_millis(100), last_emit: None, overall: 0.0 }
    }

    #[cfg(test)]
    fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    fn overall_for(stage: Stage, fraction: f64) -> f64 {
        let done: f64 = Stage::ALL[..stage.index()].iter().map(|s| s.weight()).sum();
        (done + stage.weight() * fraction.clamp(0.0, 1.0)).clamp(0.0, 1.0)
    }

    fn emit(&mut self, stage: Stage, fraction: f64, message: &str) {
        let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        self.overall = self.overall.max(Self::overall_for(stage, fraction));
        if stage == Stage::Render && fraction >= 1.0 {
            self.overall = 1.0;
        }
        let event = ProgressEvent {
            stage,
            stage_fraction: fraction,
            overall: self.overall,
            message: message.to_owned(),
        };
        self.last_emit = Some(Instant::now());
        if self.sink.on_progress(&event).is_break() {
            self.cancel.cancel();
        }
    }

    /// Always delivered.
    pub(crate) fn start(&mut self, stage: Stage, message: &str) {
        self.emit(stage, 0.0, message);
    }

    /// Delivered at most once per interval.
    pub(crate) fn update(&mut self, stage: Stage, fraction: f64, message: &str) {
        let due = self.last_emit.is_none_or(|t| t.elapsed() >= self.interval);
        if due {
            self.emit(stage, fraction, message);
        }
    }

    /// Always delivered; the last stage's end reports overall 1.0.
    pub(crate) fn end(&mut self, stage: Stage, message: &str) {
        self.emit(stage, 1.0, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one() {
        let s: f64 = Stage::ALL.iter().map(|s| s.weight()).sum();
        assert!((s - 1.0).abs() < 1e-12);
    }

    #[test]
    fn throttles_updates_but_never_starts_and_ends_and_stays_monotonic() {
        let mut events = Vec::new();
        let mut sink = |e: &ProgressEvent| {
            events.push(e.clone());
            ControlFlow::Continue(())
        };
        let token = CancelToken::new();
        {
            let mut r =
                Reporter::new(&mut sink, token.clone()).with_interval(Duration::from_secs(3600));
            for stage in Stage::ALL {
                r.start(stage, "start");
                for i in 0..1000 {
                    r.update(stage, f64::from(i) / 1000.0, "working");
                }
                // A stage reporting a smaller fraction must not move overall backwards.
                r.update(stage, 0.0, "late");
                r.end(stage, "end");
            }
        }
        // Interval of an hour: only the starts and ends get through.
        assert_eq!(events.len(), Stage::ALL.len() * 2);
        assert!(events.windows(2).all(|w| w[1].overall >= w[0].overall));
        assert_eq!(events.last().map(|e| e.overall), Some(1.0));
        assert!(!token.is_cancelled());
    }

    #[test]
    fn a_sink_that_breaks_cancels_the_token() {
        let mut sink = |_: &ProgressEvent| ControlFlow::Break(());
        let token = CancelToken::new();
        let mut r = Reporter::new(&mut sink, token.clone());
        r.start(Stage::Load, "start");
        assert!(token.is_cancelled());
    }
}
