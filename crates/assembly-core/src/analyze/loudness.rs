//! Loudness per ITU-R BS.1770 / EBU R128: integrated, range, true and sample peak.
//!
//! Our own meter (K-weighting, gating and range as `ebur128` computes them, in a tighter loop,
//! and a 4× true-peak scanner that skips blocks which cannot reach the peak found so far);
//! the tests hold it to `ebur128` itself.

use std::num::NonZeroU32;
use std::ops::Range;

#[cfg(test)]
pub(crate) use crate::dsp::meter::reference;
pub use crate::dsp::meter::{Loudness, LoudnessMeter};
use crate::dsp::meter::{WARM_UP_S, sub_block_frames};
use crate::error::{Error, Result};
use crate::source::for_each_block_in;
use crate::{AudioBuffer, CancelToken, FrameSource};

/// Measures a whole buffer, true peak included.
///
/// # Errors
///
/// [`Error::InvalidInput`] if the buffer's rate or channel count cannot be metered.
pub fn measure(buffer: &AudioBuffer) -> Result<Loudness> {
    let mut m = LoudnessMeter::new(buffer.channel_count(), buffer.sample_rate().get(), true)?;
    m.add(buffer)?;
    m.finish()
}

/// Measures any [`FrameSource`] (true peak included), reading it block by block, so memory
/// stays one block whatever its length. Sources of 20 s or more are metered in two halves
/// on two threads when the machine has two cores; the result equals the sequential
/// measurement up to rounding (peaks exactly).
///
/// # Errors
///
/// [`Error::InvalidInput`] if its rate or channel count cannot be metered;
/// [`Error::Cancelled`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{CancelToken, CompactAudio, analyze::loudness, synth};
///
/// let rate = NonZeroU32::new(48_000).unwrap();
/// let talk = synth::mono(rate, synth::speech_like(rate, 5, -23.0, 48_000 * 8));
/// let compact = CompactAudio::from_buffer(&talk, 16).unwrap();
/// let a = loudness::measure(&talk).unwrap();
/// let b = loudness::measure_source(&compact, &CancelToken::new()).unwrap();
/// assert!((a.integrated_lufs - b.integrated_lufs).abs() < 0.001);
/// ```
pub fn measure_source(src: &dyn FrameSource, cancel: &CancelToken) -> Result<Loudness> {
    measure_source_threads(src, cancel, crate::par::threads())
}

fn measure_source_threads(
    src: &dyn FrameSource,
    cancel: &CancelToken,
    threads: usize,
) -> Result<Loudness> {
    let ch = src.channel_count();
    let rate = src.sample_rate();
    let make = || LoudnessMeter::new(ch, rate.get(), true);
    let read = |range: Range<u64>, f: &mut dyn FnMut(&[&[f32]]) -> Result<()>| {
        for_each_block_in(src, range, 1 << 16, cancel, &mut |_| {}, f)
    };
    meter_halves(src.frames(), rate, threads, &make, &read)?.finish()
}

/// Feeds a range of frames, block by block, to a sink of planar blocks.
pub(crate) type ReadRange<'a> =
    dyn Fn(Range<u64>, &mut dyn FnMut(&[&[f32]]) -> Result<()>) -> Result<()> + Sync + 'a;

/// Meters frames `0..total` that `read(range, sink)` feeds block by block into `sink`, with
/// meters from `make`. With two or more `threads` and at least 20 s, the range is cut in two
/// on a 100 ms sub-block boundary and the halves are metered at once, the second half's
/// meter first warmed up on the second before the cut; the result equals the sequential
/// measurement up to rounding in the filters (true and sample peak exactly).
pub(crate) fn meter_halves(
    total: u64,
    rate: NonZeroU32,
    threads: usize,
    make: &(dyn Fn() -> Result<LoudnessMeter> + Sync),
    read: &ReadRange<'_>,
) -> Result<LoudnessMeter> {
    let r = u64::from(rate.get());
    let meter_over = |range: Range<u64>| {
        let mut m = make()?;
        if range.start > 0 {
            let from = range.start.saturating_sub(r * WARM_UP_S);
            read(from..range.start, &mut |p| {
                m.warm_up(p);
                Ok(())
            })?;
        }
        read(range, &mut |p| m.add_planar(p))?;
        Ok::<_, Error>(m)
    };
    match crate::par::cut(total, sub_block_frames(rate), 20 * r, threads) {
        Some(cut) => {
            let (first, second) =
                crate::par::join(|| meter_over(0..cut), || meter_over(cut..total));
            let mut m = first?;
            m.append(second?);
            Ok(m)
        }
        None => meter_over(0..total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program metered in two halves on two threads measures what the sequential meter
    /// does: loudness and range up to rounding, sample and true peak exactly, also when the
    /// true peak lies between two samples straddling the cut (the second half's scanner
    /// must start from the samples before it).
    #[test]
    fn two_halves_measure_what_one_pass_does() {
        let (r, n) = (R48, 48_000 * 61 + 123);
        let cut = crate::par::cut(n as u64, 4_800, 20 * 48_000, 2).unwrap() as usize;
        let mut l = synth::speech_like(r, 4, -20.0, n);
        let m = synth::music_like(r, 5, -26.0, n);
        // A quarter-rate burst at 45 degrees phase across the cut: its samples reach 0.64,
        // its true peak 0.9, above everything else.
        for (i, x) in l[cut - 6..cut + 6].iter_mut().enumerate() {
            *x = 0.9 * (std::f64::consts::FRAC_PI_2 * i as f64 + 0.785).sin() as f32;
        }
        let program = AudioBuffer::from_planar(r, vec![l, m]).unwrap();
        let c = CancelToken::new();
        let one = measure_source_threads(&program, &c, 1).unwrap();
        let two = measure_source_threads(&program, &c, 2).unwrap();
        assert!((one.integrated_lufs - two.integrated_lufs).abs() < 1e-9, "{one:?} {two:?}");
        assert!((one.range_lu - two.range_lu).abs() < 1e-9, "{one:?} {two:?}");
        assert_eq!(one.sample_peak_dbfs, two.sample_peak_dbfs);
        assert_eq!(one.true_peak_dbtp, two.true_peak_dbtp);
        assert!(one.true_peak_dbtp > one.sample_peak_dbfs + 2.0, "{one:?}");
        assert!((one.integrated_lufs - reference(&program).integrated_lufs).abs() < 1e-3);
    }

    /// Mono metered once with a doubled weight is bit-identical to metering it duplicated
    /// into two channels (what leveling a mono segment for a stereo mix does).
    #[test]
    fn mono_as_two_copies_is_bit_identical_to_duplicating_it() {
        for (seed, level) in [(1u64, -20.0), (2, -45.0), (3, -75.0)] {
            let r = R48;
            let mono = synth::speech_like(r, seed, level, 48_000 * 12 + 77);
            let mut dup = LoudnessMeter::new(2, 48_000, false).unwrap();
            let mut once = LoudnessMeter::mono_as_copies(48_000, 2).unwrap();
            for chunk in mono.chunks(10_000) {
                dup.add_planar(&[chunk, chunk]).unwrap();
                once.add_planar(&[chunk]).unwrap();
            }
            let (a, b) = (dup.finish().unwrap(), once.finish().unwrap());
            assert_eq!(a.integrated_lufs.to_bits(), b.integrated_lufs.to_bits(), "{level}");
            assert_eq!(a.range_lu.to_bits(), b.range_lu.to_bits(), "{level}");
            assert_eq!(a.sample_peak_dbfs, b.sample_peak_dbfs);
        }
        assert!(LoudnessMeter::mono_as_copies(48_000, 3).is_err());
    }
    use crate::synth;

    // Speech, music, noise, tones and silence, mono to 6 channels, fed in blocks of several
    // sizes: our meter reads what ebur128 reads (integrated within 0.001 LU, range within
    // 0.05 LU, sample peak exactly, true peak within 0.001 dB).
    #[test]
    fn agrees_with_ebur128() {
        let mut cases: Vec<AudioBuffer> = Vec::new();
        for r in [48_000u32, 44_100, 22_050].map(|r| NonZeroU32::new(r).unwrap()) {
            let n = r.get() as usize * 20;
            let mut speech = synth::speech_like(r, 3, -30.0, n);
            speech[n / 3..n / 2].fill(0.0);
            cases.push(synth::mono(r, speech.clone()));
            let music = synth::music_like(r, 4, -8.0, n);
            cases.push(AudioBuffer::from_planar(r, vec![speech, music]).unwrap());
            cases.push(synth::multi(r, synth::white_noise(6, 0.7, n), 6));
            cases.push(synth::mono(r, synth::chirp(r, 100.0, 15_000.0, 0.9, n)));
        }
        cases.push(AudioBuffer::silence(R48, 2, 48_000 * 5).unwrap());
        for (k, b) in cases.iter().enumerate() {
            let want = reference(b);
            for block in [333, 4096, 1 << 20] {
                let mut m =
                    LoudnessMeter::new(b.channel_count(), b.sample_rate().get(), true).unwrap();
                let mut i = 0;
                while i < b.frames() {
                    let e = (i + block).min(b.frames());
                    let planes: Vec<&[f32]> = b.planes().iter().map(|p| &p[i..e]).collect();
                    m.add_planar(&planes).unwrap();
                    i = e;
                }
                let got = m.finish().unwrap();
                let close = |a: f64, b: f64, tol: f64| {
                    (a == b) || (a.is_finite() && b.is_finite() && (a - b).abs() <= tol)
                };
                assert!(
                    close(got.integrated_lufs, want.integrated_lufs, 0.001),
                    "{k}: {got:?} {want:?}"
                );
                assert!(close(got.range_lu, want.range_lu, 0.05), "{k}: {got:?} {want:?}");
                assert_eq!(got.sample_peak_dbfs, want.sample_peak_dbfs, "{k}");
                assert!(
                    close(got.true_peak_dbtp, want.true_peak_dbtp, 0.001),
                    "{k}: {got:?} {want:?}"
                );
            }
        }
    }

    const R48: NonZeroU32 = NonZeroU32::new(48_000).unwrap();

    fn stereo_sine_db(db: f64, secs: usize) -> AudioBuffer {
        synth::multi(R48, synth::sine(R48, 1000.0, synth::db_to_amp(db), 48_000 * secs), 2)
    }

    // EBU Tech 3341 cases 1 and 2: 1 kHz stereo sine at -23 / -33 dBFS reads -23 / -33 LUFS.
    #[test]
    fn tech_3341_cases_1_and_2() {
        for db in [-23.0, -33.0] {
            let l = measure(&stereo_sine_db(db, 20)).unwrap();
            assert!((l.integrated_lufs - db).abs() <= 0.1, "{db}: {l:?}");
            assert!((l.sample_peak_dbfs - db).abs() < 0.01, "{l:?}");
            assert!(l.true_peak_dbtp >= l.sample_peak_dbfs - 0.01);
        }
    }

    // EBU Tech 3341 case 3: -36, -23, -36 dBFS (10, 60, 10 s) reads -23 LUFS thanks to gating.
    #[test]
    fn tech_3341_case_3_relative_gate() {
        let mut b = stereo_sine_db(-36.0, 10);
        b.append(&stereo_sine_db(-23.0, 60)).unwrap();
        b.append(&stereo_sine_db(-36.0, 10)).unwrap();
        let l = measure(&b).unwrap();
        assert!((l.integrated_lufs + 23.0).abs() <= 0.1, "{l:?}");
    }

    #[test]
    fn silence_is_negative_infinity_and_serializes_as_null() {
        let b = AudioBuffer::silence(R48, 2, 48_000 * 2).unwrap();
        let l = measure(&b).unwrap();
        assert_eq!(l.integrated_lufs, f64::NEG_INFINITY);
        let json = serde_json::to_string(&l).unwrap();
        assert!(json.contains("\"integrated_lufs\":null"), "{json}");
        let back: Loudness = serde_json::from_str(&json).unwrap();
        assert_eq!(back.integrated_lufs, f64::NEG_INFINITY);
    }

    // EBU Tech 3341's true-peak cases use fs/4 sines at various phases. At fs/4 with a 45°
    // offset, x[n] = A·sin(π·n/2 + π/4) only ever takes the values ±A/√2 (every sample sits
    // 45° from a crest), while the continuous sine still reaches ±A halfway between samples.
    // So the sample peak is 20·log10(A) − 3.01 dB and the true peak exactly 20·log10(A); the
    // 4× oversampling grid (offsets 0, ¼, ½, ¾) hits the crests at offset ½. With A = 0.5:
    // sample peak −9.03 dBFS, true peak −6.02 dBTP (Tech 3341 allows +0.2/−0.4 dB; 0.3 here).
    #[test]
    fn true_peak_of_quarter_rate_sine_at_45_degrees() {
        let amp = 0.5f64;
        let x: Vec<f32> = (0..48_000 * 2)
            .map(|n| {
                let phase = std::f64::consts::FRAC_PI_2 * n as f64 + std::f64::consts::FRAC_PI_4;
                (amp * phase.sin()) as f32
            })
            .collect();
        let l = measure(&synth::mono(R48, x)).unwrap();
        let tp = 20.0 * amp.log10();
        let sp = 20.0 * (amp * std::f64::consts::FRAC_1_SQRT_2).log10();
        eprintln!(
            "true peak {:.3} dBTP (analytic {tp:.3}), sample peak {:.3}",
            l.true_peak_dbtp, l.sample_peak_dbfs
        );
        assert!((l.sample_peak_dbfs - sp).abs() < 0.01, "{l:?}");
        assert!((l.true_peak_dbtp - tp).abs() < 0.3, "{l:?} vs {tp}");
        assert!((l.true_peak_dbtp - l.sample_peak_dbfs - 3.01).abs() < 0.3, "{l:?}");
    }

    // EBU Tech 3342 cases 1 and 2: 1 kHz stereo sine, 20 s at -20 dBFS then 20 s at -30 dBFS
    // reads LRA 10 ±1 LU; -20 then -15 dBFS reads 5 ±1 LU.
    #[test]
    fn tech_3342_loudness_range() {
        for (a, b, want) in [(-20.0, -30.0, 10.0), (-20.0, -15.0, 5.0)] {
            let mut buf = stereo_sine_db(a, 20);
            buf.append(&stereo_sine_db(b, 20)).unwrap();
            let l = measure(&buf).unwrap();
            eprintln!("{a}/{b} dBFS: LRA {:.2} LU", l.range_lu);
            assert!((l.range_lu - want).abs() <= 1.0, "{a}/{b}: {l:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        // A gain g shifts integrated loudness (and both peaks) by 20·log10 g, on noise or sine.
        #[test]
        fn gain_shifts_loudness_by_its_db(
            g in 0.05f64..4.0,
            seed in 0u64..1000,
            sine in proptest::bool::ANY,
        ) {
            let n = 48_000 * 3;
            let x = if sine {
                synth::sine(R48, 200.0 + seed as f64 * 5.0, 0.3, n)
            } else {
                synth::white_noise(seed, 0.3, n)
            };
            let y: Vec<f32> = x.iter().map(|&s| (f64::from(s) * g) as f32).collect();
            let lx = measure(&synth::mono(R48, x)).unwrap();
            let ly = measure(&synth::mono(R48, y)).unwrap();
            let db = 20.0 * g.log10();
            proptest::prop_assert!((ly.integrated_lufs - lx.integrated_lufs - db).abs() <= 0.05,
                "{:?} {:?} {}", lx, ly, db);
            proptest::prop_assert!((ly.sample_peak_dbfs - lx.sample_peak_dbfs - db).abs() <= 0.01);
            proptest::prop_assert!((ly.true_peak_dbtp - lx.true_peak_dbtp - db).abs() <= 0.01);
        }
    }

    #[test]
    fn channel_mismatch_is_an_error() {
        let mut m = LoudnessMeter::new(2, 48_000, false).unwrap();
        let mono = AudioBuffer::silence(R48, 1, 10).unwrap();
        assert!(m.add(&mono).is_err());
    }
}
