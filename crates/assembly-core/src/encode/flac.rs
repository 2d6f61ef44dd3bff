//! FLAC output via flacenc, streamed frame by frame.
//!
//! flacenc's `encode_with_fixed_block_size` keeps the whole stream in memory, so this writes
//! each 4096-frame block as soon as it is full (`encode_fixed_size_frame`). The header (`fLaC`,
//! STREAMINFO, VORBIS_COMMENT, PICTURE) is written first with placeholders and rewritten in
//! place at the end with the true total length, frame sizes and MD5. Memory stays bounded.
//!
//! Blocks are encoded in batches of [`BATCH`]: filled one after the other (the MD5 and the
//! sample count run in order), then encoded half on the calling thread and half on a second
//! one (`par::join`) when two threads are allowed, then written in order. FLAC frames are
//! independent, so the bytes are the same on one thread or two.
//!
//! STREAMINFO fix: flacenc records the short last block as the minimum block size, which
//! symphonia rejects for a fixed-blocksize stream; the minimum and maximum are both set to the
//! block size (what libFLAC writes).

use std::io::{Seek, SeekFrom, Write};
use std::num::NonZeroU32;
use std::path::PathBuf;

use flacenc::bitsink::MemSink;
use flacenc::component::{BitRepr, Frame, MetadataBlockData, Stream, StreamInfo};
use flacenc::config;
use flacenc::error::{Verified, Verify};
use flacenc::source::{Context, Fill, FrameBuf};

use super::{Tags, quantize, tags};
use crate::atomic::AtomicFile;
use crate::error::{Error, Result};
use crate::par;

/// Frames per FLAC block (the libFLAC default for 44.1/48 kHz).
const BLOCK: usize = 4096;

/// Blocks encoded together (65,536 frames, ~1.5 s at 44.1 kHz; ~0.5 MiB of stereo samples).
const BATCH: usize = 16;

pub(super) struct FlacOut {
    file: AtomicFile,
    config: Verified<config::Encoder>,
    /// Holds STREAMINFO and the metadata blocks, never frames.
    header: Stream,
    header_len: usize,
    /// Blocks filled and waiting to be encoded: `batch[..filled]` (the buffers are reused).
    batch: Vec<FrameBuf>,
    filled: usize,
    context: Context,
    /// Interleaved samples of the block being filled.
    pending: Vec<i32>,
    channels: usize,
    bits: u32,
    /// Frame number of `batch[0]`.
    frame_number: usize,
    /// Encode a batch's second half on a second thread.
    two_threads: bool,
    sink: MemSink<u8>,
}

impl FlacOut {
    pub(super) fn new(
        mut file: AtomicFile,
        bits: u8,
        rate: NonZeroU32,
        channels: usize,
        tags: &Tags,
        two_threads: bool,
    ) -> Result<Self> {
        let path = file.final_path().to_path_buf();
        let mut config = config::Encoder::default();
        config.block_size = BLOCK;
        let config = config
            .into_verified()
            .map_err(|(_, e)| flac_err(&path, "invalid encoder configuration", e))?;
        let mut header = Stream::new(rate.get() as usize, channels, usize::from(bits))
            .map_err(|e| flac_err(&path, "invalid stream parameters", e))?;
        header
            .stream_info_mut()
            .set_block_sizes(BLOCK, BLOCK)
            .map_err(|e| flac_err(&path, "invalid block size", e))?;
        let comment = MetadataBlockData::new_unknown(4, &tags::vorbis_comment_body(tags))
            .map_err(|e| flac_err(&path, "cannot build the Vorbis comment block", e))?;
        header.add_metadata_block(comment);
        if let Some(cover) = &tags.cover {
            let picture = MetadataBlockData::new_unknown(6, &tags::flac_picture_body(cover))
                .map_err(|e| flac_err(&path, "cannot build the PICTURE block", e))?;
            header.add_metadata_block(picture);
        }
        let mut sink = MemSink::<u8>::new();
        let bytes = serialize_header(&header, &mut sink, &path)?;
        file.write_all(&bytes).map_err(|e| Error::io("write", &path, e))?;
        let batch = (0..BATCH)
            .map(|_| FrameBuf::with_size(channels, BLOCK))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| flac_err(&path, "cannot allocate the frame buffers", e))?;
        Ok(Self {
            file,
            config,
            header,
            header_len: bytes.len(),
            batch,
            filled: 0,
            context: Context::new(usize::from(bits), channels),
            pending: Vec::with_capacity(BLOCK * channels),
            channels,
            bits: u32::from(bits),
            frame_number: 0,
            two_threads,
            sink,
        })
    }

    fn path(&self) -> PathBuf {
        self.file.final_path().to_path_buf()
    }

    pub(super) fn write(&mut self, planes: &[&[f32]]) -> Result<()> {
        let n = planes.first().map_or(0, |p| p.len());
        let mut i = 0;
        while i < n {
            let room = BLOCK - self.pending.len() / self.channels;
            let take = room.min(n - i);
            for j in i..i + take {
                for p in planes {
                    self.pending.push(quantize(p[j], self.bits));
                }
            }
            i += take;
            if self.pending.len() == BLOCK * self.channels {
                self.fill_block()?;
                if self.filled == BATCH {
                    self.encode_batch()?;
                }
            }
        }
        Ok(())
    }

    /// Moves the pending samples into the next block of the batch (in order: the context
    /// keeps the MD5 and the sample count).
    fn fill_block(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.path();
        let mut fill = (&mut self.batch[self.filled], &mut self.context);
        fill.fill_interleaved(&self.pending)
            .map_err(|e| flac_err(&path, "cannot load samples", e))?;
        self.pending.clear();
        self.filled += 1;
        Ok(())
    }

    /// Encodes the filled blocks (two halves at once when allowed) and writes their frames in
    /// order.
    fn encode_batch(&mut self) -> Result<()> {
        let path = self.path();
        let (blocks, first) = (&self.batch[..self.filled], self.frame_number);
        let (config, info) = (&self.config, self.header.stream_info());
        let frames = if self.two_threads && blocks.len() >= 2 {
            let mid = blocks.len() / 2;
            let (a, b) = par::join(
                || encode_blocks(config, info, &blocks[..mid], first),
                || encode_blocks(config, info, &blocks[mid..], first + mid),
            );
            let mut frames = a.map_err(|e| flac_err(&path, "frame encoding failed", e))?;
            frames.extend(b.map_err(|e| flac_err(&path, "frame encoding failed", e))?);
            frames
        } else {
            encode_blocks(config, info, blocks, first)
                .map_err(|e| flac_err(&path, "frame encoding failed", e))?
        };
        self.frame_number += self.filled;
        self.filled = 0;
        for frame in &frames {
            self.header.stream_info_mut().update_frame_info(frame);
            self.sink.clear();
            frame
                .write(&mut self.sink)
                .map_err(|e| Error::encode(&path, format!("cannot serialize a frame: {e}")))?;
            self.file.write_all(self.sink.as_slice()).map_err(|e| Error::io("write", &path, e))?;
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<(AtomicFile, u64)> {
        self.fill_block()?;
        self.encode_batch()?;
        let path = self.path();
        let md5 = self.context.md5_digest();
        let total = self.context.total_samples();
        let info = self.header.stream_info_mut();
        if info.total_samples() != total {
            return Err(Error::internal(format!(
                "FLAC frames hold {} samples but {total} were read",
                info.total_samples()
            )));
        }
        // The STREAMINFO fix (see module docs) and the true MD5.
        info.set_block_sizes(BLOCK, BLOCK).map_err(|e| flac_err(&path, "invalid block size", e))?;
        info.set_md5_digest(&md5);
        if self.frame_number == 0 {
            // No frames: frame sizes are unknown (0), not the u32::MAX placeholder.
            info.set_frame_sizes(0, 0).map_err(|e| flac_err(&path, "invalid frame sizes", e))?;
        }
        let bytes = serialize_header(&self.header, &mut self.sink, &path)?;
        if bytes.len() != self.header_len {
            return Err(Error::internal(format!(
                "FLAC header changed size from {} to {} bytes",
                self.header_len,
                bytes.len()
            )));
        }
        let end = self.file.seek(SeekFrom::End(0)).map_err(|e| Error::io("seek", &path, e))?;
        self.file.seek(SeekFrom::Start(0)).map_err(|e| Error::io("seek", &path, e))?;
        self.file.write_all(&bytes).map_err(|e| Error::io("write", &path, e))?;
        self.file.seek(SeekFrom::End(0)).map_err(|e| Error::io("seek", &path, e))?;
        Ok((self.file, end))
    }
}

/// Encodes `blocks` as frames `first`, `first + 1`, …; the error as text (flacenc's errors are
/// not all `Send`).
fn encode_blocks(
    config: &Verified<config::Encoder>,
    info: &StreamInfo,
    blocks: &[FrameBuf],
    first: usize,
) -> std::result::Result<Vec<Frame>, String> {
    (blocks.iter().zip(first..))
        .map(|(block, number)| {
            flacenc::encode_fixed_size_frame(config, block, number, info).map_err(|e| e.to_string())
        })
        .collect()
}

/// `fLaC` + all metadata blocks (the stream holds no frames).
fn serialize_header(header: &Stream, sink: &mut MemSink<u8>, path: &PathBuf) -> Result<Vec<u8>> {
    sink.clear();
    header
        .write(sink)
        .map_err(|e| Error::encode(path, format!("cannot serialize the FLAC header: {e}")))?;
    Ok(sink.as_slice().to_vec())
}

/// flacenc's errors are not all `Send`, so their message goes into the detail.
fn flac_err(path: &std::path::Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::encode(path, format!("FLAC {what}: {e}"))
}
