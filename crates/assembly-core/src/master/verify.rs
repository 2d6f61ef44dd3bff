//! Verify after encoding: decode what was written, measure it, and if the true peak is over
//! the ceiling or the loudness is off, tighten and render again (bounded).

use serde::{Deserialize, Serialize};

use super::limiter::CeilingDip;
use crate::analyze::loudness::Loudness;
use crate::error::{Error, Result};

/// Verify-loop settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyOptions {
    /// Most renders in total (the first one included). 1..=8. Default: `3`.
    pub max_attempts: u32,
    /// Largest accepted distance of the decoded integrated loudness from the target, LU.
    /// Default: `0.5`.
    pub loudness_tolerance_lu: f64,
    /// Extra tightening beyond the measured overshoot when the true peak is over, dB.
    /// Default: `0.1`.
    pub peak_step_db: f64,
    /// Predict the codec from excerpts before the first full encode (the Assembler's
    /// `predict::plan_for_codec`). `false` renders the first attempt at the goal itself and
    /// leaves any overshoot to the retries (for comparison). Default: `true`.
    pub predict_codec: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self { max_attempts: 3, loudness_tolerance_lu: 0.5, peak_step_db: 0.1, predict_codec: true }
    }
}

/// What one attempt is asked to render with.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodeRequest {
    /// Loudness target to master to, LUFS.
    pub target_lufs: f64,
    /// Limiter ceiling to master with, dBTP.
    pub ceiling_dbtp: f64,
}

/// What one attempt measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodeMeasurement {
    /// The rendered signal before encoding, when the caller metered it.
    pub rendered: Option<Loudness>,
    /// The encoded file, decoded and measured (integrated loudness, 4× true peak).
    pub decoded: Loudness,
    /// Set when this attempt repaired the previous one locally rather than rendering the
    /// whole programme to a new plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<LocalRepair>,
}

/// A local repair: the previous attempt was on target but its decoded true peak went over
/// the ceiling in a few places, so this attempt lowered the limiter's ceiling only around
/// those places ([`CeilingDip`]s, gain unchanged) and the encoder encoded again only its
/// chunks whose input changed, taking the others from the previous attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalRepair {
    /// Where the ceiling was lowered, and to what (all dips in effect, earlier repairs'
    /// included).
    pub ceiling_dips: Vec<CeilingDip>,
    /// Encoder chunks encoded for this attempt (`None` when the format is not encoded in
    /// chunks: then the whole file was encoded).
    pub chunks_encoded: Option<u32>,
    /// Encoder chunks taken unchanged from the previous attempt.
    pub chunks_reused: Option<u32>,
}

/// One render-encode-decode-measure round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyAttempt {
    /// What was asked for.
    pub request: EncodeRequest,
    /// What was measured.
    pub measured: EncodeMeasurement,
    /// Whether the decoded output met the goals.
    pub passed: bool,
}

/// One excerpt the codec prediction rendered, encoded and decoded.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExcerptMeasurement {
    /// Where the measured part starts on the episode timeline, ms.
    pub start_ms: u64,
    /// How long the measured part is, ms (the excerpt encoded around it is longer).
    pub duration_ms: u64,
    /// Chosen for its peak (`true`) or as typical programme (`false`).
    pub peak: bool,
    /// True peak of the rendered (limited) excerpt, dBTP.
    #[serde(with = "crate::dsp::finite_or_null")]
    pub rendered_true_peak_dbtp: f64,
    /// True peak of the same part after encoding and decoding, dBTP.
    #[serde(with = "crate::dsp::finite_or_null")]
    pub decoded_true_peak_dbtp: f64,
    /// Integrated loudness of the rendered part, LUFS (`null` when too quiet to gate).
    #[serde(default = "neg_inf", with = "crate::dsp::finite_or_null")]
    pub rendered_lufs: f64,
    /// Integrated loudness of the same part after encoding and decoding, LUFS.
    #[serde(default = "neg_inf", with = "crate::dsp::finite_or_null")]
    pub decoded_lufs: f64,
}

fn neg_inf() -> f64 {
    f64::NEG_INFINITY
}

/// How the codec's effect was predicted before the whole programme was encoded: excerpts
/// around the loudest moments were encoded and decoded with the output's exact settings, and
/// the limiter's ceiling lowered by the overshoot found, with the gain re-planned so the
/// loudness stays on target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodecPrediction {
    /// Rounds of excerpt encoding (each after lowering the ceiling).
    pub rounds: u32,
    /// The last round's excerpts.
    pub excerpts: Vec<ExcerptMeasurement>,
    /// The predicted true peak of the encoded programme, dBTP: the highest decoded peak of the
    /// last round's excerpts, or the highest rendered peak plus the expected overshoot
    /// (`codec_overshoot_db`), whichever is higher.
    #[serde(with = "crate::dsp::finite_or_null")]
    pub predicted_true_peak_dbtp: f64,
    /// The overshoot over the rendered peak the codec is expected to add somewhere in the
    /// programme, dB: the largest an excerpt showed or, when the excerpts sampled only part
    /// of the limited moments, the expected largest of all of them (see `docs/mastering.md`).
    pub codec_overshoot_db: f64,
    /// The loudness the codec adds (negative: takes), LU, from the excerpts' K-weighted
    /// energy decoded against rendered; the gain made up for it.
    #[serde(default)]
    pub loudness_shift_lu: f64,
    /// The ceiling the limiter was given for the full encode, dBTP.
    pub limiter_ceiling_dbtp: f64,
    /// The gain the full encode was rendered with, dB.
    pub gain_db: f64,
}

/// The verify loop's outcome. The attempt to keep is [`kept_attempt`](Self::kept_attempt):
/// the closest to the goals, not necessarily the last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyReport {
    /// The goal: target loudness, LUFS.
    pub target_lufs: f64,
    /// The goal: true-peak ceiling, dBTP.
    pub ceiling_dbtp: f64,
    /// Whether an attempt met both goals (then it is the last and the kept one).
    pub passed: bool,
    /// Index in `attempts` of the attempt closest to the goals (least dB over the ceiling
    /// plus LU outside the loudness tolerance; the earliest of equals): the one to keep.
    #[serde(default)]
    pub kept_attempt: usize,
    /// Every attempt, in order: each one full encode.
    pub attempts: Vec<VerifyAttempt>,
    /// The codec prediction made before the first attempt, when one was made.
    #[serde(default)]
    pub prediction: Option<CodecPrediction>,
}

/// Runs `encode_and_measure` (render at the requested target and ceiling, encode, decode the
/// written file, measure it) until the decoded output's true peak is at or below
/// `ceiling_dbtp` and its integrated loudness within `loudness_tolerance_lu` of
/// `target_lufs`, at most `max_attempts` times.
///
/// After a miss, the next attempt's ceiling is tightened by the true-peak overshoot plus
/// `peak_step_db`, and its target moved by the loudness error. Silence (no finite integrated
/// loudness) only has to meet the ceiling.
///
/// ```
/// use assembly_core::analyze::loudness::Loudness;
/// use assembly_core::master::{verify_encoded, EncodeMeasurement, VerifyOptions};
///
/// // A stand-in codec whose decoded peaks come out 0.4 dB over what was rendered.
/// let report = verify_encoded(-16.0, -1.0, &VerifyOptions::default(), |req| {
///     let decoded = Loudness { integrated_lufs: req.target_lufs - 0.05, range_lu: 3.0,
///         true_peak_dbtp: req.ceiling_dbtp + 0.4, sample_peak_dbfs: req.ceiling_dbtp };
///     Ok(EncodeMeasurement { rendered: None, decoded, repair: None })
/// }).unwrap();
/// assert!(report.passed);
/// assert_eq!(report.attempts.len(), 2);
/// assert!((report.attempts[1].request.ceiling_dbtp + 1.5).abs() < 1e-9);
/// ```
///
/// # Errors
///
/// [`Error::InvalidInput`] for out-of-range options or goals; any error of
/// `encode_and_measure`.
pub fn verify_encoded(
    target_lufs: f64,
    ceiling_dbtp: f64,
    options: &VerifyOptions,
    encode_and_measure: impl FnMut(&EncodeRequest) -> Result<EncodeMeasurement>,
) -> Result<VerifyReport> {
    verify_encoded_from(target_lufs, ceiling_dbtp, None, options, encode_and_measure)
}

/// [`verify_encoded`] whose first attempt renders with `first` (a prediction of what lands
/// on the goal) instead of the goal itself; later attempts correct from there.
///
/// # Errors
///
/// As [`verify_encoded`].
pub fn verify_encoded_from(
    target_lufs: f64,
    ceiling_dbtp: f64,
    first: Option<EncodeRequest>,
    options: &VerifyOptions,
    mut encode_and_measure: impl FnMut(&EncodeRequest) -> Result<EncodeMeasurement>,
) -> Result<VerifyReport> {
    if !(1..=8).contains(&options.max_attempts) {
        return Err(Error::invalid_input(
            "verify.max_attempts",
            format!("must be in 1..=8, got {}", options.max_attempts),
        ));
    }
    let tol = options.loudness_tolerance_lu;
    if !tol.is_finite() || !(0.0..=10.0).contains(&tol) {
        return Err(Error::invalid_input(
            "verify.loudness_tolerance_lu",
            format!("must be in 0..=10 LU, got {tol}"),
        ));
    }
    let step = options.peak_step_db;
    if !step.is_finite() || !(0.0..=6.0).contains(&step) {
        return Err(Error::invalid_input(
            "verify.peak_step_db",
            format!("must be in 0..=6 dB, got {step}"),
        ));
    }
    if !target_lufs.is_finite() || !ceiling_dbtp.is_finite() {
        return Err(Error::invalid_input("verify", "target and ceiling must be finite"));
    }
    // Tightening never goes below this: a ceiling 12 dB under the goal means something else
    // is wrong, and more attempts will not fix it.
    let floor = (ceiling_dbtp - 12.0).max(-60.0);
    let mut report = VerifyReport {
        target_lufs,
        ceiling_dbtp,
        passed: false,
        attempts: Vec::new(),
        prediction: None,
        kept_attempt: 0,
    };
    let mut best = f64::INFINITY;
    let mut request = first.unwrap_or(EncodeRequest { target_lufs, ceiling_dbtp });
    for _ in 0..options.max_attempts {
        let measured = encode_and_measure(&request)?;
        let d = measured.decoded;
        let over = d.true_peak_dbtp - ceiling_dbtp;
        let off = d.integrated_lufs - target_lufs;
        // NaN or -inf peaks (silence) count as fine.
        let peak_ok = over.is_nan() || over <= 0.0;
        let loud_ok = !d.integrated_lufs.is_finite() || off.abs() <= tol;
        let passed = peak_ok && loud_ok;
        let miss = if peak_ok { 0.0 } else { over } + if loud_ok { 0.0 } else { off.abs() - tol };
        if miss < best {
            best = miss;
            report.kept_attempt = report.attempts.len();
        }
        report.attempts.push(VerifyAttempt { request, measured, passed });
        if passed {
            report.passed = true;
            break;
        }
        if !peak_ok {
            request.ceiling_dbtp = (request.ceiling_dbtp - over - step).max(floor);
        }
        if !loud_ok {
            request.target_lufs = (request.target_lufs - off).clamp(-70.0, 0.0);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loud(i: f64, tp: f64) -> Loudness {
        Loudness { integrated_lufs: i, range_lu: 5.0, true_peak_dbtp: tp, sample_peak_dbfs: tp }
    }

    #[test]
    fn the_closest_attempt_is_kept_not_the_last() {
        // Decoded results of three attempts that all miss: 0.3 dB over; 0.1 LU outside the
        // tolerance; 0.5 dB over. The second is the closest.
        let results = [loud(-16.0, -0.7), loud(-16.6, -1.2), loud(-16.0, -0.5)];
        let mut k = 0;
        let first = EncodeRequest { target_lufs: -16.0, ceiling_dbtp: -2.5 };
        let opts = VerifyOptions { max_attempts: 3, ..VerifyOptions::default() };
        let report = verify_encoded_from(-16.0, -1.0, Some(first), &opts, |req| {
            if k == 0 {
                assert_eq!(*req, first);
            }
            k += 1;
            Ok(EncodeMeasurement { rendered: None, decoded: results[k - 1], repair: None })
        })
        .unwrap();
        assert_eq!(report.attempts.len(), 3);
        assert!(!report.passed);
        assert_eq!(report.kept_attempt, 1);
    }

    #[test]
    fn loudness_miss_moves_the_target() {
        // The codec loses 0.8 LU: the second attempt aims 0.8 LU higher and passes.
        let r = verify_encoded(-16.0, -1.0, &VerifyOptions::default(), |req| {
            Ok(EncodeMeasurement {
                rendered: Some(loud(req.target_lufs, req.ceiling_dbtp)),
                decoded: loud(req.target_lufs - 0.8, req.ceiling_dbtp - 0.3),
                repair: None,
            })
        })
        .unwrap();
        assert!(r.passed);
        let t: Vec<f64> = r.attempts.iter().map(|a| a.request.target_lufs).collect();
        assert_eq!(t.len(), 2);
        assert!((t[1] + 15.2).abs() < 1e-9, "{t:?}");
        assert_eq!(r.attempts[1].request.ceiling_dbtp, -1.0);
    }

    #[test]
    fn gives_up_after_the_bounded_number_of_attempts() {
        // A codec whose overshoot grows faster than the tightening: never passes.
        let mut calls = 0;
        let r = verify_encoded(-16.0, -1.0, &VerifyOptions::default(), |req| {
            calls += 1;
            Ok(EncodeMeasurement {
                rendered: None,
                decoded: loud(-16.0, req.ceiling_dbtp + 2.0 * f64::from(calls)),
                repair: None,
            })
        })
        .unwrap();
        assert!(!r.passed);
        assert_eq!(calls, 3);
        assert_eq!(r.attempts.len(), 3);
        let c: Vec<f64> = r.attempts.iter().map(|a| a.request.ceiling_dbtp).collect();
        // Each step tightens by the decoded overshoot over the goal (2.0, then 1.9) + 0.1.
        assert!((c[1] + 3.1).abs() < 1e-9 && (c[2] + 5.1).abs() < 1e-9, "{c:?}");
    }

    #[test]
    fn errors_propagate_and_silence_passes() {
        let e = verify_encoded(-16.0, -1.0, &VerifyOptions::default(), |_| {
            Err(Error::encode("/out/e.mp3", "lame failed"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("lame failed"));
        let r = verify_encoded(-16.0, -1.0, &VerifyOptions::default(), |_| {
            Ok(EncodeMeasurement {
                rendered: None,
                decoded: loud(f64::NEG_INFINITY, f64::NEG_INFINITY),
                repair: None,
            })
        })
        .unwrap();
        assert!(r.passed && r.attempts.len() == 1);
        let bad = VerifyOptions { max_attempts: 0, ..VerifyOptions::default() };
        assert!(verify_encoded(-16.0, -1.0, &bad, |_| unreachable!()).is_err());
    }
}
