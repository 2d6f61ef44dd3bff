//! Every committed fixture decodes to the length ffmpeg decodes, with the right samples.
//!
//! The expected frame counts were measured once with ffmpeg 5.1.9 (see
//! `tests/fixtures/README.md` for the command) and are stored here; they are not computed by
//! the code under test.

use std::path::PathBuf;

use assembly_core::load::{DecodeOptions, Decoded, decode_bytes, decode_file, probe_file};
use assembly_core::{CancelToken, Chapter, Limits};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn decode(name: &str) -> Decoded {
    decode_file(&fixture(name), &DecodeOptions::default(), &CancelToken::new())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// One fixture and what ffmpeg says about it.
struct Expect {
    file: &'static str,
    container: &'static str,
    codec: &'static str,
    rate: u32,
    channels: usize,
    /// Decoded length ffmpeg reports (`ffmpeg -i F -f f32le - | wc -c` / 4 / channels).
    ffmpeg_frames: u64,
    /// True where the header is not exact and probing must count by decoding.
    counted: bool,
}

const fn e(
    file: &'static str,
    container: &'static str,
    codec: &'static str,
    rate: u32,
    channels: usize,
    ffmpeg_frames: u64,
    counted: bool,
) -> Expect {
    Expect { file, container, codec, rate, channels, ffmpeg_frames, counted }
}

const FIXTURES: &[Expect] = &[
    e("speech.wav", "wav", "pcm_s16le", 22_050, 1, 64_214, false),
    e("speech.mp3", "mp3", "mp3", 22_050, 1, 64_214, false),
    // No LAME tag: no gapless info; ffmpeg and we decode all 114 MPEG frames of 576.
    e("speech_noxing.mp3", "mp3", "mp3", 22_050, 1, 65_664, true),
    e("speech.flac", "flac", "flac", 22_050, 1, 64_214, false),
    e("speech.ogg", "ogg", "vorbis", 22_050, 1, 64_214, false),
    // ffmpeg trims the 1024-frame priming (edit list) but keeps the end padding.
    e("speech.m4a", "mp4", "aac", 22_050, 1, 64_512, true),
    e("speech_m4a_named.aac", "mp4", "aac", 22_050, 1, 64_512, true),
    // No edit list; iTunes' iTunSMPB tag gives the priming (ffmpeg trims it too).
    e("speech_itunsmpb.m4a", "mp4", "aac", 22_050, 1, 64_512, true),
    e("excerpt_s16.wav", "wav", "pcm_s16le", 22_050, 1, 11_025, false),
    e("excerpt_u8.wav", "wav", "pcm_u8", 22_050, 1, 11_025, false),
    e("excerpt_s24.wav", "wav", "pcm_s24le", 22_050, 1, 11_025, false),
    e("excerpt_s32.wav", "wav", "pcm_s32le", 22_050, 1, 11_025, false),
    e("excerpt_f32.wav", "wav", "pcm_f32le", 22_050, 1, 11_025, false),
    e("tone_stereo.oga", "ogg", "flac", 22_050, 2, 11_025, false),
    e("tone.aiff", "aiff", "pcm_s16be", 22_050, 1, 11_025, false),
    e("tone.caf", "caf", "pcm_s16le", 22_050, 1, 11_025, false),
    e("tone_8k.wav", "wav", "pcm_s16le", 8_000, 1, 4_000, false),
    e("tone_192k.wav", "wav", "pcm_s16le", 192_000, 1, 19_200, false),
    e("tone_96k_s24.flac", "flac", "flac", 96_000, 1, 24_000, false),
    e("video.mp4", "mp4", "aac", 44_100, 2, 45_056, true),
];

#[test]
fn every_fixture_decodes_to_ffmpegs_length_and_probe_agrees() {
    for x in FIXTURES {
        let d = decode(x.file);
        let frames = d.audio.frames() as u64;
        // Exactly ffmpeg's length (the issue asks for 1 ms; every fixture matches to the frame).
        assert_eq!(frames, x.ffmpeg_frames, "{}: decoded length", x.file);
        assert_eq!(d.info.frames, frames, "{}", x.file);
        assert_eq!(d.info.duration_ms, (frames * 1000 + u64::from(x.rate) / 2) / u64::from(x.rate));
        assert_eq!(d.info.container, x.container, "{}", x.file);
        assert_eq!(d.info.codec, x.codec, "{}", x.file);
        assert_eq!(d.audio.sample_rate().get(), x.rate, "{}", x.file);
        assert_eq!(d.audio.channel_count(), x.channels, "{}", x.file);
        assert_eq!(usize::from(d.info.channels), x.channels, "{}", x.file);
        assert_eq!(d.corrupt_packets, 0, "{}", x.file);
        assert!(d.warnings.is_empty(), "{}: {:?}", x.file, d.warnings);
        assert!(d.audio.sample_peak() > 0.05, "{}: silent?", x.file);

        let p = probe_file(&fixture(x.file), &Limits::default()).unwrap();
        assert_eq!(p.frames, x.ffmpeg_frames, "{}: probed length", x.file);
        assert_eq!(p.frames_counted, x.counted, "{}", x.file);
        assert_eq!((p.sample_rate, usize::from(p.channels)), (x.rate, x.channels), "{}", x.file);

        let bytes = std::fs::read(fixture(x.file)).unwrap();
        let m = decode_bytes(&bytes, &DecodeOptions::default(), &CancelToken::new()).unwrap();
        assert_eq!(m.audio, d.audio, "{}: bytes and file decode differently", x.file);
    }
}

#[test]
fn bit_depths_report_their_size() {
    for (file, bits) in [
        ("excerpt_u8.wav", Some(8)),
        ("excerpt_s16.wav", Some(16)),
        ("excerpt_s24.wav", Some(24)),
        ("excerpt_s32.wav", Some(32)),
        ("excerpt_f32.wav", Some(32)),
        ("speech.flac", Some(16)),
        ("tone_96k_s24.flac", Some(24)),
        ("speech.mp3", None),
    ] {
        assert_eq!(decode(file).info.bits_per_sample, bits, "{file}");
    }
}

#[test]
fn flac_equals_the_wav_bit_exactly() {
    let wav = decode("speech.wav");
    let flac = decode("speech.flac");
    assert_eq!(flac.audio, wav.audio);
    // s16 samples decode to k / 32768 exactly.
    assert!(wav.audio.channel(0).iter().all(|s| (s * 32_768.0).fract() == 0.0));
}

#[test]
fn wav_sample_formats_decode_to_the_same_samples() {
    let s16 = decode("excerpt_s16.wav");
    // The excerpt is frames 11025..22050 of the clip, cut sample-exactly by ffmpeg.
    assert_eq!(s16.audio.channel(0), &decode("speech.wav").audio.channel(0)[11_025..22_050]);
    for lossless in ["excerpt_s24.wav", "excerpt_s32.wav", "excerpt_f32.wav"] {
        assert_eq!(decode(lossless).audio, s16.audio, "{lossless}");
    }
    // 8-bit keeps the top 8 bits: every sample within one 8-bit step (1/128) below or at s16.
    let u8 = decode("excerpt_u8.wav");
    let worst = u8
        .audio
        .channel(0)
        .iter()
        .zip(s16.audio.channel(0))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1.0 / 128.0, "u8 off by {worst}");
    assert!(worst > 0.0, "u8 cannot be lossless on speech");
}

/// Lag (in frames, positive = `x` late) in `-max..=max` maximising the correlation of `x`
/// with `reference` over `range`, and the SNR of `x` against `reference` at lag 0 in dB.
fn lag_and_snr(
    x: &[f32],
    reference: &[f32],
    range: std::ops::Range<usize>,
    max: i64,
) -> (i64, f64) {
    let mut best = (0i64, f64::MIN);
    for lag in -max..=max {
        let c: f64 = range
            .clone()
            .map(|i| {
                let j = i as i64 + lag;
                let xv = if j >= 0 && (j as usize) < x.len() { x[j as usize] } else { 0.0 };
                f64::from(xv) * f64::from(reference[i])
            })
            .sum();
        if c > best.1 {
            best = (lag, c);
        }
    }
    let n = x.len().min(reference.len());
    let signal: f64 = reference[..n].iter().map(|&r| f64::from(r).powi(2)).sum();
    let noise: f64 =
        x[..n].iter().zip(&reference[..n]).map(|(&a, &b)| f64::from(a - b).powi(2)).sum();
    (best.0, 10.0 * (signal / noise).log10())
}

#[test]
fn lossy_decodes_line_up_with_the_source_to_the_frame() {
    let wav = decode("speech.wav");
    let reference = wav.audio.channel(0);
    // Gapless trimming (LAME tag, Ogg granules, MP4 edit list) puts the audio exactly where
    // the source has it; without a LAME tag the decoder delay and encoder padding stay.
    for (file, lag, min_snr_db) in [
        ("speech.mp3", 0, 14.0),
        ("speech.ogg", 0, 12.0),
        ("speech.m4a", 0, 7.0),
        // Misaligned by the LAME delay, so no SNR to speak of at lag 0.
        ("speech_noxing.mp3", 1105, f64::NEG_INFINITY),
    ] {
        let d = decode(file);
        let (found, snr) = lag_and_snr(d.audio.channel(0), reference, 8_000..40_000, 1_500);
        println!("{file}: lag {found} snr {snr:.1} dB");
        assert_eq!(found, lag, "{file}: misaligned");
        assert!(snr >= min_snr_db, "{file}: SNR {snr:.1} dB");
    }
}

#[test]
fn gapless_off_keeps_delay_and_padding() {
    let opts = DecodeOptions { gapless: false, ..DecodeOptions::default() };
    let cancel = CancelToken::new();
    let mp3 = decode_file(&fixture("speech.mp3"), &opts, &cancel).unwrap();
    // 64214 + LAME delay 1105 + padding 345 = all 114 MPEG frames, as without the tag.
    assert_eq!(mp3.audio.frames(), 65_664);
    assert!(!mp3.info.has_gapless_info);
    let m4a = decode_file(&fixture("speech.m4a"), &opts, &cancel).unwrap();
    // 64 AAC packets of 1024 including the priming the edit list skips.
    assert_eq!(m4a.audio.frames(), 65_536);
    let on = decode("speech.m4a");
    assert!(on.info.has_gapless_info);
    assert_eq!(on.info.delay_frames, 1024);
    assert_eq!(on.audio.channel(0), &m4a.audio.channel(0)[1024..]);
    let mp3_on = decode("speech.mp3");
    assert_eq!((mp3_on.info.delay_frames, mp3_on.info.padding_frames), (1105, 345));
}

/// Frequency from the count of rising zero crossings over the middle half of the channel
/// (away from codec start-up and end padding).
fn frequency(x: &[f32], rate: u32) -> f64 {
    let x = &x[x.len() / 4..x.len() * 3 / 4];
    let crossings: Vec<usize> = x
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, _)| i)
        .collect();
    let (first, last) = (crossings[0], crossings[crossings.len() - 1]);
    (crossings.len() - 1) as f64 * f64::from(rate) / (last - first) as f64
}

#[test]
fn tones_keep_their_frequency_and_level_in_every_container() {
    // lavfi's sine has amplitude 1/8; ffmpeg's mono-to-stereo (`-ac 2`) lowers it by 3 dB.
    let (mono, stereo) = (0.125f32, 0.125 * std::f32::consts::FRAC_1_SQRT_2);
    for (file, hz, peak_expected, lossless) in [
        ("tone.aiff", 440.0, mono, true),
        ("tone.caf", 440.0, mono, true),
        ("tone_stereo.oga", 440.0, stereo, true),
        ("tone_8k.wav", 440.0, mono, true),
        ("tone_192k.wav", 1000.0, mono, true),
        ("tone_96k_s24.flac", 1000.0, mono, true),
        ("video.mp4", 440.0, stereo, false),
    ] {
        let d = decode(file);
        let rate = d.audio.sample_rate().get();
        for ch in 0..d.audio.channel_count() {
            let f = frequency(d.audio.channel(ch), rate);
            assert!((f - hz).abs() < hz * 0.002, "{file} ch {ch}: {f} Hz");
        }
        if lossless {
            let peak = d.audio.sample_peak();
            assert!((peak - peak_expected).abs() < 0.001, "{file}: peak {peak}");
        }
        // RMS over the middle half: a sine's is its amplitude / sqrt(2), within 0.1 dB lossless
        // and 0.5 dB through AAC at 32 kbps.
        let mid = &d.audio.channel(0)[d.audio.frames() / 4..d.audio.frames() * 3 / 4];
        let rms =
            (mid.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / mid.len() as f64).sqrt();
        let db = 20.0 * (rms / (f64::from(peak_expected) / 2f64.sqrt())).log10();
        assert!(db.abs() < if lossless { 0.1 } else { 0.5 }, "{file}: RMS off by {db:.2} dB");
        if d.audio.channel_count() == 2 {
            assert_eq!(d.audio.channel(0), d.audio.channel(1), "{file}: upmixed mono differs");
        }
    }
}

#[test]
fn itunes_gapless_tag_trims_the_priming_like_the_edit_list() {
    let tagged = decode("speech_itunsmpb.m4a");
    assert_eq!(tagged.audio, decode("speech.m4a").audio);
    assert_eq!(tagged.info.delay_frames, 1024);
    assert!(tagged.info.has_gapless_info);
    assert!(tagged.info.tags.iter().any(|t| t.key.ends_with("iTunSMPB")), "{:?}", tagged.info.tags);
}

#[test]
fn wrong_extension_is_ignored() {
    let named_aac = decode("speech_m4a_named.aac");
    assert_eq!(named_aac.info.container, "mp4");
    assert_eq!(named_aac.audio, decode("speech.m4a").audio);
}

#[test]
fn mp3_tags_and_id3_chapters_are_read() {
    let info = probe_file(&fixture("speech.mp3"), &Limits::default()).unwrap();
    let tags: Vec<(&str, &str)> =
        info.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect();
    assert!(tags.contains(&("title", "Fixture Speech")), "{tags:?}");
    assert!(tags.contains(&("artist", "espeak-ng")), "{tags:?}");
    let chapter = |title: &str, start_ms, end_ms| Chapter {
        title: title.into(),
        start_ms,
        end_ms,
        url: None,
    };
    assert_eq!(info.chapters, vec![chapter("Hello", 0, 1200), chapter("Show", 1200, 2900)]);
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["chapters"][1]["title"], "Show");
    assert_eq!(json["frames"], 64_214);
}
