//! Bad inputs give the right error variant, naming the file; damaged ones decode what they can.

use std::path::{Path, PathBuf};

use assembly_core::load::{DecodeOptions, Decoded, decode_bytes, decode_file, probe_file};
use assembly_core::{CancelToken, Error, Limits, Result, WarningCode};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn decode_with(path: &Path, limits: Limits) -> Result<Decoded> {
    decode_file(path, &DecodeOptions { limits, ..DecodeOptions::default() }, &CancelToken::new())
}

fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn missing_file_is_an_io_error_with_the_path() {
    let path = Path::new("/definitely/not/here/episode.mp3");
    let err = decode_with(path, Limits::default()).unwrap_err();
    match &err {
        Error::Io { op, path: p, source } => {
            assert_eq!(*op, "open");
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(err.to_string().contains("/definitely/not/here/episode.mp3"));
    assert!(matches!(probe_file(path, &Limits::default()), Err(Error::Io { .. })));
}

#[test]
fn empty_file_is_a_clear_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "empty.wav", b"");
    let err = decode_with(&path, Limits::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Decode { path: p, detail, .. } if p == &path && detail.contains("empty")),
        "{err}"
    );
    let err = decode_bytes(&[], &DecodeOptions::default(), &CancelToken::new()).unwrap_err();
    assert_eq!(err.to_string(), "<memory>: cannot decode: file is empty (0 bytes)");
}

#[test]
fn text_named_mp3_is_not_audio() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Show notes\n\nIn this episode we talk about, um, audio.\n".repeat(40);
    let path = write_temp(&dir, "notes.mp3", text.as_bytes());
    let err = decode_with(&path, Limits::default()).unwrap_err();
    match &err {
        Error::Decode { path: p, detail, .. } => {
            assert_eq!(p, &path);
            assert!(detail.contains("not a recognised audio file"), "{detail}");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[test]
fn known_but_unsupported_containers_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut wavpack = b"wvpk".to_vec();
    wavpack.extend_from_slice(&[0u8; 60]);
    let path = write_temp(&dir, "take.wv", &wavpack);
    let err = decode_with(&path, Limits::default()).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedFormat { detail, .. } if detail.contains("wavpack")),
        "{err}"
    );
}

/// `UnsupportedFormat` naming `what`, with the path.
fn expect_unsupported(result: Result<Decoded>, path: &Path, what: &str) {
    match result {
        Err(Error::UnsupportedFormat { path: p, detail }) => {
            assert_eq!(p, path);
            assert!(detail.contains(what), "{}: {detail}", path.display());
        }
        other => {
            panic!("{}: expected UnsupportedFormat naming {what}, got {other:?}", path.display())
        }
    }
}

#[test]
fn containers_we_do_not_read_are_named_not_taken_for_damaged_audio() {
    // A real Wave64 file (ffmpeg, 0.25 s of 440 Hz): symphonia's probe would find an MPEG
    // sync pattern in its PCM and fail on "corrupt packets"; it is named instead.
    let w64 = fixture("tone.w64");
    expect_unsupported(decode_with(&w64, Limits::default()), &w64, "wave64");
    assert!(matches!(probe_file(&w64, &Limits::default()), Err(Error::UnsupportedFormat { .. })));
    // WMA-like (an ASF header object: GUID, size, a few objects' worth of bytes), AMR, raw AC-3.
    let dir = tempfile::tempdir().unwrap();
    let mut asf = vec![0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA];
    asf.extend_from_slice(&[0x00, 0x62, 0xCE, 0x6C]);
    asf.extend_from_slice(&5000u64.to_le_bytes());
    asf.extend((0..4000u32).map(|i| (i * 7 % 251) as u8));
    let mut amr = b"#!AMR\n".to_vec();
    amr.extend(std::iter::repeat_n([0x3C, 0x91, 0x17, 0x16, 0xBE, 0x66, 0x78, 0x00], 50).flatten());
    let mut ac3 = vec![0x0B, 0x77, 0x3E, 0x1C, 0x1C, 0x00];
    ac3.extend(std::iter::repeat_n(0xA5, 2000));
    for (name, bytes, what) in
        [("take.wma", asf, "wma"), ("note.amr", amr, "amr"), ("x.ac3", ac3, "ac-3")]
    {
        let path = write_temp(&dir, name, &bytes);
        expect_unsupported(decode_with(&path, Limits::default()), &path, what);
    }
}

#[test]
fn empty_but_valid_files_are_the_same_clear_error_in_every_container() {
    // Made by ffmpeg from zero seconds of audio (`-t 0`): headers and no samples.
    for name in [
        "empty.wav",
        "empty.flac",
        "empty.ogg",
        "empty.mp3",
        "empty.m4a",
        "empty.opus",
        "empty.webm",
    ] {
        let path = fixture(name);
        for result in [
            decode_with(&path, Limits::default()).map(|_| ()),
            probe_file(&path, &Limits::default()).map(|_| ()),
        ] {
            match result {
                Err(Error::Decode { path: p, detail, .. }) => {
                    assert_eq!(p, path);
                    assert!(detail.contains("no audio"), "{name}: {detail}");
                }
                other => panic!(
                    "{name}: expected a Decode error saying there is no audio, got {other:?}"
                ),
            }
        }
    }
}

#[test]
fn truncated_files_decode_what_is_there_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let wav = std::fs::read(fixture("speech.wav")).unwrap();

    // Cut inside the header: nothing to decode.
    let path = write_temp(&dir, "head.wav", &wav[..30]);
    let err = decode_with(&path, Limits::default()).unwrap_err();
    assert!(matches!(&err, Error::Decode { path: p, .. } if p == &path), "{err}");

    // Cut inside the data: every whole frame that is there, and the header's (wrong) count
    // is not trusted by the probe either.
    let path = write_temp(&dir, "half.wav", &wav[..44 + 2 * 10_000 + 1]);
    let d = decode_with(&path, Limits::default()).unwrap();
    assert_eq!(d.audio.frames(), 10_000);
    assert_eq!(
        d.audio.channel(0),
        &decode_with(&fixture("speech.wav"), Limits::default()).unwrap().audio.channel(0)[..10_000]
    );
    let p = probe_file(&path, &Limits::default()).unwrap();
    assert_eq!((p.frames, p.frames_counted), (10_000, true));

    // Compressed streams cut at three quarters: what ffmpeg 5.1 decodes from the same cut
    // (`head -c $((size*3/4))`, measured once), give or take one packet.
    for (name, ffmpeg_frames, packet) in [
        ("speech.mp3", 47_855usize, 576),
        ("speech.flac", 41_472, 4608),
        ("speech.ogg", 22_016, 256),
    ] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let path = write_temp(&dir, &format!("cut_{name}"), &bytes[..bytes.len() * 3 / 4]);
        let d = decode_with(&path, Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let n = d.audio.frames();
        println!("{name}: {n} frames, ffmpeg {ffmpeg_frames}, warnings {:?}", d.warnings);
        assert!(n.abs_diff(ffmpeg_frames) <= packet, "{name}: {n} frames, ffmpeg {ffmpeg_frames}");
    }
    // Cut before the first whole Ogg audio page: nothing to decode (ffmpeg: nothing either).
    let ogg = std::fs::read(fixture("speech.ogg")).unwrap();
    let path = write_temp(&dir, "half.ogg", &ogg[..ogg.len() / 2]);
    assert!(matches!(decode_with(&path, Limits::default()), Err(Error::Decode { .. })));

    // ffmpeg writes the M4A index (moov) at the end: without it there is nothing to decode.
    let m4a = std::fs::read(fixture("speech.m4a")).unwrap();
    let path = write_temp(&dir, "half.m4a", &m4a[..m4a.len() / 2]);
    let err = decode_with(&path, Limits::default()).unwrap_err();
    assert!(matches!(&err, Error::Decode { path: p, .. } if p == &path), "{err}");
}

fn expect_limit(result: Result<impl std::fmt::Debug>, path: &Path, what_expected: &str) -> String {
    match result {
        Err(e @ Error::LimitExceeded { .. }) => {
            let Error::LimitExceeded { path: p, what, .. } = &e else { unreachable!() };
            assert_eq!(p, path);
            assert_eq!(*what, what_expected);
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            msg
        }
        other => {
            panic!("expected LimitExceeded({what_expected}) for {}, got {other:?}", path.display())
        }
    }
}

#[test]
fn limits_are_enforced_and_name_the_file() {
    let wav = fixture("speech.wav");
    let short = Limits { max_duration_s: 1.0, ..Limits::default() };
    // From the WAV header, before decoding.
    let msg = expect_limit(decode_with(&wav, short.clone()), &wav, "duration_s");
    assert!(msg.ends_with("duration_s is 2.912, over the limit of 1"), "{msg}");
    expect_limit(probe_file(&wav, &short), &wav, "duration_s");
    // The M4A's header is not exact, so the running count stops it.
    let m4a = fixture("speech.m4a");
    let msg = expect_limit(decode_with(&m4a, short.clone()), &m4a, "duration_s");
    assert!(msg.contains("at least 1.0"), "{msg}");
    // Exactly the file's length passes.
    let exact = Limits { max_duration_s: 64_214.0 / 22_050.0, ..Limits::default() };
    assert_eq!(decode_with(&wav, exact).unwrap().audio.frames(), 64_214);

    let mono_only = Limits { max_channels: 1, ..Limits::default() };
    for stereo in ["tone_stereo.oga", "video.mp4"] {
        expect_limit(
            decode_with(&fixture(stereo), mono_only.clone()),
            &fixture(stereo),
            "channels",
        );
    }
    let hi = fixture("tone_192k.wav");
    let msg = expect_limit(
        decode_with(&hi, Limits { max_sample_rate: 48_000, ..Limits::default() }),
        &hi,
        "sample_rate",
    );
    assert!(msg.ends_with("sample_rate is 192000, over the limit of 48000"), "{msg}");
    expect_limit(
        decode_with(&wav, Limits { max_file_bytes: 1000, ..Limits::default() }),
        &wav,
        "file_bytes",
    );
    // 64214 frames × 4 bytes = 256856 bytes decoded.
    let msg = expect_limit(
        decode_with(&wav, Limits { max_decoded_bytes: 256_855, ..Limits::default() }),
        &wav,
        "decoded_bytes",
    );
    assert!(msg.contains("256856"), "{msg}");
    assert!(decode_with(&wav, Limits { max_decoded_bytes: 256_856, ..Limits::default() }).is_ok());
}

#[test]
fn nonsensical_limits_are_invalid_input() {
    let err = decode_with(
        &fixture("speech.wav"),
        Limits { max_duration_s: f64::NAN, ..Limits::default() },
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "limits.max_duration_s"),
        "{err}"
    );
}

/// Byte offsets of the MPEG audio frames of a 22.05 kHz MPEG-2 Layer III file after its ID3v2 tag.
fn mp3_frames(bytes: &[u8]) -> Vec<usize> {
    let mut pos = if bytes.starts_with(b"ID3") {
        let s = &bytes[6..10];
        10 + ((s[0] as usize) << 21 | (s[1] as usize) << 14 | (s[2] as usize) << 7 | s[3] as usize)
    } else {
        0
    };
    const KBPS: [usize; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let mut frames = Vec::new();
    while pos + 4 <= bytes.len() && bytes[pos] == 0xFF && bytes[pos + 1] & 0xF0 == 0xF0 {
        frames.push(pos);
        let kbps = KBPS[usize::from(bytes[pos + 2] >> 4)];
        let padding = usize::from((bytes[pos + 2] >> 1) & 1);
        pos += 72_000 * kbps / 22_050 + padding;
    }
    frames
}

#[test]
fn corrupt_packets_become_silence_are_counted_and_capped() {
    let mut bytes = std::fs::read(fixture("speech.mp3")).unwrap();
    let frames = mp3_frames(&bytes);
    assert_eq!(frames.len(), 115, "Xing frame + 114 audio frames");
    // Smash the side information of two frames: big_values out of range.
    for k in [30, 60] {
        bytes[frames[k] + 4..frames[k] + 13].fill(0xFF);
    }
    let cancel = CancelToken::new();
    let d = decode_bytes(&bytes, &DecodeOptions::default(), &cancel).unwrap();
    assert_eq!(d.corrupt_packets, 2);
    // Each skipped packet is replaced by its 576 frames of silence: the length is unchanged.
    assert_eq!(d.audio.frames(), 64_214);
    assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
    assert!(
        d.warnings
            .iter()
            .all(|w| w.code == WarningCode::CorruptPacket
                && w.message.contains("576 frames of silence")),
        "{:?}",
        d.warnings
    );
    // Frame k (k >= 1 counts the Xing frame) starts at (k - 1) * 576 - 1105 after trimming.
    let start = 29 * 576 - 1105;
    assert!(d.audio.channel(0)[start..start + 576].iter().all(|&s| s == 0.0));

    let strict = DecodeOptions {
        limits: Limits { max_corrupt_packets: 1, ..Limits::default() },
        ..DecodeOptions::default()
    };
    let err = decode_bytes(&bytes, &strict, &cancel).unwrap_err();
    assert!(
        matches!(&err, Error::Decode { detail, .. } if detail.contains("more than 1 corrupt packets")),
        "{err}"
    );
}

#[test]
fn cancelled_token_stops_decoding() {
    let cancel = CancelToken::new();
    cancel.cancel();
    let err = decode_file(&fixture("speech.flac"), &DecodeOptions::default(), &cancel).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
}

#[test]
fn a_directory_is_not_audio() {
    let dir = tempfile::tempdir().unwrap();
    assert!(decode_with(dir.path(), Limits::default()).is_err());
}

/// The warnings decoding and transcript parsing find reach the Assembler's report with their
/// codes, each message prefixed by the input it is about.
#[test]
fn load_and_transcript_warnings_reach_the_report() {
    use assembly_core::{Assembler, NoProgress, Spec};
    let mut bytes = std::fs::read(fixture("speech.mp3")).unwrap();
    let frames = mp3_frames(&bytes);
    bytes[frames[30] + 4..frames[30] + 13].fill(0xFF);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.mp3"), &bytes).unwrap();
    // Two words out of order: the parser sorts them and says so.
    let words = r#"[{"word": "world", "start": 1.0, "end": 1.4},
                    {"word": "hello", "start": 0.2, "end": 0.6}]"#;
    std::fs::write(dir.path().join("words.json"), words).unwrap();
    let mut spec = Spec::from_json(
        r#"{"version": 1, "content": "in.mp3",
            "transcript": {"format": "words", "path": "words.json"},
            "cleanup": {"remove_fillers": false, "remove_pauses": false},
            "output": {"path": "out.wav", "encoding": {"format": "wav"}}}"#,
    )
    .unwrap();
    spec.resolve_paths(dir.path());
    let report = Assembler::new(spec).unwrap().run(&mut NoProgress, &CancelToken::new()).unwrap();
    let find = |code| report.warnings.iter().find(|w| w.code == code);
    let corrupt =
        find(WarningCode::CorruptPacket).unwrap_or_else(|| panic!("{:?}", report.warnings));
    assert!(corrupt.message.starts_with("content: "), "{corrupt:?}");
    assert!(corrupt.message.contains("576 frames of silence"), "{corrupt:?}");
    let sorted = find(WarningCode::Unsorted).unwrap_or_else(|| panic!("{:?}", report.warnings));
    assert!(sorted.message.starts_with("transcript: "), "{sorted:?}");
}
