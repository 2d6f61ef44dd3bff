//! The 4× oversampled true-peak interpolator (BS.1770 Annex 2, as `ebur128` and the limiter's
//! detector use it), the one-shot [`true_peak_4x`] and the streaming [`TruePeakScanner`].
//!
//! A meter, not a stage: the loudness meter, the render passes and the limiter's detector all
//! read peaks through this module, so they agree to the bit.

use crate::buffer::max_abs;

/// Interpolator taps per phase (48 taps at 4×).
pub(crate) const TAPS: usize = 12;
/// Frames after `n` the interpolator reads to produce the points between `n` and `n + 1`.
pub(crate) const AHEAD: usize = TAPS / 2;
/// The 4× interpolation filter, phases 1..=3 (phase 0 is the sample itself), as
/// `coef[phase - 1][t]` applied to `x[n - 5 + t]` to give the point at `n + phase / 4`.
pub(crate) fn interpolator() -> [[f32; TAPS]; 3] {
    let n_taps = (TAPS * 4) as f64;
    let c = |j: usize| -> f64 {
        let jf = j as f64;
        let w = 0.5 * (1.0 - (std::f64::consts::TAU * jf / n_taps).cos());
        let m = jf - n_taps / 2.0;
        if m.abs() < 1e-9 {
            w
        } else {
            let a = m * std::f64::consts::PI / 4.0;
            w * a.sin() / a
        }
    };
    let mut out = [[0f32; TAPS]; 3];
    for (pi, phase) in out.iter_mut().enumerate() {
        for (t, coef) in phase.iter_mut().enumerate() {
            *coef = c(4 * (TAPS - 1 - t) + pi + 1) as f32;
        }
    }
    out
}

/// The interpolator's worst-case gain: no interpolated point exceeds this times the largest
/// magnitude among its taps.
pub(crate) fn interpolator_bound() -> f32 {
    interpolator().iter().map(|p| p.iter().map(|c| c.abs()).sum::<f32>()).fold(1.0f32, f32::max)
}

/// The largest of `peak` and the magnitudes of the three interpolated phases at the
/// `acc.len()` points whose taps lie in `x` (`x.len() == acc.len() + TAPS - 1`); `acc` is
/// scratch. Compiled for AVX2 too and chosen at run time (eight points per instruction; no
/// fused multiply-add, so the same bits either way).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn interpolated_peak(coef: &[[f32; TAPS]; 3], x: &[f32], acc: &mut [f32], peak: f32) -> f32 {
    interpolated_peak_body(coef, x, acc, peak)
}

/// The body of [`interpolated_peak`], inlined into each of its clones (and, in the tests, into
/// portable code, to check that the clones give the same bits).
#[inline(always)]
fn interpolated_peak_body(coef: &[[f32; TAPS]; 3], x: &[f32], acc: &mut [f32], peak: f32) -> f32 {
    let n = acc.len();
    let mut lanes = [peak; 8];
    for phase in coef {
        acc.fill(0.0);
        for (t, &c) in phase.iter().enumerate() {
            for (a, &s) in acc.iter_mut().zip(&x[t..t + n]) {
                *a += c * s;
            }
        }
        // Lane-parallel maximum, so it vectorizes too (the maximum is exact in any order).
        let chunks = acc.chunks_exact(8);
        for a in chunks.remainder() {
            lanes[0] = lanes[0].max(a.abs());
        }
        for c in chunks {
            for (l, a) in lanes.iter_mut().zip(c) {
                *l = l.max(a.abs());
            }
        }
    }
    lanes.iter().fold(peak, |m, &l| m.max(l))
}

/// Largest sample or 4× interpolated magnitude over all channels for the frames
/// `[AHEAD - 1, len - AHEAD)` of `planes` (the frames whose interpolation taps all lie
/// inside the slices), exactly as the limiter's detector and `ebur128` see them.
pub(crate) fn true_peak_4x(planes: &[&[f32]]) -> f32 {
    let coef = interpolator();
    let mut peak = 0.0f32;
    for x in planes {
        if x.len() < TAPS {
            peak = peak.max(max_abs(x));
            continue;
        }
        let n = x.len() + 1 - TAPS;
        peak = interpolated_peak(&coef, x, &mut vec![0.0f32; n], peak);
        peak = peak.max(max_abs(&x[AHEAD - 1..AHEAD - 1 + n]));
    }
    peak
}

/// A streaming 4× true-peak detector with the limiter's (and `ebur128`'s) interpolator.
///
/// Each channel keeps the last `TAPS - 1` samples, so a stream fed in blocks of any size reads
/// exactly as one buffer would (zeros before the first sample, as `ebur128` does). Blocks of
/// 256 points whose inputs cannot reach the peak found so far (their largest magnitude times
/// the interpolator's gain bound) are skipped: the result is exact, not an estimate.
#[derive(Debug, Clone)]
pub(crate) struct TruePeakScanner {
    coef: [[f32; TAPS]; 3],
    bound: f32,
    history: Vec<Vec<f32>>,
    scratch: Vec<f32>,
    acc: Vec<f32>,
    peak: f32,
}

impl TruePeakScanner {
    /// Points interpolated (or skipped) together.
    const SPAN: usize = 256;

    pub(crate) fn new(channels: usize) -> Self {
        Self {
            coef: interpolator(),
            bound: interpolator_bound() * 1.0001,
            history: vec![vec![0.0; TAPS - 1]; channels],
            scratch: Vec::new(),
            acc: vec![0.0; Self::SPAN],
            peak: 0.0,
        }
    }

    /// Largest sample or interpolated magnitude seen so far (linear).
    pub(crate) fn peak(&self) -> f32 {
        self.peak
    }

    /// Starts a new measurement that keeps the history (the next block still interpolates
    /// across the boundary) and counts only points above `floor`; returns the peak so far.
    /// With a `floor` the blocks that cannot exceed it are skipped, so scanning for points
    /// over a ceiling costs little where the audio stays under it.
    pub(crate) fn restart(&mut self, floor: f32) -> f32 {
        std::mem::replace(&mut self.peak, floor)
    }

    /// Feeds planar slices of equal length, one per channel.
    pub(crate) fn add(&mut self, planes: &[&[f32]]) {
        // In pieces, so the working copy stays small whatever the block's length.
        const PIECE: usize = 1 << 16;
        let n = planes.first().map_or(0, |p| p.len());
        let mut at = 0;
        while at < n {
            let end = (at + PIECE).min(n);
            let piece: Vec<&[f32]> = planes.iter().map(|p| &p[at..end.min(p.len())]).collect();
            self.add_piece(&piece);
            at = end;
        }
    }

    /// Takes the last samples of `planes` as the history the next block interpolates from,
    /// without measuring them: the state of a scanner that had been fed them.
    pub(crate) fn warm_up(&mut self, planes: &[&[f32]]) {
        for (x, hist) in planes.iter().zip(self.history.iter_mut()) {
            if x.len() >= TAPS - 1 {
                hist.clear();
                hist.extend_from_slice(&x[x.len() - (TAPS - 1)..]);
            } else {
                hist.drain(..x.len());
                hist.extend_from_slice(x);
            }
        }
    }

    /// Takes in a scanner fed the audio right after this one's: the peak is the larger of
    /// the two (the spans either skipped cannot exceed it), the history the later one's.
    pub(crate) fn append(&mut self, next: TruePeakScanner) {
        self.peak = self.peak.max(next.peak);
        self.history = next.history;
    }

    fn add_piece(&mut self, planes: &[&[f32]]) {
        for (x, hist) in planes.iter().zip(self.history.iter_mut()) {
            if x.is_empty() {
                continue;
            }
            self.scratch.clear();
            self.scratch.extend_from_slice(hist);
            self.scratch.extend_from_slice(x);
            let buf = &self.scratch;
            // Phase 0 (the samples themselves) first: it raises the bar for the skipping.
            self.peak = self.peak.max(max_abs(x));
            let n = buf.len() + 1 - TAPS;
            let mut start = 0;
            while start < n {
                let len = (n - start).min(Self::SPAN);
                let taps = &buf[start..start + len + TAPS - 1];
                let reach = max_abs(taps) * self.bound;
                if reach > self.peak {
                    self.peak =
                        interpolated_peak(&self.coef, taps, &mut self.acc[..len], self.peak);
                }
                start += len;
            }
            let keep = buf.len() - (TAPS - 1);
            hist.clear();
            hist.extend_from_slice(&buf[keep..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo test --release -p assembly-core --lib dsp::true_peak::tests::throughput -- --ignored
    /// --nocapture`: nanoseconds per sample of the 4× true peak at every point (mono speech,
    /// 4096-frame blocks, best of 5).
    #[test]
    #[ignore = "a speed measurement, not a check"]
    fn throughput() {
        let rate = std::num::NonZeroU32::new(44_100).unwrap();
        let x = crate::synth::speech_like(rate, 3, -20.0, 44_100 * 60);
        let mut best = f64::INFINITY;
        let mut peak = 0.0;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            for c in x.chunks(4096) {
                peak = true_peak_4x(&[c]).max(peak);
            }
            best = best.min(t.elapsed().as_secs_f64() / x.len() as f64 * 1e9);
        }
        println!("4x true peak, every point: {best:.2} ns/sample ({peak})");
    }

    /// The dispatched interpolation (the AVX2 clone on a CPU that has it) finds the bits of
    /// the same code compiled for the baseline instruction set.
    #[test]
    fn avx2_clone_gives_the_portable_bits() {
        let rate = std::num::NonZeroU32::new(44_100).unwrap();
        let x = crate::synth::speech_like(rate, 4, -3.0, 10_000);
        let coef = interpolator();
        for (start, n) in [(0, 9_000), (17, 256), (3, 1), (100, 4_001)] {
            let taps = &x[start..start + n + TAPS - 1];
            let (mut a1, mut a2) = (vec![0.0f32; n], vec![0.0f32; n]);
            let p1 = interpolated_peak(&coef, taps, &mut a1, 0.0);
            let p2 = interpolated_peak_body(&coef, taps, &mut a2, 0.0);
            assert_eq!(p1.to_bits(), p2.to_bits(), "{start}+{n}");
            assert!(p1 > 0.0);
        }
    }
}
