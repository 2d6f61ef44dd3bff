//! Tag validation and serialization: ID3v2.4 (MP3), Vorbis comments and PICTURE (FLAC).

use std::str::FromStr;

use id3::frame::{
    Chapter as Id3Chapter, Comment, ExtendedLink, Picture, PictureType, TableOfContents,
};
use id3::{Frame, TagLike, Timestamp, Version};
use serde::{Deserialize, Serialize};

use super::Tags;
use crate::error::{Error, Result};

/// Largest cover image accepted, in bytes (8 MiB; FLAC metadata blocks stop at 16 MiB).
pub const MAX_COVER_BYTES: usize = 8 << 20;

/// Largest text field accepted, in bytes.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Most chapters accepted (CTOC child count is stored in a byte in some readers' minds; ID3
/// itself allows 255 entries per CTOC).
pub const MAX_CHAPTERS: usize = 255;

/// Cover art: JPEG or PNG bytes and their MIME type.
///
/// ```
/// use assembly_core::encode::CoverArt;
///
/// let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
/// let cover = CoverArt::from_bytes(png).unwrap();
/// assert_eq!(cover.mime, "image/png");
/// assert!(CoverArt::from_bytes(b"GIF89a".to_vec()).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverArt {
    /// `image/jpeg` or `image/png`; must match the bytes.
    pub mime: String,
    /// The image file's bytes.
    pub data: Vec<u8>,
}

impl CoverArt {
    /// Wraps image bytes, detecting JPEG or PNG from their signature.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] (field `tags.cover`) if the bytes are neither JPEG nor PNG, or
    /// larger than [`MAX_COVER_BYTES`].
    pub fn from_bytes(data: Vec<u8>) -> Result<Self> {
        let mime = detect_mime(&data).ok_or_else(|| {
            Error::invalid_input("tags.cover", "cover art must be a JPEG or PNG image")
        })?;
        let cover = Self { mime: mime.to_string(), data };
        cover.validate()?;
        Ok(cover)
    }

    /// Reads an image file (JPEG or PNG).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read (or is larger than [`MAX_COVER_BYTES`]);
    /// otherwise as [`from_bytes`](Self::from_bytes).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let len = std::fs::metadata(path).map_err(|e| Error::io("open", path, e))?.len();
        if len > MAX_COVER_BYTES as u64 {
            return Err(Error::invalid_input(
                "tags.cover",
                format!("{}: {len} bytes, over the {MAX_COVER_BYTES}-byte limit", path.display()),
            ));
        }
        let data = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        Self::from_bytes(data)
    }

    fn validate(&self) -> Result<()> {
        if self.data.len() > MAX_COVER_BYTES {
            return Err(Error::invalid_input(
                "tags.cover.data",
                format!("{} bytes, over the {MAX_COVER_BYTES}-byte limit", self.data.len()),
            ));
        }
        let Some(detected) = detect_mime(&self.data) else {
            return Err(Error::invalid_input(
                "tags.cover.data",
                "cover art must be a JPEG or PNG image",
            ));
        };
        let declared = self.mime.to_ascii_lowercase();
        let declared = if declared == "image/jpg" { "image/jpeg" } else { declared.as_str() };
        if declared != detected {
            return Err(Error::invalid_input(
                "tags.cover.mime",
                format!("declared {:?} but the bytes are {detected}", self.mime),
            ));
        }
        Ok(())
    }
}

/// `image/jpeg` or `image/png` from the file signature.
fn detect_mime(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

fn check_text(field: &str, value: &Option<String>) -> Result<()> {
    if let Some(v) = value {
        if v.len() > MAX_TEXT_BYTES {
            return Err(Error::invalid_input(
                field,
                format!("{} bytes, over the {MAX_TEXT_BYTES}-byte limit", v.len()),
            ));
        }
        if v.contains('\0') {
            return Err(Error::invalid_input(field, "contains a NUL character"));
        }
    }
    Ok(())
}

pub(super) fn validate(tags: &Tags) -> Result<()> {
    check_text("tags.title", &tags.title)?;
    check_text("tags.artist", &tags.artist)?;
    check_text("tags.album", &tags.album)?;
    check_text("tags.comment", &tags.comment)?;
    check_text("tags.date", &tags.date)?;
    if let Some(date) = &tags.date {
        let ok = Timestamp::from_str(date).map(|t| t.to_string() == *date).unwrap_or(false);
        if !ok {
            return Err(Error::invalid_input(
                "tags.date",
                format!("{date:?} is not an ISO 8601 date like 2024-05-31 or 2024-05-31T08:00"),
            ));
        }
    }
    if tags.track == Some(0) {
        return Err(Error::invalid_input("tags.track", "track numbers start at 1"));
    }
    if let Some(cover) = &tags.cover {
        cover.validate()?;
    }
    if tags.chapters.len() > MAX_CHAPTERS {
        return Err(Error::invalid_input(
            "tags.chapters",
            format!("{} chapters, at most {MAX_CHAPTERS} allowed", tags.chapters.len()),
        ));
    }
    let mut prev_end = 0u64;
    for (i, c) in tags.chapters.iter().enumerate() {
        check_text(&format!("tags.chapters[{i}].title"), &Some(c.title.clone()))?;
        check_text(&format!("tags.chapters[{i}].url"), &c.url)?;
        if c.end_ms <= c.start_ms {
            return Err(Error::invalid_input(
                format!("tags.chapters[{i}].end_ms"),
                format!("end {} ms is not after start {} ms", c.end_ms, c.start_ms),
            ));
        }
        if c.end_ms > u64::from(u32::MAX) {
            return Err(Error::invalid_input(
                format!("tags.chapters[{i}].end_ms"),
                format!("{} ms does not fit the 32-bit millisecond field", c.end_ms),
            ));
        }
        if c.start_ms < prev_end {
            return Err(Error::invalid_input(
                format!("tags.chapters[{i}].start_ms"),
                format!(
                    "start {} ms is before the previous chapter's end {prev_end} ms \
                     (chapters must be in order and not overlap)",
                    c.start_ms
                ),
            ));
        }
        prev_end = c.end_ms;
    }
    Ok(())
}

/// The ID3v2.4 tag bytes for an MP3 (empty when `tags` has nothing to write).
///
/// Chapters become `CHAP` frames `chp0`, `chp1`, … (times in ms, byte offsets unused =
/// `0xFFFF_FFFF`, a `TIT2` title and optional `WXXX` link inside) listed in order by one
/// top-level, ordered `CTOC` frame `toc`.
pub(super) fn id3_bytes(tags: &Tags, path: &std::path::Path) -> Result<Vec<u8>> {
    if tags.is_empty() {
        return Ok(Vec::new());
    }
    let mut tag = id3::Tag::new();
    if let Some(v) = &tags.title {
        tag.set_title(v.as_str());
    }
    if let Some(v) = &tags.artist {
        tag.set_artist(v.as_str());
    }
    if let Some(v) = &tags.album {
        tag.set_album(v.as_str());
    }
    if let Some(v) = &tags.comment {
        tag.add_frame(Comment {
            lang: "eng".to_string(),
            description: String::new(),
            text: v.clone(),
        });
    }
    if let Some(v) = &tags.date {
        let ts = Timestamp::from_str(v)
            .map_err(|_| Error::invalid_input("tags.date", format!("{v:?} is not a date")))?;
        tag.set_date_recorded(ts);
    }
    if let Some(n) = tags.track {
        tag.set_track(n);
    }
    if let Some(cover) = &tags.cover {
        tag.add_frame(Picture {
            mime_type: cover.mime.to_ascii_lowercase().replace("image/jpg", "image/jpeg"),
            picture_type: PictureType::CoverFront,
            description: String::new(),
            data: cover.data.clone(),
        });
    }
    if !tags.chapters.is_empty() {
        let mut elements = Vec::with_capacity(tags.chapters.len());
        for (i, c) in tags.chapters.iter().enumerate() {
            let id = format!("chp{i}");
            let mut frames = vec![Frame::text("TIT2", c.title.as_str())];
            if let Some(url) = &c.url {
                frames.push(Frame::with_content(
                    "WXXX",
                    id3::Content::ExtendedLink(ExtendedLink {
                        description: String::new(),
                        link: url.clone(),
                    }),
                ));
            }
            // Validated above: end_ms fits in u32 and start_ms < end_ms.
            let ms = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
            tag.add_frame(Id3Chapter {
                element_id: id.clone(),
                start_time: ms(c.start_ms),
                end_time: ms(c.end_ms),
                start_offset: 0xFFFF_FFFF,
                end_offset: 0xFFFF_FFFF,
                frames,
            });
            elements.push(id);
        }
        tag.add_frame(TableOfContents {
            element_id: "toc".to_string(),
            top_level: true,
            ordered: true,
            elements,
            frames: Vec::new(),
        });
    }
    let mut out = Vec::new();
    tag.write_to(&mut out, Version::Id3v24).map_err(|e| Error::Encode {
        path: path.to_path_buf(),
        detail: "cannot serialize the ID3 tag".to_string(),
        source: Some(Box::new(e)),
    })?;
    Ok(out)
}

/// The body of a FLAC VORBIS_COMMENT block (type 4).
///
/// Chapters use the Vorbis chapter convention: `CHAPTER001=HH:MM:SS.mmm`,
/// `CHAPTER001NAME=title`, `CHAPTER001URL=url` (start times only).
pub(super) fn vorbis_comment_body(tags: &Tags) -> Vec<u8> {
    let mut fields: Vec<String> = Vec::new();
    let mut push = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            fields.push(format!("{k}={v}"));
        }
    };
    push("TITLE", &tags.title);
    push("ARTIST", &tags.artist);
    push("ALBUM", &tags.album);
    push("COMMENT", &tags.comment);
    push("DATE", &tags.date);
    if let Some(n) = tags.track {
        fields.push(format!("TRACKNUMBER={n}"));
    }
    for (i, c) in tags.chapters.iter().enumerate() {
        let n = i + 1;
        let ms = c.start_ms;
        fields.push(format!(
            "CHAPTER{n:03}={:02}:{:02}:{:02}.{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        ));
        fields.push(format!("CHAPTER{n:03}NAME={}", c.title));
        if let Some(url) = &c.url {
            fields.push(format!("CHAPTER{n:03}URL={url}"));
        }
    }
    let vendor = concat!("podcast-assembly ", env!("CARGO_PKG_VERSION"));
    let mut out = Vec::new();
    out.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    out.extend_from_slice(vendor.as_bytes());
    out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    for f in &fields {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

/// The body of a FLAC PICTURE block (type 6), front cover, size fields 0 (unknown).
pub(super) fn flac_picture_body(cover: &CoverArt) -> Vec<u8> {
    let mime = cover.mime.to_ascii_lowercase().replace("image/jpg", "image/jpeg");
    let mut out = Vec::with_capacity(cover.data.len() + 64);
    out.extend_from_slice(&3u32.to_be_bytes()); // front cover
    out.extend_from_slice(&(mime.len() as u32).to_be_bytes());
    out.extend_from_slice(mime.as_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // description length
    for _ in 0..4 {
        out.extend_from_slice(&0u32.to_be_bytes()); // width, height, depth, colours
    }
    out.extend_from_slice(&(cover.data.len() as u32).to_be_bytes());
    out.extend_from_slice(&cover.data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Chapter;

    fn ch(title: &str, start_ms: u64, end_ms: u64) -> Chapter {
        Chapter { title: title.into(), start_ms, end_ms, url: None }
    }

    fn field_of(tags: &Tags) -> String {
        match validate(tags) {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_field() {
        let t = Tags { date: Some("31.05.2024".into()), ..Tags::default() };
        assert_eq!(field_of(&t), "tags.date");
        let t = Tags { date: Some("2024-05-31 junk".into()), ..Tags::default() };
        assert_eq!(field_of(&t), "tags.date");
        assert!(validate(&Tags { date: Some("2024-05-31".into()), ..Tags::default() }).is_ok());
        assert_eq!(field_of(&Tags { track: Some(0), ..Tags::default() }), "tags.track");
        let t = Tags { chapters: vec![ch("a", 0, 1000), ch("b", 900, 2000)], ..Tags::default() };
        assert_eq!(field_of(&t), "tags.chapters[1].start_ms");
        let t = Tags { chapters: vec![ch("a", 500, 500)], ..Tags::default() };
        assert_eq!(field_of(&t), "tags.chapters[0].end_ms");
        let t = Tags { chapters: vec![ch("a", 0, 1 << 33)], ..Tags::default() };
        assert_eq!(field_of(&t), "tags.chapters[0].end_ms");
        let t = Tags { title: Some("a\0b".into()), ..Tags::default() };
        assert_eq!(field_of(&t), "tags.title");
        let cover = CoverArt { mime: "image/png".into(), data: vec![0xFF, 0xD8, 0xFF, 0xE0] };
        let t = Tags { cover: Some(cover), ..Tags::default() };
        assert_eq!(field_of(&t), "tags.cover.mime");
        let cover = CoverArt { mime: "image/jpg".into(), data: vec![0xFF, 0xD8, 0xFF, 0xE0] };
        assert!(validate(&Tags { cover: Some(cover), ..Tags::default() }).is_ok());
    }

    #[test]
    fn vorbis_comment_layout() {
        let tags = Tags {
            title: Some("Ep 1".into()),
            chapters: vec![ch("Intro", 0, 61_001), ch("Talk", 3_723_456, 3_800_000)],
            ..Tags::default()
        };
        let body = vorbis_comment_body(&tags);
        let vendor_len = u32::from_le_bytes(body[0..4].try_into().unwrap()) as usize;
        let mut pos = 4 + vendor_len;
        let count = u32::from_le_bytes(body[pos..pos + 4].try_into().unwrap());
        pos += 4;
        let mut got = Vec::new();
        for _ in 0..count {
            let n = u32::from_le_bytes(body[pos..pos + 4].try_into().unwrap()) as usize;
            got.push(String::from_utf8(body[pos + 4..pos + 4 + n].to_vec()).unwrap());
            pos += 4 + n;
        }
        assert_eq!(pos, body.len());
        assert_eq!(
            got,
            [
                "TITLE=Ep 1",
                "CHAPTER001=00:00:00.000",
                "CHAPTER001NAME=Intro",
                "CHAPTER002=01:02:03.456",
                "CHAPTER002NAME=Talk"
            ]
        );
    }
}
