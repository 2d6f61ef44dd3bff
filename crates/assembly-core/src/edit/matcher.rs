//! Case- and punctuation-insensitive matching of words and multi-word phrases against
//! transcript words.
//!
//! A token is normalized by lowercasing and keeping only letters and digits (`"Uh,"` → `uh`,
//! `"mean—"` → `mean`, `"don't"` → `dont`). A phrase matches a run of consecutive words whose
//! tokens, in order, equal the phrase's tokens and end on a word boundary. At each word the
//! longest phrase is tried first; matches do not overlap.

use std::collections::HashMap;
use std::ops::Range;

/// Lowercased letters and digits of `s`.
pub(crate) fn normalize(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// The non-empty normalized tokens of `text` (split on whitespace).
pub(crate) fn tokens(text: &str) -> Vec<String> {
    text.split_whitespace().map(normalize).filter(|t| !t.is_empty()).collect()
}

/// Levenshtein distance, bounded: returns `max + 1` as soon as it is exceeded.
pub(crate) fn edit_distance(a: &str, b: &str, max: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > max {
            return max + 1;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A match: the words it covers and which phrase matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Match {
    pub words: Range<usize>,
    pub phrase: usize,
}

/// A set of phrases to find in a word sequence.
pub(crate) struct PhraseMatcher {
    /// Normalized tokens of each phrase and its label (tokens joined by a space).
    phrases: Vec<(Vec<String>, String)>,
    /// Phrase indices by first token, longest first (exact matching only).
    by_first: HashMap<String, Vec<usize>>,
    /// Largest edit distance per token (0 = exact).
    fuzz: usize,
}

impl PhraseMatcher {
    /// A matcher for `phrases` (duplicates and phrases without letters or digits are dropped).
    pub(crate) fn new<S: AsRef<str>>(phrases: &[S], fuzz: u32) -> Self {
        let mut list: Vec<(Vec<String>, String)> = Vec::new();
        for p in phrases {
            let t = tokens(p.as_ref());
            if !t.is_empty() && !list.iter().any(|(x, _)| *x == t) {
                let label = t.join(" ");
                list.push((t, label));
            }
        }
        // Longest first; ties keep the given order.
        list.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        let mut by_first: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, (t, _)) in list.iter().enumerate() {
            by_first.entry(t[0].clone()).or_default().push(i);
        }
        Self { phrases: list, by_first, fuzz: fuzz as usize }
    }

    /// True when there is nothing to match.
    pub(crate) fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// The label of phrase `i` (its normalized tokens joined by spaces).
    pub(crate) fn label(&self, i: usize) -> &str {
        &self.phrases[i].1
    }

    fn token_eq(&self, a: &str, b: &str) -> bool {
        if self.fuzz == 0 || b.chars().count() < 4 {
            a == b
        } else {
            edit_distance(a, b, self.fuzz) <= self.fuzz
        }
    }

    /// Does phrase `p` match words starting at `i`? Returns the end word index.
    fn match_at(&self, p: usize, words: &[Vec<String>], i: usize) -> Option<usize> {
        let want = &self.phrases[p].0;
        let mut k = 0;
        let mut w = i;
        while k < want.len() {
            let toks = words.get(w)?;
            if toks.is_empty() || k + toks.len() > want.len() {
                return None;
            }
            for t in toks {
                if !self.token_eq(t, &want[k]) {
                    return None;
                }
                k += 1;
            }
            w += 1;
        }
        Some(w)
    }

    /// All non-overlapping matches in `words` (each the tokens of one word), left to right,
    /// longest phrase first at each position.
    pub(crate) fn find(&self, words: &[Vec<String>]) -> Vec<Match> {
        let mut out = Vec::new();
        if self.phrases.is_empty() {
            return out;
        }
        let all: Vec<usize> = (0..self.phrases.len()).collect();
        let mut i = 0;
        while i < words.len() {
            let candidates: &[usize] = if self.fuzz == 0 {
                match words[i].first().and_then(|t| self.by_first.get(t)) {
                    Some(c) => c,
                    None => {
                        i += 1;
                        continue;
                    }
                }
            } else {
                &all
            };
            let found =
                candidates.iter().find_map(|&p| self.match_at(p, words, i).map(|end| (p, end)));
            match found {
                Some((phrase, end)) => {
                    out.push(Match { words: i..end, phrase });
                    i = end;
                }
                None => i += 1,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(words: &[&str]) -> Vec<Vec<String>> {
        words.iter().map(|w| tokens(w)).collect()
    }

    #[test]
    fn backend_phrase_vector() {
        // DESIGN §5: ["Uh,", "I", "mean—"] matches fillers ["uh", "i mean"].
        let m = PhraseMatcher::new(&["uh", "i mean"], 0);
        let found = m.find(&toks(&["Uh,", "I", "mean—"]));
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].words.clone(), m.label(found[0].phrase)), (0..1, "uh"));
        assert_eq!((found[1].words.clone(), m.label(found[1].phrase)), (1..3, "i mean"));
    }

    #[test]
    fn longest_first_and_word_boundaries() {
        let m = PhraseMatcher::new(&["you", "you know", "you know what"], 0);
        let f = m.find(&toks(&["You", "know", "what?", "you", "knowing"]));
        let got: Vec<_> =
            f.iter().map(|x| (x.words.clone(), m.label(x.phrase).to_string())).collect();
        assert_eq!(got, [(0..3, "you know what".to_string()), (3..4, "you".to_string())]);
        // A multi-token word must be consumed whole: "you know" inside one cue matches.
        let f = m.find(&toks(&["you know", "so"]));
        assert_eq!(f[0].words, 0..1);
        assert_eq!(m.label(f[0].phrase), "you know");
        // Partial word tokens never match a shorter phrase.
        let m2 = PhraseMatcher::new(&["i"], 0);
        assert!(m2.find(&toks(&["I mean"])).is_empty());
    }

    #[test]
    fn fuzzy_matching_is_bounded() {
        assert_eq!(edit_distance("flubber", "flober", 3), 2);
        assert_eq!(edit_distance("flubber", "blubber", 3), 1);
        assert_eq!(edit_distance("flubber", "rubber", 1), 2);
        let m = PhraseMatcher::new(&["flubber"], 1);
        assert_eq!(m.find(&toks(&["Blubber."])).len(), 1);
        assert!(m.find(&toks(&["flober"])).is_empty());
        assert!(PhraseMatcher::new(&["—", ""], 0).is_empty());
    }
}
