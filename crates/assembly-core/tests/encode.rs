//! Encoder round trips, exact MP3 length, tags, atomic writes and robustness.
//!
//! Output is read back with the shared decoder (`load::decode_file`, gapless on); FLAC's MD5
//! is additionally checked with symphonia's verifying decoder, which `load` does not expose.

use std::num::NonZeroU32;
use std::path::Path;

use assembly_core::encode::{
    self, CoverArt, Encoder, Mp3Bitrate, OutputFormat, Tags, WavSampleFormat,
};
use assembly_core::load::{self, DecodeOptions, ProbeInfo};
use assembly_core::{AudioBuffer, CancelToken, Chapter, Error, analyze::loudness, synth};

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

fn rate(r: u32) -> NonZeroU32 {
    NonZeroU32::new(r).unwrap()
}

/// What the shared decoder read back.
struct Decoded {
    rate: u32,
    planes: Vec<Vec<f32>>,
    info: ProbeInfo,
}

impl Decoded {
    fn frames(&self) -> usize {
        self.planes[0].len()
    }
}

/// Decodes a whole file with `load::decode_file` (gapless trimming on).
fn decode(path: &Path) -> Decoded {
    let d = load::decode_file(path, &DecodeOptions::default(), &CancelToken::new())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(d.corrupt_packets, 0, "{}: {:?}", path.display(), d.warnings);
    assert_eq!(d.info.frames, d.audio.frames() as u64);
    Decoded { rate: d.audio.sample_rate().get(), planes: d.audio.into_planes(), info: d.info }
}

/// Runs symphonia's FLAC decoder with MD5 verification over the whole file.
fn flac_md5_ok(path: &Path) -> Option<bool> {
    let file = std::fs::File::open(path).unwrap();
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(&Hint::new(), mss, FormatOptions::default(), MetadataOptions::default())
        .unwrap();
    let track = format.default_track(TrackType::Audio).unwrap();
    let track_id = track.id;
    let params = track.codec_params.as_ref().unwrap().audio().unwrap().clone();
    let opts = AudioDecoderOptions::default().verify(true);
    let mut decoder = symphonia::default::get_codecs().make_audio_decoder(&params, &opts).unwrap();
    while let Some(packet) = format.next_packet().unwrap() {
        if packet.track_id == track_id {
            decoder.decode(&packet).unwrap();
        }
    }
    decoder.finalize().verify_ok
}

/// Rounds every sample onto the `bits`-bit integer grid so a round trip can be bit-exact.
fn on_grid(buf: &AudioBuffer, bits: u32) -> AudioBuffer {
    let scale = (1u32 << (bits - 1)) as f32;
    let planes = buf
        .planes()
        .iter()
        .map(|p| {
            p.iter().map(|&s| (s * scale).round().clamp(-scale, scale - 1.0) / scale).collect()
        })
        .collect();
    AudioBuffer::from_planar(buf.sample_rate(), planes).unwrap()
}

/// Stereo (or mono) test programme: speech-like left, noise + sine right.
fn programme(r: u32, channels: usize, frames: usize, seed: u64) -> AudioBuffer {
    let rr = rate(r);
    let speech = synth::speech_like(rr, seed, -18.0, frames);
    if channels == 1 {
        return AudioBuffer::mono(rr, speech);
    }
    let noise = synth::white_noise(seed + 1, 0.05, frames);
    let sine = synth::sine(rr, 997.0, 0.3, frames);
    let right: Vec<f32> = noise.iter().zip(&sine).map(|(a, b)| a + b).collect();
    AudioBuffer::from_planar(rr, vec![speech, right]).unwrap()
}

/// Pushes `buf` through an encoder in uneven blocks (1, 1000, 4097, 333, rest…).
fn encode_in_blocks(path: &Path, buf: &AudioBuffer, format: &OutputFormat, tags: &Tags) -> u64 {
    let mut enc =
        Encoder::create(path, format, buf.sample_rate(), buf.channel_count(), tags).unwrap();
    let sizes = [1usize, 1000, 4097, 333, 0, 65_536];
    let (mut start, mut i) = (0, 0);
    while start < buf.frames() {
        let n = sizes[i % sizes.len()].min(buf.frames() - start);
        let planes = buf.planes().iter().map(|p| p[start..start + n].to_vec()).collect();
        enc.write(&AudioBuffer::from_planar(buf.sample_rate(), planes).unwrap()).unwrap();
        start += n;
        i += 1;
    }
    assert_eq!(enc.frames(), buf.frames() as u64);
    let info = enc.finish().unwrap();
    assert_eq!(info.frames, buf.frames() as u64);
    assert_eq!(info.bytes, std::fs::metadata(path).unwrap().len());
    info.bytes
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn wav_round_trips_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    for (fmt, bits) in [
        (WavSampleFormat::Pcm16, 16u32),
        (WavSampleFormat::Pcm24, 24),
        (WavSampleFormat::Float32, 32),
    ] {
        for channels in [1, 2] {
            let src = programme(44_100, channels, 12_345, 7);
            let src = if bits == 32 { src } else { on_grid(&src, bits) };
            let path = dir.path().join(format!("{fmt:?}-{channels}.wav"));
            encode_in_blocks(
                &path,
                &src,
                &OutputFormat::Wav { sample_format: fmt },
                &Tags::default(),
            );
            let mut reader = hound::WavReader::open(&path).unwrap();
            let spec = reader.spec();
            assert_eq!((spec.sample_rate, spec.channels as usize), (44_100, channels));
            assert_eq!(spec.bits_per_sample as u32, bits);
            let got: Vec<f32> = if bits == 32 {
                reader.samples::<f32>().map(Result::unwrap).collect()
            } else {
                let scale = (1u32 << (bits - 1)) as f32;
                reader.samples::<i32>().map(|s| s.unwrap() as f32 / scale).collect()
            };
            assert_eq!(got.len(), 12_345 * channels, "{fmt:?}");
            assert!(got == src.to_interleaved(), "{fmt:?} {channels} ch not bit-exact");
        }
    }
}

#[test]
fn wav_edges_clamp_and_nan_is_silence() {
    let dir = tempfile::tempdir().unwrap();
    let src =
        AudioBuffer::mono(rate(8000), vec![1.0, -1.0, 1.7, -3.0, f32::NAN, 0.25, f32::INFINITY]);
    let path = dir.path().join("edges16.wav");
    encode::write_file(&path, &src, &OutputFormat::wav16(), &Tags::default()).unwrap();
    let got: Vec<i16> =
        hound::WavReader::open(&path).unwrap().samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(got, [32767, -32768, 32767, -32768, 0, 8192, 32767]);
    let path = dir.path().join("edgesf.wav");
    let f = OutputFormat::Wav { sample_format: WavSampleFormat::Float32 };
    encode::write_file(&path, &src, &f, &Tags::default()).unwrap();
    let got: Vec<f32> =
        hound::WavReader::open(&path).unwrap().samples::<f32>().map(Result::unwrap).collect();
    assert_eq!(got, [1.0, -1.0, 1.7, -3.0, 0.0, 0.25, 1.0]); // float path stays float
}

#[test]
fn flac_round_trips_bit_exact_with_streaminfo_fix() {
    let dir = tempfile::tempdir().unwrap();
    for bits in [16u8, 24] {
        for channels in [1, 2] {
            for frames in [1usize, 4095, 4096, 4097, 48_000 + 17, 16 * 4096] {
                let src = on_grid(&programme(48_000, channels, frames, 3), u32::from(bits));
                let path = dir.path().join(format!("t-{bits}-{channels}-{frames}.flac"));
                encode_in_blocks(&path, &src, &OutputFormat::Flac { bits }, &Tags::default());
                let bytes = std::fs::read(&path).unwrap();
                // STREAMINFO starts at byte 8: min/max block size, then total samples.
                let min_block = u16::from_be_bytes([bytes[8], bytes[9]]);
                let max_block = u16::from_be_bytes([bytes[10], bytes[11]]);
                assert_eq!((min_block, max_block), (4096, 4096));
                let si = &bytes[8..42];
                let total = (u64::from(si[13] & 0x0F) << 32)
                    | u64::from(u32::from_be_bytes([si[14], si[15], si[16], si[17]]));
                assert_eq!(total, frames as u64);
                assert_ne!(&si[18..34], &[0u8; 16], "MD5 must be set");

                let dec = decode(&path);
                assert_eq!(dec.rate, 48_000);
                assert_eq!(dec.planes.len(), channels);
                assert_eq!(dec.frames(), frames, "{bits} bit {channels} ch {frames}");
                assert_eq!(flac_md5_ok(&path), Some(true), "MD5 {bits} bit {channels} ch {frames}");
                assert!(dec.planes == src.planes(), "{bits} bit {channels} ch {frames} not exact");
            }
        }
    }
}

#[test]
fn flac_is_the_same_bytes_on_one_thread_or_two() {
    // Batches are 16 blocks of 4096 frames: two whole batches, one of them ending exactly on
    // a batch, and a short third one with a short last block.
    let dir = tempfile::tempdir().unwrap();
    let frames = 2 * 16 * 4096 + 3 * 4096 + 17;
    let src = on_grid(&programme(44_100, 2, frames, 9), 16);
    let format = OutputFormat::Flac { bits: 16 };
    let mut files = Vec::new();
    for threads in [1usize, 2] {
        let path = dir.path().join(format!("t{threads}.flac"));
        let mut enc = Encoder::create_with_threads(
            &path,
            &format,
            src.sample_rate(),
            2,
            &Tags::default(),
            std::num::NonZeroUsize::new(threads),
        )
        .unwrap();
        for start in (0..frames).step_by(10_000) {
            let n = 10_000.min(frames - start);
            let planes = src.planes().iter().map(|p| p[start..start + n].to_vec()).collect();
            enc.write(&AudioBuffer::from_planar(src.sample_rate(), planes).unwrap()).unwrap();
        }
        assert_eq!(enc.finish().unwrap().frames, frames as u64);
        assert_eq!(flac_md5_ok(&path), Some(true), "{threads} thread(s)");
        let dec = decode(&path);
        assert!(dec.planes == src.planes(), "{threads} thread(s): not bit-exact");
        files.push(std::fs::read(&path).unwrap());
    }
    assert!(files[0] == files[1], "one thread and two wrote different bytes");
}

/// Reads FLAC metadata blocks: (type, body) pairs.
fn flac_blocks(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&bytes[..4], b"fLaC");
    let mut pos = 4;
    let mut out = Vec::new();
    loop {
        let last = bytes[pos] & 0x80 != 0;
        let kind = bytes[pos] & 0x7F;
        let len = u32::from_be_bytes([0, bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        out.push((kind, bytes[pos + 4..pos + 4 + len].to_vec()));
        pos += 4 + len;
        if last {
            return out;
        }
    }
}

fn sample_tags() -> Tags {
    // A real 8×8 PNG (made with ffmpeg), so other tools can show the cover too.
    let png: Vec<u8> = vec![
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x08, 0x02, 0x00, 0x00, 0x00, 0x4b,
        0x6d, 0x29, 0xdc, 0x00, 0x00, 0x00, 0x09, 0x70, 0x48, 0x59, 0x73, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x4f, 0x25, 0xc4, 0xd6, 0x00, 0x00, 0x00, 0x11, 0x49, 0x44,
        0x41, 0x54, 0x78, 0x9c, 0x63, 0x30, 0x4c, 0x39, 0x89, 0x15, 0x31, 0x0c, 0x2d, 0x09, 0x00,
        0x0a, 0xc6, 0x57, 0x81, 0x07, 0xbb, 0xeb, 0x38, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
        0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    Tags {
        title: Some("Episode 42: Ünïcode & more".into()),
        artist: Some("The Host".into()),
        album: Some("The Show".into()),
        comment: Some("Made by podcast-assembly".into()),
        date: Some("2024-05-31".into()),
        track: Some(42),
        cover: Some(CoverArt::from_bytes(png).unwrap()),
        chapters: vec![
            Chapter { title: "Intro".into(), start_ms: 0, end_ms: 2_000, url: None },
            Chapter {
                title: "Main".into(),
                start_ms: 2_000,
                end_ms: 7_500,
                url: Some("https://example.com/main".into()),
            },
            Chapter { title: "Outro".into(), start_ms: 7_500, end_ms: 9_000, url: None },
        ],
    }
}

#[test]
fn flac_gets_vorbis_comments_and_picture() {
    let dir = tempfile::tempdir().unwrap();
    let tags = sample_tags();
    let src = on_grid(&programme(44_100, 2, 9 * 4410, 5), 16);
    let path = dir.path().join("tagged.flac");
    encode::write_file(&path, &src, &OutputFormat::Flac { bits: 16 }, &tags).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let blocks = flac_blocks(&bytes);
    assert_eq!(blocks.iter().map(|b| b.0).collect::<Vec<_>>(), [0, 4, 6]);
    let vc = String::from_utf8_lossy(&blocks[1].1).into_owned();
    for needle in [
        "TITLE=Episode 42: Ünïcode & more",
        "ARTIST=The Host",
        "DATE=2024-05-31",
        "TRACKNUMBER=42",
        "CHAPTER002=00:00:02.000",
        "CHAPTER002NAME=Main",
        "CHAPTER002URL=https://example.com/main",
    ] {
        assert!(vc.contains(needle), "missing {needle:?} in {vc:?}");
    }
    let pic = &blocks[2].1;
    let cover = tags.cover.as_ref().unwrap();
    assert!(pic.ends_with(&cover.data));
    assert_eq!(&pic[8..17], b"image/png");
    let dec = decode(&path);
    assert_eq!(dec.frames(), src.frames());
    assert!(dec.planes == src.planes());
}

/// Sample-aligned SNR of `decoded` against `src` in dB over all channels.
fn snr_db(src: &AudioBuffer, dec: &Decoded) -> f64 {
    let (mut sig, mut err) = (0.0f64, 0.0f64);
    for (a, b) in src.planes().iter().zip(&dec.planes) {
        for (&x, &y) in a.iter().zip(b) {
            sig += f64::from(x) * f64::from(x);
            err += f64::from(x - y) * f64::from(x - y);
        }
    }
    10.0 * (sig / err.max(1e-30)).log10()
}

#[test]
fn mp3_decodes_to_exact_source_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for r in [44_100u32, 48_000] {
        for channels in [1usize, 2] {
            for bitrate in [Mp3Bitrate::Cbr { kbps: 128 }, Mp3Bitrate::Vbr { quality: 4 }] {
                for frames in [1152 * 20, 44_100 + 7, 100_001] {
                    let src = programme(r, channels, frames, n);
                    let path = dir.path().join(format!("t{n}.mp3"));
                    n += 1;
                    let format = OutputFormat::Mp3 { bitrate, quality: 5 };
                    encode_in_blocks(&path, &src, &format, &Tags::default());
                    let dec = decode(&path);
                    let what = format!("{r} Hz {channels} ch {bitrate:?} {frames} frames");
                    assert_eq!(dec.rate, r, "{what}");
                    assert_eq!(dec.planes.len(), channels, "{what}");
                    assert_eq!(dec.frames(), frames, "{what}");
                    // Trimmed at the right place: the waveform lines up sample for sample.
                    let snr = snr_db(&src, &dec);
                    assert!(snr > 12.0, "{what}: SNR {snr:.1} dB (misaligned trim?)");
                }
            }
        }
    }
}

#[test]
fn mp3_low_bitrates_and_rates_still_decode_exactly() {
    // These CBR frames are too small for LAME's own info tag; the encoder writes its own.
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (44_100u32, 2usize, 32u16),
        (44_100, 1, 48),
        (48_000, 2, 40),
        (32_000, 1, 32),
        (22_050, 1, 32),
        (24_000, 2, 48),
        (16_000, 1, 32),
        (8_000, 1, 32),
        (11_025, 2, 64),
        (22_050, 2, 160),
    ];
    for (i, (r, channels, kbps)) in cases.into_iter().enumerate() {
        for frames in [5_000usize, 3 * r as usize + 11] {
            let src = programme(r, channels, frames, i as u64);
            let path = dir.path().join(format!("low{i}-{frames}.mp3"));
            // Every other case with an ID3 tag in front of the info-tag frame.
            let tags = if i % 2 == 0 { sample_tags() } else { Tags::default() };
            encode_in_blocks(&path, &src, &OutputFormat::mp3_cbr(kbps), &tags);
            let dec = decode(&path);
            let what = format!("{r} Hz {channels} ch {kbps} kbit/s {frames} frames");
            assert_eq!(dec.rate, r, "{what}");
            assert_eq!(dec.frames(), frames, "{what}");
            let snr = snr_db(&src, &dec);
            assert!(snr > 3.0, "{what}: SNR {snr:.1} dB (misaligned trim?)");
        }
    }
}

#[test]
fn mp3_loudness_matches_source() {
    let dir = tempfile::tempdir().unwrap();
    for (channels, format) in [
        (2, OutputFormat::mp3_cbr(128)),
        (2, OutputFormat::mp3_cbr(192)),
        (1, OutputFormat::mp3_cbr(64)),
        (2, OutputFormat::Mp3 { bitrate: Mp3Bitrate::Vbr { quality: 5 }, quality: 5 }),
    ] {
        let src = programme(44_100, channels, 12 * 44_100, 11);
        let path = dir.path().join("loud.mp3");
        encode::write_file(&path, &src, &format, &Tags::default()).unwrap();
        let dec = decode(&path);
        let dec_buf = AudioBuffer::from_planar(rate(dec.rate), dec.planes).unwrap();
        let a = loudness::measure(&src).unwrap();
        let b = loudness::measure(&dec_buf).unwrap();
        let diff = (a.integrated_lufs - b.integrated_lufs).abs();
        assert!(
            diff <= 0.2,
            "{format:?}: source {:.2} LUFS, decoded {:.2} LUFS",
            a.integrated_lufs,
            b.integrated_lufs
        );
    }
}

#[test]
fn mp3_id3_tags_and_chapters_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let tags = sample_tags();
    let src = programme(44_100, 2, 9 * 44_100 + 5, 21);
    let path = dir.path().join("tagged.mp3");
    encode_in_blocks(&path, &src, &OutputFormat::mp3_cbr(128), &tags);

    let tag = id3::Tag::read_from_path(&path).unwrap();
    use id3::TagLike;
    assert_eq!(tag.version(), id3::Version::Id3v24);
    assert_eq!(tag.title(), tags.title.as_deref());
    assert_eq!(tag.artist(), Some("The Host"));
    assert_eq!(tag.album(), Some("The Show"));
    assert_eq!(tag.track(), Some(42));
    assert_eq!(tag.date_recorded().map(|d| d.to_string()).as_deref(), Some("2024-05-31"));
    let comments: Vec<_> = tag.comments().map(|c| c.text.clone()).collect();
    assert_eq!(comments, ["Made by podcast-assembly"]);
    let pics: Vec<_> = tag.pictures().collect();
    assert_eq!(pics.len(), 1);
    assert_eq!(pics[0].mime_type, "image/png");
    assert_eq!(pics[0].picture_type, id3::frame::PictureType::CoverFront);
    assert!(pics[0].data == tags.cover.as_ref().unwrap().data, "cover bytes differ");

    let chaps: Vec<_> = tag.chapters().collect();
    assert_eq!(chaps.len(), 3);
    for (c, want) in chaps.iter().zip(&tags.chapters) {
        assert_eq!(u64::from(c.start_time), want.start_ms);
        assert_eq!(u64::from(c.end_time), want.end_ms);
        assert_eq!((c.start_offset, c.end_offset), (0xFFFF_FFFF, 0xFFFF_FFFF));
        let title = c.frames.iter().find(|f| f.id() == "TIT2").and_then(|f| f.content().text());
        assert_eq!(title, Some(want.title.as_str()));
    }
    let link = chaps[1].frames.iter().find(|f| f.id() == "WXXX").unwrap();
    assert_eq!(
        link.content().extended_link().map(|l| l.link.as_str()),
        Some("https://example.com/main")
    );
    let tocs: Vec<_> = tag.tables_of_contents().collect();
    assert_eq!(tocs.len(), 1);
    assert!(tocs[0].top_level && tocs[0].ordered);
    assert_eq!(tocs[0].elements, ["chp0", "chp1", "chp2"]);

    // The audio after the tag is intact: exact length, aligned, and symphonia sees chapters.
    let dec = decode(&path);
    assert_eq!(dec.frames(), src.frames());
    assert!(snr_db(&src, &dec) > 12.0);
    let got: Vec<(String, u64, u64)> =
        dec.info.chapters.iter().map(|c| (c.title.clone(), c.start_ms, c.end_ms)).collect();
    let want: Vec<(String, u64, u64)> =
        tags.chapters.iter().map(|c| (c.title.clone(), c.start_ms, c.end_ms)).collect();
    assert_eq!(got, want);
    assert!(dec.info.has_gapless_info);

    // The audio bytes are identical to an untagged encode of the same signal.
    let plain = dir.path().join("plain.mp3");
    encode_in_blocks(&plain, &src, &OutputFormat::mp3_cbr(128), &Tags::default());
    let tagged = std::fs::read(&path).unwrap();
    let plain = std::fs::read(&plain).unwrap();
    let tag_len = tagged.len() - plain.len();
    assert_eq!(&tagged[..3], b"ID3");
    assert!(tagged[tag_len..] == plain[..], "audio after the ID3 tag differs");
}

#[test]
fn failed_or_dropped_encodes_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("episode.mp3");
    let src = programme(44_100, 2, 44_100, 1);
    let formats =
        [OutputFormat::mp3_cbr(128), OutputFormat::Flac { bits: 24 }, OutputFormat::wav16()];

    for format in &formats {
        // Dropped mid-way (e.g. the render was cancelled).
        {
            let mut enc = Encoder::create(&path, format, rate(44_100), 2, &sample_tags()).unwrap();
            enc.write(&src).unwrap();
            assert_eq!(dir_names(dir.path()).len(), 1, "only the temp file while encoding");
            assert!(!path.exists());
        }
        assert!(dir_names(dir.path()).is_empty(), "{format:?}: {:?}", dir_names(dir.path()));

        // An error mid-way: a block that doesn't match, then the caller gives up.
        {
            let mut enc =
                Encoder::create(&path, format, rate(44_100), 2, &Tags::default()).unwrap();
            enc.write(&src).unwrap();
            let mono = AudioBuffer::mono(rate(44_100), vec![0.0; 10]);
            let err = enc.write(&mono).unwrap_err();
            assert!(matches!(&err, Error::InvalidInput { field, .. } if field == "block"), "{err}");
            let other_rate = AudioBuffer::silence(rate(48_000), 2, 10).unwrap();
            assert!(enc.write(&other_rate).is_err());
        }
        assert!(dir_names(dir.path()).is_empty());

        // Invalid parameters: nothing is created at all.
        assert!(Encoder::create(&path, format, rate(44_100), 12, &Tags::default()).is_err());
        assert!(dir_names(dir.path()).is_empty());
    }

    // A failed run doesn't touch an existing file; a successful one leaves exactly the file.
    std::fs::write(&path, b"previous episode").unwrap();
    {
        let mut enc =
            Encoder::create(&path, &formats[0], rate(44_100), 2, &Tags::default()).unwrap();
        enc.write(&src).unwrap();
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"previous episode");
    let info = encode::write_file(&path, &src, &formats[0], &Tags::default()).unwrap();
    assert_eq!(dir_names(dir.path()), ["episode.mp3"]);
    assert_eq!(info.path, path);
    assert_eq!(info.duration_ms, 1000);
    assert_eq!(decode(&path).frames(), 44_100);
}

#[test]
fn empty_outputs_are_valid_files() {
    let dir = tempfile::tempdir().unwrap();
    for (i, format) in [
        OutputFormat::wav16(),
        OutputFormat::Flac { bits: 24 },
        OutputFormat::mp3_cbr(128),
        OutputFormat::mp3_cbr(32),
        OutputFormat::Mp3 { bitrate: Mp3Bitrate::Vbr { quality: 2 }, quality: 5 },
    ]
    .iter()
    .enumerate()
    {
        let path = dir.path().join(format!("empty{i}.{}", format.extension()));
        let enc = Encoder::create(&path, format, rate(48_000), 2, &sample_tags()).unwrap();
        let info = enc.finish().unwrap();
        assert_eq!((info.frames, info.duration_ms), (0, 0));
        // Reading one back is `load`'s one error for a valid file without audio, whatever the
        // container (docs/decoding.md).
        let detail = match load::decode_file(&path, &DecodeOptions::default(), &CancelToken::new())
        {
            Err(assembly_core::Error::Decode { detail, .. }) => detail,
            other => panic!("{format:?}: expected the no-audio error, got {other:?}"),
        };
        assert!(detail.contains("no audio"), "{format:?}: {detail}");
        if let OutputFormat::Flac { .. } = format {
            // A spec-valid FLAC with no frames (ffmpeg reads it as 0 samples); symphonia 0.6.1
            // cannot sync to a first frame that doesn't exist, so check its structure here.
            let bytes = std::fs::read(&path).unwrap();
            let blocks = flac_blocks(&bytes);
            let header_len: usize = 4 + blocks.iter().map(|b| 4 + b.1.len()).sum::<usize>();
            assert_eq!(header_len, bytes.len(), "no frames after the metadata");
            // Byte 13: low bits of (bits - 1) = 23, then the 36-bit total sample count = 0.
            assert_eq!(&blocks[0].1[13..18], &[0x70, 0, 0, 0, 0], "24-bit, 0 samples");
        } else {
            // The header was read (the file is valid) and declares no samples.
            assert!(detail.contains("holds no audio (0 frames)"), "{format:?}: {detail}");
        }
    }
}

#[test]
fn encoder_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Encoder>();
    assert_send::<assembly_core::AtomicFile>();
}

#[test]
fn invalid_parameters_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mp3");
    let field = |f: &OutputFormat, r: u32, ch: usize, tags: &Tags| match Encoder::create(
        &path,
        f,
        rate(r),
        ch,
        tags,
    ) {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let none = Tags::default();
    assert_eq!(field(&OutputFormat::mp3_cbr(129), 44_100, 2, &none), "format.bitrate.kbps");
    assert_eq!(field(&OutputFormat::mp3_cbr(330), 44_100, 2, &none), "format.bitrate.kbps");
    assert_eq!(field(&OutputFormat::mp3_cbr(24), 44_100, 2, &none), "format.bitrate.kbps");
    assert_eq!(field(&OutputFormat::mp3_cbr(56), 44_100, 2, &none), "format.bitrate.kbps");
    assert_eq!(field(&OutputFormat::mp3_cbr(320), 24_000, 2, &none), "format.bitrate.kbps");
    assert_eq!(field(&OutputFormat::mp3_cbr(128), 44_000, 2, &none), "rate");
    assert_eq!(field(&OutputFormat::mp3_cbr(128), 96_000, 2, &none), "rate");
    assert_eq!(field(&OutputFormat::mp3_cbr(128), 44_100, 6, &none), "channels");
    let vbr = OutputFormat::Mp3 { bitrate: Mp3Bitrate::Vbr { quality: 10 }, quality: 5 };
    assert_eq!(field(&vbr, 44_100, 2, &none), "format.bitrate.quality");
    let q = OutputFormat::Mp3 { bitrate: Mp3Bitrate::Cbr { kbps: 128 }, quality: 11 };
    assert_eq!(field(&q, 44_100, 2, &none), "format.quality");
    assert_eq!(field(&OutputFormat::Flac { bits: 8 }, 44_100, 2, &none), "format.bits");
    assert_eq!(field(&OutputFormat::Flac { bits: 16 }, 44_100, 9, &none), "channels");
    let bad_date = Tags { date: Some("yesterday".into()), ..Tags::default() };
    assert_eq!(field(&OutputFormat::mp3_cbr(128), 44_100, 2, &bad_date), "tags.date");
    let gif = CoverArt { mime: "image/gif".into(), data: b"GIF89a....".to_vec() };
    let bad_cover = Tags { cover: Some(gif), ..Tags::default() };
    assert_eq!(field(&OutputFormat::mp3_cbr(128), 44_100, 2, &bad_cover), "tags.cover.data");
    let overlap = Tags {
        chapters: vec![
            Chapter { title: "a".into(), start_ms: 0, end_ms: 5000, url: None },
            Chapter { title: "b".into(), start_ms: 4000, end_ms: 6000, url: None },
        ],
        ..Tags::default()
    };
    assert_eq!(field(&OutputFormat::wav16(), 44_100, 2, &overlap), "tags.chapters[1].start_ms");
    assert!(dir_names(dir.path()).is_empty());
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> impl Strategy<Value = f32> {
        prop_oneof![
            8 => -1.0f32..1.0,
            2 => -100.0f32..100.0,
            1 => Just(f32::NAN),
            1 => Just(f32::INFINITY),
            1 => Just(f32::NEG_INFINITY),
            1 => Just(1.0f32),
            1 => Just(-1.0f32),
        ]
    }

    fn buffer() -> impl Strategy<Value = AudioBuffer> {
        (1usize..=2, 0usize..5000, any::<u64>()).prop_flat_map(|(ch, n, _)| {
            proptest::collection::vec(proptest::collection::vec(sample(), n), ch)
                .prop_map(|planes| AudioBuffer::from_planar(rate(44_100), planes).unwrap())
        })
    }

    fn formats() -> Vec<OutputFormat> {
        vec![
            OutputFormat::wav16(),
            OutputFormat::Wav { sample_format: WavSampleFormat::Pcm24 },
            OutputFormat::Wav { sample_format: WavSampleFormat::Float32 },
            OutputFormat::Flac { bits: 16 },
            OutputFormat::Flac { bits: 24 },
            OutputFormat::mp3_cbr(32),
            OutputFormat::mp3_cbr(128),
            OutputFormat::Mp3 { bitrate: Mp3Bitrate::Vbr { quality: 0 }, quality: 9 },
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Arbitrary sample values (NaN, ±inf, far out of range) and lengths never panic and
        /// always decode back to the same number of frames, with every sample finite.
        #[test]
        fn encoders_never_panic(buf in buffer()) {
            let dir = tempfile::tempdir().unwrap();
            for (i, format) in formats().iter().enumerate() {
                let path = dir.path().join(format!("p{i}.{}", format.extension()));
                let info = encode::write_file(&path, &buf, format, &Tags::default()).unwrap();
                prop_assert_eq!(info.frames, buf.frames() as u64);
                let empty_flac = buf.frames() == 0 && matches!(format, OutputFormat::Flac { .. });
                if empty_flac {
                    continue; // symphonia cannot read a FLAC without frames; see empty_outputs_…
                }
                let dec = decode(&path);
                prop_assert_eq!(dec.frames(), buf.frames(), "{:?}", format);
                prop_assert!(dec.planes.iter().flatten().all(|s| s.is_finite()));
                if matches!(format, OutputFormat::Flac { .. }) && buf.frames() > 0 {
                    prop_assert_eq!(flac_md5_ok(&path), Some(true));
                }
            }
            prop_assert_eq!(dir_names(dir.path()).len(), formats().len());
        }
    }
}
