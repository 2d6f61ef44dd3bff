//! Resampling quality, alignment and length on synthesized signals.

use std::f64::consts::TAU;
use std::num::NonZeroU32;

use assembly_core::load::{self, ResampleMethod, Resampler};
use assembly_core::{AudioBuffer, CancelToken, synth};
use proptest::prelude::*;

fn hz(r: u32) -> NonZeroU32 {
    NonZeroU32::new(r).unwrap()
}

fn run(buf: &AudioBuffer, to: u32) -> AudioBuffer {
    load::resample(buf, hz(to), &CancelToken::new()).unwrap()
}

/// Frames excluded at each end of the SNR window: 25 ms. The input is a sine switched on and
/// off abruptly (silence outside the buffer), so the first and last few milliseconds of any
/// band-limited resampler's output are the filter's response to that step, not the sine.
/// The FFT path's filter is one FFT block long (~4,100 frames, ~90 ms) with a Blackman-Harris²
/// window whose tails fall below -100 dB within ~15 ms of the edge; 25 ms leaves a margin.
fn edge(rate: u32) -> usize {
    rate as usize * 25 / 1000
}

/// SNR in dB of `y` against the ideal `amp·sin(2π·f·m/rate + phase)`, over `y` minus edges.
fn snr_db(y: &[f32], rate: u32, f: f64, amp: f64, phase: f64) -> f64 {
    let e = edge(rate);
    let (mut sig, mut err) = (0.0f64, 0.0f64);
    for (m, &v) in y.iter().enumerate().take(y.len() - e).skip(e) {
        let ideal = amp * (TAU * f * m as f64 / f64::from(rate) + phase).sin();
        sig += ideal * ideal;
        err += (f64::from(v) - ideal).powi(2);
    }
    10.0 * (sig / err).log10()
}

/// Frequency from rising zero crossings, each located by linear interpolation, over `y`
/// minus edges: (crossings − 1) periods between the first and the last.
fn measured_hz(y: &[f32], rate: u32) -> f64 {
    let e = edge(rate);
    let mut first = None;
    let mut last = 0.0;
    let mut count = 0u32;
    for i in e..y.len() - e - 1 {
        let (a, b) = (f64::from(y[i]), f64::from(y[i + 1]));
        if a < 0.0 && b >= 0.0 {
            let t = i as f64 + a / (a - b);
            first.get_or_insert(t);
            last = t;
            count += 1;
        }
    }
    let first = first.expect("at least two crossings");
    f64::from(count - 1) * f64::from(rate) / (last - first)
}

// A 1 kHz sine (peak 0.5, 2 s) keeps its frequency to 0.01 Hz and reaches >= 90 dB SNR
// against the ideal sine at the new rate, zero phase: so the output is also time-aligned to
// far better than a frame (a 1e-4-frame shift alone would cap the SNR near 80 dB at 48 kHz).
// Measured here: 44.1→48 112.5 dB, 48→44.1 127, 48→16 114, 22.05→48 111, 8→44.1 122,
// 192→44.1 118 (FFT path); 44.1→44.101 102, 16→44.101 101.5 (sinc path).
#[test]
fn sine_keeps_frequency_and_snr_over_90_db() {
    let pairs = [
        (44_100, 48_000),
        (48_000, 44_100),
        (48_000, 16_000),
        (22_050, 48_000),
        (8_000, 44_100),
        (192_000, 44_100),
        (44_100, 44_101),
        (16_000, 44_101),
    ];
    for (from, to) in pairs {
        let x = synth::mono(hz(from), synth::sine(hz(from), 1000.0, 0.5, from as usize * 2));
        let y = run(&x, to);
        assert_eq!(y.frames() as u64, load::resampled_len(x.frames() as u64, hz(from), hz(to)));
        let snr = snr_db(y.channel(0), to, 1000.0, 0.5, 0.0);
        let f = measured_hz(y.channel(0), to);
        eprintln!("{from}->{to}: SNR {snr:.1} dB, {f:.5} Hz");
        assert!(snr >= 90.0, "{from}->{to}: SNR {snr:.1} dB");
        assert!((f - 1000.0).abs() < 0.01, "{from}->{to}: {f} Hz");
    }
}

// Channels are resampled independently: L = 1 kHz, R = 3 kHz at 90° phase, both >= 90 dB.
#[test]
fn stereo_channels_stay_separate() {
    let (from, to) = (44_100u32, 48_000u32);
    let n = from as usize * 2;
    let r: Vec<f32> =
        (0..n).map(|i| (0.25 * (TAU * 3000.0 * i as f64 / f64::from(from)).cos()) as f32).collect();
    let x =
        AudioBuffer::from_planar(hz(from), vec![synth::sine(hz(from), 1000.0, 0.5, n), r]).unwrap();
    let y = run(&x, to);
    assert!(snr_db(y.channel(0), to, 1000.0, 0.5, 0.0) >= 90.0);
    assert!(snr_db(y.channel(1), to, 3000.0, 0.25, TAU / 4.0) >= 90.0);
}

// A unit click at input frame n peaks at output frame round(n·to/from) ± 1, on both paths,
// at the very start, mid-chunk, across chunk boundaries and near the end.
#[test]
fn clicks_land_where_they_should() {
    let pairs = [
        (44_100, 48_000),
        (48_000, 44_100),
        (48_000, 16_000),
        (16_000, 48_000),
        (22_050, 96_000),
        (44_100, 44_101),
        (48_000, 47_999),
        (96_000, 44_101),
    ];
    for (from, to) in pairs {
        let n = 30_000usize;
        let at = [0usize, 1, 4095, 4096, 4097, 12_345, 20_000, n - 2];
        for &p in &at {
            let x = synth::mono(hz(from), synth::impulses(n, &[p], 1.0));
            let y = run(&x, to);
            let want = load::resampled_len(p as u64, hz(from), hz(to)) as usize;
            let peak = (0..y.frames())
                .max_by(|&a, &b| y.channel(0)[a].abs().total_cmp(&y.channel(0)[b].abs()))
                .unwrap();
            assert!(
                peak.abs_diff(want) <= 1,
                "{from}->{to}: click at {p} peaked at {peak}, expected {want}"
            );
            // And it is still a click: the peak sample holds a fair share of the energy (an
            // aligned band-limited click holds min(1, from/to) of it).
            let energy: f64 = y.channel(0).iter().map(|&s| f64::from(s).powi(2)).sum();
            let share = f64::from(y.channel(0)[peak]).powi(2) / energy;
            let ideal = (f64::from(from) / f64::from(to)).min(1.0);
            assert!(share > 0.3 * ideal, "{from}->{to} at {p}: {share}");
        }
    }
}

// Feeding the same signal in odd-sized blocks gives bit-identical output to the one-shot call.
#[test]
fn streaming_equals_one_shot() {
    for (from, to) in [(44_100u32, 48_000u32), (48_000, 44_101)] {
        let sig = synth::white_noise(11, 0.5, 50_000);
        let x = synth::multi(hz(from), sig, 2);
        let whole = run(&x, to);
        let mut r = Resampler::new(hz(from), hz(to), 2).unwrap();
        let mut out = vec![Vec::new(), Vec::new()];
        let mut start = 0;
        for (i, len) in [1usize, 4095, 7, 10_000, 333, 4096, 31_468].iter().cycle().enumerate() {
            if start >= 50_000 {
                break;
            }
            let end = (start + len + i).min(50_000);
            r.push(&[&x.channel(0)[start..end], &x.channel(1)[start..end]], &mut out).unwrap();
            start = end;
        }
        r.finish(&mut out).unwrap();
        assert_eq!(out, whole.into_planes(), "{from}->{to}");
    }
}

#[test]
fn empty_and_tiny_inputs() {
    for (from, to) in [(44_100u32, 48_000u32), (48_000, 8_000), (44_100, 44_101)] {
        for n in [0usize, 1, 2, 3, 5] {
            let x = synth::mono(hz(from), vec![0.25; n]);
            assert_eq!(
                run(&x, to).frames() as u64,
                load::resampled_len(n as u64, hz(from), hz(to)),
                "{from}->{to} n={n}"
            );
        }
    }
}

#[test]
fn method_choice() {
    assert_eq!(Resampler::new(hz(44_100), hz(48_000), 1).unwrap().method(), ResampleMethod::Fft);
    assert_eq!(Resampler::new(hz(48_000), hz(47_999), 1).unwrap().method(), ResampleMethod::Sinc);
}

const RATES: [u32; 14] = [
    8_000, 11_025, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 88_200, 96_000, 192_000, 44_101,
    47_999, 37_800,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    // The output is exactly resampled_len(frames) long, for any length and rate pair.
    #[test]
    fn length_is_exact(frames in 0usize..50_000, i in 0usize..RATES.len(), j in 0usize..RATES.len(),
                       channels in 1usize..3) {
        let (from, to) = (RATES[i], RATES[j]);
        prop_assume!(from.max(to) <= from.min(to) * load::MAX_RATE_RATIO);
        let x = synth::multi(hz(from), synth::white_noise(frames as u64, 0.5, frames), channels);
        let y = run(&x, to);
        prop_assert_eq!(y.frames() as u64, load::resampled_len(frames as u64, hz(from), hz(to)));
        prop_assert_eq!(y.channel_count(), channels);
        prop_assert_eq!(y.sample_rate(), hz(to));
    }

    // resampled_len is round(frames·to/from), halves up, checked against exact rationals.
    #[test]
    fn resampled_len_is_rounded_ratio(frames in 0u64..u64::MAX / 2, from in 1u32.., to in 1u32..) {
        let got = u128::from(load::resampled_len(frames, hz(from), hz(to)));
        let num = u128::from(frames) * u128::from(to);
        let den = u128::from(from);
        if got < u128::from(u64::MAX) {
            // got - 1/2 <= frames·to/from < got + 1/2
            prop_assert!(2 * num < (2 * got + 1) * den);
            prop_assert!((2 * got).saturating_sub(1) * den <= 2 * num);
        }
    }
}
