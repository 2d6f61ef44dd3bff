//! Mixing helpers shared by the stages that measure a mix (arrange's leveling) and the one
//! that renders it: channel-mapped accumulation and the raised-cosine ramp every fade uses.

/// Raised-cosine ramp from 0 (at `u = 0`) to 1 (at `u = 1`).
pub(crate) fn raised_cosine(u: f64) -> f64 {
    0.5 - 0.5 * (std::f64::consts::PI * u.clamp(0.0, 1.0)).cos()
}

/// Adds `gain[i] * src` (or `scalar * src` when `gain` is `None`) into `out`, mapping channels:
/// equal counts map one to one, mono goes to every output channel, a mono output takes the
/// mean of the source channels, otherwise output channel `c` takes source channel
/// `c % source_channels`.
pub(crate) fn add_mapped(
    out: &mut [impl AsMut<[f32]>],
    at: usize,
    src: &[impl AsRef<[f32]>],
    n: usize,
    scalar: f32,
    gain: Option<&[f32]>,
) {
    let sc = src.len();
    let add = |o: &mut [f32], s: &[f32], k: f32| match gain {
        None => o.iter_mut().zip(s).for_each(|(o, &s)| *o += k * s),
        Some(g) => o.iter_mut().zip(s).zip(g).for_each(|((o, &s), &g)| *o += k * g * s),
    };
    if out.len() == 1 && sc > 1 {
        let k = scalar / sc as f32;
        for s in src {
            add(&mut out[0].as_mut()[at..at + n], &s.as_ref()[..n], k);
        }
        return;
    }
    for (c, o) in out.iter_mut().enumerate() {
        add(&mut o.as_mut()[at..at + n], &src[c % sc].as_ref()[..n], scalar);
    }
}
