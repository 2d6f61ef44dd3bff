//! Filler words and phrases ("um", "uh", "you know").

use std::collections::HashSet;

use super::Ctx;
use super::matcher::{PhraseMatcher, tokens};
use super::merge::Op;
use super::merge::Reason;
use super::options::CleanupOptions;

/// The set of protected tokens.
pub(crate) fn protected_set(words: &[String]) -> HashSet<String> {
    words.iter().flat_map(|w| tokens(w)).collect()
}

/// One removal per filler match: the words' span, extended by the lead trim (never before the
/// previous word's end) and the tail trim (never past the next word's start). A match
/// containing a protected word is skipped.
pub(crate) fn ops(ctx: &Ctx<'_>, o: &CleanupOptions) -> Vec<Op> {
    let m = PhraseMatcher::new(&o.filler_words, 0);
    if m.is_empty() || ctx.words.is_empty() {
        return Vec::new();
    }
    let protected = protected_set(&o.protected_words);
    let lead = ctx.ms(u64::from(o.filler_lead_trim_ms));
    let tail = ctx.ms(u64::from(o.filler_tail_trim_ms));
    let mut out = Vec::new();
    for hit in m.find(&ctx.word_tokens()) {
        let ws = &ctx.words[hit.words.clone()];
        if ws.iter().any(|w| w.tokens.iter().any(|t| protected.contains(t))) {
            continue;
        }
        let (first, last) = (hit.words.start, hit.words.end - 1);
        let prev_end = if first > 0 { ctx.words[first - 1].end } else { 0 };
        let next_start = ctx.words.get(last + 1).map_or(ctx.n, |w| w.start);
        let s = ctx.words[first].start;
        let e = ctx.words[last].end;
        let a = s.saturating_sub(lead).max(prev_end.min(s));
        let b = (e + tail).min(next_start.max(e)).min(ctx.n);
        if a >= b {
            continue;
        }
        let label = m.label(hit.phrase).to_string();
        let text: Vec<&str> = ws.iter().map(|w| w.text.as_str()).collect();
        let mut op = Op::remove(Reason::Filler, a..b, format!("filler {:?}", text.join(" ")));
        op.label = Some(label);
        out.push(op);
    }
    out
}
