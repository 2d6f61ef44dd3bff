//! Censoring: listed words replaced by a beep (or silence) with short fades.

use super::Ctx;
use super::matcher::PhraseMatcher;
use super::merge::{Action, Op};
use super::merge::{Fill, Reason};
use super::options::{CensorMode, CensorOptions};

/// One replacement per match of `o.words`: the words' span becomes `beep_ms` (or, with
/// `match_word_length`, exactly the span's length) of beep or silence.
pub(crate) fn ops(ctx: &Ctx<'_>, o: &CensorOptions) -> Vec<Op> {
    let m = PhraseMatcher::new(&o.words, 0);
    if m.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for hit in m.find(&ctx.word_tokens()) {
        let a = ctx.words[hit.words.start].start;
        let b = ctx.words[hit.words.end - 1].end;
        if a >= b {
            continue;
        }
        let frames = if o.match_word_length { b - a } else { ctx.ms(u64::from(o.beep_ms)) };
        let fill = match o.mode {
            CensorMode::Beep => Fill::Beep {
                freq_hz: o.beep_freq_hz.min(f64::from(ctx.rate.get()) * 0.45),
                gain_db: o.beep_gain_db,
                fade_frames: ctx.ms(u64::from(o.fade_ms)),
            },
            CensorMode::Silence => Fill::Silence,
        };
        out.push(Op {
            reason: Reason::Censor,
            range: a..b,
            action: Action::Replace { fill, frames },
            detail: format!("censored {:?}", m.label(hit.phrase)),
            label: Some(m.label(hit.phrase).to_string()),
            bounds: None,
        });
    }
    out
}
