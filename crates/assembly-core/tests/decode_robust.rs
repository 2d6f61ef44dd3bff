//! Hostile input never panics, hangs or allocates without bound.
//!
//! Random bytes, random bytes behind a real container signature, and mutated fixtures (bit
//! flips, truncations, spliced headers, overwritten size fields, cut-out and repeated ranges)
//! go through `decode_bytes` with tight limits. Each case must return either audio within the
//! limits or an ordinary error (`Decode`, `UnsupportedFormat`, `LimitExceeded`); a panic caught
//! inside symphonia counts as a failure too. A counting allocator measures the peak memory each
//! case allocates, which must stay under a fixed bound however large the headers claim to be.

// The counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::OnceLock;

use assembly_core::load::{DecodeOptions, decode_bytes};
use assembly_core::{CancelToken, Error, Limits};
use proptest::prelude::*;

struct CountingAlloc;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only
// adds bookkeeping in thread-local cells, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Count the moment both blocks may exist, then release the old one.
            track(new_size as isize);
            track(-(layout.size() as isize));
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Tight limits: 4 MiB decoded, 60 s, 1 MiB in, 16 corrupt packets.
fn tight() -> DecodeOptions {
    DecodeOptions {
        limits: Limits {
            max_duration_s: 60.0,
            max_channels: 8,
            max_sample_rate: 384_000,
            max_file_bytes: 1 << 20,
            max_decoded_bytes: 4 << 20,
            max_corrupt_packets: 16,
        },
        gapless: true,
        threads: None,
    }
}

/// Most bytes one decode may allocate at its peak under [`tight`] limits: the 4 MiB of audio,
/// room for one reallocation of it, and symphonia's own buffers (a FLAC block of 65535 frames
/// × 8 channels is 2 MiB per copy).
const PEAK_BOUND: isize = 32 << 20;

/// Decodes `bytes` and checks the result; returns a description of what is wrong.
fn check(bytes: &[u8]) -> Result<(), String> {
    let opts = tight();
    let limits = &opts.limits;
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let result = decode_bytes(bytes, &opts, &CancelToken::new());
    let peak = PEAK.with(Cell::get) - before;
    if peak > PEAK_BOUND {
        return Err(format!("allocated {peak} bytes at peak (bound {PEAK_BOUND})"));
    }
    match result {
        Ok(d) => {
            let a = &d.audio;
            let (frames, ch, rate) =
                (a.frames() as u64, a.channel_count() as u64, a.sample_rate().get());
            if ch == 0 || ch > u64::from(limits.max_channels) {
                return Err(format!("{ch} channels"));
            }
            if rate > limits.max_sample_rate {
                return Err(format!("rate {rate}"));
            }
            if frames * ch * 4 > limits.max_decoded_bytes {
                return Err(format!("{frames} frames × {ch} ch over the decoded-bytes limit"));
            }
            if frames as f64 > limits.max_duration_s * f64::from(rate) {
                return Err(format!("{frames} frames at {rate} Hz over the duration limit"));
            }
            if d.info.frames != frames || d.corrupt_packets > limits.max_corrupt_packets {
                return Err(format!("inconsistent report: {:?} vs {frames} frames", d.info));
            }
            Ok(())
        }
        Err(Error::Decode { detail, .. }) if detail.contains("panicked") => {
            Err(format!("symphonia panicked: {detail}"))
        }
        Err(
            Error::Decode { .. } | Error::UnsupportedFormat { .. } | Error::LimitExceeded { .. },
        ) => Ok(()),
        Err(other) => Err(format!("unexpected error variant: {other:?}")),
    }
}

fn fixtures() -> &'static [Vec<u8>] {
    static FIXTURES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !matches!(p.extension().and_then(|e| e.to_str()), Some("md" | "sh")))
            .collect();
        names.sort();
        assert!(names.len() >= 19, "fixtures missing: {names:?}");
        names.iter().map(|p| std::fs::read(p).unwrap()).collect()
    })
}

/// How to damage a fixture.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip bit `bit` of the byte at `pos` (taken modulo the length), several times.
    Flips(Vec<(usize, u8)>),
    /// Keep only the first `at` bytes (modulo the length).
    Truncate(usize),
    /// The first `head` bytes of fixture `other`, then this fixture from `from` on.
    Splice { other: usize, head: usize, from: usize },
    /// Write a 32-bit value (both byte orders) at `pos` within the first 4 KiB: size fields.
    Overwrite { pos: usize, value: u32, big_endian: bool },
    /// Remove `len` bytes at `pos`.
    Cut { pos: usize, len: usize },
    /// Repeat `len` bytes at `pos` `times` times.
    Repeat { pos: usize, len: usize, times: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        prop::collection::vec((any::<usize>(), 0u8..8), 1..16).prop_map(Mutation::Flips),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0usize..512, any::<usize>())
            .prop_map(|(other, head, from)| Mutation::Splice { other, head, from }),
        (
            0usize..4096,
            prop_oneof![
                Just(0u32),
                Just(1),
                Just(0x7FFF_FFFF),
                Just(0x8000_0000),
                Just(u32::MAX),
                Just(0xFFFF_FFF0),
                any::<u32>()
            ],
            any::<bool>()
        )
            .prop_map(|(pos, value, big_endian)| Mutation::Overwrite {
                pos,
                value,
                big_endian
            }),
        (any::<usize>(), 1usize..4096).prop_map(|(pos, len)| Mutation::Cut { pos, len }),
        (any::<usize>(), 1usize..2048, 1u8..8).prop_map(|(pos, len, times)| Mutation::Repeat {
            pos,
            len,
            times
        }),
    ]
}

fn apply(base: &[u8], m: &Mutation) -> Vec<u8> {
    let mut b = base.to_vec();
    let n = b.len().max(1);
    match m {
        Mutation::Flips(flips) => {
            for &(pos, bit) in flips {
                if let Some(byte) = b.get_mut(pos % n) {
                    *byte ^= 1 << bit;
                }
            }
        }
        Mutation::Truncate(at) => b.truncate(at % n),
        Mutation::Splice { other, head, from } => {
            let all = fixtures();
            let o = &all[other % all.len()];
            let mut out = o[..(*head).min(o.len())].to_vec();
            out.extend_from_slice(&b[from % n..]);
            b = out;
        }
        Mutation::Overwrite { pos, value, big_endian } => {
            let bytes = if *big_endian { value.to_be_bytes() } else { value.to_le_bytes() };
            for (i, v) in bytes.iter().enumerate() {
                if let Some(byte) = b.get_mut(pos + i) {
                    *byte = *v;
                }
            }
        }
        Mutation::Cut { pos, len } => {
            let start = pos % n;
            let end = (start + len).min(b.len());
            b.drain(start..end);
        }
        Mutation::Repeat { pos, len, times } => {
            let start = pos % n;
            let end = (start + len).min(b.len());
            let chunk = b[start..end].to_vec();
            for _ in 0..*times {
                b.splice(end..end, chunk.iter().copied());
            }
        }
    }
    b
}

/// Real container signatures, so random bodies reach the format readers behind the probe.
const SIGNATURES: &[&[u8]] = &[
    b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00",
    b"RIFF\xff\xff\xff\xffWAVEfmt \x28\x00\x00\x00\xfe\xff",
    b"FORM\x00\x00\x10\x00AIFFCOMM\x00\x00\x00\x12",
    b"caff\x00\x01\x00\x00desc",
    b"fLaC\x00\x00\x00\x22",
    b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00",
    b"ID3\x04\x00\x00\x00\x00\x01\x00",
    b"\xff\xfb\x90\x64",
    b"\xff\xf3\x48\xc4",
    b"\xff\xf1\x50\x80",
    b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00",
    b"\x1a\x45\xdf\xa3",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_rejected_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        check(&bytes).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn random_bodies_behind_real_signatures(
        sig in 0..SIGNATURES.len(),
        body in prop::collection::vec(any::<u8>(), 0..8192),
    ) {
        let mut bytes = SIGNATURES[sig].to_vec();
        bytes.extend_from_slice(&body);
        check(&bytes).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_never_panic_or_overallocate(which in any::<usize>(), m in mutation()) {
        let all = fixtures();
        let bytes = apply(&all[which % all.len()], &m);
        check(&bytes).map_err(|e| TestCaseError::fail(format!("{e} (fixture {}, {m:?})", which % all.len())))?;
    }
}

#[test]
fn every_fixture_passes_the_check_unmutated() {
    // The check itself must accept good input (Opus gives UnsupportedFormat, also fine).
    for (i, f) in fixtures().iter().enumerate() {
        check(f).unwrap_or_else(|e| panic!("fixture {i}: {e}"));
    }
}

#[test]
fn the_allocation_bound_is_measured() {
    // The counter sees the decoded buffer: 64214 frames of f32 is 256856 bytes.
    let wav = &fixtures().iter().find(|f| f.len() == 128_472).expect("speech.wav");
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let d = decode_bytes(wav, &tight(), &CancelToken::new()).unwrap();
    let peak = PEAK.with(Cell::get) - before;
    assert_eq!(d.audio.frames(), 64_214);
    assert!(peak >= 256_856, "peak {peak}");
    assert!(peak < 4 << 20, "peak {peak}");
}
