//! The house rule, enforced: stages flow one way and no two modules import each other.
//!
//! Reads every `crate::` and `super::` path in `src/` (outside `#[cfg(test)]` items: a test
//! may use any module) and fails when
//! 1. a module imports a module of a later layer in [`LAYERS`] (a stage reaching forward, or a
//!    leaf such as `dsp` reaching into any stage), or
//! 2. modules import each other, directly or round a longer cycle (checked file by file, so
//!    `edit::plan` → `edit::merge` → `edit::plan` fails too). A parent's `mod` and `pub use`
//!    of its own children are its declarations, not imports, and are not counted.
//!
//! The order below is the one written in `docs/architecture.md` ("Layers"); change both
//! together, and only with a reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules, in layers: a module may import modules of its own or an earlier layer
/// (never a cycle), never a later one.
const LAYERS: &[&[&str]] = &[
    // Leaves: the vocabulary every stage shares; they import no stage.
    &[
        "error", "limits", "cancel", "warning", "buffer", "source", "compact", "atomic", "par",
        "meta", "progress", "dsp", "mp3", "synth",
    ],
    // The stages, in the order the audio flows.
    &["load", "transcript"],
    &["analyze"],
    &["edit"],
    &["arrange"],
    &["master"],
    &["render"],
    &["encode"],
    // On top: the spec that names every stage's options, the checkpoints, the codec
    // prediction (it renders and encodes excerpts), the review page (it decodes the written
    // episode and reads the edit plan and the arrangement), the Assembler.
    &["spec", "checkpoint", "predict", "review"],
    &["assembler"],
];

/// Module path (`edit::plan`) to the code of its file, with comments and `#[cfg(test)]`
/// items removed.
fn read_crate(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> =
                rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().map(String::as_str) == Some("mod") {
                parts.pop();
            }
            let name = if parts == ["lib"] { String::new() } else { parts.join("::") };
            out.insert(name, strip(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// Removes comments, string literals and every item marked `#[cfg(test)]`.
fn strip(code: &str) -> String {
    let b = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < b.len() {
        if code[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if code[i..].starts_with("#[cfg(test)]") {
            i += "#[cfg(test)]".len();
            // Skip the item: up to its `;` or through its brace-matched body.
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    b';' if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let ch = code[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Expands a use tree (`a::{b, c::{d, self}}`) into paths (`a::b`, `a::c::d`, `a::c`).
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let join = |p: &str, s: &str| if p.is_empty() { s.to_string() } else { format!("{p}::{s}") };
    match tree.find('{') {
        Some(open) => {
            let head = tree[..open].trim().trim_end_matches("::");
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let base = join(prefix, head);
            let (mut depth, mut start) = (0, 0);
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&base, &inner[start..k], out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            expand(&base, &inner[start..], out);
        }
        None if tree.is_empty() => {}
        None => {
            let path = tree.split(" as ").next().unwrap().trim();
            let path = path.strip_suffix("::self").unwrap_or(path);
            out.push(if path == "self" { prefix.to_string() } else { join(prefix, path) });
        }
    }
}

/// Every path a module's code names: `use` trees expanded, and `crate::`/`super::` paths in
/// expressions and types.
fn paths(code: &str) -> BTreeSet<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(k) = rest.find("use ") {
        let before = rest[..k].chars().next_back();
        let after = &rest[k + 4..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(end) = after.find(';') {
            expand("", &after[..end], &mut out);
        }
    }
    for anchor in ["crate::", "super::"] {
        let mut at = 0;
        while let Some(k) = code[at..].find(anchor) {
            let start = at + k;
            let end = code[start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| start + e);
            out.push(code[start..end].trim_end_matches(':').to_string());
            at = end;
        }
    }
    out.into_iter().collect()
}

/// The module a path refers to, seen from module `from`: the longest prefix that is a module
/// of the crate; names re-exported at the crate root resolve through `root_names`.
fn resolve(
    from: &str,
    path: &str,
    modules: &BTreeSet<String>,
    root_names: &BTreeMap<String, String>,
) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<&str> = if from.is_empty() { vec![] } else { from.split("::").collect() };
    match segs.first() {
        Some(&"crate") => {
            base.clear();
            segs.remove(0);
        }
        Some(&"super") => {
            while segs.first() == Some(&"super") {
                segs.remove(0);
                base.pop();
            }
        }
        Some(&"self") => {
            segs.remove(0);
        }
        _ => return None, // std, a dependency, or a name in scope
    }
    let mut full: Vec<&str> = base;
    full.extend(segs);
    for n in (1..=full.len()).rev() {
        let m = full[..n].join("::");
        if modules.contains(&m) {
            return Some(m);
        }
    }
    full.first().and_then(|name| root_names.get(*name).cloned())
}

/// Names the crate root re-exports (`pub use buffer::{AudioBuffer, ..}`), with their module.
fn root_names(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for p in paths(lib) {
        let segs: Vec<&str> = p.split("::").collect();
        if segs.len() >= 2 && modules.contains(segs[0]) {
            names.insert(segs[segs.len() - 1].to_string(), segs[0].to_string());
        }
    }
    names
}

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap();
    LAYERS.iter().position(|l| l.contains(&top))
}

/// Every violation of the two rules in a crate given as module path → code.
fn violations(files: &BTreeMap<String, String>) -> Vec<String> {
    let modules: BTreeSet<String> = files.keys().filter(|m| !m.is_empty()).cloned().collect();
    let root = root_names(files.get("").map_or("", String::as_str), &modules);
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, code) in files.iter().filter(|(m, _)| !m.is_empty()) {
        let Some(from_layer) = layer_of(from) else {
            problems.push(format!("{from}: not in LAYERS (add it to the test and the doc)"));
            continue;
        };
        for p in paths(code) {
            let Some(to) = resolve(from, &p, &modules, &root) else { continue };
            // Itself, or one of its own children (declarations and re-exports).
            if to == *from || to.starts_with(&format!("{from}::")) {
                continue;
            }
            if layer_of(&to).is_some_and(|to_layer| to_layer > from_layer) {
                problems.push(format!("{from} imports {to} (`{p}`), a later layer"));
            }
            edges.entry(from.clone()).or_default().insert(to);
        }
    }
    // Cycles: a depth-first search for a back edge, reporting the cycle it closes.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 on the stack, 2 done
    let mut stack: Vec<&str> = Vec::new();
    fn visit<'a>(
        m: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        problems: &mut Vec<String>,
    ) {
        state.insert(m, 1);
        stack.push(m);
        for to in edges.get(m).into_iter().flatten() {
            match state.get(to.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| *s == to).unwrap();
                    let mut cycle: Vec<&str> = stack[at..].to_vec();
                    cycle.push(to);
                    problems.push(format!("import cycle: {}", cycle.join(" -> ")));
                }
                Some(_) => {}
                None => visit(to, edges, state, stack, problems),
            }
        }
        stack.pop();
        state.insert(m, 2);
    }
    for m in edges.keys() {
        if !state.contains_key(m.as_str()) {
            visit(m, &edges, &mut state, &mut stack, &mut problems);
        }
    }
    problems
}

#[test]
fn stages_flow_one_way_and_no_modules_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_crate(&src);
    assert!(files.len() > 40, "read {} files from {}", files.len(), src.display());
    let problems = violations(&files);
    assert!(problems.is_empty(), "module order broken:\n  {}", problems.join("\n  "));
}

fn crate_of(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files.iter().map(|(m, c)| (m.to_string(), strip(c))).collect()
}

#[test]
fn a_backward_import_fails() {
    let files = crate_of(&[
        ("", "mod analyze; mod master; pub use master::Limiter;"),
        ("master", "use crate::analyze::loudness;"),
        ("analyze", "mod loudness;"),
        // The true-peak scanner fetched from a later stage, twice: by path and by a root name.
        ("analyze::loudness", "use crate::master::Scanner; fn f() { crate::Limiter::new(); }"),
    ]);
    let p = violations(&files);
    assert_eq!(
        p,
        [
            "analyze::loudness imports master (`crate::Limiter::new`), a later layer",
            "analyze::loudness imports master (`crate::master::Scanner`), a later layer",
            "import cycle: analyze::loudness -> master -> analyze::loudness",
        ]
    );
}

#[test]
fn siblings_that_import_each_other_fail_and_test_code_is_exempt() {
    let files = crate_of(&[
        ("edit", "mod plan; mod merge; mod splice; pub use plan::Plan;"),
        ("edit::plan", "use super::{merge::Merged, splice::fade};"),
        ("edit::splice", "use super::merge::Merged;"),
        ("edit::merge", "use super::plan::Reason;\n#[cfg(test)]\nmod tests { use crate::render; }"),
        ("render", "// crate::edit would be fine; comments do not count: use crate::assembler;"),
    ]);
    let p = violations(&files);
    assert_eq!(
        p,
        [
            "import cycle: edit::merge -> edit::plan -> edit::merge",
            "import cycle: edit::merge -> edit::plan -> edit::splice -> edit::merge",
        ]
    );
    let fixed = crate_of(&[
        ("edit", "mod plan; mod merge;"),
        ("edit::plan", "use super::merge::{Merged, Reason};"),
        ("edit::merge", "#[cfg(test)]\nuse super::plan::Plan;\nstruct Merged;"),
    ]);
    assert_eq!(violations(&fixed), Vec::<String>::new());
}

#[test]
fn use_trees_expand_fully() {
    let mut out = Vec::new();
    expand("", "crate::{dsp::{self, meter::X as Y}, error::{Error, Result}}", &mut out);
    assert_eq!(
        out,
        ["crate::dsp", "crate::dsp::meter::X", "crate::error::Error", "crate::error::Result"]
    );
}
