//! Loudness targets: presets, explicit values, and the gain that reaches them.

use serde::{Deserialize, Serialize};

use super::limiter::LimiterOptions;
use crate::error::{Error, Result};

/// A named loudness target. Serialized in `snake_case`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Podcast, stereo: −16 LUFS, −1 dBTP (Apple Podcasts, most hosts).
    #[default]
    PodcastStereo,
    /// Podcast, mono: −19 LUFS, −1 dBTP.
    PodcastMono,
    /// AES TD1008 streaming/podcast recommendation: −18 LUFS, −1 dBTP.
    Aes,
    /// EBU R128 broadcast: −23 LUFS, −1 dBTP.
    EbuR128,
    /// ATSC A/85 (US broadcast): −24 LUFS, −2 dBTP.
    AtscA85,
    /// Music streaming (Spotify, YouTube): −14 LUFS, −1 dBTP.
    Streaming,
}

impl Preset {
    /// Integrated loudness target in LUFS.
    pub fn target_lufs(self) -> f64 {
        match self {
            Self::PodcastStereo => -16.0,
            Self::PodcastMono => -19.0,
            Self::Aes => -18.0,
            Self::EbuR128 => -23.0,
            Self::AtscA85 => -24.0,
            Self::Streaming => -14.0,
        }
    }

    /// True-peak ceiling in dBTP.
    pub fn ceiling_dbtp(self) -> f64 {
        match self {
            Self::AtscA85 => -2.0,
            _ => -1.0,
        }
    }
}

/// How the episode is mastered.
///
/// ```
/// use assembly_core::master::{MasterOptions, Preset};
///
/// let o: MasterOptions = serde_json::from_str(r#"{"preset": "ebu_r128"}"#).unwrap();
/// assert_eq!((o.target_lufs(), o.ceiling_dbtp()), (-23.0, -1.0));
/// let o: MasterOptions = serde_json::from_str(r#"{"target_lufs": -20.0}"#).unwrap();
/// assert_eq!((o.target_lufs(), o.ceiling_dbtp()), (-20.0, -1.0)); // preset's ceiling
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MasterOptions {
    /// The named target. Default: `"podcast_stereo"` (−16 LUFS, −1 dBTP).
    pub preset: Preset,
    /// Explicit integrated loudness target in LUFS, overriding the preset's; −70..=0.
    /// Default: `None`.
    pub target_lufs: Option<f64>,
    /// Explicit true-peak ceiling in dBTP, overriding the preset's; −60..=0. Default: `None`.
    pub ceiling_dbtp: Option<f64>,
    /// Limiter timing. Default: see [`LimiterOptions`].
    pub limiter: LimiterOptions,
    /// Largest gain the normaliser applies, in dB (quiet or silent input is raised at most
    /// this much). Default: `40.0`.
    pub max_gain_db: f64,
    /// When the limiter is predicted to cost more than this much loudness (LU), extra
    /// measuring passes through the limiter correct the gain. Default: `0.05`.
    pub limiter_loss_tolerance_lu: f64,
    /// Most extra measuring passes through the limiter. 0..=8. Default: `3`.
    pub max_correction_passes: u32,
}

impl Default for MasterOptions {
    fn default() -> Self {
        Self {
            preset: Preset::PodcastStereo,
            target_lufs: None,
            ceiling_dbtp: None,
            limiter: LimiterOptions::default(),
            max_gain_db: 40.0,
            limiter_loss_tolerance_lu: 0.05,
            max_correction_passes: 3,
        }
    }
}

impl MasterOptions {
    /// Options for a preset, everything else at its default.
    pub fn preset(preset: Preset) -> Self {
        Self { preset, ..Self::default() }
    }

    /// Options with an explicit target and ceiling.
    pub fn explicit(target_lufs: f64, ceiling_dbtp: f64) -> Self {
        Self { target_lufs: Some(target_lufs), ceiling_dbtp: Some(ceiling_dbtp), ..Self::default() }
    }

    /// The effective loudness target in LUFS.
    pub fn target_lufs(&self) -> f64 {
        self.target_lufs.unwrap_or_else(|| self.preset.target_lufs())
    }

    /// The effective true-peak ceiling in dBTP.
    pub fn ceiling_dbtp(&self) -> f64 {
        self.ceiling_dbtp.unwrap_or_else(|| self.preset.ceiling_dbtp())
    }

    /// Checks every value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the field (`"master.target_lufs"`, …).
    pub fn validate(&self) -> Result<()> {
        let t = self.target_lufs();
        if !t.is_finite() || !(-70.0..=0.0).contains(&t) {
            return Err(Error::invalid_input(
                "master.target_lufs",
                format!("must be in -70..=0 LUFS, got {t}"),
            ));
        }
        let c = self.ceiling_dbtp();
        if !c.is_finite() || !(-60.0..=0.0).contains(&c) {
            return Err(Error::invalid_input(
                "master.ceiling_dbtp",
                format!("must be in -60..=0 dBTP, got {c}"),
            ));
        }
        if !self.max_gain_db.is_finite() || !(0.0..=96.0).contains(&self.max_gain_db) {
            return Err(Error::invalid_input(
                "master.max_gain_db",
                format!("must be in 0..=96 dB, got {}", self.max_gain_db),
            ));
        }
        let tol = self.limiter_loss_tolerance_lu;
        if !tol.is_finite() || !(0.0..=10.0).contains(&tol) {
            return Err(Error::invalid_input(
                "master.limiter_loss_tolerance_lu",
                format!("must be in 0..=10 LU, got {tol}"),
            ));
        }
        if self.max_correction_passes > 8 {
            return Err(Error::invalid_input(
                "master.max_correction_passes",
                format!("must be at most 8, got {}", self.max_correction_passes),
            ));
        }
        self.limiter.validate()
    }

    /// The gain in dB that takes audio measured at `integrated_lufs` to the target, capped
    /// at ±`max_gain_db`. Silence (`-inf`) gets 0 dB: there is nothing to normalise.
    pub fn gain_to_target_db(&self, integrated_lufs: f64) -> f64 {
        gain_to_target_db(integrated_lufs, self.target_lufs(), self.max_gain_db)
    }
}

/// The gain in dB from `integrated_lufs` to `target_lufs`, capped at ±`max_gain_db`; 0 for
/// non-finite input (silence).
///
/// ```
/// assert_eq!(assembly_core::master::gain_to_target_db(-35.0, -16.0, 40.0), 19.0);
/// assert_eq!(assembly_core::master::gain_to_target_db(f64::NEG_INFINITY, -16.0, 40.0), 0.0);
/// ```
pub fn gain_to_target_db(integrated_lufs: f64, target_lufs: f64, max_gain_db: f64) -> f64 {
    if !integrated_lufs.is_finite() {
        return 0.0;
    }
    (target_lufs - integrated_lufs).clamp(-max_gain_db.abs(), max_gain_db.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_published_targets() {
        let t: Vec<(f64, f64)> = [
            Preset::PodcastStereo,
            Preset::PodcastMono,
            Preset::Aes,
            Preset::EbuR128,
            Preset::AtscA85,
            Preset::Streaming,
        ]
        .iter()
        .map(|p| (p.target_lufs(), p.ceiling_dbtp()))
        .collect();
        assert_eq!(
            t,
            [
                (-16.0, -1.0),
                (-19.0, -1.0),
                (-18.0, -1.0),
                (-23.0, -1.0),
                (-24.0, -2.0),
                (-14.0, -1.0)
            ]
        );
        assert_eq!(MasterOptions::default().target_lufs(), -16.0);
    }

    #[test]
    fn validation_and_gain() {
        assert!(MasterOptions::explicit(-16.0, 0.5).validate().is_err());
        let e = MasterOptions::explicit(f64::NAN, -1.0).validate().unwrap_err().to_string();
        assert!(e.contains("master.target_lufs"), "{e}");
        let mut o = MasterOptions::default();
        o.limiter.lookahead_ms = 0;
        assert!(o.validate().unwrap_err().to_string().contains("limiter.lookahead_ms"));
        assert_eq!(MasterOptions::default().gain_to_target_db(-70.0), 40.0);
        assert_eq!(MasterOptions::default().gain_to_target_db(-10.0), -6.0);
        assert!(serde_json::from_str::<MasterOptions>(r#"{"target":-16}"#).is_err());
    }
}
