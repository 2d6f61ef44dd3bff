//! The one codec registry every decode in this crate uses: symphonia's own decoders, with
//! nanomp3 preferred for MPEG layer III ([`Mp3Decoder`]) and libopus for Opus
//! ([`OpusDecoder`]), which symphonia lacks. symphonia keeps reading every container; only
//! the per-packet decode of those two codecs is ours.

use std::sync::OnceLock;

use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::common::Tier;

use super::mp3dec::Mp3Decoder;
use super::opusdec::OpusDecoder;

/// The codec registry: symphonia's enabled codecs, [`Mp3Decoder`] preferred for MP3 and
/// [`OpusDecoder`] for Opus.
pub(crate) fn codecs() -> &'static CodecRegistry {
    static REGISTRY: OnceLock<CodecRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_audio_decoder_at_tier::<Mp3Decoder>(Tier::Preferred);
        registry.register_audio_decoder_at_tier::<OpusDecoder>(Tier::Preferred);
        registry
    })
}

#[cfg(test)]
mod tests {
    use symphonia::core::codecs::audio::well_known::{CODEC_ID_MP2, CODEC_ID_OPUS};

    use super::*;

    #[test]
    fn opus_and_the_mpeg_layers_have_decoders() {
        let reg = codecs();
        assert_eq!(reg.get_audio_decoder(CODEC_ID_OPUS).unwrap().codec.info.short_name, "opus");
        // Layers I and II stay with symphonia's decoder.
        assert_eq!(reg.get_audio_decoder(CODEC_ID_MP2).unwrap().codec.info.short_name, "mp2");
    }
}
