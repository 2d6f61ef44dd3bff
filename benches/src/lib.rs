//! Shared helpers for the benchmarks.

use std::num::NonZeroU32;

use assembly_core::arrange::{BedRule, Segment, SegmentType, Template};
use assembly_core::synth;

pub mod callgrind;

/// The episode job of the end-to-end bench (`e2e`) and of the instruction-count guard's
/// `assembler` stage: MP3 content with a word transcript, WAV intro, outro and bed (looped and
/// ducked under the content), content starting 1 s before the intro ends, 128 kbit/s stereo
/// MP3 out, and the default verify settings (the path users take: the codec prediction, one
/// full encode, a verify decode, retries only if it misses). Paths are relative to the inputs
/// folder.
pub const EPISODE_SPEC: &str = r#"{
    "version": 1,
    "content": "content.mp3",
    "assets": {"intro": "intro.wav", "outro": "outro.wav", "bed": "bed.wav"},
    "transcript": {"format": "words", "path": "words.json"},
    "template": {
        "segments": [
            {"segment_type": "intro", "asset": "intro"},
            {"segment_type": "content", "asset": "content"},
            {"segment_type": "outro", "asset": "outro"}
        ],
        "timing": {"content_start_offset_s": -1.0, "outro_start_offset_s": -1.0},
        "background_music_rules": [{"asset": "bed", "apply_to_segments": ["content"]}]
    },
    "output": {"path": "out/episode.mp3"}
}"#;

/// Adds plosives to speech at about `level_db` dBFS RMS: 5 ms noise bursts 15 dB over it,
/// one every ~0.9 s. Close-miked speech has that crest factor, so a programme made of it
/// needs real limiting at −16 LUFS / −1 dBTP (plain synthetic speech does not).
pub fn add_plosives(samples: &mut [f32], rate: NonZeroU32, seed: u64, level_db: f64) {
    let amp = 10f64.powf((level_db + 15.0) / 20.0);
    let burst = rate.get() as usize / 200;
    let gap = rate.get() as usize * 9 / 10;
    let bursts = synth::noise_bursts(seed, amp, burst, gap, samples.len());
    for (s, b) in samples.iter_mut().zip(bursts) {
        *s += b;
    }
}

/// The template of the render benches (criterion `render` and the guard's `render` stage):
/// intro `intro` fading out over 2 s, content `talk` starting 1.5 s before the intro ends,
/// outro `outro` crossfaded over 1 s, bed `bed` under the content.
pub fn episode_template() -> Template {
    let mut template = Template::new(vec![
        Segment { fade_out_s: 2.0, ..Segment::new(SegmentType::Intro, "intro") },
        Segment::new(SegmentType::Content, "talk"),
        Segment { crossfade_s: 1.0, ..Segment::new(SegmentType::Outro, "outro") },
    ]);
    template.timing.content_start_offset_s = -1.5;
    template.background_music_rules.push(BedRule::new("bed"));
    template
}

/// Levels of mains-hum harmonics 1-8, dBFS RMS each: the hum of the e2e bench's `--noise
/// hum60` content and the callgrind guard's `hum` stage (a ground loop: the fundamental
/// strongest, the harmonics falling off).
pub const HUM_LEVELS_DB: [f64; 8] = [-40.0, -43.0, -45.0, -47.0, -50.0, -52.0, -53.0, -55.0];
