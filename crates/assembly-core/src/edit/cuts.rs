//! Explicit cuts: caller-given millisecond ranges (also explicit retake ranges).

use super::Ctx;
use super::merge::Op;
use super::merge::Reason;
use super::options::MsRange;
use crate::frames_to_ms;
use crate::warning::{Warning, WarningCode};

/// One removal per range, clipped to the audio ([`RangeClipped`](WarningCode::RangeClipped)).
pub(crate) fn ops(
    ctx: &Ctx<'_>,
    ranges: &[MsRange],
    reason: Reason,
    field: &str,
    warnings: &mut Vec<Warning>,
) -> Vec<Op> {
    let mut out = Vec::new();
    for (i, r) in ranges.iter().enumerate() {
        let a = ctx.ms(r.start_ms);
        let b = ctx.ms(r.end_ms);
        let (ca, cb) = (a.min(ctx.n), b.min(ctx.n));
        if (ca, cb) != (a, b) {
            warnings.push(Warning::new(
                WarningCode::RangeClipped,
                format!(
                    "{field}[{i}] {}–{} ms runs past the end of the audio ({} ms); clipped",
                    r.start_ms,
                    r.end_ms,
                    frames_to_ms(ctx.n, ctx.rate)
                ),
            ));
        }
        if ca < cb {
            let what = if reason == Reason::Flubber { "retake" } else { "cut" };
            out.push(Op::remove(reason, ca..cb, format!("{what} {}–{} ms", r.start_ms, r.end_ms)));
        }
    }
    out
}
