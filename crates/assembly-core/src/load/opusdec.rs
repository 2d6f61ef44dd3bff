//! The Opus decoder: libopus (through `symphonia-adapter-libopus`, which builds the reference
//! libopus from bundled source) behind symphonia's decoder interface, so symphonia still reads
//! the containers (Ogg, Matroska/WebM) and everything downstream sees symphonia packets and
//! buffers, as for every other codec.
//!
//! The adapter decodes packets; what this wrapper adds is the gapless contract the rest of
//! `load` keeps (`docs/decoding.md`), the way ffmpeg applies it:
//! - the `OpusHead` pre-skip is skipped across as many packets as it takes (the adapter only
//!   trims it from the first packet, so a pre-skip longer than that packet would leak),
//! - the container's trims (Ogg end trimming from granule positions; Matroska `DiscardPadding`,
//!   which `decode.rs` puts on the packet) are applied,
//! - with `gapless` off nothing is trimmed, as for MP3 and AAC,
//! - the `OpusHead` output gain (Q7.8 dB, RFC 7845 §5.1) is applied, as ffmpeg does.
//!
//! Why libopus and not a pure-Rust port: it is the reference decoder (ffmpeg's own Opus decoder
//! agrees with it to float rounding, measured in `tests/decode_opus.rs`), fast, and fuzzed
//! upstream for years; see `docs/decoding.md` for the comparison and its build needs (cmake).

use symphonia::core::audio::{
    AsGenericAudioBufferRef, Audio, AudioBuffer, AudioMut, AudioSpec, GenericAudioBufferRef,
};
use symphonia::core::codecs::CodecInfo;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{
    AudioCodecParameters, AudioDecoder, AudioDecoderOptions, FinalizeResult,
};
use symphonia::core::codecs::registry::{RegisterableAudioDecoder, SupportedAudioCodec};
use symphonia::core::errors::{Result, unsupported_error};
use symphonia::core::packet::PacketRef;
use symphonia_adapter_libopus::OpusDecoder as LibOpus;

/// Most frames one Opus packet decodes to: 120 ms at 48 kHz.
const MAX_PACKET_FRAMES: usize = 5760;

/// What the `OpusHead` identification header (RFC 7845 §5.1) says that decoding needs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct OpusHead {
    /// Frames at 48 kHz to drop from the start of the decoded stream.
    pub pre_skip: u16,
    /// Output gain in Q7.8 dB.
    pub gain_q8: i16,
}

impl OpusHead {
    /// Parses `OpusHead` from a codec's extra data (the Ogg identification packet, or
    /// Matroska's `CodecPrivate`, which holds the same bytes). `None` if it is not one.
    pub(crate) fn parse(extra: &[u8]) -> Option<Self> {
        if extra.len() < 19 || !extra.starts_with(b"OpusHead") {
            return None;
        }
        Some(Self {
            pre_skip: u16::from_le_bytes([extra[10], extra[11]]),
            gain_q8: i16::from_le_bytes([extra[16], extra[17]]),
        })
    }

    /// The output gain as a linear factor.
    fn gain(self) -> f32 {
        10f64.powf(f64::from(self.gain_q8) / (20.0 * 256.0)) as f32
    }
}

/// libopus as a symphonia [`AudioDecoder`], with the trimming and gain of [`OpusHead`].
pub(crate) struct OpusDecoder {
    params: AudioCodecParameters,
    inner: Box<dyn AudioDecoder>,
    gapless: bool,
    /// Pre-skip frames still to drop.
    skip_left: u64,
    /// Linear output gain, `None` when the header's gain is 0 dB.
    gain: Option<f32>,
    buf: AudioBuffer<f32>,
}

impl OpusDecoder {
    fn try_new(params: &AudioCodecParameters, opts: &AudioDecoderOptions) -> Result<Self> {
        if params.codec != CODEC_ID_OPUS {
            return unsupported_error("opus: not an opus stream");
        }
        let head = params.extra_data.as_deref().and_then(OpusHead::parse).unwrap_or_default();
        // The adapter is given no extra data, so it trims nothing itself: every trim is ours.
        let mut inner_params = params.clone();
        inner_params.extra_data = None;
        let inner = LibOpus::try_registry_new(&inner_params, opts)?;
        Ok(Self {
            params: params.clone(),
            inner,
            gapless: opts.gapless,
            skip_left: if opts.gapless { u64::from(head.pre_skip) } else { 0 },
            gain: (head.gain_q8 != 0).then(|| head.gain()),
            buf: AudioBuffer::default(),
        })
    }

    fn decode_inner(&mut self, packet: &PacketRef<'_>) -> Result<()> {
        // The same packet untrimmed (`new` leaves the trims at zero; the DTS is not used).
        let whole = PacketRef::new(packet.track_id, packet.pts, packet.dur, packet.data);
        let decoded = self.inner.decode_ref(&whole)?;
        let n = decoded.frames() as u64;
        let (start, end) = if self.gapless {
            let want = packet.trim_start.get().saturating_add(self.skip_left);
            let start = want.min(n);
            self.skip_left = want - start;
            (start, n - packet.trim_end.get().min(n - start))
        } else {
            (0, n)
        };
        let spec = AudioSpec::new(decoded.spec().rate(), decoded.spec().channels().clone());
        if self.buf.is_unused() || self.buf.spec() != &spec {
            self.buf = AudioBuffer::new(spec, MAX_PACKET_FRAMES);
        }
        self.buf.clear();
        let kept = (end - start) as usize;
        if kept > MAX_PACKET_FRAMES {
            return symphonia::core::errors::decode_error("opus: packet longer than 120 ms");
        }
        self.buf.render_uninit(Some(kept));
        let mut planes: Vec<&mut [f32]> = self.buf.iter_planes_mut().collect();
        decoded.slice(start as usize..end as usize).copy_to_slice_planar(&mut planes);
        if let Some(g) = self.gain {
            for plane in planes {
                plane.iter_mut().for_each(|s| *s *= g);
            }
        }
        Ok(())
    }
}

impl AudioDecoder for OpusDecoder {
    fn reset(&mut self) {
        self.inner.reset();
    }

    fn codec_info(&self) -> &CodecInfo {
        &Self::supported_codecs()[0].info
    }

    fn codec_params(&self) -> &AudioCodecParameters {
        &self.params
    }

    fn decode_ref(&mut self, packet: &PacketRef<'_>) -> Result<GenericAudioBufferRef<'_>> {
        match self.decode_inner(packet) {
            Ok(()) => Ok(self.buf.as_generic_audio_buffer_ref()),
            Err(e) => {
                self.buf.clear();
                Err(e)
            }
        }
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> GenericAudioBufferRef<'_> {
        self.buf.as_generic_audio_buffer_ref()
    }
}

impl RegisterableAudioDecoder for OpusDecoder {
    fn try_registry_new(
        params: &AudioCodecParameters,
        opts: &AudioDecoderOptions,
    ) -> Result<Box<dyn AudioDecoder>> {
        Ok(Box::new(Self::try_new(params, opts)?))
    }

    fn supported_codecs() -> &'static [SupportedAudioCodec] {
        const CODECS: &[SupportedAudioCodec] = &[SupportedAudioCodec {
            id: CODEC_ID_OPUS,
            info: CodecInfo { short_name: "opus", long_name: "Opus (libopus)", profiles: &[] },
        }];
        CODECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_head_fields_and_gain() {
        let mut head = b"OpusHead\x01\x02".to_vec();
        head.extend_from_slice(&401u16.to_le_bytes());
        head.extend_from_slice(&48_000u32.to_le_bytes());
        head.extend_from_slice(&(-1536i16).to_le_bytes()); // -6 dB
        head.push(0);
        let h = OpusHead::parse(&head).unwrap();
        assert_eq!(h.pre_skip, 401);
        assert!((h.gain() - 0.501_187).abs() < 1e-5, "{}", h.gain());
        assert_eq!(OpusHead::parse(&head[..18]), None);
        assert_eq!(OpusHead::parse(b"OpusTags\0\0\0\0\0\0\0\0\0\0\0"), None);
    }
}
