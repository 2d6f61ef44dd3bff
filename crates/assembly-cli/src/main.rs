//! `podcast-assemble`: the command line front of assembly-core.
//!
//! A thin shell over the library's public API: every command parses arguments, calls the
//! library, and prints either a readable summary or JSON. Errors go to stderr as one line per
//! cause with a non-zero exit status, never a backtrace.

mod assemble;
mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Assemble, inspect and convert podcast audio.
#[derive(Debug, Parser)]
#[command(name = "podcast-assemble", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Assemble the episode a spec describes (a progress bar per stage; Ctrl-C cancels).
    Run {
        /// The spec file (relative paths inside it are relative to its folder).
        spec: PathBuf,
        /// Print the report as JSON instead of a summary (and no progress bars).
        #[arg(long)]
        json: bool,
    },
    /// Show what a spec would cut and why, and where segments go, without rendering.
    Plan {
        /// The spec file.
        spec: PathBuf,
        /// Print the plan as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Assemble the bundled example episode into DIR (default `demo-out`).
    Demo {
        /// Where to put the demo material and its outputs.
        #[arg(default_value = "demo-out")]
        dir: PathBuf,
    },
    /// Show what a file holds: container, codec, rate, channels, exact length, tags, chapters.
    Probe {
        /// The audio file.
        file: PathBuf,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Measure loudness: integrated LUFS, loudness range, true peak, sample peak.
    Loudness {
        /// The audio file.
        file: PathBuf,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Decode any supported input and write WAV, FLAC or MP3 (chosen by OUT's extension).
    Convert {
        /// Input audio file (format detected from its content).
        input: PathBuf,
        /// Output file: `.wav`, `.flac` or `.mp3`.
        output: PathBuf,
        /// Output sample rate in Hz. Default: the input's.
        #[arg(long)]
        rate: Option<u32>,
        /// Output channel count (1 or 2 for MP3). Default: the input's.
        #[arg(long)]
        channels: Option<usize>,
        /// MP3 constant bitrate in kbps (32-320). Default: 128.
        #[arg(long, conflicts_with = "quality")]
        bitrate: Option<u32>,
        /// MP3 VBR quality, 0 (best) to 9.
        #[arg(long)]
        quality: Option<u8>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { spec, json } => assemble::run(&spec, json),
        Command::Plan { spec, json } => assemble::plan(&spec, json),
        Command::Demo { dir } => assemble::demo(&dir),
        Command::Probe { file, json } => commands::probe(&file, json),
        Command::Loudness { file, json } => commands::loudness(&file, json),
        Command::Convert { input, output, rate, channels, bitrate, quality } => {
            commands::convert(&commands::ConvertArgs {
                input,
                output,
                rate,
                channels,
                bitrate,
                quality,
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_cancelled() => {
            eprintln!("podcast-assemble: cancelled; no output was written");
            ExitCode::from(130)
        }
        Err(e) => {
            let mut shown = e.to_string();
            eprintln!("podcast-assemble: error: {shown}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let text = s.to_string();
                // Messages that already quote their cause don't repeat it.
                if !shown.contains(&text) {
                    eprintln!("  caused by: {text}");
                    shown = text;
                }
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
