//! Shared signal processing: a leaf module that every stage may use and that uses no stage.
//!
//! What lives here are small facts several stages need and that must agree to the bit
//! wherever they are used: decibel conversions, the BS.1770 meter ([`meter`]), the 4×
//! true-peak interpolator and scanner ([`true_peak`]), and the mixing helpers and ramps
//! ([`mix`]). A new DSP helper used by more than one stage goes here; one used by a single
//! stage stays in that stage. `tests/module_order.rs` enforces that nothing here imports a
//! stage.

pub(crate) mod meter;
pub(crate) mod mix;
pub(crate) mod true_peak;

/// Linear amplitude gain of `db` decibels: `10^(db / 20)`.
#[inline]
pub(crate) fn db_to_gain(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Decibels of a linear amplitude gain: `20 · log10(gain)` (`-inf` for 0).
#[inline]
pub(crate) fn gain_to_db(gain: f64) -> f64 {
    20.0 * gain.log10()
}

/// Power (energy) ratio of `db` decibels: `10^(db / 10)`.
#[inline]
pub(crate) fn db_to_power(db: f64) -> f64 {
    10f64.powf(db / 10.0)
}

/// Decibels of a power (energy) ratio: `10 · log10(power)` (`-inf` for 0).
#[inline]
pub(crate) fn power_to_db(power: f64) -> f64 {
    10.0 * power.log10()
}

/// Serde for decibel values that may be `-inf` (silence): written as `null`, read back as
/// `-inf`, so reports stay valid JSON.
pub(crate) mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a finite value as a number, anything else as `null`.
    pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
    }

    /// Reads a number, or `null` as `-inf`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decibels_round_trip_and_known_values() {
        assert_eq!(db_to_gain(0.0), 1.0);
        assert!((db_to_gain(-6.0) - 0.501_187_233_627_272_3).abs() < 1e-15);
        assert!((db_to_gain(20.0) - 10.0).abs() < 1e-12);
        assert!((db_to_power(10.0) - 10.0).abs() < 1e-12);
        assert!((db_to_power(-3.0) - 0.501_187_233_627_272_3).abs() < 1e-15);
        assert_eq!(gain_to_db(0.0), f64::NEG_INFINITY);
        assert_eq!(power_to_db(0.0), f64::NEG_INFINITY);
        for db in [-90.0, -23.5, -1.0, 0.0, 3.0, 12.0] {
            assert!((gain_to_db(db_to_gain(db)) - db).abs() < 1e-12, "{db}");
            assert!((power_to_db(db_to_power(db)) - db).abs() < 1e-12, "{db}");
        }
    }
}
