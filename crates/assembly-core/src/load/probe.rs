//! What a file is, read from its headers: [`ProbeInfo`], tags and chapters, the MP4 edit
//! list (AAC priming), and names for codecs and containers symphonia cannot decode.
//!
//! Everything here is bounded: tag counts and lengths are capped, the MP4 `moov` box is read
//! only up to [`MAX_MOOV_BYTES`], and box walks stop at the first malformed size.

use std::io::{Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};
use symphonia::core::codecs::audio::AudioCodecId;
use symphonia::core::codecs::audio::well_known as codec_ids;
use symphonia::core::formats::FormatReader;
use symphonia::core::meta::{ChapterGroup, ChapterGroupItem, RawValue, StandardTag, Tag};

use crate::Chapter;

/// What a probe learns about an input: container, codec, layout, exact length, tags, chapters.
///
/// `frames` is the exact number of frames [`decode_file`](super::decode_file) returns for the
/// same input and options: it comes from the header only where the header is exact (PCM whose
/// size fits the file, FLAC STREAMINFO, MP3 with a LAME tag, Ogg granule positions), otherwise
/// from a decoding pass that counts frames without storing them (`frames_counted` is then true).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeInfo {
    /// Container: `wav`, `aiff`, `caf`, `mp3`, `flac`, `ogg`, `mp4`, `adts`, `mkv`, …
    pub container: String,
    /// Codec, in ffmpeg's spelling: `pcm_s16le`, `mp3`, `flac`, `vorbis`, `aac`, …
    pub codec: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
    /// Bits per sample of the stored samples, for PCM and lossless codecs.
    pub bits_per_sample: Option<u32>,
    /// Exact decoded length in frames (per channel), after gapless trimming.
    pub frames: u64,
    /// `frames` as whole milliseconds, rounded to nearest.
    pub duration_ms: u64,
    /// True when `frames` was found by decoding, false when the header gave it exactly.
    pub frames_counted: bool,
    /// Metadata tags in file order (`title`, `artist`, … for well-known ones, else the raw key).
    pub tags: Vec<TagEntry>,
    /// Chapters (ID3v2 CHAP, FLAC/Ogg cue data where symphonia reads them), in file order.
    pub chapters: Vec<Chapter>,
    /// True when the file declares encoder delay or padding (LAME tag, MP4 edit list, Ogg
    /// granules) and decoding trimmed it.
    pub has_gapless_info: bool,
    /// Leading frames trimmed as encoder delay or priming (AAC: usually 1024).
    pub delay_frames: u64,
    /// Trailing frames trimmed as encoder padding.
    pub padding_frames: u64,
}

/// One metadata tag: a key and its value as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagEntry {
    /// `title`, `artist`, `album`, `album_artist`, `date`, `genre`, `comment`, `track`,
    /// `encoder`, … for tags symphonia recognises; otherwise the raw key (`TXXX:…`, `©nam`).
    pub key: String,
    /// The value as text.
    pub value: String,
}

/// Most tags kept from one file; more are dropped (a warning says so).
pub(crate) const MAX_TAGS: usize = 256;
/// Longest tag value kept, in bytes; longer ones are cut at a character boundary.
pub(crate) const MAX_TAG_VALUE_BYTES: usize = 4096;
/// Most chapters kept from one file.
pub(crate) const MAX_CHAPTERS: usize = 4096;
/// Largest MP4 `moov` box read to find the edit list. A 6-hour AAC file's `moov` is ~8 MB.
pub(crate) const MAX_MOOV_BYTES: u64 = 64 << 20;

/// Friendly container name from symphonia's short name.
pub(crate) fn container_name(short_name: &str) -> String {
    match short_name {
        "wave" => "wav",
        "isomp4" => "mp4",
        "aac" => "adts",
        other => other,
    }
    .to_string()
}

/// Name of a codec symphonia has no decoder for (the registry names the ones it has).
pub(crate) fn unsupported_codec_name(id: AudioCodecId) -> String {
    let known = [
        (codec_ids::CODEC_ID_OPUS, "opus"),
        (codec_ids::CODEC_ID_SPEEX, "speex"),
        (codec_ids::CODEC_ID_MUSEPACK, "musepack"),
        (codec_ids::CODEC_ID_AC3, "ac3"),
        (codec_ids::CODEC_ID_EAC3, "eac3"),
        (codec_ids::CODEC_ID_AC4, "ac4"),
        (codec_ids::CODEC_ID_DCA, "dts"),
        (codec_ids::CODEC_ID_WMA, "wma"),
        (codec_ids::CODEC_ID_ATRAC1, "atrac1"),
        (codec_ids::CODEC_ID_ATRAC3, "atrac3"),
        (codec_ids::CODEC_ID_ATRAC3PLUS, "atrac3plus"),
        (codec_ids::CODEC_ID_ATRAC9, "atrac9"),
        (codec_ids::CODEC_ID_COOK, "cook"),
        (codec_ids::CODEC_ID_SBC, "sbc"),
        (codec_ids::CODEC_ID_APTX, "aptx"),
        (codec_ids::CODEC_ID_APTX_HD, "aptx_hd"),
        (codec_ids::CODEC_ID_LDAC, "ldac"),
        (codec_ids::CODEC_ID_WAVPACK, "wavpack"),
        (codec_ids::CODEC_ID_MONKEYS_AUDIO, "ape"),
        (codec_ids::CODEC_ID_TTA, "tta"),
        (codec_ids::CODEC_ID_TRUEHD, "truehd"),
        (codec_ids::CODEC_ID_ADPCM_G722, "adpcm_g722"),
        (codec_ids::CODEC_ID_ADPCM_G726, "adpcm_g726"),
        (codec_ids::CODEC_ID_ADPCM_G726LE, "adpcm_g726le"),
        (codec_ids::CODEC_ID_PCM_F64LE, "pcm_f64le"),
        (codec_ids::CODEC_ID_PCM_F64BE, "pcm_f64be"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == id)
        .map_or_else(|| format!("unknown codec {id}"), |(_, name)| (*name).to_string())
}

/// Containers symphonia does not read, recognised from their first bytes (at most 16) so the
/// error can say "unsupported wma" instead of "not audio" or a misleading decode error.
pub(crate) fn sniff_unsupported_container(head: &[u8]) -> Option<&'static str> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (&[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11], "asf/wma"),
        // Sony Wave64: the `riff` chunk GUID.
        (
            &[
                0x72, 0x69, 0x66, 0x66, 0x2E, 0x91, 0xCF, 0x11, 0xA5, 0xD6, 0x28, 0xDB, 0x04, 0xC1,
                0x00, 0x00,
            ],
            "wave64 (w64)",
        ),
        (b"wvpk", "wavpack"),
        (b"MAC ", "monkey's audio (ape)"),
        (b"#!AMR", "amr"),
        (b".snd", "sun au"),
        (b"MThd", "midi"),
        (b".ra\xfd", "realaudio"),
        (b".RMF", "realmedia"),
        (b"DSD ", "dsf"),
        (b"FRM8", "dsdiff"),
        (b"TTA1", "tta"),
        (b"MPCK", "musepack"),
        (b"MP+", "musepack"),
        // Raw AC-3 / E-AC-3 and DTS elementary streams (sync words).
        (&[0x0B, 0x77], "ac-3"),
        (&[0x7F, 0xFE, 0x80, 0x01], "dts"),
    ];
    SIGNATURES.iter().find(|(sig, _)| head.starts_with(sig)).map(|(_, name)| *name)
}

/// Text of a raw tag value; `None` for binary data.
fn raw_value_text(value: &RawValue) -> Option<String> {
    match value {
        RawValue::Binary(_) => None,
        RawValue::Flag => Some(String::new()),
        RawValue::StringList(list) => Some(list.join("; ")),
        other => Some(other.to_string()),
    }
}

/// A short key for the standard tags a podcast tool cares about.
fn standard_key(tag: &StandardTag) -> Option<&'static str> {
    Some(match tag {
        StandardTag::TrackTitle(_) => "title",
        StandardTag::Artist(_) => "artist",
        StandardTag::Album(_) => "album",
        StandardTag::AlbumArtist(_) => "album_artist",
        StandardTag::Comment(_) => "comment",
        StandardTag::Composer(_) => "composer",
        StandardTag::Copyright(_) => "copyright",
        StandardTag::Description(_) => "description",
        StandardTag::Encoder(_) => "encoder",
        StandardTag::EncodedBy(_) => "encoded_by",
        StandardTag::Genre(_) => "genre",
        StandardTag::Language(_) => "language",
        StandardTag::Lyrics(_) => "lyrics",
        StandardTag::RecordingDate(_) | StandardTag::ReleaseDate(_) => "date",
        StandardTag::RecordingYear(_) | StandardTag::ReleaseYear(_) => "year",
        StandardTag::TrackNumber(_) => "track",
        StandardTag::TrackTotal(_) => "track_total",
        StandardTag::DiscNumber(_) => "disc",
        StandardTag::PodcastDescription(_) => "podcast_description",
        StandardTag::Url(_) | StandardTag::UrlOfficial(_) | StandardTag::UrlPodcast(_) => "url",
        _ => return None,
    })
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Converts one symphonia tag to a [`TagEntry`]; binary values are skipped.
fn tag_entry(tag: &Tag) -> Option<TagEntry> {
    let value = raw_value_text(&tag.raw.value)?;
    let key =
        tag.std.as_ref().and_then(standard_key).map_or_else(|| tag.raw.key.clone(), str::to_string);
    Some(TagEntry { key: clip(key, 256), value: clip(value, MAX_TAG_VALUE_BYTES) })
}

/// All media-level tags of every metadata revision (ID3v2 before the stream, the container's
/// own, trailing ID3v1/APE), in order, without exact duplicates. Returns the tags and how many
/// were dropped by [`MAX_TAGS`].
pub(crate) fn collect_tags(reader: &mut dyn FormatReader) -> (Vec<TagEntry>, usize) {
    let mut out: Vec<TagEntry> = Vec::new();
    let mut dropped = 0usize;
    let mut metadata = reader.metadata();
    // `pop` never empties the log, so the loop visits each revision once and then stops.
    for _ in 0..1024 {
        if let Some(rev) = metadata.current() {
            for entry in rev.media.tags.iter().filter_map(tag_entry) {
                if out.contains(&entry) {
                    continue;
                }
                if out.len() < MAX_TAGS {
                    out.push(entry);
                } else {
                    dropped += 1;
                }
            }
        }
        if metadata.pop().is_none() {
            break;
        }
    }
    (out, dropped)
}

/// Milliseconds of a symphonia time, clamped to `0..=u64::MAX`.
fn time_ms(t: symphonia::core::units::Time) -> u64 {
    u64::try_from(t.as_millis().max(0)).unwrap_or(u64::MAX)
}

/// Flattens a chapter group (CTOC trees) into chapters in file order. A chapter without an end
/// ends where the next one starts, the last one at `total_ms`.
pub(crate) fn collect_chapters(group: Option<&ChapterGroup>, total_ms: u64) -> Vec<Chapter> {
    let Some(group) = group else { return Vec::new() };
    let mut flat = Vec::new();
    let mut stack: Vec<std::slice::Iter<'_, ChapterGroupItem>> = vec![group.items.iter()];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            None => {
                stack.pop();
            }
            // Bound the depth: a malicious CTOC tree cannot make the walk deep.
            Some(ChapterGroupItem::Group(g)) if stack.len() < 64 => stack.push(g.items.iter()),
            Some(ChapterGroupItem::Group(_)) => {}
            Some(ChapterGroupItem::Chapter(c)) if flat.len() < MAX_CHAPTERS => flat.push(c),
            Some(ChapterGroupItem::Chapter(_)) => {}
        }
    }
    let starts: Vec<u64> = flat.iter().map(|c| time_ms(c.start_time)).collect();
    flat.iter()
        .enumerate()
        .map(|(i, c)| {
            let mut title = None;
            let mut url = None;
            for tag in &c.tags {
                match &tag.std {
                    Some(StandardTag::ChapterTitle(t) | StandardTag::TrackTitle(t)) => {
                        title.get_or_insert_with(|| t.to_string());
                    }
                    Some(StandardTag::Url(u) | StandardTag::UrlOfficial(u)) => {
                        url.get_or_insert_with(|| u.to_string());
                    }
                    _ if tag.raw.key.eq_ignore_ascii_case("TIT2") => {
                        if let Some(v) = raw_value_text(&tag.raw.value) {
                            title.get_or_insert(v);
                        }
                    }
                    _ => {}
                }
            }
            let start_ms = starts[i];
            let end_ms = c
                .end_time
                .map(time_ms)
                .or_else(|| starts.get(i + 1).copied())
                .unwrap_or(total_ms)
                .max(start_ms);
            Chapter {
                title: clip(title.unwrap_or_default(), MAX_TAG_VALUE_BYTES),
                start_ms,
                end_ms,
                url: url.map(|u| clip(u, MAX_TAG_VALUE_BYTES)),
            }
        })
        .collect()
}

/// The edit-list facts of one MP4 track that decoding needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mp4TrackEdit {
    /// `tkhd` track id (symphonia uses it as the track id).
    pub track_id: u32,
    /// `mdhd` timescale.
    pub timescale: u32,
    /// `media_time` of the first non-empty edit, in `timescale` units: the priming to skip.
    pub media_time: Option<u64>,
    /// Number of edits, so unusual edit lists can be reported.
    pub edit_count: u32,
    /// Number of leading empty edits (delays), which are not applied.
    pub empty_edits: u32,
    /// True for a sound track (`hdlr` handler type `soun`).
    pub sound: bool,
}

impl Mp4TrackEdit {
    /// Frames to skip at the start at `sample_rate`, rounded to nearest (integer maths).
    pub(crate) fn priming_frames(&self, sample_rate: u32) -> u64 {
        match (self.media_time, self.timescale) {
            (Some(t), ts) if ts > 0 => {
                let f =
                    (u128::from(t) * u128::from(sample_rate) + u128::from(ts) / 2) / u128::from(ts);
                u64::try_from(f).unwrap_or(u64::MAX)
            }
            _ => 0,
        }
    }
}

/// Iterates the child boxes of `data` as `(type, body)`, stopping at the first malformed size.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 8 {
            return None;
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let (size, header) = match size32 {
            0 => (rest.len() as u64, 8usize),
            1 => {
                let b = rest.get(8..16)?;
                (u64::from_be_bytes(b.try_into().ok()?), 16usize)
            }
            s => (u64::from(s), 8usize),
        };
        let size = usize::try_from(size).ok()?;
        if size < header || size > rest.len() {
            rest = &[];
            return None;
        }
        let body = &rest[header..size];
        rest = &rest[size..];
        Some((kind, body))
    })
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the `trak` facts from a `moov` body.
pub(crate) fn parse_moov(moov: &[u8]) -> Vec<Mp4TrackEdit> {
    boxes(moov).filter(|(k, _)| k == b"trak").filter_map(|(_, trak)| parse_trak(trak)).collect()
}

fn parse_trak(trak: &[u8]) -> Option<Mp4TrackEdit> {
    let mut track_id = None;
    let mut timescale = None;
    let mut edit = (None, 0u32, 0u32);
    let mut sound = false;
    for (kind, body) in boxes(trak) {
        match &kind {
            b"tkhd" => {
                let version = *body.first()?;
                track_id = be_u32(body, if version == 1 { 20 } else { 12 });
            }
            b"mdia" => {
                for (k, b) in boxes(body) {
                    if &k == b"mdhd" {
                        let version = *b.first()?;
                        timescale = be_u32(b, if version == 1 { 20 } else { 12 });
                    }
                    // Version and flags (4 bytes), pre_defined (4), then the handler type.
                    if &k == b"hdlr" {
                        sound |= b.get(8..12) == Some(b"soun");
                    }
                }
            }
            b"edts" => {
                if let Some((_, elst)) = boxes(body).find(|(k, _)| k == b"elst") {
                    edit = parse_elst(elst);
                }
            }
            _ => {}
        }
    }
    Some(Mp4TrackEdit {
        track_id: track_id?,
        timescale: timescale?,
        media_time: edit.0,
        edit_count: edit.1,
        empty_edits: edit.2,
        sound,
    })
}

/// `(media_time of the first non-empty edit, edit count, leading empty edits)`.
fn parse_elst(elst: &[u8]) -> (Option<u64>, u32, u32) {
    let Some(&version) = elst.first() else { return (None, 0, 0) };
    let Some(count) = be_u32(elst, 4) else { return (None, 0, 0) };
    let entry_len = if version == 1 { 20 } else { 12 };
    let mut empty = 0;
    // Only the first few entries matter; never walk a hostile count.
    for i in 0..count.min(64) as usize {
        let at = 8 + i * entry_len;
        let media_time = if version == 1 {
            be_u64(elst, at + 8).map(|v| v as i64)
        } else {
            be_u32(elst, at + 4).map(|v| i64::from(v as i32))
        };
        match media_time {
            None => break,
            Some(-1) => empty += 1,
            Some(t) if t >= 0 => return (Some(t as u64), count, empty),
            Some(_) => break,
        }
    }
    (None, count, empty)
}

/// The encoder priming an iTunes `iTunSMPB` tag declares (its second hexadecimal field:
/// ` 00000000 00000840 000001CA 00000000000D8E76 …` is 2112 frames), when it is in
/// `1..16384` as ffmpeg requires; `None` otherwise.
pub(crate) fn itunsmpb_priming(value: &str) -> Option<u64> {
    let priming = u64::from_str_radix(value.split_whitespace().nth(1)?, 16).ok()?;
    (1..16_384).contains(&priming).then_some(priming)
}

/// Finds and parses the `moov` box of an MP4 file by walking the top-level boxes (seeking over
/// `mdat`). `None` if the input is not MP4-shaped, has no `moov`, or its `moov` is larger than
/// [`MAX_MOOV_BYTES`]. Leaves the reader at an unspecified position.
pub(crate) fn scan_mp4<R: Read + Seek>(r: &mut R, len: u64) -> Option<Vec<Mp4TrackEdit>> {
    let mut pos = 0u64;
    for _ in 0..4096 {
        if pos.checked_add(8)? > len {
            return None;
        }
        r.seek(SeekFrom::Start(pos)).ok()?;
        let mut head = [0u8; 16];
        r.read_exact(&mut head[..8]).ok()?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind = [head[4], head[5], head[6], head[7]];
        let (size, header) = match size32 {
            0 => (len - pos, 8u64),
            1 => {
                r.read_exact(&mut head[8..16]).ok()?;
                (u64::from_be_bytes(head[8..16].try_into().ok()?), 16u64)
            }
            s => (u64::from(s), 8u64),
        };
        if size < header || pos.checked_add(size)? > len {
            return None;
        }
        if &kind == b"moov" {
            let body_len = size - header;
            if body_len > MAX_MOOV_BYTES {
                return None;
            }
            let mut body = vec![0u8; usize::try_from(body_len).ok()?];
            r.read_exact(&mut body).ok()?;
            return Some(parse_moov(&body));
        }
        pos += size;
    }
    None
}

/// True when `head` starts like an ISO-BMFF file (a known top-level box type at offset 4).
pub(crate) fn looks_like_mp4(head: &[u8]) -> bool {
    head.get(4..8).is_some_and(|k| {
        [b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"]
            .iter()
            .any(|t| k == *t)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn trak(id: u32, timescale: u32, edits: &[(u32, i32)]) -> Vec<u8> {
        let mut tkhd = vec![0u8; 84];
        tkhd[12..16].copy_from_slice(&id.to_be_bytes());
        let mut mdhd = vec![0u8; 24];
        mdhd[12..16].copy_from_slice(&timescale.to_be_bytes());
        let mut elst = vec![0u8, 0, 0, 0];
        elst.extend_from_slice(&(edits.len() as u32).to_be_bytes());
        for (dur, t) in edits {
            elst.extend_from_slice(&dur.to_be_bytes());
            elst.extend_from_slice(&t.to_be_bytes());
            elst.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        }
        let mut body = bx(b"tkhd", &tkhd);
        body.extend(bx(b"edts", &bx(b"elst", &elst)));
        body.extend(bx(b"mdia", &bx(b"mdhd", &mdhd)));
        bx(b"trak", &body)
    }

    #[test]
    fn edit_list_gives_priming_for_the_right_track() {
        let mut moov = trak(1, 1000, &[(1000, 0)]);
        moov.extend(trak(2, 44_100, &[(500, -1), (1000, 2112)]));
        let mut file = bx(b"ftyp", b"M4A \0\0\0\0");
        file.extend(bx(b"mdat", &[0u8; 100]));
        file.extend(bx(b"moov", &moov));
        assert!(looks_like_mp4(&file));
        let len = file.len() as u64;
        let tracks = scan_mp4(&mut std::io::Cursor::new(file), len).unwrap();
        assert_eq!(tracks.len(), 2);
        assert_eq!(tracks[0].media_time, Some(0));
        let t2 = tracks.iter().find(|t| t.track_id == 2).unwrap();
        assert_eq!((t2.media_time, t2.edit_count, t2.empty_edits), (Some(2112), 2, 1));
        assert_eq!(t2.priming_frames(44_100), 2112);
        // Timescale differing from the rate converts (1024 at 48 kHz = 2048 at 96 kHz).
        let t = Mp4TrackEdit {
            track_id: 1,
            timescale: 48_000,
            media_time: Some(1024),
            edit_count: 1,
            empty_edits: 0,
            sound: true,
        };
        assert_eq!(t.priming_frames(96_000), 2048);
    }

    #[test]
    fn malformed_boxes_stop_the_walk() {
        // A size smaller than the header, a size past the end, a huge 64-bit size.
        for bad in [
            vec![0, 0, 0, 4, b'm', b'o', b'o', b'v'],
            vec![0, 0, 1, 0, b'm', b'o', b'o', b'v', 1, 2],
            vec![
                0, 0, 0, 1, b'm', b'o', b'o', b'v', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        ] {
            let len = bad.len() as u64;
            assert_eq!(scan_mp4(&mut std::io::Cursor::new(bad.clone()), len), None);
            assert!(parse_moov(&bad).is_empty());
        }
    }

    #[test]
    fn itunsmpb_gives_the_priming() {
        let apple = " 00000000 00000840 000001CA 00000000000D8E76 00000000 00000000";
        assert_eq!(itunsmpb_priming(apple), Some(2112));
        assert_eq!(itunsmpb_priming(" 00000000 00000000 0 0"), None);
        assert_eq!(itunsmpb_priming(" 00000000 00004000 0 0"), None);
        assert_eq!(itunsmpb_priming("garbage"), None);
        assert_eq!(itunsmpb_priming(""), None);
    }

    #[test]
    fn names_and_signatures() {
        assert_eq!(unsupported_codec_name(codec_ids::CODEC_ID_OPUS), "opus");
        assert_eq!(container_name("isomp4"), "mp4");
        assert_eq!(sniff_unsupported_container(b"wvpk\0\0\0\0"), Some("wavpack"));
        assert_eq!(sniff_unsupported_container(b"hello"), None);
        assert_eq!(sniff_unsupported_container(b"#!AMR-WB\n"), Some("amr"));
        assert_eq!(
            sniff_unsupported_container(b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\0\0"),
            Some("wave64 (w64)")
        );
        // A RIFF WAVE is not Wave64.
        assert_eq!(sniff_unsupported_container(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(clip("ééé".to_string(), 3), "é");
    }
}
