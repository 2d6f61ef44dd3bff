//! Times MP3 decoding, sequential (1 thread) against parallel (every core), in both modes the
//! pipeline uses: `decode_file` (store, `Assembler::load`) and `decode_file_streaming` (the
//! render's loudness check of the finished file).
//!
//! ```text
//! cargo run --release -p benches --bin decode_mp3 -- FILE.mp3 [FILE.mp3 ...] [--runs N] [--threads 1,2]
//! ```
//!
//! Prints wall and CPU seconds per mode and thread count (best of `--runs`, default 3; thread
//! counts from `--threads`, default 1 and every core), and checks that every variant decodes to
//! the same samples.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Instant;

use assembly_core::CancelToken;
use assembly_core::load::{DecodeOptions, decode_file, decode_file_streaming};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// User + system CPU seconds of this process so far, from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// A fingerprint of decoded audio: frame count and a hash of every sample's bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Print {
    frames: u64,
    hash: u64,
}

impl Print {
    fn add(&mut self, planes: &[&[f32]]) {
        let n = planes.first().map_or(0, |p| p.len());
        for i in 0..n {
            for p in planes {
                self.hash = (self.hash ^ u64::from(p[i].to_bits())).wrapping_mul(0x100_0000_01b3);
            }
        }
        self.frames += n as u64;
    }
}

fn run(path: &Path, threads: usize, stream: bool) -> BoxResult<(Print, f64, f64)> {
    let opts = DecodeOptions { threads: NonZeroUsize::new(threads), ..DecodeOptions::default() };
    let cancel = CancelToken::new();
    let mut print = Print { frames: 0, hash: 0xcbf2_9ce4_8422_2325 };
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    if stream {
        decode_file_streaming(path, &opts, &cancel, &mut |_, planes| {
            print.add(planes);
            Ok(())
        })?;
    } else {
        let d = decode_file(path, &opts, &cancel)?;
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let planes: Vec<&[f32]> =
            (0..d.audio.channel_count()).map(|c| d.audio.channel(c)).collect();
        print.add(&planes);
        return Ok((print, wall, cpu));
    }
    Ok((print, t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0))
}

fn main() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(3), |v| v.parse::<usize>())?;
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let counts = match args.iter().position(|a| a == "--threads").and_then(|i| args.get(i + 1)) {
        Some(list) => list.split(',').map(str::parse::<usize>).collect::<Result<Vec<_>, _>>()?,
        None => vec![1, cores],
    };
    let files: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            !a.starts_with("--") && (*i == 0 || !["--runs", "--threads"].contains(&&*args[i - 1]))
        })
        .map(|(_, a)| a)
        .collect();
    if files.is_empty() {
        return Err("usage: decode_mp3 FILE.mp3 [FILE.mp3 ...] [--runs N] [--threads 1,2]".into());
    }
    for file in files {
        let path = Path::new(file);
        println!("{file}");
        for stream in [false, true] {
            let mut reference = None;
            for &threads in &counts {
                let mut best = (f64::INFINITY, 0.0);
                for _ in 0..runs.max(1) {
                    let (print, wall, cpu) = run(path, threads, stream)?;
                    if *reference.get_or_insert(print) != print {
                        return Err(format!("{file}: {threads} threads decode differently").into());
                    }
                    if wall < best.0 {
                        best = (wall, cpu);
                    }
                }
                let mode = if stream { "decode_file_streaming" } else { "decode_file" };
                let frames = reference.map_or(0, |p| p.frames);
                println!(
                    "  {mode:<22} {threads} thread(s): {:6.2} s wall, {:6.2} s cpu ({frames} frames)",
                    best.0, best.1
                );
            }
        }
    }
    Ok(())
}
