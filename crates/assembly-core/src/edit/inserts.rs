//! Inserted clips (at a source time, with silence around them) and sound effects (replacing
//! a trigger word).

use super::Ctx;
use super::matcher::PhraseMatcher;
use super::merge::Reason;
use super::merge::{Action, Op};
use super::options::{InsertClip, SoundEffect};
use crate::error::Result;
use crate::frames_to_ms;
use crate::warning::{Warning, WarningCode};

/// One insert per [`InsertClip`]. A position inside a word moves to the nearer edge of that
/// word (the nearest word gap) with an [`InsertMoved`](WarningCode::InsertMoved) warning;
/// a position past the end is clipped to the end.
pub(crate) fn clip_ops(
    ctx: &Ctx<'_>,
    list: &[InsertClip],
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Op>> {
    let mut out = Vec::new();
    for (i, ins) in list.iter().enumerate() {
        let clip = ctx.clip(&ins.clip, &format!("cleanup.inserts[{i}].clip"))?;
        let mut at = ctx.secs(ins.at_s);
        if at > ctx.n {
            warnings.push(Warning::new(
                WarningCode::RangeClipped,
                format!(
                    "inserts[{i}] at {} s is past the end of the audio; moved to the end",
                    ins.at_s
                ),
            ));
            at = ctx.n;
        }
        if ins.snap_to_word_gap {
            let k = ctx.words.partition_point(|w| w.end <= at);
            if let Some(w) = ctx.words.get(k)
                && w.start < at
                && at < w.end
            {
                let to = if at - w.start <= w.end - at { w.start } else { w.end };
                warnings.push(Warning::new(
                    WarningCode::InsertMoved,
                    format!(
                        "inserts[{i}] at {} ms fell inside {:?}; moved to {} ms",
                        frames_to_ms(at, ctx.rate),
                        w.text,
                        frames_to_ms(to, ctx.rate)
                    ),
                ));
                at = to;
            }
        }
        out.push(Op {
            reason: Reason::Clip,
            range: at..at,
            action: Action::Insert {
                clip: clip.id.clone(),
                frames: clip.audio.frames() as u64,
                before: ctx.ms(u64::from(ins.silence_before_ms)),
                after: ctx.ms(u64::from(ins.silence_after_ms)),
            },
            detail: format!("clip {:?}", clip.id),
            label: None,
            bounds: None,
        });
    }
    Ok(out)
}

/// For every occurrence of each trigger: remove the trigger's words and insert the effect
/// clip (no silence around it) where they started.
pub(crate) fn sound_effect_ops(ctx: &Ctx<'_>, list: &[SoundEffect]) -> Result<Vec<Op>> {
    let mut out = Vec::new();
    if list.is_empty() {
        return Ok(out);
    }
    let mut clips = Vec::with_capacity(list.len());
    for (i, se) in list.iter().enumerate() {
        clips.push(ctx.clip(&se.clip, &format!("cleanup.sound_effects[{i}].clip"))?);
    }
    let triggers: Vec<&str> = list.iter().map(|s| s.trigger.as_str()).collect();
    let m = PhraseMatcher::new(&triggers, 0);
    let labels: Vec<String> =
        triggers.iter().map(|t| super::matcher::tokens(t).join(" ")).collect();
    for hit in m.find(&ctx.word_tokens()) {
        let label = m.label(hit.phrase);
        let Some(k) = labels.iter().position(|l| l == label) else { continue };
        let clip = clips[k];
        let a = ctx.words[hit.words.start].start;
        let b = ctx.words[hit.words.end - 1].end;
        let detail = format!("sound effect {:?} for {label:?}", clip.id);
        if a < b {
            out.push(Op::remove(Reason::SoundEffect, a..b, detail.clone()));
        }
        out.push(Op {
            reason: Reason::SoundEffect,
            range: a..a,
            action: Action::Insert {
                clip: clip.id.clone(),
                frames: clip.audio.frames() as u64,
                before: 0,
                after: 0,
            },
            detail,
            label: Some(label.to_string()),
            bounds: None,
        });
    }
    Ok(out)
}
