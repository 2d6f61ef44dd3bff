//! The ducking envelope: how far a music bed dips at each frame, keyed by speech activity.

use std::num::NonZeroU32;
use std::ops::Range;

use super::template::DuckingOptions;
use crate::dsp::db_to_gain;
use crate::dsp::mix::raised_cosine;
use crate::error::{Error, Result};

/// Gain over time for a ducked bed, from speech intervals on the episode timeline.
///
/// Speech runs closer than `hold_ms` are merged. For each run `[s, e)` the dip amount ramps
/// from 0 to 1 over `[s - lookahead - attack, s - lookahead)` (raised cosine), is 1 over
/// `[s - lookahead, e)` and ramps back to 0 over `[e, e + release)`; overlapping ramps take
/// the deeper dip. The gain is `-depth_db × amount` dB.
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::arrange::{DuckingEnvelope, DuckingOptions};
///
/// let rate = NonZeroU32::new(1000).unwrap(); // 1 frame = 1 ms, for readability
/// let opts = DuckingOptions { depth_db: 12.0, attack_ms: 100, release_ms: 300,
///     lookahead_ms: 50, hold_ms: 1000, enabled: true };
/// // Two words 500 ms apart (bridged by the hold), then one 3 s later.
/// let env = DuckingEnvelope::new(&opts, rate, &[2000..2400, 2900..3500, 6600..7000]).unwrap();
/// assert_eq!(env.runs(), &[2000..3500, 6600..7000]);
/// assert_eq!(env.gain_db_at(1800), 0.0);    // before the dip
/// assert_eq!(env.gain_db_at(1950), -12.0);  // fully down 50 ms before the first word
/// assert_eq!(env.gain_db_at(2600), -12.0);  // held through the short gap
/// assert_eq!(env.gain_db_at(3800), 0.0);    // back to full 300 ms after the last word
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DuckingEnvelope {
    runs: Vec<Range<u64>>,
    depth_db: f64,
    depth_lin: f32,
    attack: u64,
    release: u64,
    lookahead: u64,
    /// Linear gain at each frame of the downward ramp.
    attack_gain: Vec<f32>,
    /// Linear gain at each frame of the recovery ramp.
    release_gain: Vec<f32>,
}

impl DuckingEnvelope {
    /// Builds the envelope for `speech` (frame ranges at `rate`, any order, may overlap).
    /// Disabled ducking or a zero depth gives a flat 0 dB envelope.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `speech[i]` if a range ends before it starts, or the
    /// ducking field if an option is out of range.
    pub fn new(opts: &DuckingOptions, rate: NonZeroU32, speech: &[Range<u64>]) -> Result<Self> {
        if !opts.depth_db.is_finite() || !(0.0..=96.0).contains(&opts.depth_db) {
            return Err(Error::invalid_input(
                "ducking.depth_db",
                format!("must be in 0..=96 dB, got {}", opts.depth_db),
            ));
        }
        for (name, v) in [
            ("attack_ms", opts.attack_ms),
            ("release_ms", opts.release_ms),
            ("lookahead_ms", opts.lookahead_ms),
            ("hold_ms", opts.hold_ms),
        ] {
            if v > 60_000 {
                return Err(Error::invalid_input(
                    format!("ducking.{name}"),
                    format!("must be at most 60000 ms, got {v}"),
                ));
            }
        }
        let ms = |v: u32| crate::ms_to_frames(u64::from(v), rate);
        let mut env = Self {
            runs: Vec::new(),
            depth_db: opts.depth_db,
            depth_lin: db_to_gain(-opts.depth_db) as f32,
            attack: ms(opts.attack_ms),
            release: ms(opts.release_ms),
            lookahead: ms(opts.lookahead_ms),
            attack_gain: Vec::new(),
            release_gain: Vec::new(),
        };
        if let Some((i, r)) = speech.iter().enumerate().find(|(_, r)| r.end < r.start) {
            return Err(Error::invalid_input(
                format!("speech[{i}]"),
                format!("ends ({}) before it starts ({})", r.end, r.start),
            ));
        }
        if !opts.enabled || opts.depth_db == 0.0 {
            return Ok(env);
        }
        let depth = opts.depth_db;
        let lin = |amount: f64| db_to_gain(-depth * amount) as f32;
        env.attack_gain =
            (0..env.attack).map(|i| lin(raised_cosine(i as f64 / env.attack as f64))).collect();
        env.release_gain = (0..env.release)
            .map(|i| lin(1.0 - raised_cosine(i as f64 / env.release as f64)))
            .collect();
        let hold = ms(opts.hold_ms);
        let mut sorted: Vec<Range<u64>> =
            speech.iter().filter(|r| r.end > r.start).cloned().collect();
        sorted.sort_unstable_by_key(|r| (r.start, r.end));
        for r in sorted {
            match env.runs.last_mut() {
                Some(last) if r.start < last.end.saturating_add(hold) => {
                    last.end = last.end.max(r.end);
                }
                _ => env.runs.push(r),
            }
        }
        Ok(env)
    }

    /// The merged speech runs the envelope dips for.
    pub fn runs(&self) -> &[Range<u64>] {
        &self.runs
    }

    /// Dip amount of one run at `t` (0 = none, 1 = full depth).
    fn amount(&self, run: &Range<u64>, t: u64) -> f64 {
        let down_end = run.start.saturating_sub(self.lookahead);
        let down_start = run.start as i128 - self.lookahead as i128 - self.attack as i128;
        if t < down_end {
            let into = t as i128 - down_start;
            if into < 0 || self.attack == 0 {
                return 0.0;
            }
            return raised_cosine(into as f64 / self.attack as f64);
        }
        if t < run.end {
            return 1.0;
        }
        let after = t - run.end;
        if after >= self.release {
            return 0.0;
        }
        1.0 - raised_cosine(after as f64 / self.release as f64)
    }

    /// Index of the first run that can influence frame `t` or later.
    fn first_run_from(&self, t: u64) -> usize {
        self.runs.partition_point(|r| r.end.saturating_add(self.release) <= t)
    }

    /// The envelope's gain at frame `t`, in dB (0 or negative).
    pub fn gain_db_at(&self, t: u64) -> f64 {
        let mut a = 0.0f64;
        for run in &self.runs[self.first_run_from(t)..] {
            if (run.start as i128 - self.lookahead as i128 - self.attack as i128) > t as i128 {
                break;
            }
            a = a.max(self.amount(run, t));
        }
        if a == 0.0 { 0.0 } else { -self.depth_db * a }
    }

    /// Writes the linear gain for frames `start..start + out.len()` into `out`.
    pub fn fill_linear(&self, start: u64, out: &mut [f32]) {
        out.fill(1.0);
        if self.runs.is_empty() {
            return;
        }
        let end = start + out.len() as u64;
        let lead = self.lookahead + self.attack;
        let mut apply = |from: u64, to: u64, gain: &dyn Fn(u64) -> f32| {
            for t in from.max(start)..to.min(end) {
                let o = &mut out[(t - start) as usize];
                *o = o.min(gain(t));
            }
        };
        for run in &self.runs[self.first_run_from(start)..] {
            if run.start.saturating_sub(lead) >= end {
                break;
            }
            // Downward ramp: ramp frame i is at run.start - lead + i (may begin before 0).
            let ramp0 = run.start as i128 - lead as i128;
            let down_end = run.start.saturating_sub(self.lookahead);
            apply(ramp0.max(0) as u64, down_end, &|t| {
                self.attack_gain[(t as i128 - ramp0) as usize]
            });
            apply(down_end, run.end, &|_| self.depth_lin);
            let rel_end = run.end.saturating_add(self.release);
            apply(run.end, rel_end, &|t| self.release_gain[(t - run.end) as usize]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: NonZeroU32 = NonZeroU32::new(48_000).unwrap();

    #[test]
    fn block_fill_matches_the_pointwise_gain() {
        let opts = DuckingOptions::default();
        let speech = [48_000..60_000, 70_000..90_000, 200_000..201_000, 0..10];
        let env = DuckingEnvelope::new(&opts, R, &speech).unwrap();
        let mut buf = vec![0.0f32; 300_000];
        for (i, chunk) in buf.chunks_mut(4_097).enumerate() {
            env.fill_linear(i as u64 * 4_097, chunk);
        }
        for t in (0..300_000).step_by(97) {
            let want = 10f64.powf(env.gain_db_at(t) / 20.0);
            assert!((f64::from(buf[t as usize]) - want).abs() < 1e-6, "frame {t}");
        }
        // 0..10 and 48_000.. are 47_990 frames apart (< 1 s hold): bridged, like 60_000..70_000.
        assert_eq!(env.runs(), &[0..90_000, 200_000..201_000]);
    }

    #[test]
    fn disabled_or_zero_depth_is_flat_and_bad_ranges_are_errors() {
        let off = DuckingOptions { enabled: false, ..DuckingOptions::default() };
        let speech = vec![0..50_000, 50_000..100_000];
        let env = DuckingEnvelope::new(&off, R, &speech).unwrap();
        assert_eq!(env.gain_db_at(50_000), 0.0);
        #[allow(clippy::reversed_empty_ranges)]
        let e = DuckingEnvelope::new(&DuckingOptions::default(), R, &[10..20, 30..5]).unwrap_err();
        assert!(e.to_string().contains("speech[1]"), "{e}");
    }
}
