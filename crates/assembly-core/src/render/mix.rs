//! The planned mix as block-readable audio: segments, crossfades, looping ducked beds.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::ops::Range;
use std::sync::Arc;

use crate::FrameSource;
use crate::arrange::{Arrangement, DuckingEnvelope, SegmentGain};
use crate::dsp::db_to_gain;
use crate::dsp::mix::{add_mapped, raised_cosine};
use crate::error::{Error, Result};

/// Frames rendered per internal step (bounds scratch memory).
const STEP: usize = 4096;

/// The audio behind each asset id: what [`Mix`] reads. Sources must be at the arrangement's
/// rate; any channel count works (see [`Mix`] for the channel mapping).
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::{render::Sources, AudioBuffer, FrameSource};
///
/// let intro = AudioBuffer::mono(NonZeroU32::new(48_000).unwrap(), vec![0.0; 480]);
/// let mut sources = Sources::new();
/// sources.insert("intro", &intro);
/// assert_eq!(sources.frames("intro"), Some(480));
/// assert!(sources.get("outro").is_none());
/// ```
#[derive(Clone, Default)]
pub struct Sources<'a> {
    map: BTreeMap<String, &'a dyn FrameSource>,
}

impl std::fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.map.iter().map(|(k, v)| (k, (v.channel_count(), v.frames()))))
            .finish()
    }
}

impl<'a> Sources<'a> {
    /// No sources.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the audio for asset `id`.
    pub fn insert(&mut self, id: impl Into<String>, source: &'a dyn FrameSource) -> &mut Self {
        self.map.insert(id.into(), source);
        self
    }

    /// The audio for `id`.
    pub fn get(&self, id: &str) -> Option<&'a dyn FrameSource> {
        self.map.get(id).copied()
    }

    /// The length in frames of `id`'s audio; pass `|id| sources.frames(id)` to
    /// [`crate::arrange::place`].
    pub fn frames(&self, id: &str) -> Option<u64> {
        self.get(id).map(|s| s.frames())
    }
}

/// The `(sin, cos)` gains of an equal-power loop crossfade of `xf` frames, one pair per
/// frame: computed once per bed rather than per frame and channel at every loop point. At
/// most 16 bytes a frame of a crossfade no longer than a quarter of its asset, so never more
/// memory than the asset's own samples.
pub(crate) fn loop_crossfade_gains(xf: u64) -> Vec<(f64, f64)> {
    let w = std::f64::consts::FRAC_PI_2 / xf as f64;
    (0..xf).map(|k| (k as f64 * w).sin_cos()).collect()
}

/// Reads `n` frames of `src` looped with an equal-power crossfade of `xf` frames at each loop
/// point, starting at loop time `t0`, into `out` (one plane per source channel). `xf_gains`
/// holds the crossfade's `(sin, cos)` gains, one pair per frame ([`loop_crossfade_gains`]);
/// `xf` is its length.
///
/// Loop period `P = len - xf`: the first pass plays `[0, P)`; every later pass starts with the
/// asset's head `[0, xf)` fading in (sine) over its tail `[P, len)` fading out (cosine), then
/// plays `[xf, P)`. The signal is continuous at every boundary: no gap, no restart click.
pub(crate) fn read_looped(
    src: &dyn FrameSource,
    len: u64,
    xf_gains: &[(f64, f64)],
    t0: u64,
    n: usize,
    out: &mut [Vec<f32>],
    tmp: &mut [Vec<f32>],
) {
    let xf = xf_gains.len() as u64;
    let period = len - xf; // xf <= len / 4, len >= 4
    let mut i = 0usize;
    while i < n {
        let t = t0 + i as u64;
        let (k, u) = (t / period, t % period);
        if k == 0 || u >= xf {
            let m = ((n - i) as u64).min(period - u) as usize;
            let mut planes: Vec<&mut [f32]> = out.iter_mut().map(|p| &mut p[i..i + m]).collect();
            src.read(u, &mut planes);
            i += m;
        } else {
            let m = ((n - i) as u64).min(xf - u) as usize;
            let mut head: Vec<&mut [f32]> = out.iter_mut().map(|p| &mut p[i..i + m]).collect();
            src.read(u, &mut head);
            let mut tail: Vec<&mut [f32]> = tmp.iter_mut().map(|p| &mut p[..m]).collect();
            src.read(period + u, &mut tail);
            let gains = &xf_gains[u as usize..u as usize + m];
            for (o, tl) in out.iter_mut().zip(tmp.iter()) {
                for ((o, &t), &(si, co)) in o[i..i + m].iter_mut().zip(&tl[..m]).zip(gains) {
                    *o = (f64::from(*o) * si + f64::from(t) * co) as f32;
                }
            }
            i += m;
        }
    }
}

struct Voice<'a> {
    src: &'a dyn FrameSource,
    start: u64,
    end: u64,
    gain: f32,
    fade_in: u64,
    fade_out: u64,
    xf_in: u64,
    xf_out: u64,
}

impl Voice<'_> {
    fn needs_ramp(&self, off: u64, n: u64) -> bool {
        let len = self.end - self.start;
        off < self.fade_in.max(self.xf_in) || off + n > len - self.fade_out.max(self.xf_out)
    }

    /// Envelope of the segment at offset `off` (fades and crossfades multiplied).
    fn envelope(&self, off: u64) -> f32 {
        let len = self.end - self.start;
        let mut g = 1.0f64;
        if off < self.fade_in {
            g *= raised_cosine(off as f64 / self.fade_in as f64);
        }
        if off + self.fade_out >= len && self.fade_out > 0 {
            g *= raised_cosine((len - off) as f64 / self.fade_out as f64);
        }
        if off < self.xf_in {
            g *= (std::f64::consts::FRAC_PI_2 * off as f64 / self.xf_in as f64).sin();
        }
        if off + self.xf_out >= len && self.xf_out > 0 {
            let into = off + self.xf_out - len; // 0 at the crossfade's first frame
            g *= (std::f64::consts::FRAC_PI_2 * into as f64 / self.xf_out as f64).cos();
        }
        g as f32
    }
}

struct BedVoice<'a> {
    src: &'a dyn FrameSource,
    start: u64,
    end: u64,
    asset_len: u64,
    /// The loop crossfade's gains ([`loop_crossfade_gains`]).
    loop_gains: Vec<(f64, f64)>,
    gain: f32,
    fade_in: u64,
    fade_out: u64,
    duck: Option<Arc<DuckingEnvelope>>,
}

impl BedVoice<'_> {
    fn fade(&self, off: u64) -> f32 {
        let len = self.end - self.start;
        let mut g = 1.0;
        if off < self.fade_in {
            g *= raised_cosine(off as f64 / self.fade_in as f64);
        }
        if off + self.fade_out >= len && self.fade_out > 0 {
            g *= raised_cosine((len - off) as f64 / self.fade_out as f64);
        }
        g as f32
    }
}

/// The planned mix of an [`Arrangement`]: every segment with its gain, fades and
/// crossfades, and every bed looping seamlessly, faded and ducked, summed in a fixed order.
/// It is a [`FrameSource`]: any range renders on demand, so a whole episode never sits in
/// memory, and the same range always renders to the same samples.
///
/// Channel mapping from each source to the mix's channel count: equal counts map one to
/// one, a mono source feeds every channel, a mono mix takes the mean of the source's
/// channels, otherwise mix channel `c` takes source channel `c % source_channels`.
///
/// ```
/// use std::num::NonZeroU32;
/// use assembly_core::arrange::{place, Segment, SegmentType, Template};
/// use assembly_core::render::{Mix, Sources};
/// use assembly_core::{synth, FrameSource};
///
/// let rate = NonZeroU32::new(48_000).unwrap();
/// let intro = synth::mono(rate, synth::sine(rate, 440.0, 0.5, 48_000));
/// let talk = synth::mono(rate, synth::speech_like(rate, 1, -20.0, 96_000));
/// let mut sources = Sources::new();
/// sources.insert("intro", &intro).insert("talk", &talk);
/// let t = Template::new(vec![
///     Segment::new(SegmentType::Intro, "intro"),
///     Segment { crossfade_s: 0.25, ..Segment::new(SegmentType::Content, "talk") },
/// ]);
/// let arrangement = place(&t, rate, |id| sources.frames(id)).unwrap();
/// let mix = Mix::new(&arrangement, &sources, 2, &[], &[]).unwrap();
/// assert_eq!(mix.frames(), 48_000 + 96_000 - 12_000);
/// let mut l = vec![0.0f32; 1024];
/// let mut r = vec![0.0f32; 1024];
/// mix.read(40_000, &mut [&mut l, &mut r]);
/// assert_eq!(l, r); // mono sources feed both channels
/// ```
pub struct Mix<'a> {
    /// Reusable scratch buffers (a pool, so concurrent reads each get their own).
    pool: std::sync::Mutex<Vec<Scratch>>,
    rate: NonZeroU32,
    channels: usize,
    total: u64,
    voices: Vec<Voice<'a>>,
    beds: Vec<BedVoice<'a>>,
    max_src_channels: usize,
}

impl std::fmt::Debug for Mix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mix")
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("frames", &self.total)
            .field("segments", &self.voices.len())
            .field("beds", &self.beds.len())
            .finish()
    }
}

impl<'a> Mix<'a> {
    /// The mix of `arrangement` over `sources`, with `channels` output channels, extra
    /// per-segment gains from leveling (matched by segment id; missing ids get 0 dB) and
    /// `speech` (frame ranges on the episode timeline) driving the beds' ducking.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `channels` is 0 or over 32, an asset has no source (naming
    /// it), or a speech range is reversed.
    pub fn new(
        arrangement: &Arrangement,
        sources: &Sources<'a>,
        channels: usize,
        level_gains: &[SegmentGain],
        speech: &[Range<u64>],
    ) -> Result<Self> {
        if channels == 0 || channels > 32 {
            return Err(Error::invalid_input(
                "channels",
                format!("must be in 1..=32, got {channels}"),
            ));
        }
        let get = |asset: &str| {
            sources.get(asset).ok_or_else(|| {
                Error::invalid_input(
                    "sources",
                    format!("no audio was supplied for asset {asset:?}"),
                )
            })
        };
        let mut max_src = 1;
        let mut voices = Vec::with_capacity(arrangement.placements.len());
        for (i, p) in arrangement.placements.iter().enumerate() {
            let len = p.end_frame.saturating_sub(p.start_frame);
            let worst = p.fade_in_frames.max(p.fade_out_frames).max(p.crossfade_in_frames);
            if p.end_frame < p.start_frame || worst.max(p.crossfade_out_frames) > len {
                return Err(Error::invalid_input(
                    format!("arrangement.placements[{i}]"),
                    "ends before it starts, or a fade or crossfade is longer than the segment",
                ));
            }
            let src = get(&p.asset)?;
            max_src = max_src.max(src.channel_count());
            let level = level_gains
                .iter()
                .find(|g| g.segment_id == p.segment_id)
                .map_or(0.0, |g| g.gain_db);
            voices.push(Voice {
                src,
                start: p.start_frame,
                end: p.end_frame,
                gain: db_to_gain(p.gain_db + level) as f32,
                fade_in: p.fade_in_frames,
                fade_out: p.fade_out_frames,
                xf_in: p.crossfade_in_frames,
                xf_out: p.crossfade_out_frames,
            });
        }
        let mut envelopes: BTreeMap<usize, Arc<DuckingEnvelope>> = BTreeMap::new();
        let mut beds = Vec::with_capacity(arrangement.beds.len());
        for (i, b) in arrangement.beds.iter().enumerate() {
            if b.end_frame < b.start_frame
                || b.fade_in_frames.saturating_add(b.fade_out_frames) > b.end_frame - b.start_frame
            {
                return Err(Error::invalid_input(
                    format!("arrangement.beds[{i}]"),
                    "ends before it starts, or its fades are longer than the bed",
                ));
            }
            let src = get(&b.asset)?;
            max_src = max_src.max(src.channel_count());
            let duck = if b.ducking.enabled && b.ducking.depth_db > 0.0 && !speech.is_empty() {
                let env = match envelopes.get(&b.rule_index) {
                    Some(e) => Arc::clone(e),
                    None => {
                        let e =
                            Arc::new(DuckingEnvelope::new(&b.ducking, arrangement.rate, speech)?);
                        envelopes.insert(b.rule_index, Arc::clone(&e));
                        e
                    }
                };
                Some(env)
            } else {
                None
            };
            beds.push(BedVoice {
                src,
                start: b.start_frame,
                end: b.end_frame,
                asset_len: b.asset_frames.min(src.frames()).max(4),
                loop_gains: loop_crossfade_gains(b.loop_crossfade_frames.min(src.frames() / 4)),
                gain: db_to_gain(b.volume_db) as f32,
                fade_in: b.fade_in_frames,
                fade_out: b.fade_out_frames,
                duck,
            });
        }
        Ok(Self {
            pool: std::sync::Mutex::new(Vec::new()),
            rate: arrangement.rate,
            channels,
            total: arrangement.total_frames,
            voices,
            beds,
            max_src_channels: max_src,
        })
    }

    /// Sample rate of the mix.
    pub fn sample_rate(&self) -> NonZeroU32 {
        self.rate
    }

    /// Renders frames `start..start + n` into `out[c][..n]`, one plane per output channel.
    fn render_step(&self, start: u64, n: usize, out: &mut [&mut [f32]], scratch: &mut Scratch) {
        let end = start + n as u64;
        for o in out.iter_mut() {
            o[..n].fill(0.0);
        }
        for v in &self.voices {
            if v.end <= start || v.start >= end {
                continue;
            }
            let from = v.start.max(start);
            let to = v.end.min(end);
            let m = (to - from) as usize;
            let at = (from - start) as usize;
            let off = from - v.start;
            let sc = v.src.channel_count();
            {
                let mut planes: Vec<&mut [f32]> =
                    scratch.a[..sc].iter_mut().map(|p| &mut p[..m]).collect();
                v.src.read(off, &mut planes);
            }
            if v.needs_ramp(off, m as u64) {
                for (j, g) in scratch.gain[..m].iter_mut().enumerate() {
                    *g = v.envelope(off + j as u64);
                }
                add_mapped(out, at, &scratch.a[..sc], m, v.gain, Some(&scratch.gain[..m]));
            } else {
                add_mapped(out, at, &scratch.a[..sc], m, v.gain, None);
            }
        }
        for b in &self.beds {
            if b.end <= start || b.start >= end {
                continue;
            }
            let from = b.start.max(start);
            let to = b.end.min(end);
            let m = (to - from) as usize;
            let at = (from - start) as usize;
            let off = from - b.start;
            let sc = b.src.channel_count();
            read_looped(
                b.src,
                b.asset_len,
                &b.loop_gains,
                off,
                m,
                &mut scratch.a[..sc],
                &mut scratch.b[..sc],
            );
            let gain = &mut scratch.gain[..m];
            match &b.duck {
                Some(env) => env.fill_linear(from, gain),
                None => gain.fill(1.0),
            }
            let len = b.end - b.start;
            if off < b.fade_in || off + m as u64 > len - b.fade_out {
                for (j, g) in gain.iter_mut().enumerate() {
                    *g *= b.fade(off + j as u64);
                }
            }
            add_mapped(out, at, &scratch.a[..sc], m, b.gain, Some(gain));
        }
    }
}

struct Scratch {
    a: Vec<Vec<f32>>,
    b: Vec<Vec<f32>>,
    gain: Vec<f32>,
}

impl FrameSource for Mix<'_> {
    fn sample_rate(&self) -> NonZeroU32 {
        self.rate
    }

    fn channel_count(&self) -> usize {
        self.channels
    }

    fn frames(&self) -> u64 {
        self.total
    }

    fn read(&self, start: u64, out: &mut [&mut [f32]]) {
        let len = out.iter().take(self.channels).map(|o| o.len()).min().unwrap_or(0);
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut scratch = pooled.unwrap_or_else(|| Scratch {
            a: vec![vec![0.0; STEP]; self.max_src_channels],
            b: vec![vec![0.0; STEP]; self.max_src_channels],
            gain: vec![0.0; STEP],
        });
        // Rendered straight into the caller's planes, a step at a time. A caller that passes
        // fewer planes than channels (against the `FrameSource` contract) gets the channels it
        // asked for: the others render into spare planes, so the channel mapping is unchanged.
        let missing = self.channels.saturating_sub(out.len());
        let mut spare = vec![vec![0.0f32; STEP]; missing];
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(STEP);
            let mut planes: Vec<&mut [f32]> = out
                .iter_mut()
                .take(self.channels)
                .map(|o| &mut o[done..done + n])
                .chain(spare.iter_mut().map(|p| &mut p[..n]))
                .collect();
            self.render_step(start + done as u64, n, &mut planes, &mut scratch);
            done += n;
        }
        if let Ok(mut p) = self.pool.lock() {
            p.push(scratch);
        }
        for o in out.iter_mut().take(self.channels) {
            o[len..].fill(0.0);
        }
    }
}
