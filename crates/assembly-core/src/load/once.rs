//! Each distinct input file decoded once, however many ids name it.
//!
//! A template may give hundreds of segments (or beds, clips) their own asset ids that all name
//! one file; decoding per id would decode that file hundreds of times. Files are told apart by
//! their canonical path (symlinks and `.` resolved), so two spellings of one file share one
//! decode; ids naming one file share its result through an [`Arc`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;

/// Runs `decode(id, path)` once per distinct file of `inputs` (by canonical path, in the
/// order of first appearance) and maps every id to its file's result.
///
/// A path that cannot be canonicalized (missing, unreadable folder) is its own file: `decode`
/// then reports the real error for it.
///
/// # Errors
///
/// The first error `decode` returns.
pub(crate) fn decode_each_once<'a, T>(
    inputs: impl IntoIterator<Item = (&'a String, &'a PathBuf)>,
    mut decode: impl FnMut(&str, &Path) -> Result<T>,
) -> Result<BTreeMap<String, Arc<T>>> {
    let mut by_file: HashMap<PathBuf, Arc<T>> = HashMap::new();
    let mut out = BTreeMap::new();
    for (id, path) in inputs {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        let decoded = match by_file.get(&key) {
            Some(shared) => Arc::clone(shared),
            None => {
                let fresh = Arc::new(decode(id, path)?);
                by_file.insert(key, Arc::clone(&fresh));
                fresh
            }
        };
        out.insert(id.clone(), decoded);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn hundreds_of_ids_naming_one_file_decode_it_once() {
        let dir = std::env::temp_dir().join(format!("once-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let a = dir.join("a.wav");
        let b = dir.join("b.wav");
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let mut inputs = BTreeMap::new();
        for i in 0..300 {
            // one file under three spellings: plain, through `sub/..`, and `./`-prefixed
            let spelled = match i % 3 {
                0 => a.clone(),
                1 => dir.join("sub").join("..").join("a.wav"),
                _ => dir.join(".").join("a.wav"),
            };
            inputs.insert(format!("seg{i}"), spelled);
        }
        inputs.insert("bed".to_string(), b.clone());
        let mut calls = Vec::new();
        let out = decode_each_once(&inputs, |id, path| {
            calls.push(id.to_string());
            Ok(std::fs::read(path).unwrap())
        })
        .unwrap();
        assert_eq!(calls.len(), 2, "decoded {calls:?}");
        assert_eq!(out.len(), 301);
        assert!(
            out.values().filter(|v| v.as_slice() == b"a").all(|v| Arc::ptr_eq(v, &out["seg0"]))
        );
        assert_eq!(out["bed"].as_slice(), b"b");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_decode_is_reported_and_a_missing_file_is_its_own_input() {
        let mut inputs = BTreeMap::new();
        inputs.insert("x".to_string(), PathBuf::from("/no/such/dir/x.wav"));
        inputs.insert("y".to_string(), PathBuf::from("/no/such/dir/y.wav"));
        let mut seen = Vec::new();
        let err = decode_each_once(&inputs, |id, _| -> Result<()> {
            seen.push(id.to_string());
            Err(Error::invalid_input("assets", format!("cannot read {id}")))
        })
        .unwrap_err();
        assert_eq!(seen, ["x"]);
        assert!(err.to_string().contains("cannot read x"), "{err}");
    }
}
