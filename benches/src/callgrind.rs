//! The instruction-count guard's bookkeeping: the committed baseline (stage -> Ir, with the
//! toolchain it was recorded on and why), parsing callgrind's output, and the comparison that
//! fails on growth over [`MAX_GROWTH_PERCENT`].
//!
//! `scripts/callgrind-check.sh` runs each stage of `stage_cost` under valgrind and hands the
//! counts to `stage_cost compare`, which uses this module. See `docs/performance.md`,
//! "Instruction-count guard".

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Growth of a stage's instruction count, in percent of the baseline, that fails the check.
pub const MAX_GROWTH_PERCENT: f64 = 5.0;

/// Shrink, in percent, past which the report suggests re-recording the baseline (otherwise
/// later growth up to the shrink hides under the old, higher number).
pub const UPDATE_HINT_SHRINK_PERCENT: f64 = 2.0;

/// The committed baseline, `benches/callgrind-baseline.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Why this baseline was recorded (the change that moved the counts).
    pub reason: String,
    /// `rustc -V` of the toolchain that built the measured binary.
    pub rustc: String,
    /// `valgrind --version` used to count.
    pub valgrind: String,
    /// Instructions executed (callgrind's `Ir`) in each stage's measured region.
    pub stages: BTreeMap<String, u64>,
}

impl Baseline {
    /// Parses the baseline file's text.
    ///
    /// # Errors
    ///
    /// A message naming the problem if the JSON is malformed or has unknown fields.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("callgrind baseline: {e}"))
    }

    /// The file's text: pretty JSON, stages sorted by name, a trailing newline.
    ///
    /// # Errors
    ///
    /// Only if serialization fails (it does not for this type).
    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string_pretty(self).map(|s| s + "\n").map_err(|e| e.to_string())
    }
}

/// The instruction count of the dump callgrind wrote for the measured region: the
/// `summary:` line (or `totals:`, which older valgrind writes) of a callgrind output file.
/// With only the default event collected, that line holds one number, `Ir`.
///
/// # Errors
///
/// A message if neither line is present or its first number does not parse.
pub fn parse_callgrind_ir(text: &str) -> Result<u64, String> {
    let line = text
        .lines()
        .find(|l| l.starts_with("summary:"))
        .or_else(|| text.lines().find(|l| l.starts_with("totals:")))
        .ok_or("callgrind output has no `summary:` or `totals:` line")?;
    let first = line.split_whitespace().nth(1).ok_or_else(|| format!("empty line {line:?}"))?;
    first.parse().map_err(|e| format!("bad count in {line:?}: {e}"))
}

/// One stage's comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Stage name.
    pub stage: String,
    /// Baseline count, if the baseline has the stage.
    pub baseline: Option<u64>,
    /// Measured count, if the stage was measured.
    pub now: Option<u64>,
}

impl Row {
    /// Change from the baseline in percent (positive = more instructions), if both exist.
    pub fn change_percent(&self) -> Option<f64> {
        match (self.baseline, self.now) {
            (Some(b), Some(n)) if b > 0 => Some((n as f64 - b as f64) / b as f64 * 100.0),
            _ => None,
        }
    }

    /// Whether this row fails the check: grew over the limit, or is measured but has no
    /// baseline (a new stage must be recorded deliberately), or is in the baseline but was not
    /// measured (a stage silently dropped from the guard).
    pub fn fails(&self) -> bool {
        match (self.baseline, self.now) {
            (Some(_), Some(_)) => self.change_percent().is_some_and(|c| c > MAX_GROWTH_PERCENT),
            _ => true,
        }
    }
}

/// The outcome of comparing measured counts with the baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// One row per stage in either the baseline or the measurement, sorted by name.
    pub rows: Vec<Row>,
    /// Set when the measuring toolchain differs from the baseline's (counts are then only
    /// roughly comparable).
    pub toolchain_note: Option<String>,
}

impl Comparison {
    /// Compares `now` (stage -> Ir) measured with `rustc`/`valgrind` against `baseline`.
    pub fn new(
        baseline: &Baseline,
        now: &BTreeMap<String, u64>,
        rustc: &str,
        valgrind: &str,
    ) -> Self {
        let mut names: Vec<&String> = baseline.stages.keys().chain(now.keys()).collect();
        names.sort();
        names.dedup();
        let rows = names
            .into_iter()
            .map(|s| Row {
                stage: s.clone(),
                baseline: baseline.stages.get(s).copied(),
                now: now.get(s).copied(),
            })
            .collect();
        let mut notes = Vec::new();
        if baseline.rustc.trim() != rustc.trim() {
            notes.push(format!("rustc: baseline {:?}, now {:?}", baseline.rustc, rustc.trim()));
        }
        if baseline.valgrind.trim() != valgrind.trim() {
            notes.push(format!(
                "valgrind: baseline {:?}, now {:?}",
                baseline.valgrind,
                valgrind.trim()
            ));
        }
        let toolchain_note = (!notes.is_empty()).then(|| notes.join("; "));
        Self { rows, toolchain_note }
    }

    /// Whether any stage fails (see [`Row::fails`]).
    pub fn failed(&self) -> bool {
        self.rows.iter().any(Row::fails)
    }

    /// Stages that shrank by more than [`UPDATE_HINT_SHRINK_PERCENT`].
    pub fn shrunk(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.change_percent().is_some_and(|c| c < -UPDATE_HINT_SHRINK_PERCENT))
            .map(|r| r.stage.as_str())
            .collect()
    }

    /// The printed table: stage, baseline, now, change %, verdict; then notes and hints.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<16} {:>16} {:>16} {:>9}  verdict",
            "stage", "baseline Ir", "now Ir", "change"
        );
        let num = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), group_digits);
        for r in &self.rows {
            let change = r.change_percent().map_or_else(|| "-".to_owned(), |c| format!("{c:+.2}%"));
            let verdict = match (r.baseline, r.now) {
                (None, _) => "FAIL (not in baseline)",
                (_, None) => "FAIL (not measured)",
                _ if r.fails() => "FAIL (grew > 5%)",
                _ if r.change_percent().is_some_and(|c| c < -UPDATE_HINT_SHRINK_PERCENT) => {
                    "ok (shrank)"
                }
                _ => "ok",
            };
            let _ = writeln!(
                out,
                "{:<16} {:>16} {:>16} {:>9}  {verdict}",
                r.stage,
                num(r.baseline),
                num(r.now),
                change
            );
        }
        if let Some(note) = &self.toolchain_note {
            let _ = writeln!(
                out,
                "\nWARNING: toolchain differs from the baseline's ({note}).\n\
                 Instruction counts are only comparable on the same toolchain; the check still\n\
                 compares and still fails on growth over 5%. If the difference is the compiler's,\n\
                 re-record the baseline on the new toolchain in its own commit:\n\
                 scripts/callgrind-check.sh --update --reason \"toolchain update to ...\""
            );
        }
        let shrunk = self.shrunk();
        if !shrunk.is_empty() {
            let _ = writeln!(
                out,
                "\nhint: {} shrank by more than {UPDATE_HINT_SHRINK_PERCENT}%; record the lower counts \
                 (in their own commit, with the reason) so later growth is caught:\n\
                 scripts/callgrind-check.sh --update --reason \"...\"",
                shrunk.join(", ")
            );
        }
        out
    }
}

/// `1234567` -> `"1,234,567"`.
pub fn group_digits(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(stages: &[(&str, u64)]) -> Baseline {
        Baseline {
            reason: "test".into(),
            rustc: "rustc 1.95.0".into(),
            valgrind: "valgrind-3.19.0".into(),
            stages: stages.iter().map(|(s, v)| ((*s).to_owned(), *v)).collect(),
        }
    }

    fn now(stages: &[(&str, u64)]) -> BTreeMap<String, u64> {
        stages.iter().map(|(s, v)| ((*s).to_owned(), *v)).collect()
    }

    #[test]
    fn growth_over_five_percent_fails_at_the_boundary() {
        let b = baseline(&[("a", 1_000_000)]);
        // +5.0000% exactly passes, +5.0001% fails.
        let ok = Comparison::new(&b, &now(&[("a", 1_050_000)]), "rustc 1.95.0", "valgrind-3.19.0");
        assert!(!ok.failed());
        let bad = Comparison::new(&b, &now(&[("a", 1_050_001)]), "rustc 1.95.0", "valgrind-3.19.0");
        assert!(bad.failed());
        assert!((bad.rows[0].change_percent().unwrap() - 5.0001).abs() < 1e-9);
        assert!(bad.table().contains("FAIL (grew > 5%)"));
    }

    #[test]
    fn shrink_passes_with_a_hint_and_small_noise_passes_quietly() {
        let b = baseline(&[("a", 1_000_000), ("b", 2_000_000)]);
        let c = Comparison::new(
            &b,
            &now(&[("a", 900_000), ("b", 2_010_000)]),
            "rustc 1.95.0",
            "valgrind-3.19.0",
        );
        assert!(!c.failed());
        assert_eq!(c.shrunk(), vec!["a"]);
        let t = c.table();
        assert!(t.contains("-10.00%"), "{t}");
        assert!(t.contains("+0.50%"), "{t}");
        assert!(t.contains("hint: a shrank"), "{t}");
        assert!(c.toolchain_note.is_none());
    }

    #[test]
    fn missing_or_new_stages_fail() {
        let b = baseline(&[("a", 100), ("gone", 100)]);
        let c =
            Comparison::new(&b, &now(&[("a", 100), ("new", 5)]), "rustc 1.95.0", "valgrind-3.19.0");
        let fails: Vec<_> = c.rows.iter().filter(|r| r.fails()).map(|r| r.stage.as_str()).collect();
        assert_eq!(fails, vec!["gone", "new"]);
    }

    #[test]
    fn toolchain_difference_is_reported_and_still_compared() {
        let b = baseline(&[("a", 1_000)]);
        let c = Comparison::new(&b, &now(&[("a", 1_100)]), "rustc 1.96.0", "valgrind-3.19.0");
        assert!(c.failed());
        let note = c.toolchain_note.as_deref().unwrap();
        assert!(note.contains("1.96.0") && !note.contains("valgrind"), "{note}");
        assert!(c.table().contains("WARNING: toolchain differs"));
    }

    #[test]
    fn parses_callgrind_summary_and_totals() {
        let text = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=(1) main\n0 5\n\
                    summary: 123456789\ntotals: 123456789\n";
        assert_eq!(parse_callgrind_ir(text), Ok(123_456_789));
        assert_eq!(parse_callgrind_ir("totals: 42\n"), Ok(42));
        assert!(parse_callgrind_ir("events: Ir\n").is_err());
        assert!(parse_callgrind_ir("summary: x\n").is_err());
    }

    #[test]
    fn baseline_round_trips_and_rejects_unknown_fields() {
        let b = baseline(&[("decode_mp3", 7), ("assembler", 9)]);
        let text = b.to_json().unwrap();
        assert_eq!(Baseline::from_json(&text).unwrap(), b);
        let bad = text.replacen("\"reason\"", "\"extra\": 1, \"reason\"", 1);
        assert!(Baseline::from_json(&bad).unwrap_err().contains("extra"));
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_000), "1,000");
        assert_eq!(group_digits(12_345_678_901), "12,345,678,901");
    }
}
