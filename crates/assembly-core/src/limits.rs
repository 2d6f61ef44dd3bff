//! Input limits, checked from headers before any large allocation.

use serde::{Deserialize, Serialize};

/// Caps on what an input may be. Every field is configurable; defaults suit a podcast service.
///
/// # Examples
///
/// ```
/// use assembly_core::Limits;
///
/// let strict = Limits { max_duration_s: 600.0, ..Limits::default() };
/// assert_eq!(strict.max_channels, 8);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest input accepted, in seconds. Default: `21600.0` (6 hours).
    pub max_duration_s: f64,
    /// Most channels accepted. Default: `8`.
    pub max_channels: u16,
    /// Highest sample rate accepted, in Hz. Default: `384000`.
    pub max_sample_rate: u32,
    /// Largest input file accepted, in bytes. Default: `4294967296` (4 GiB).
    pub max_file_bytes: u64,
    /// Largest decoded size of one input as `f32` samples, in bytes. Default: `6442450944` (6 GiB).
    pub max_decoded_bytes: u64,
    /// Corrupt packets skipped before decoding gives up. Default: `100`.
    pub max_corrupt_packets: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_duration_s: 6.0 * 3600.0,
            max_channels: 8,
            max_sample_rate: 384_000,
            max_file_bytes: 4 << 30,
            max_decoded_bytes: 6 << 30,
            max_corrupt_packets: 100,
        }
    }
}
