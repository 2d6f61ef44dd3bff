//! `run`, `plan` and `demo`: the Assembler from the terminal.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use assembly_core::analyze::loudness::Loudness;
use assembly_core::{
    Assembler, CancelToken, Error, OutputReport, ProgressEvent, Report, Result, Stage,
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::commands::{clock, to_json};

/// The bundled demo episode (see `examples/demo/`): file name and bytes.
const DEMO_FILES: [(&str, &[u8]); 6] = [
    ("spec.json", include_bytes!("../../../examples/demo/spec.json")),
    ("content.mp3", include_bytes!("../../../examples/demo/content.mp3")),
    ("words.json", include_bytes!("../../../examples/demo/words.json")),
    ("intro.mp3", include_bytes!("../../../examples/demo/intro.mp3")),
    ("outro.mp3", include_bytes!("../../../examples/demo/outro.mp3")),
    ("bed.mp3", include_bytes!("../../../examples/demo/bed.mp3")),
];

/// `run SPEC`: assemble with a progress bar per stage; Ctrl-C cancels cleanly.
pub fn run(spec: &Path, json: bool) -> Result<()> {
    let assembler = Assembler::from_file(spec)?;
    let report = run_with_progress(&assembler, !json)?;
    if json {
        println!("{}", to_json(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

fn run_with_progress(assembler: &Assembler, show: bool) -> Result<Report> {
    let cancel = CancelToken::new();
    let on_signal = cancel.clone();
    // A second handler cannot be installed (e.g. in tests calling twice); the run still works.
    let _ = ctrlc::set_handler(move || on_signal.cancel());
    let bars = MultiProgress::new();
    if !show {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{prefix:>8} [{bar:30}] {percent:>3}% {msg}")
        .map_err(|e| Error::internal(format!("progress style: {e}")))?
        .progress_chars("=> ");
    let mut by_stage: HashMap<Stage, ProgressBar> = HashMap::new();
    let mut sink = |e: &ProgressEvent| {
        let bar = by_stage.entry(e.stage).or_insert_with(|| {
            let b = bars.add(ProgressBar::new(1000));
            b.set_style(style.clone());
            b.set_prefix(e.stage.name());
            b
        });
        bar.set_position((e.stage_fraction * 1000.0) as u64);
        bar.set_message(e.message.clone());
        if e.stage_fraction >= 1.0 {
            bar.finish();
        }
        ControlFlow::Continue(())
    };
    let result = assembler.run(&mut sink, &cancel);
    for b in by_stage.values() {
        b.abandon();
    }
    result
}

fn print_summary(r: &Report) {
    let l = &r.loudness_in;
    let wrote = |o: &OutputReport, out: Option<&Loudness>, target: f64| {
        println!(
            "wrote {} ({} ms, {} bytes, {} Hz, {} ch)",
            o.path.display(),
            o.duration_ms,
            o.size_bytes,
            o.sample_rate,
            o.channels
        );
        if let Some(l) = out {
            println!(
                "loudness out: {:.1} LUFS (target {target:.1}), true peak {:.1} dBTP",
                l.integrated_lufs, l.true_peak_dbtp
            );
        }
    };
    if r.outputs.is_empty() {
        wrote(&r.output, r.loudness_out.as_ref(), r.master.target_lufs);
    }
    for o in &r.outputs {
        wrote(&o.output, o.loudness.as_ref(), o.master.target_lufs);
    }
    println!("loudness in:  {:.1} LUFS, true peak {:.1} dBTP", l.integrated_lufs, l.true_peak_dbtp);
    let c = &r.counts;
    println!(
        "edits: {} fillers, {} pauses shortened, {:.1} s of edge silence trimmed, {} edits in all",
        c.fillers_removed,
        c.pauses_shortened,
        c.edge_silence_removed_s,
        r.edits.len()
    );
    if let Some(n) = &r.cleaning.noise {
        match n.noise_floor_after_db {
            Some(after) if n.engaged => println!(
                "noise reduction: on (speech-to-noise {:.1} dB), floor {:.1} -> {after:.1} dBFS",
                n.speech_to_noise_db, n.noise_floor_db
            ),
            _ => println!(
                "noise reduction: off (speech-to-noise {:.1} dB, floor {:.1} dBFS)",
                n.speech_to_noise_db, n.noise_floor_db
            ),
        }
    }
    for p in &r.sidecars {
        println!("sidecar: {}", p.display());
    }
    if !r.stages_resumed.is_empty() {
        let names: Vec<&str> = r.stages_resumed.iter().map(|s| s.name()).collect();
        println!("resumed from checkpoints: {}", names.join(", "));
    }
    for w in &r.warnings {
        println!("warning: {}", w.message);
    }
}

/// `plan SPEC`: what would be cut and why, without rendering.
pub fn plan(spec: &Path, json: bool) -> Result<()> {
    let assembler = Assembler::from_file(spec)?;
    let plan = assembler.plan(&CancelToken::new())?;
    if json {
        println!("{}", to_json(&plan)?);
        return Ok(());
    }
    println!("{:<8} {:<12} {:>19} {:>19}  detail", "kind", "reason", "source", "output");
    for e in &plan.edit.entries {
        let kind = serde_json::to_value(e.kind).ok();
        let reason = serde_json::to_value(e.reason).ok();
        let name = |v: Option<serde_json::Value>| {
            v.and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
        };
        println!(
            "{:<8} {:<12} {:>19} {:>19}  {}",
            name(kind),
            name(reason),
            span(e.source_start_ms, e.source_end_ms),
            span(e.output_start_ms, e.output_end_ms),
            e.detail
        );
    }
    println!();
    for p in &plan.arrangement.placements {
        println!("{:<12} {:<10} {}", p.segment_id, p.asset, span(p.start_ms, p.end_ms));
    }
    let rate = f64::from(plan.arrangement.rate.get());
    let ms = |f: u64| (f as f64 * 1000.0 / rate).round() as u64;
    let envelope = |env: &assembly_core::analyze::speakers::GainEnvelope| {
        println!("gain envelope (source time): {:+.1} dB from the start", env.initial_db);
        for st in &env.steps {
            println!(
                "  {} ramp {:>3} ms to {:+.1} dB",
                clock(ms(st.start)),
                ms(st.ramp),
                st.gain_db
            );
        }
    };
    if let Some(l) = &plan.leveling {
        println!();
        println!("speaker leveling to {:.1} LUFS", l.reference_lufs);
        for s in &l.speakers {
            println!(
                "{:<12} {:>5} words {:>7.1} s  {:>6.1} LUFS  gain {:>+5.1} dB",
                s.speaker, s.words, s.speech_s, s.loudness_lufs, s.gain_db
            );
        }
        envelope(&l.envelope);
    }
    if let Some(a) = &plan.adaptive_leveling {
        println!();
        println!(
            "adaptive leveling: {} phrases, speech level {:.1} dBFS",
            a.phrases, a.speech_level_db
        );
        envelope(&a.envelope);
    }
    println!("predicted duration: {}", clock(plan.duration_ms));
    Ok(())
}

/// `demo [DIR]`: writes the bundled example episode into DIR and assembles it.
pub fn demo(dir: &Path) -> Result<()> {
    let input = dir.join("input");
    std::fs::create_dir_all(input.join("out")).map_err(|e| Error::io("create", &input, e))?;
    for (name, bytes) in DEMO_FILES {
        let path = input.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io("write", &path, e))?;
    }
    let spec_path: PathBuf = input.join("spec.json");
    println!("demo material in {}", input.display());
    let assembler = Assembler::from_file(&spec_path)?;
    let report = run_with_progress(&assembler, true)?;
    print_summary(&report);
    for page in assembler.spec().outputs().iter().filter_map(|o| o.review_html.as_ref()) {
        println!("review page: {} (open it in a browser)", page.display());
    }
    println!("spec: {} (edit it and run `podcast-assemble run` on it)", spec_path.display());
    Ok(())
}

fn span(a: u64, b: u64) -> String {
    format!("{}-{}", clock(a), clock(b))
}
