//! Any bytes as a job spec: `Spec::from_json`, then (if it parses) `Assembler::new`, and the
//! inline transcript through `Transcript::parse` as a run would. Never a panic; every
//! `InvalidSpec` problem names a JSON path.
//!
//! `Assembler::new` probes files and output folders, so before validating, every path in the
//! spec is rewritten into a private scratch folder (only its plain components are kept: no
//! root, no `..`). The fuzzer can never make it read or write anything outside that folder.

#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use assembly_core::transcript::Transcript;
use assembly_core::{Assembler, Error, Spec};
use libfuzzer_sys::fuzz_target;

/// The scratch folder, with a few files the fuzzer can name (`raw.wav`, `out/`).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("spec_json-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("out")).expect("create scratch folder");
        std::fs::write(dir.join("raw.wav"), b"RIFF").expect("create scratch file");
        std::fs::write(dir.join("words.json"), b"[]").expect("create scratch file");
        dir
    })
}

/// `p` with only its normal components, under the scratch folder.
fn confine(p: &mut PathBuf) {
    let mut out = scratch().to_path_buf();
    let mut any = false;
    for c in p.components() {
        if let Component::Normal(s) = c {
            out.push(s);
            any = true;
        }
    }
    if !any {
        out.push("empty");
    }
    *p = out;
}

fn confine_all(spec: &mut Spec) {
    spec.for_each_path_mut(confine);
}

fn check_problems(e: &Error) {
    match e {
        Error::InvalidSpec { problems } => {
            assert!(!problems.is_empty(), "InvalidSpec without problems");
            for p in problems {
                assert!(!p.path.is_empty(), "problem without a path: {p:?}");
                assert!(!p.message.is_empty(), "problem without a message: {p:?}");
            }
        }
        other => panic!("unexpected error variant: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut spec = match Spec::from_json(text) {
        Ok(s) => s,
        Err(e) => return check_problems(&e),
    };
    confine_all(&mut spec);
    if let Some(t) = &spec.transcript
        && let Some(v) = &t.inline
    {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        match Transcript::parse(&text, t.format) {
            Ok(_) => {}
            Err(Error::InvalidInput { field, .. }) => assert!(!field.is_empty()),
            Err(other) => panic!("unexpected transcript error variant: {other:?}"),
        }
    }
    if let Err(e) = Assembler::new(spec) {
        check_problems(&e);
    }
});
