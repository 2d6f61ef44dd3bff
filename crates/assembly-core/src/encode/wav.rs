//! WAV output via hound: 16/24-bit PCM or 32-bit float.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom};
use std::num::NonZeroU32;
use std::path::PathBuf;

use hound::{SampleFormat, WavSpec, WavWriter};

use super::{WavSampleFormat, quantize, sanitize_float};
use crate::atomic::AtomicFile;
use crate::error::{Error, Result};

/// RIFF sizes are 32-bit: the data chunk must stay below this many bytes.
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - 1024;

pub(super) struct WavOut {
    // Declared before `file` so it is dropped (and its handle closed) first.
    writer: WavWriter<BufWriter<File>>,
    file: AtomicFile,
    format: WavSampleFormat,
    bytes_per_frame: u64,
    data_bytes: u64,
}

impl WavOut {
    pub(super) fn new(
        mut file: AtomicFile,
        format: WavSampleFormat,
        rate: NonZeroU32,
        channels: usize,
    ) -> Result<Self> {
        let path = file.final_path().to_path_buf();
        let (bits, sample_format) = match format {
            WavSampleFormat::Pcm16 => (16u16, SampleFormat::Int),
            WavSampleFormat::Pcm24 => (24, SampleFormat::Int),
            WavSampleFormat::Float32 => (32, SampleFormat::Float),
        };
        let spec = WavSpec {
            channels: u16::try_from(channels)
                .map_err(|_| Error::invalid_input("channels", "too many channels for WAV"))?,
            sample_rate: rate.get(),
            bits_per_sample: bits,
            sample_format,
        };
        // hound owns its writer, so give it a second handle to the temp file; the AtomicFile
        // keeps the first one for fsync and rename.
        let handle = file.try_clone_file()?;
        let writer = WavWriter::new(BufWriter::with_capacity(256 * 1024, handle), spec)
            .map_err(|e| hound_err(&path, e))?;
        Ok(Self {
            writer,
            file,
            format,
            bytes_per_frame: u64::from(bits / 8) * channels as u64,
            data_bytes: 0,
        })
    }

    fn path(&self) -> PathBuf {
        self.file.final_path().to_path_buf()
    }

    pub(super) fn write(&mut self, planes: &[&[f32]]) -> Result<()> {
        let n = planes.first().map_or(0, |p| p.len());
        let add = n as u64 * self.bytes_per_frame;
        if self.data_bytes + add > MAX_DATA_BYTES {
            return Err(Error::encode(
                self.path(),
                "WAV data would exceed 4 GiB (the RIFF size limit); use FLAC or MP3",
            ));
        }
        let res = match self.format {
            WavSampleFormat::Pcm16 => {
                let mut w = self.writer.get_i16_writer((n * planes.len()) as u32);
                for i in 0..n {
                    for p in planes {
                        w.write_sample(quantize(p[i], 16) as i16);
                    }
                }
                w.flush()
            }
            WavSampleFormat::Pcm24 => (0..n).try_for_each(|i| {
                planes.iter().try_for_each(|p| self.writer.write_sample(quantize(p[i], 24)))
            }),
            WavSampleFormat::Float32 => (0..n).try_for_each(|i| {
                planes.iter().try_for_each(|p| self.writer.write_sample(sanitize_float(p[i])))
            }),
        };
        res.map_err(|e| hound_err(&self.path(), e))?;
        self.data_bytes += add;
        Ok(())
    }

    pub(super) fn finish(self) -> Result<(AtomicFile, u64)> {
        let path = self.path();
        let Self { writer, mut file, .. } = self;
        writer.finalize().map_err(|e| hound_err(&path, e))?;
        let bytes = file.seek(SeekFrom::End(0)).map_err(|e| Error::io("seek", &path, e))?;
        Ok((file, bytes))
    }
}

fn hound_err(path: &std::path::Path, e: hound::Error) -> Error {
    match e {
        hound::Error::IoError(io) => Error::io("write", path, io),
        other => Error::Encode {
            path: path.to_path_buf(),
            detail: "WAV writer failed".to_string(),
            source: Some(Box::new(other)),
        },
    }
}
