//! Master stage: loudness targets (presets or explicit), the gain that reaches them, an
//! oversampled lookahead true-peak limiter, and the verify-after-encode loop.
//!
//! The two-pass render that uses these lives in [`crate::render`].

mod limiter;
mod preset;
mod verify;

pub(crate) use limiter::ceiling_target;

pub use limiter::{
    CeilingDip, LimiterOptions, LimiterStats, LimiterStream, SAFETY_MARGIN_DB, TruePeakLimiter,
    limit,
};
pub use preset::{MasterOptions, Preset, gain_to_target_db};
pub use verify::{
    CodecPrediction, EncodeMeasurement, EncodeRequest, ExcerptMeasurement, LocalRepair,
    VerifyAttempt, VerifyOptions, VerifyReport, verify_encoded, verify_encoded_from,
};
