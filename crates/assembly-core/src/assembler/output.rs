//! One output of a job: its render, encode and verify against its own master plan, the
//! scratch files beside it, and the rate conversion when it is written at another sample
//! rate than the working one.
//!
//! A job with several outputs (`Spec::outputs`) builds one [`OutputJob`] per output over the
//! same arrangement; the Assembler plans each one's master and [`render_outputs`] renders
//! them two at a time.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::analyze::loudness::{Loudness, LoudnessMeter};
use crate::encode::{self, CoverArt, Encoder, Tags};
use crate::error::{Error, Result};
use crate::load::{self, DecodeOptions, Resampler};
use crate::master::{
    EncodeMeasurement, EncodeRequest, LocalRepair, MasterOptions, VerifyOptions, VerifyReport,
    verify_encoded_from,
};
use crate::progress::{Reporter, Stage};
use crate::render::{self, MasterPlan, Mix, MixMeasurement, RenderOptions};
use crate::spec::OutputSpec;
use crate::{AudioBuffer, CancelToken, Chapter, FrameSource};

/// A written output file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputReport {
    /// Where it is.
    pub path: PathBuf,
    /// Duration, ms.
    pub duration_ms: u64,
    /// Length, frames.
    pub frames: u64,
    /// Size, bytes.
    pub size_bytes: u64,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Channels.
    pub channels: usize,
}

/// One output of the job as written: the file, its measured loudness, the mastering
/// decision it was rendered with and its decode-and-measure check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputResult {
    /// The file.
    pub output: OutputReport,
    /// Loudness of the file: measured while rendering (lossless at the working rate) or
    /// decoded back (lossy, or written at another sample rate).
    pub loudness: Option<Loudness>,
    /// The mastering decision for this output (its own target and ceiling).
    pub master: MasterPlan,
    /// The decode-and-measure check of a lossy output or one written at another rate than
    /// the working one.
    pub verify: Option<VerifyReport>,
}

/// One output to render: its spec, its mix (at its channel count) and the mix measurement
/// it shares with every output of the same channel count.
pub(super) struct OutputJob<'a> {
    pub(super) spec: &'a OutputSpec,
    /// Its JSON path in the spec (`output`, `outputs[2]`), for errors.
    pub(super) field: String,
    /// Its effective master options: its own `master`, else the job's.
    pub(super) master: MasterOptions,
    pub(super) verify: &'a VerifyOptions,
    pub(super) mix: Mix<'a>,
    /// The mix's (working) sample rate.
    pub(super) working_rate: NonZeroU32,
    /// The first pass over the mix at this output's channel count, taken once per job.
    pub(super) measured: &'a Mutex<Option<MixMeasurement>>,
}

impl OutputJob<'_> {
    /// The mix measurement at this output's channel count, measured on first use.
    pub(super) fn measurement(
        &self,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(f64),
    ) -> Result<MixMeasurement> {
        let mut slot = self.measured.lock().map_err(|_| Error::internal("measurement lock"))?;
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let m = render::measure_mix(&self.mix, &RenderOptions::default(), cancel, progress)?;
        Ok(slot.insert(m).clone())
    }

    /// Plans this output's master: its target and ceiling over its mix.
    pub(super) fn plan(
        &self,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(f64),
    ) -> Result<MasterPlan> {
        let m = self.measurement(cancel, &mut |f| progress(f * 0.5))?;
        let ro = RenderOptions::default();
        render::plan_master(&self.mix, &m, &self.master, &ro, cancel, &mut |f| {
            progress(0.5 + f * 0.5)
        })
    }

    /// A hidden scratch file beside the output: `.<output name>.<what>.tmp`.
    fn beside(&self, what: &str) -> PathBuf {
        let out = &self.spec.path;
        let name = out.file_name().map_or("output".into(), |n| n.to_string_lossy());
        out.with_file_name(format!(".{name}.{what}.tmp"))
    }

    /// Where verify attempt `k`'s output waits while later attempts are encoded.
    fn attempt_path(&self, k: usize) -> PathBuf {
        self.beside(&format!("attempt-{k}"))
    }

    /// Where attempt `k`'s encoder keeps its chunks for the next attempt to reuse.
    fn chunks_path(&self, k: u32) -> PathBuf {
        self.beside(&format!("chunks-{k}"))
    }

    /// Where the codec prediction encodes its excerpts (removed after each).
    fn codec_scratch_path(&self) -> PathBuf {
        self.beside("codec-excerpt")
    }

    /// Removes the scratch files a killed earlier run of this output may have left.
    pub(super) fn remove_stale_scratch(&self) {
        for scratch in crate::predict::scratch_files(&self.codec_scratch_path()) {
            let _ = std::fs::remove_file(&scratch);
            crate::atomic::remove_stale_temps(&scratch);
        }
        for k in 0..8 {
            let _ = std::fs::remove_file(self.attempt_path(k));
            let _ = std::fs::remove_file(self.chunks_path(k as u32 + 1));
        }
    }

    /// Whether the output is written at another rate than the mix's (resampled on the way
    /// to the encoder).
    fn resampled(&self) -> bool {
        self.spec.sample_rate != self.working_rate.get()
    }

    /// Renders and encodes this output with `plan`. A lossy output is planned for its codec
    /// first ([`crate::predict::plan_for_codec`]: excerpts encoded and decoded, the
    /// limiter's ceiling lowered by the overshoot, the gain re-planned), so one full encode
    /// lands; if the decoded output still misses, the verify loop tries again, each lower
    /// ceiling with its gain re-planned. An output at another sample rate than the working
    /// one is resampled after the limiter and goes through the same decode-and-measure loop
    /// (lossless too), starting from the plan without the prediction (which encodes
    /// excerpts at the working rate) and without local repairs.
    pub(super) fn render(
        &self,
        plan: &MasterPlan,
        chapters: &[Chapter],
        progress: &mut dyn FnMut(f64, &str),
        cancel: &CancelToken,
    ) -> Result<OutputResult> {
        let out = self.spec;
        let mix = &self.mix;
        let rate = self.working_rate;
        let out_rate = NonZeroU32::new(out.sample_rate)
            .ok_or_else(|| Error::invalid_input(format!("{}.sample_rate", self.field), "is 0"))?;
        let resampled = self.resampled();
        let tags = self.tags(chapters)?;
        let lossy = matches!(out.encoding, encode::OutputFormat::Mp3 { .. });
        // Resampling after the limiter can push a band-limited transient over the ceiling
        // (the new rate's anti-alias filter rings), so such a file is checked by decoding it,
        // as a lossy one is.
        let checked = lossy || resampled;
        let opts = RenderOptions { measure_output: !checked, ..Default::default() };
        let mut attempt = 0u32;
        // Every attempt's encode, in order.
        let mut encoded: Vec<(encode::EncodedInfo, Option<Loudness>)> = Vec::new();
        // The last encode's chunks (CBR MP3), for a local repair to reuse; kept only when a
        // later attempt may come. Dropping it removes its scratch file.
        let mut chunks: Option<encode::ChunkCache> = None;
        let keep_chunks = lossy && !resampled && self.verify.max_attempts > 1;
        let mut render_once = |p: &MasterPlan, progress: &mut dyn FnMut(f64, &str)| -> Result<_> {
            attempt += 1;
            let enc = Encoder::create(&out.path, &out.encoding, out_rate, out.channels, &tags)?;
            let mut sink = RateSink::new(enc, rate, out_rate, out.channels)?;
            if keep_chunks {
                sink.enc.keep_chunks(&self.chunks_path(attempt), chunks.take())?;
            }
            let message = format!("rendering (attempt {attempt})");
            let mut progress = |f: f64| progress(f.min(0.99), &message);
            let outcome =
                render::render_final(mix, p, &opts, |b| sink.write(b), cancel, &mut progress)?;
            let (info, kept) = sink.finish()?.finish_keeping_chunks()?;
            let stats = kept.as_ref().map(encode::ChunkCache::stats);
            chunks = kept;
            encoded.push((info, outcome.output));
            Ok(stats)
        };
        let mut measurement = || self.measurement(cancel, &mut |_| {});
        let verify = if checked {
            let scratch = self.codec_scratch_path();
            let (first, prediction) = if self.verify.predict_codec && lossy && !resampled {
                progress(0.0, "predicting the codec");
                let (first, prediction) = crate::predict::plan_for_codec(
                    mix,
                    plan,
                    &mut measurement,
                    &self.master,
                    &out.encoding,
                    &scratch,
                    cancel,
                )?;
                (first, Some(prediction))
            } else {
                (plan.clone(), None)
            };
            let start =
                EncodeRequest { target_lufs: plan.target_lufs, ceiling_dbtp: first.ceiling_dbtp };
            // The plan for the limiter ceiling the verify loop asks for: a lower ceiling comes
            // with the gain re-planned for it, so the loudness stays on target.
            let mut current = first;
            // The previous attempt's request, the plan it rendered and how far its decoded
            // true peak went over the goal's ceiling, dB.
            let mut last: Option<(EncodeRequest, MasterPlan, f64)> = None;
            // Each attempt's file is set aside once measured; the closest goes back in place.
            let mut parked: Vec<crate::predict::Scratch> = Vec::new();
            let mut report = verify_encoded_from(
                plan.target_lufs,
                plan.ceiling_dbtp,
                Some(start),
                self.verify,
                |req| {
                    // On target but over the ceiling: lower the ceiling only where the
                    // decoded file went over (same gain), so only those chunks change.
                    let repair = match (&last, parked.last()) {
                        (Some((prev, prev_plan, prev_over)), Some(file))
                            if !resampled
                                && (req.target_lufs - prev.target_lufs).abs() < 1e-9
                                && req.ceiling_dbtp < prev.ceiling_dbtp
                                && *prev_over > 0.0 =>
                        {
                            let prev_over = *prev_over;
                            let rule = crate::predict::RepairRule {
                                ceiling_dbtp: plan.ceiling_dbtp,
                                over_db: prev_over,
                                step_db: self.verify.peak_step_db,
                            };
                            let windows =
                                crate::predict::decoded_overs(&file.0, rule.floor_dbtp(), cancel)?;
                            let stretches =
                                encode::independent_stretches(&out.encoding, rate, mix.frames());
                            let dips = crate::predict::repair_dips(
                                prev_plan, &windows, &rule, &stretches, rate,
                            );
                            (dips != prev_plan.ceiling_dips)
                                .then(|| MasterPlan { ceiling_dips: dips, ..prev_plan.clone() })
                        }
                        _ => None,
                    };
                    let local = repair.is_some();
                    let p = match repair {
                        Some(p) => p,
                        None => {
                            if (req.ceiling_dbtp - current.ceiling_dbtp).abs() > 1e-9 {
                                let opts = MasterOptions {
                                    target_lufs: Some(plan.target_lufs),
                                    ceiling_dbtp: Some(req.ceiling_dbtp),
                                    ..self.master.clone()
                                };
                                let m = measurement()?;
                                let ro = RenderOptions::default();
                                current =
                                    render::plan_master(mix, &m, &opts, &ro, cancel, &mut |_| {})?;
                            }
                            let mut p = current.clone();
                            p.gain_db += req.target_lufs - plan.target_lufs;
                            p
                        }
                    };
                    let stats = render_once(&p, progress)?;
                    let decoded = measure_file(&out.path, cancel)?;
                    let aside = self.attempt_path(parked.len());
                    std::fs::rename(&out.path, &aside)
                        .map_err(|e| Error::io("rename", &out.path, e))?;
                    parked.push(crate::predict::Scratch(aside));
                    let repair = local.then(|| LocalRepair {
                        ceiling_dips: p.ceiling_dips.clone(),
                        chunks_encoded: stats.map(|s| s.encoded),
                        chunks_reused: stats.map(|s| s.reused),
                    });
                    last = Some((*req, p, decoded.true_peak_dbtp - plan.ceiling_dbtp));
                    Ok(EncodeMeasurement { rendered: None, decoded, repair })
                },
            )?;
            report.prediction = prediction;
            let kept =
                parked.get(report.kept_attempt).ok_or_else(|| Error::internal("no attempt"))?;
            std::fs::rename(&kept.0, &out.path).map_err(|e| Error::io("rename", &out.path, e))?;
            let (info, measured) = encoded.swap_remove(report.kept_attempt);
            encoded = vec![(info, measured)];
            Some(report)
        } else {
            render_once(plan, progress)?;
            None
        };
        let (info, measured) =
            encoded.pop().ok_or_else(|| Error::internal("render produced no output"))?;
        let loudness = match &verify {
            Some(v) => v.attempts.get(v.kept_attempt).map(|a| a.measured.decoded),
            None => measured,
        };
        Ok(OutputResult {
            output: OutputReport {
                path: info.path,
                duration_ms: info.duration_ms,
                frames: info.frames,
                size_bytes: info.bytes,
                sample_rate: out.sample_rate,
                channels: out.channels,
            },
            loudness,
            master: plan.clone(),
            verify,
        })
    }

    /// The output's tags, with the episode's chapters.
    fn tags(&self, chapters: &[Chapter]) -> Result<Tags> {
        let t = &self.spec.tags;
        let cover = match &t.cover {
            Some(p) => {
                let data = std::fs::read(p).map_err(|e| Error::io("read", p, e))?;
                Some(CoverArt::from_bytes(data).map_err(|e| match e {
                    Error::InvalidInput { detail, .. } => {
                        Error::invalid_input(format!("{}.tags.cover", self.field), detail)
                    }
                    other => other,
                })?)
            }
            None => None,
        };
        Ok(Tags {
            title: t.title.clone(),
            artist: t.artist.clone(),
            album: t.album.clone(),
            comment: t.comment.clone(),
            date: t.date.clone(),
            track: t.track,
            cover,
            chapters: chapters.to_vec(),
        })
    }
}

/// Renders every output, two at a time when the machine has two cores (each render also
/// hands its MP3 encoding to worker threads): the calling thread takes the next output and
/// reports progress, a second thread takes the next free one; the most expensive start
/// first. After a failure no new output is started; the first error in spec order is
/// returned.
pub(super) fn render_outputs(
    jobs: &[OutputJob<'_>],
    plans: &[MasterPlan],
    chapters: &[Chapter],
    rep: &mut Reporter<'_>,
    cancel: &CancelToken,
) -> Result<Vec<OutputResult>> {
    let n = jobs.len();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    // Each output's progress, 0..1 (f64 bits).
    let fractions: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    let results: Mutex<Vec<Option<Result<OutputResult>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    let overall = || {
        fractions.iter().map(|f| f64::from_bits(f.load(Ordering::Relaxed))).sum::<f64>() / n as f64
    };
    // Longest first, so the two threads finish together: FLAC is the costliest encoder per
    // file (an hour of stereo takes ~40 s of CPU, half of each batch on a second thread),
    // an MP3 render hands its encoding to worker threads and fills the gaps; WAV costs
    // little.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| {
        let o = jobs[i].spec;
        let weight = match o.encoding {
            encode::OutputFormat::Flac { .. } => 4,
            encode::OutputFormat::Mp3 { .. } => 2,
            _ => 1,
        };
        std::cmp::Reverse(weight * o.channels)
    });
    let work = |report: &mut dyn FnMut(&str)| {
        loop {
            let k = next.fetch_add(1, Ordering::SeqCst);
            if k >= n || failed.load(Ordering::SeqCst) {
                return;
            }
            let i = order[k];
            let mut progress = |f: f64, message: &str| {
                fractions[i].store(f.to_bits(), Ordering::Relaxed);
                report(message);
            };
            let r = jobs[i].render(&plans[i], chapters, &mut progress, cancel);
            fractions[i].store(1f64.to_bits(), Ordering::Relaxed);
            if r.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            if let Ok(mut all) = results.lock() {
                all[i] = Some(r);
            }
        }
    };
    let two = n > 1 && crate::par::threads() >= 2;
    std::thread::scope(|s| {
        let helper = two.then(|| s.spawn(|| work(&mut |_| {})));
        let label = |message: &str| {
            if n == 1 { message.to_string() } else { format!("rendering {n} outputs") }
        };
        work(&mut |message| rep.update(Stage::Render, overall(), &label(message)));
        if let Some(h) = helper {
            while !h.is_finished() {
                rep.update(Stage::Render, overall(), &label("rendering"));
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            if let Err(payload) = h.join() {
                std::panic::resume_unwind(payload);
            }
        }
    });
    let mut all = results.into_inner().map_err(|_| Error::internal("a render thread panicked"))?;
    // The first error in spec order (outputs after a failure were never started).
    let failure = all.iter_mut().find_map(|r| {
        if matches!(r, Some(Err(_))) { r.take().and_then(Result::err) } else { None }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    all.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::internal("an output was not rendered"))))
        .collect()
}

/// The encoder, fed blocks at the working rate: when the output's rate differs, each block
/// goes through a streaming resampler first (`load::Resampler`, the one decoding uses).
pub(super) struct RateSink {
    pub(super) enc: Encoder,
    resampler: Option<Resampler>,
    rate: NonZeroU32,
    /// Resampled frames waiting to be encoded, one `Vec` per channel.
    planes: Vec<Vec<f32>>,
}

impl RateSink {
    pub(super) fn new(
        enc: Encoder,
        from: NonZeroU32,
        to: NonZeroU32,
        channels: usize,
    ) -> Result<Self> {
        let resampler = (from != to).then(|| Resampler::new(from, to, channels)).transpose()?;
        Ok(Self { enc, resampler, rate: to, planes: vec![Vec::new(); channels] })
    }

    pub(super) fn write(&mut self, b: &AudioBuffer) -> Result<()> {
        let Some(r) = self.resampler.as_mut() else { return self.enc.write(b) };
        let input: Vec<&[f32]> = b.planes().iter().map(Vec::as_slice).collect();
        r.push(&input, &mut self.planes)?;
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        if self.planes.first().is_none_or(Vec::is_empty) {
            return Ok(());
        }
        let ch = self.planes.len();
        let planes = std::mem::replace(&mut self.planes, vec![Vec::new(); ch]);
        self.enc.write(&AudioBuffer::from_planar(self.rate, planes)?)
    }

    /// Flushes the resampler's tail into the encoder and hands the encoder back.
    pub(super) fn finish(mut self) -> Result<Encoder> {
        if let Some(r) = self.resampler.take() {
            r.finish(&mut self.planes)?;
            self.flush()?;
        }
        Ok(self.enc)
    }
}

/// Decodes the file at `path` block by block into a loudness meter (true peak included),
/// holding no more than one block of its audio.
pub(super) fn measure_file(path: &Path, cancel: &CancelToken) -> Result<Loudness> {
    let mut meter: Option<LoudnessMeter> = None;
    let d =
        load::decode_file_streaming(path, &DecodeOptions::default(), cancel, &mut |rate, b| {
            if meter.is_none() {
                meter = Some(LoudnessMeter::new(b.len(), rate, true)?);
            }
            meter.as_mut().map_or(Ok(()), |m| m.add_planar(b))
        })?;
    match meter {
        Some(m) => m.finish(),
        None => LoudnessMeter::new(1, d.info.sample_rate, true)?.finish(),
    }
}
