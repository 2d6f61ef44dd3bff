//! Frame-level speech activity and silence detection.
//!
//! The signal is cut into hops (10 ms by default); each hop's power, averaged over channels,
//! is compared with a threshold set **relative to the recording itself**:
//!
//! ```text
//! speech level = 90th percentile of hop levels above `floor_dbfs`
//! noise floor  = 5th percentile of all hop levels
//! threshold    = max(floor_dbfs, min(max(speech − below_speech_db, noise + above_noise_db), speech − 6))
//! ```
//!
//! Runs of hops above the threshold are active. Their edges are then refined to 1 ms
//! sub-windows and extended (hysteresis) while the sound stays above the lower edge threshold
//! `max(floor_dbfs, noise + above_noise_db)`, up to 150 ms: soft onsets and decays belong to
//! the sound, not to the pause. Runs shorter than `min_activity_ms` (clicks) are ignored. The result
//! answers "is this range silent?" (pause verification), lists silent runs (audio-only pause
//! detection) and speech intervals with short gaps bridged (ducking). Energy only: no spectral
//! analysis is needed for these questions, which keeps it to one pass over the samples.

use std::num::NonZeroU32;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::dsp::power_to_db;
use crate::error::{Error, Result};
use crate::{CancelToken, FrameSource};

/// Settings of the activity detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivityOptions {
    /// Analysis hop, in ms (1–100). Default: `10`.
    pub hop_ms: u32,
    /// How far below the speech level the silence threshold sits, in dB. Default: `30.0`.
    pub below_speech_db: f64,
    /// The threshold is at least this far above the noise floor, in dB. Default: `6.0`.
    pub above_noise_db: f64,
    /// Anything quieter than this is silence whatever the recording, in dBFS. Default: `-70.0`.
    pub floor_dbfs: f64,
    /// Active runs shorter than this (clicks, pops) are ignored, in ms. Default: `30`.
    pub min_activity_ms: u32,
}

impl Default for ActivityOptions {
    fn default() -> Self {
        Self {
            hop_ms: 10,
            below_speech_db: 30.0,
            above_noise_db: 6.0,
            floor_dbfs: -70.0,
            min_activity_ms: 30,
        }
    }
}

impl ActivityOptions {
    /// Checks every field's range.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the field (`activity.hop_ms`, …).
    pub fn validate(&self) -> Result<()> {
        if !(1..=100).contains(&self.hop_ms) {
            return Err(Error::invalid_input(
                "activity.hop_ms",
                format!("must be 1..=100, got {}", self.hop_ms),
            ));
        }
        for (name, v) in
            [("below_speech_db", self.below_speech_db), ("above_noise_db", self.above_noise_db)]
        {
            if !(0.0..=120.0).contains(&v) {
                return Err(Error::invalid_input(
                    format!("activity.{name}"),
                    format!("must be 0..=120 dB, got {v}"),
                ));
            }
        }
        if !(-140.0..=0.0).contains(&self.floor_dbfs) {
            return Err(Error::invalid_input(
                "activity.floor_dbfs",
                format!("must be -140..=0 dBFS, got {}", self.floor_dbfs),
            ));
        }
        if self.min_activity_ms > 10_000 {
            return Err(Error::invalid_input(
                "activity.min_activity_ms",
                format!("must be at most 10000, got {}", self.min_activity_ms),
            ));
        }
        Ok(())
    }
}

/// Where a recording is active and where it is silent, at sample-frame positions.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{analyze::activity::{ActivityMap, ActivityOptions}, synth};
///
/// let rate = NonZeroU32::new(16_000).unwrap();
/// // 0.5 s of noise, 1 s of silence, 0.5 s of noise.
/// let s = synth::noise_bursts(1, 0.3, 8_000, 16_000, 32_000);
/// let map = ActivityMap::analyze(&synth::mono(rate, s), &ActivityOptions::default()).unwrap();
/// let runs = map.silent_runs(8_000);
/// assert_eq!(runs.len(), 1);
/// assert!(runs[0].start.abs_diff(8_000) <= 16 && runs[0].end.abs_diff(24_000) <= 16);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityMap {
    rate: NonZeroU32,
    frames: u64,
    hop: usize,
    levels_db: Vec<f32>,
    speech_level_db: f64,
    noise_floor_db: f64,
    threshold_db: f64,
    active: Vec<Range<u64>>,
}

/// Level of silence, in dB, used in place of `-inf`.
const MIN_DB: f64 = -140.0;

pub(crate) fn power_db(sum_sq: f64, n: usize) -> f64 {
    if n == 0 {
        return MIN_DB;
    }
    let p = sum_sq / n as f64;
    if p <= 1e-14 { MIN_DB } else { power_to_db(p).max(MIN_DB) }
}

pub(crate) fn percentile(values: &mut [f32], q: f64) -> f64 {
    if values.is_empty() {
        return MIN_DB;
    }
    let k = ((values.len() - 1) as f64 * q).round() as usize;
    let (_, v, _) = values.select_nth_unstable_by(k, f32::total_cmp);
    f64::from(*v)
}

/// Sum of squares over all channels of frames `range` (eight independent lanes, so the loop
/// vectorizes instead of waiting on one accumulator).
fn sum_sq(planes: &[Vec<f32>], range: Range<usize>) -> f64 {
    let mut acc = 0.0f64;
    for ch in planes {
        let x = &ch[range.clone()];
        let mut lanes = [0.0f32; 8];
        let chunks = x.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for (l, v) in lanes.iter_mut().zip(c) {
                *l += v * v;
            }
        }
        let mut a: f32 = lanes.iter().sum();
        for v in rest {
            a += v * v;
        }
        acc += f64::from(a);
    }
    acc
}

/// Reads `src` through one cached block, so hop after hop and the short look-backs of edge
/// refinement read each frame about once.
struct Windows<'a> {
    src: &'a dyn FrameSource,
    /// How far before a missed range a new block starts (edge refinement looks back).
    back: usize,
    /// Frames read per miss.
    block: usize,
    start: usize,
    planes: Vec<Vec<f32>>,
    len: usize,
}

impl<'a> Windows<'a> {
    /// A reader of `block` frames per miss, starting `back` frames before the missed range
    /// (ranges must be at most `block - back` frames long).
    fn new(src: &'a dyn FrameSource, block: usize, back: usize) -> Self {
        debug_assert!(back < block);
        Self {
            src,
            back,
            block,
            start: 0,
            planes: vec![vec![0.0; block]; src.channel_count()],
            len: 0,
        }
    }

    /// From now on reads `block` frames per miss, `back` of them before the missed range.
    fn reshape(&mut self, block: usize, back: usize) {
        debug_assert!(back < block);
        for p in &mut self.planes {
            if p.len() < block {
                p.resize(block, 0.0);
            }
        }
        self.block = block;
        self.back = back;
    }

    /// Sum of squares over all channels of frames `r` (at most `block - back` frames long).
    fn sum_sq(&mut self, r: Range<usize>) -> f64 {
        if r.start < self.start || r.end > self.start + self.len {
            self.start = r.start.saturating_sub(self.back);
            let total = usize::try_from(self.src.frames()).unwrap_or(usize::MAX);
            self.len = self.block.min(total.saturating_sub(self.start));
            let mut outs: Vec<&mut [f32]> =
                self.planes.iter_mut().map(|p| &mut p[..self.len]).collect();
            self.src.read(self.start as u64, &mut outs);
        }
        sum_sq(&self.planes, r.start - self.start..r.end - self.start)
    }
}

impl ActivityMap {
    /// Analyzes `audio` (any channel count; power is averaged over channels).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `options` are out of range.
    pub fn analyze(audio: &dyn FrameSource, options: &ActivityOptions) -> Result<Self> {
        Self::analyze_cancellable(audio, options, &CancelToken::new())
    }

    /// [`ActivityMap::analyze`], checking `cancel` every few seconds of audio.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `options` are out of range; [`Error::Cancelled`].
    pub fn analyze_cancellable(
        audio: &dyn FrameSource,
        options: &ActivityOptions,
        cancel: &CancelToken,
    ) -> Result<Self> {
        options.validate()?;
        let rate = audio.sample_rate();
        let frames = usize::try_from(audio.frames())
            .map_err(|_| Error::invalid_input("audio", "too long to analyze"))?;
        let hop =
            ((u64::from(rate.get()) * u64::from(options.hop_ms) + 500) / 1000).max(1) as usize;
        let channels = audio.channel_count();
        let sub = ((rate.get() as usize).div_ceil(1000)).max(1);
        // The hops read the content once, in order: big blocks, nothing read twice.
        let mut win = Windows::new(audio, (1 << 16).max(4 * hop), 0);
        let n_hops = frames.div_ceil(hop);
        let mut levels_db = Vec::with_capacity(n_hops);
        for h in 0..n_hops {
            if h % 1000 == 0 {
                cancel.check()?;
            }
            let r = h * hop..((h + 1) * hop).min(frames);
            let n = r.len() * channels;
            levels_db.push(power_db(win.sum_sq(r), n) as f32);
        }
        let floor = options.floor_dbfs;
        let mut loud: Vec<f32> =
            levels_db.iter().copied().filter(|&d| f64::from(d) > floor).collect();
        let (speech, noise, threshold) = if loud.is_empty() {
            (MIN_DB, MIN_DB, floor)
        } else {
            let speech = percentile(&mut loud, 0.90);
            let mut all = levels_db.clone();
            let noise = percentile(&mut all, 0.05);
            let t = (speech - options.below_speech_db).max(noise + options.above_noise_db);
            (speech, noise, t.min(speech - 6.0).max(floor))
        };

        let edge_threshold = (noise + options.above_noise_db).max(floor).min(threshold);

        // Active hop runs, edges refined to 1 ms sub-windows, then extended by hysteresis.
        // Each edge reads only the frames around it (one small block, half of it before the
        // edge for the backward walks); the start is finished before the end is looked at.
        let edge_block = (4 * (2 * hop + sub)).max(2048);
        win.reshape(edge_block, edge_block / 2);
        let mut sub_db = |r: Range<usize>| {
            let n = r.len() * channels;
            power_db(win.sum_sq(r), n)
        };
        let max_extend = rate.get() as usize * 150 / 1000;
        let mut prev_end = 0usize;
        let min_len = u64::from(rate.get()) * u64::from(options.min_activity_ms) / 1000;
        let mut active = Vec::new();
        let mut h = 0;
        while h < n_hops {
            if f64::from(levels_db[h]) <= threshold {
                h += 1;
                continue;
            }
            let h0 = h;
            while h < n_hops && f64::from(levels_db[h]) > threshold {
                h += 1;
            }
            // Start: first loud sub-window in [hop before, first active hop].
            let lo = h0.saturating_sub(1) * hop;
            let hi = ((h0 + 1) * hop).min(frames);
            let mut start = h0 * hop;
            let mut p = lo;
            while p < hi {
                let q = (p + sub).min(hi);
                if sub_db(p..q) > threshold {
                    start = p;
                    break;
                }
                p = q;
            }
            // Hysteresis: extend while the previous/next sub-window stays above the edge
            // threshold, not past the previous run nor further than `max_extend`.
            let stop = start.saturating_sub(max_extend).max(prev_end);
            while start > stop {
                let p = start.saturating_sub(sub).max(stop);
                if sub_db(p..start) > edge_threshold {
                    start = p;
                } else {
                    break;
                }
            }
            // End: last loud sub-window in [last active hop, hop after].
            let lo = (h - 1) * hop;
            let hi = ((h + 1) * hop).min(frames);
            let mut end = (h * hop).min(frames);
            let mut q = hi;
            while q > lo {
                let p = q.saturating_sub(sub).max(lo);
                if sub_db(p..q) > threshold {
                    end = q;
                    break;
                }
                q = p;
            }
            // Hysteresis at the end, likewise.
            let stop = (end + max_extend).min(frames);
            while end < stop {
                let q = (end + sub).min(stop);
                if sub_db(end..q) > edge_threshold {
                    end = q;
                } else {
                    break;
                }
            }
            prev_end = end;
            // The extension may have reached into the next hops; skip them.
            h = h.max(end.div_ceil(hop));
            let (start, end) = (start as u64, (end as u64).max(start as u64));
            if end - start >= min_len.max(1) {
                match active.last_mut() {
                    Some(last @ Range { .. }) if start <= last.end => last.end = last.end.max(end),
                    _ => active.push(start..end),
                }
            }
        }
        Ok(Self {
            rate,
            frames: frames as u64,
            hop,
            levels_db,
            speech_level_db: speech,
            noise_floor_db: noise,
            threshold_db: threshold,
            active,
        })
    }

    /// Sample rate of the analyzed audio.
    pub fn sample_rate(&self) -> NonZeroU32 {
        self.rate
    }

    /// Length of the analyzed audio, in frames.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Hop length, in frames.
    pub fn hop_frames(&self) -> usize {
        self.hop
    }

    /// Level of every hop, in dBFS (power averaged over channels; −140 for digital silence).
    pub fn levels_db(&self) -> &[f32] {
        &self.levels_db
    }

    /// Estimated speech level (90th percentile of non-silent hops), in dBFS.
    pub fn speech_level_db(&self) -> f64 {
        self.speech_level_db
    }

    /// Estimated noise floor (5th percentile of all hops), in dBFS.
    pub fn noise_floor_db(&self) -> f64 {
        self.noise_floor_db
    }

    /// The silence threshold in use, in dBFS.
    pub fn threshold_db(&self) -> f64 {
        self.threshold_db
    }

    /// Active intervals, sorted and disjoint, in frames.
    pub fn active_intervals(&self) -> &[Range<u64>] {
        &self.active
    }

    /// Active intervals that intersect `range`, clipped to it.
    pub fn active_in(&self, range: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let first = self.active.partition_point(|a| a.end <= range.start);
        self.active[first..]
            .iter()
            .take_while(move |a| a.start < range.end)
            .map(move |a| a.start.max(range.start)..a.end.min(range.end))
    }

    /// True when no activity intersects `range`.
    pub fn is_silent(&self, range: Range<u64>) -> bool {
        self.active_in(range).next().is_none()
    }

    /// Silent runs (the complement of activity over the whole audio) at least `min_frames` long.
    pub fn silent_runs(&self, min_frames: u64) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        let mut pos = 0;
        for a in self.active.iter().chain(std::iter::once(&(self.frames..self.frames))) {
            if a.start > pos && a.start - pos >= min_frames.max(1) {
                out.push(pos..a.start);
            }
            pos = pos.max(a.end);
        }
        out
    }

    /// Speech intervals: activity with gaps shorter than `bridge_frames` bridged (ducking wants
    /// one dip per phrase, not per syllable).
    pub fn speech_intervals(&self, bridge_frames: u64) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        for a in &self.active {
            match out.last_mut() {
                Some(last) if a.start.saturating_sub(last.end) < bridge_frames => last.end = a.end,
                _ => out.push(a.clone()),
            }
        }
        out
    }

    /// Level of the hop holding `frame`, in dBFS (−140 past the end).
    pub fn level_db_at(&self, frame: u64) -> f64 {
        let h = usize::try_from(frame / self.hop as u64).unwrap_or(usize::MAX);
        self.levels_db.get(h).map_or(MIN_DB, |&d| f64::from(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    fn rate(r: u32) -> NonZeroU32 {
        NonZeroU32::new(r).unwrap()
    }

    #[test]
    fn bursts_are_found_to_the_millisecond() {
        let r = rate(44_100);
        // 300 ms bursts, 700 ms gaps, at odd offsets relative to the 10 ms hops.
        let burst = 13_237;
        let gap = 30_871;
        let s = synth::noise_bursts(3, 0.4, burst, gap, 44_100 * 6);
        let map = ActivityMap::analyze(&synth::mono(r, s), &ActivityOptions::default()).unwrap();
        let period = (burst + gap) as u64;
        let act = map.active_intervals();
        assert_eq!(act.len(), 6);
        for (i, a) in act.iter().enumerate() {
            let want = i as u64 * period..i as u64 * period + burst as u64;
            assert!(
                a.start.abs_diff(want.start) <= 44 && a.end.abs_diff(want.end) <= 44,
                "{a:?} vs {want:?}"
            );
        }
        assert!(map.is_silent(burst as u64 + 50..period - 50));
        assert!(!map.is_silent(burst as u64 - 500..burst as u64 + 500));
        assert!((map.speech_level_db() - synth::amp_to_db(0.4 / 3f64.sqrt())).abs() < 1.0);
    }

    /// A source that counts the frames read from it.
    struct Counted<'a>(&'a crate::AudioBuffer, AtomicU64);

    impl FrameSource for Counted<'_> {
        fn sample_rate(&self) -> NonZeroU32 {
            self.0.sample_rate()
        }
        fn channel_count(&self) -> usize {
            self.0.channel_count()
        }
        fn frames(&self) -> u64 {
            FrameSource::frames(self.0)
        }
        fn read(&self, start: u64, out: &mut [&mut [f32]]) {
            self.1.fetch_add(out.first().map_or(0, |o| o.len()) as u64, Relaxed);
            self.0.read(start, out);
        }
    }

    #[test]
    fn content_is_read_about_once() {
        // Speech-like turns with many edges: 2 minutes, bursts of 0.2-1.5 s.
        let r = rate(44_100);
        let speech = synth::mono(r, synth::speech_like(r, 7, -20.0, 44_100 * 120));
        let counted = Counted(&speech, AtomicU64::new(0));
        let map = ActivityMap::analyze(&counted, &ActivityOptions::default()).unwrap();
        let edges = 2 * map.active_intervals().len() as u64;
        assert!(edges > 100, "{edges} edges: the signal should have many");
        let read = counted.1.load(Relaxed);
        let frames = speech.frames() as u64;
        // One pass for the hop levels, then a few ms around each edge.
        assert!(read < frames + edges * 4096, "read {read} frames of {frames} for {edges} edges");
    }

    #[test]
    fn threshold_follows_the_noise_floor() {
        let r = rate(16_000);
        // 2 s of noise alone (-45 dBFS RMS), then speech-like at -20 dBFS over the same noise.
        let mut s = vec![0.0f32; 32_000];
        s.extend(synth::speech_like(r, 4, -20.0, 16_000 * 8));
        let noise = synth::white_noise(9, synth::db_to_amp(-45.0) * 3f64.sqrt(), s.len());
        for (x, n) in s.iter_mut().zip(noise) {
            *x += n;
        }
        let map = ActivityMap::analyze(&synth::mono(r, s), &ActivityOptions::default()).unwrap();
        assert!((map.noise_floor_db() + 45.0).abs() < 2.0, "{}", map.noise_floor_db());
        let t = map.threshold_db();
        assert!(t > -45.0 && t < -20.0, "{t}");
        assert!(map.is_silent(0..32_000), "noise alone is not activity");
        let active: u64 = map.active_in(32_000..160_000).map(|a| a.end - a.start).sum();
        assert!(active > 64_000, "speech is active: {active} of 128000 frames");
    }

    #[test]
    fn short_clicks_are_ignored_and_silence_is_silent() {
        let r = rate(16_000);
        let mut s = vec![0.0f32; 16_000];
        s[8_000] = 0.9;
        let map = ActivityMap::analyze(&synth::mono(r, s), &ActivityOptions::default()).unwrap();
        assert!(map.active_intervals().is_empty());
        assert_eq!(map.silent_runs(1), vec![0..16_000]);
        let map =
            ActivityMap::analyze(&synth::mono(r, vec![0.0; 100]), &ActivityOptions::default())
                .unwrap();
        assert_eq!(map.threshold_db(), -70.0);
        let empty =
            ActivityMap::analyze(&synth::mono(r, vec![]), &ActivityOptions::default()).unwrap();
        assert!(empty.silent_runs(1).is_empty());
        let bad = ActivityOptions { hop_ms: 0, ..ActivityOptions::default() };
        assert!(ActivityMap::analyze(&synth::mono(r, vec![0.0; 10]), &bad).is_err());
    }

    #[test]
    fn bridging_merges_short_gaps() {
        let r = rate(8_000);
        let s = synth::noise_bursts(1, 0.5, 800, 400, 8_000 * 3);
        let map = ActivityMap::analyze(&synth::mono(r, s), &ActivityOptions::default()).unwrap();
        assert_eq!(map.active_intervals().len(), 20);
        let merged = map.speech_intervals(800);
        assert_eq!(merged.len(), 1);
        assert!(merged[0].start <= 8 && merged[0].end >= 8_000 * 3 - 400 - 8);
    }
}
