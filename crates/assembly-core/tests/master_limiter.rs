//! True-peak limiter: ceiling held on hostile signals (measured by ebur128 4× true peak),
//! exact length, transparency below the ceiling, no NaN, no panic.

use std::num::NonZeroU32;

use assembly_core::analyze::loudness::measure;
use assembly_core::master::{CeilingDip, LimiterOptions, LimiterStream, limit};
use assembly_core::synth::{self, Rng, db_to_amp};
use assembly_core::{AudioBuffer, Result};
use proptest::prelude::*;

const R44: NonZeroU32 = NonZeroU32::new(44_100).unwrap();
const R48: NonZeroU32 = NonZeroU32::new(48_000).unwrap();

fn stereo(a: Vec<f32>, b: Vec<f32>, rate: NonZeroU32) -> AudioBuffer {
    AudioBuffer::from_planar(rate, vec![a, b]).unwrap()
}

/// A square wave of `freq` Hz at peak `amp`, hard-clipped flat tops (naive, aliased).
fn square(rate: NonZeroU32, freq: f64, amp: f32, frames: usize) -> Vec<f32> {
    let period = f64::from(rate.get()) / freq;
    (0..frames).map(|i| if (i as f64 % period) < period / 2.0 { amp } else { -amp }).collect()
}

/// Streams `input` through a limiter in blocks of the given sizes (cycled).
fn stream(input: &AudioBuffer, ceiling: f64, blocks: &[usize]) -> Result<AudioBuffer> {
    let rate = input.sample_rate();
    let mut lim =
        LimiterStream::new(input.channel_count(), rate, ceiling, &LimiterOptions::default())?;
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); input.channel_count()];
    let mut sink = |b: &AudioBuffer| -> Result<()> {
        for (o, p) in out.iter_mut().zip(b.planes()) {
            o.extend_from_slice(p);
        }
        Ok(())
    };
    let mut start = 0;
    let mut k = 0;
    while start < input.frames() {
        let end = (start + blocks[k % blocks.len()]).min(input.frames());
        k += 1;
        let b = AudioBuffer::from_planar(
            rate,
            input.planes().iter().map(|c| c[start..end].to_vec()).collect(),
        )?;
        lim.push(&b, &mut sink)?;
        start = end;
    }
    lim.finish(&mut sink)?;
    AudioBuffer::from_planar(rate, out)
}

/// Limits `input` to `ceiling` with `dips`, in 4096-frame blocks.
fn stream_dipped(input: &AudioBuffer, ceiling: f64, dips: &[CeilingDip]) -> Result<AudioBuffer> {
    let rate = input.sample_rate();
    let mut lim =
        LimiterStream::new(input.channel_count(), rate, ceiling, &LimiterOptions::default())?;
    lim.set_ceiling_dips(dips)?;
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); input.channel_count()];
    let mut sink = |b: &AudioBuffer| -> Result<()> {
        for (o, p) in out.iter_mut().zip(b.planes()) {
            o.extend_from_slice(p);
        }
        Ok(())
    };
    for start in (0..input.frames()).step_by(4096) {
        let end = (start + 4096).min(input.frames());
        let planes = input.planes().iter().map(|c| c[start..end].to_vec()).collect();
        lim.push(&AudioBuffer::from_planar(rate, planes)?, &mut sink)?;
    }
    lim.finish(&mut sink)?;
    AudioBuffer::from_planar(rate, out)
}

fn true_peak_of(b: &AudioBuffer, range: std::ops::Range<usize>) -> f64 {
    let part = AudioBuffer::from_planar(
        b.sample_rate(),
        b.planes().iter().map(|c| c[range.clone()].to_vec()).collect(),
    )
    .unwrap();
    measure(&part).unwrap().true_peak_dbtp
}

#[test]
fn a_ceiling_dip_lowers_only_its_stretch_and_the_rest_is_bit_identical() {
    // Speech-like programme far over a -1 dBTP ceiling, 10 s; a dip to -3 dBTP over 4..5 s.
    let n = 441_000;
    let l = synth::speech_like(R44, 11, 0.0, n);
    let r = synth::speech_like(R44, 12, 0.0, n);
    let input = stereo(l, r, R44);
    let dip = CeilingDip { start_frame: 176_400, end_frame: 220_500, ceiling_dbtp: -3.0 };
    let plain = stream_dipped(&input, -1.0, &[]).unwrap();
    let dipped = stream_dipped(&input, -1.0, &[dip]).unwrap();
    assert_eq!(dipped.frames(), n);
    let in_dip = true_peak_of(&dipped, 176_400..220_500);
    assert!(in_dip <= -3.0 && in_dip > -3.5, "dip stretch true peak {in_dip:.2} dBTP");
    assert!(true_peak_of(&plain, 176_400..220_500) > -1.5);
    // Before the dip (less the 5 ms lookahead and the hold guard) the outputs are the same
    // samples; after it they are again once the gain has recovered (release 100 ms).
    let first_diff = (0..n).find(|&i| plain.planes()[0][i] != dipped.planes()[0][i]).unwrap();
    let last_diff = (0..n).rev().find(|&i| plain.planes()[0][i] != dipped.planes()[0][i]).unwrap();
    assert!((176_400 - 441..220_500).contains(&first_diff), "first difference at {first_diff}");
    assert!(
        (first_diff..220_500 + 44_100).contains(&last_diff),
        "last difference at {last_diff}: the gain must come back exactly"
    );
    // Bad dips are refused naming the field.
    let mut lim = LimiterStream::new(2, R44, -1.0, &LimiterOptions::default()).unwrap();
    let bad = CeilingDip { ceiling_dbtp: 3.0, ..dip };
    let e = lim.set_ceiling_dips(&[dip, bad]).unwrap_err().to_string();
    assert!(e.contains("ceiling_dips[1].ceiling_dbtp"), "{e}");
    let empty = CeilingDip { end_frame: dip.start_frame, ..dip };
    assert!(lim.set_ceiling_dips(&[empty]).unwrap_err().to_string().contains("ceiling_dips[0]"));
}

fn hostile_signals() -> Vec<(&'static str, AudioBuffer)> {
    let n = 44_100 * 3;
    let mut v = Vec::new();
    // fs/4 sine at 45° phase: samples at ±0.707·A, true peak A (+3 dB over the samples).
    let quarter: Vec<f32> = (0..n)
        .map(|i| {
            (4.0 * (std::f64::consts::FRAC_PI_2 * i as f64 + std::f64::consts::FRAC_PI_4).sin())
                as f32
        })
        .collect();
    v.push(("fs/4 sine +12 dBTP", stereo(quarter.clone(), quarter, R44)));
    v.push((
        "clipped square 1 kHz +10 dBFS",
        stereo(square(R44, 1000.0, 3.2, n), square(R44, 1001.0, 3.2, n), R44),
    ));
    v.push((
        "clipped square 7 kHz 0 dBFS",
        stereo(square(R44, 7000.0, 1.0, n), square(R44, 6999.0, -1.0, n), R44),
    ));
    let mut imp = synth::impulses(n, &(0..n).step_by(4410).collect::<Vec<_>>(), 8.0);
    for i in (2205..n).step_by(4410) {
        imp[i] = -8.0;
        if i + 1 < n {
            imp[i + 1] = 8.0; // a full-scale Nyquist doublet: large inter-sample peak
        }
    }
    v.push(("impulses and doublets +18 dBFS", stereo(imp.clone(), imp, R44)));
    let noise = synth::white_noise(3, 6.0, n);
    v.push(("white noise +15 dBFS", stereo(noise.clone(), synth::white_noise(4, 6.0, n), R44)));
    // Sharp transients on speech: decaying noise bursts 20 dB over speech at -20 dBFS.
    let mut sp = synth::speech_like(R48, 5, -20.0, 48_000 * 3);
    let mut rng = Rng::new(9);
    for start in (1000..sp.len()).step_by(7919) {
        for j in 0..400 {
            if let Some(s) = sp.get_mut(start + j) {
                *s += (2.5 * rng.bipolar() * (-(j as f64) / 60.0).exp()) as f32;
            }
        }
    }
    v.push(("speech with transients", stereo(sp.clone(), sp, R48)));
    // Gain jumps every 37 frames on a high chirp: the gain moves inside the filter span.
    let mut ch = synth::chirp(R44, 5000.0, 21_000.0, 1.0, n);
    let mut rng = Rng::new(11);
    for c in ch.chunks_mut(37) {
        let g = db_to_amp(20.0 * rng.next_f64()) as f32;
        c.iter_mut().for_each(|s| *s *= g);
    }
    v.push(("chirp with 37-frame gain jumps", stereo(ch.clone(), ch, R44)));
    v
}

#[test]
fn hostile_signals_stay_under_the_ceiling() {
    for ceiling in [-1.0, -2.0, -6.0] {
        for (name, sig) in hostile_signals() {
            let (out, stats) = limit(&sig, ceiling, &LimiterOptions::default()).unwrap();
            assert_eq!(out.frames(), sig.frames(), "{name}");
            let m = measure(&out).unwrap();
            println!(
                "{name:32} ceiling {ceiling:5.1}: in {:6.2} dBTP, out {:10.6} dBTP, max GR {:5.1} dB",
                measure(&sig).unwrap().true_peak_dbtp,
                m.true_peak_dbtp,
                stats.max_reduction_db
            );
            assert!(m.true_peak_dbtp <= ceiling, "{name} @ {ceiling}: {m:?}");
            assert!(out.planes().iter().flatten().all(|s| s.is_finite()));
        }
    }
}

#[test]
fn below_the_ceiling_the_output_is_the_input_bit_exact() {
    // Speech peaking around -3 dBTP with a -1 dBTP ceiling: no gain change at all.
    let sp = synth::speech_like(R48, 2, -3.5, 48_000 * 4);
    let sig = stereo(sp.clone(), synth::white_noise(1, 0.1, sp.len()), R48);
    let tp = measure(&sig).unwrap().true_peak_dbtp;
    assert!(tp < -1.05 && tp > -6.0, "test signal should peak just under the ceiling: {tp}");
    for blocks in [&[4096][..], &[1, 7, 300, 65, 1000]] {
        let out = stream(&sig, -1.0, blocks).unwrap();
        assert_eq!(out, sig);
    }
}

#[test]
fn output_length_equals_input_length_for_any_blocking() {
    for frames in [0usize, 1, 5, 100, 263, 264, 265, 4096, 10_000] {
        let sig = synth::multi(R44, synth::white_noise(frames as u64, 3.0, frames), 2);
        for blocks in [&[1][..], &[64], &[13, 500], &[100_000]] {
            let out = stream(&sig, -1.0, blocks).unwrap();
            assert_eq!(out.frames(), frames, "{frames} frames in blocks {blocks:?}");
        }
    }
}

#[test]
fn gain_falls_before_a_peak_and_recovers_after_the_release() {
    // A -20 dBFS 1 kHz tone with a 10 ms burst at +6 dBFS at 1.0 s. Ceiling -1 dBTP.
    let n = 48_000 * 2;
    let mut s = synth::sine(R48, 1000.0, db_to_amp(-20.0), n);
    let burst = 48_000..48_480;
    for (i, v) in s[burst.clone()].iter_mut().enumerate() {
        *v = (2.0 * (std::f64::consts::TAU * 1000.0 * (48_000 + i) as f64 / 48_000.0).sin()) as f32;
    }
    let sig = synth::multi(R48, s.clone(), 2);
    let opts = LimiterOptions { lookahead_ms: 5, release_ms: 50 };
    let (out, _) = limit(&sig, -1.0, &opts).unwrap();
    let gain = |range: std::ops::Range<usize>| -> f64 {
        let (mut e_in, mut e_out) = (0.0, 0.0);
        for i in range {
            e_in += f64::from(s[i]).powi(2);
            e_out += f64::from(out.channel(0)[i]).powi(2);
        }
        10.0 * (e_out / e_in).log10()
    };
    // Untouched well before the burst, already reduced in the 2 ms before it (lookahead).
    assert!(gain(40_000..47_000).abs() < 1e-6, "{}", gain(40_000..47_000));
    assert!(
        gain(47_904..48_000) < -3.0,
        "dip must start before the peak: {}",
        gain(47_904..48_000)
    );
    // During the burst: the +6 dBFS tone is held at the ceiling, i.e. about -7 dB.
    let g = gain(48_100..48_400);
    assert!((g + 7.02).abs() < 0.3, "{g}");
    // Recovery: still reduced 20 ms after, back within 0.1 dB 400 ms after (8 time constants).
    assert!(gain(48_480 + 960..48_480 + 1440) < -0.5);
    assert!(gain(48_480 + 19_200..48_480 + 24_000).abs() < 0.1);
    assert!(measure(&out).unwrap().true_peak_dbtp <= -1.0);
}

#[test]
fn non_finite_input_never_gives_non_finite_output() {
    let mut s = synth::white_noise(5, 2.0, 20_000);
    s[100] = f32::NAN;
    s[5000] = f32::INFINITY;
    s[5001] = f32::NEG_INFINITY;
    s[9000] = f32::MAX;
    s[9001] = -f32::MAX;
    let sig = synth::multi(R44, s, 2);
    let (out, _) = limit(&sig, -1.0, &LimiterOptions::default()).unwrap();
    assert!(out.planes().iter().flatten().all(|x| x.is_finite()));
    assert!(measure(&out).unwrap().true_peak_dbtp <= -1.0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random blocks of random signals at random gains, random block sizes and ceilings:
    /// never over the ceiling (ebur128 4× true peak), never NaN, exact length, no panic.
    #[test]
    fn random_blocks_never_exceed_the_ceiling(
        seed in any::<u64>(),
        channels in 1usize..=3,
        rate48 in any::<bool>(),
        ceiling in -12.0f64..=0.0,
        segs in prop::collection::vec((0u8..4, -40.0f64..30.0, 1usize..3000), 1..12),
        blocks in prop::collection::vec(1usize..5000, 1..4),
        lookahead_ms in 1u32..=20,
        release_ms in 1u32..=500,
    ) {
        let rate = if rate48 { R48 } else { R44 };
        let mut rng = Rng::new(seed);
        let mut planes = vec![Vec::new(); channels];
        for (kind, gain_db, len) in segs {
            let g = db_to_amp(gain_db);
            for p in planes.iter_mut() {
                let s: Vec<f32> = match kind {
                    0 => synth::white_noise(rng.next_u64(), g, len),
                    1 => synth::sine(rate, 20.0 + 21_000.0 * rng.next_f64(), g, len),
                    2 => square(rate, 50.0 + 5000.0 * rng.next_f64(), g as f32, len),
                    _ => {
                        let at: Vec<usize> = (0..len).filter(|_| rng.next_f64() < 0.01).collect();
                        synth::impulses(len, &at, g as f32)
                    }
                };
                p.extend(s);
            }
        }
        let sig = AudioBuffer::from_planar(rate, planes).unwrap();
        let opts = LimiterOptions { lookahead_ms, release_ms };
        let mut lim = LimiterStream::new(channels, rate, ceiling, &opts).unwrap();
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); channels];
        let mut sink = |b: &AudioBuffer| -> Result<()> {
            for (o, p) in out.iter_mut().zip(b.planes()) { o.extend_from_slice(p); }
            Ok(())
        };
        let (mut start, mut k) = (0, 0);
        while start < sig.frames() {
            let end = (start + blocks[k % blocks.len()]).min(sig.frames());
            k += 1;
            let b = AudioBuffer::from_planar(rate, sig.planes().iter().map(|c| c[start..end].to_vec()).collect()).unwrap();
            lim.push(&b, &mut sink).unwrap();
            start = end;
        }
        lim.finish(&mut sink).unwrap();
        let out = AudioBuffer::from_planar(rate, out).unwrap();
        prop_assert_eq!(out.frames(), sig.frames());
        prop_assert!(out.planes().iter().flatten().all(|x| x.is_finite()));
        let tp = measure(&out).unwrap().true_peak_dbtp;
        prop_assert!(tp <= ceiling, "true peak {} over ceiling {}", tp, ceiling);
    }
}
