//! Retakes: the speaker says a keyword ("flubber") right after a flubbed take and then
//! restarts. The take and the keyword are removed.
//!
//! The take starts after the nearest sentence break before the keyword: a word ending in
//! `.`, `?`, `!` or `…`, a silence of at least `break_gap_s`, or an earlier keyword. The break
//! right before the keyword itself is skipped (speakers pause, and transcribers put a full
//! stop, before saying it). The take never reaches back more than `lookback_s` before the
//! keyword; if no break is found within it, the take starts at the first word inside the
//! lookback ([`NoSentenceBreak`](WarningCode::NoSentenceBreak)). A protected word stops the
//! take: it starts after the last protected word.

use std::collections::HashSet;

use super::Ctx;
use super::fillers::protected_set;
use super::matcher::PhraseMatcher;
use super::merge::Op;
use super::merge::Reason;
use super::options::FlubberOptions;
use crate::frames_to_ms;
use crate::warning::{Warning, WarningCode};

fn ends_sentence(text: &str) -> bool {
    let t = text.trim_end_matches(['"', '\'', ')', ']', '”', '’', '»']);
    t.ends_with(['.', '?', '!', '…'])
}

pub(crate) fn ops(
    ctx: &Ctx<'_>,
    o: &FlubberOptions,
    protected_words: &[String],
    warnings: &mut Vec<Warning>,
) -> Vec<Op> {
    let m = PhraseMatcher::new(&[o.keyword.as_str()], o.max_edit_distance);
    if m.is_empty() || ctx.words.is_empty() {
        return Vec::new();
    }
    let protected: HashSet<String> = protected_set(protected_words);
    let hits = m.find(&ctx.word_tokens());
    let keyword_end: HashSet<usize> = hits.iter().map(|h| h.words.end).collect();
    let lookback = ctx.secs(o.lookback_s);
    let break_gap = ctx.secs(o.break_gap_s);
    let mut out = Vec::new();
    for hit in &hits {
        let k0 = hit.words.start;
        let kw_start = ctx.words[k0].start;
        let limit = kw_start.saturating_sub(lookback);
        let mut s = k0;
        let mut bounded = false;
        while s > 0 {
            let prev = &ctx.words[s - 1];
            if keyword_end.contains(&s) {
                break; // an earlier keyword ends here
            }
            if prev.tokens.iter().any(|t| protected.contains(t)) {
                break;
            }
            if s < k0 {
                let cur = &ctx.words[s];
                let gap = cur.start.saturating_sub(prev.end);
                if ends_sentence(&prev.text) || gap >= break_gap {
                    break;
                }
            }
            if prev.start < limit {
                bounded = true;
                break;
            }
            s -= 1;
        }
        if bounded {
            warnings.push(Warning::new(
                WarningCode::NoSentenceBreak,
                format!(
                    "no sentence break within {} s before the retake keyword at {} ms; the take \
                     cut starts at {} ms",
                    o.lookback_s,
                    frames_to_ms(kw_start, ctx.rate),
                    frames_to_ms(ctx.words[s].start, ctx.rate)
                ),
            ));
        }
        let a = ctx.words[s].start;
        let b = ctx.words[hit.words.end - 1].end;
        if a < b {
            let take: Vec<&str> = ctx.words[s..k0].iter().map(|w| w.text.as_str()).collect();
            let detail = if take.is_empty() {
                format!("retake keyword {:?}", ctx.words[k0].text)
            } else {
                format!("retake {:?} + keyword {:?}", take.join(" "), ctx.words[k0].text)
            };
            out.push(Op::remove(Reason::Flubber, a..b, detail));
        }
    }
    out
}
