//! Any bytes as a transcript, through `Transcript::parse_bytes` for every format: a validated
//! transcript or an `InvalidInput` naming the field, never a panic; a parsed transcript keeps
//! its invariants and writes back (native, SRT, WebVTT) without panicking.

#![no_main]

use assembly_core::Error;
use assembly_core::transcript::{CueOptions, Transcript, TranscriptFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in TranscriptFormat::ALL {
        match Transcript::parse_bytes(data, format) {
            Ok((t, _warnings)) => {
                let words = t.words();
                for w in words {
                    assert!(w.start_s.is_finite() && w.start_s >= 0.0, "{format}: {w:?}");
                    assert!(w.end_s.is_finite() && w.end_s >= w.start_s, "{format}: {w:?}");
                    assert!(!w.text.trim().is_empty(), "{format}: empty word {w:?}");
                }
                for p in words.windows(2) {
                    assert!(p[0].start_s <= p[1].start_s, "{format}: unsorted {p:?}");
                    assert!(p[0].end_s <= p[1].start_s, "{format}: overlap {p:?}");
                }
                if let Err(e) = t.to_native() {
                    panic!("{format}: a parsed transcript must write back: {e}");
                }
                let cues = CueOptions::default();
                let _ = t.to_srt(&cues);
                let _ = t.to_vtt(&cues);
            }
            Err(Error::InvalidInput { field, detail }) => {
                assert!(!field.is_empty(), "{format}: error without a field: {detail}");
            }
            Err(other) => panic!("{format}: unexpected error variant: {other:?}"),
        }
    }
});
