//! The verify-after-encode loop driven by a real render and a stand-in lossy codec (the MP3
//! encoder/decoder are wired in by the Assembler; the loop only sees a closure).

use std::num::NonZeroU32;

use assembly_core::analyze::loudness::measure;
use assembly_core::master::{EncodeMeasurement, MasterOptions, VerifyOptions, verify_encoded};
use assembly_core::render::{RenderOptions, render_mastered};
use assembly_core::{AudioBuffer, CancelToken, synth};

const R: NonZeroU32 = NonZeroU32::new(44_100).unwrap();

/// A stand-in for encode + decode: a high-shelf-ish FIR that raises high-frequency peaks
/// (as MP3's pre-echo and band-limiting ringing do) and a little loudness loss.
fn fake_codec(x: &AudioBuffer) -> AudioBuffer {
    let h = [-0.12f32, 1.19, -0.12];
    let planes = x
        .planes()
        .iter()
        .map(|p| {
            (0..p.len())
                .map(|i| {
                    let at = |k: isize| p.get((i as isize + k) as usize).copied().unwrap_or(0.0);
                    0.97 * (h[0] * at(-1) + h[1] * at(0) + h[2] * at(1))
                })
                .collect()
        })
        .collect();
    AudioBuffer::from_planar(x.sample_rate(), planes).unwrap()
}

#[test]
fn the_loop_tightens_until_the_decoded_file_meets_the_ceiling() {
    let mut prog = synth::music_like(R, 5, -24.0, 44_100 * 20);
    // Bright transients make the codec's overshoot visible.
    let hats = synth::noise_bursts(3, 0.4, 200, 10_825, prog.len());
    prog.iter_mut().zip(hats).for_each(|(a, b)| *a += b);
    let prog = synth::multi(R, prog, 2);
    let report = verify_encoded(-16.0, -1.0, &VerifyOptions::default(), |req| {
        let mut out = AudioBuffer::silence(R, 2, 0).unwrap();
        let r = render_mastered(
            &prog,
            &MasterOptions::explicit(req.target_lufs, req.ceiling_dbtp),
            &RenderOptions::default(),
            |b| out.append(b),
            &CancelToken::new(),
            &mut |_| {},
        )?;
        let rendered = measure(&out)?;
        assert!(rendered.true_peak_dbtp <= req.ceiling_dbtp);
        assert_eq!(r.outcome.frames, prog.frames() as u64);
        Ok(EncodeMeasurement {
            rendered: Some(rendered),
            decoded: measure(&fake_codec(&out))?,
            repair: None,
        })
    })
    .unwrap();
    for a in &report.attempts {
        let d = a.measured.decoded;
        let r = a.measured.rendered.unwrap();
        println!(
            "ceiling {:6.2} target {:6.2}: rendered {:6.2} LUFS {:6.2} dBTP, decoded {:6.2} LUFS {:6.2} dBTP",
            a.request.ceiling_dbtp,
            a.request.target_lufs,
            r.integrated_lufs,
            r.true_peak_dbtp,
            d.integrated_lufs,
            d.true_peak_dbtp
        );
    }
    assert!(report.attempts.len() >= 2, "the stand-in codec should overshoot at first");
    assert!(report.passed);
    let last = report.attempts.last().unwrap().measured.decoded;
    assert!(last.true_peak_dbtp <= -1.0 && (last.integrated_lufs + 16.0).abs() <= 0.5, "{last:?}");
}
