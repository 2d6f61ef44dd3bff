#!/usr/bin/env python3
"""The path users take, timed: `podcast_assembly.assemble_episode` with the backend's own
argument shapes and every default (MP3 128 kbit/s, -16 LUFS, -1 dBTP, default cleanup), on a
synthesized interview like theirs.

Material (made once per --minutes into --dir, needs espeak-ng, sox and ffmpeg on PATH; they
are tools for the material only, the library never calls them):
- content: three espeak-ng voices (en-us, en-gb, en-us+f3) at -6, 0 and +6 dB taking turns,
  sentences built word by word from a vocabulary (so every word's time is exact), fillers
  ("um", "uh") and some long pauses, written as a 128 kbit/s mono MP3 like an upload;
- words: the backend's list `{word, start, end, speaker}` in seconds;
- template: intro, content, outro segments (WAV clips), a background-music rule putting a
  looped WAV bed under the content at -22 dB with fades.

Each run is a child process (its peak RSS is the job's own). Prints wall time, x-realtime,
peak RSS, the number of full encodes (the report's verify attempts) and the decoded loudness.

--outputs three asks the same job for the files podcasters publish (`extra_outputs`: a
64 kbit/s mono MP3 at -19 LUFS and a FLAC master beside the default MP3) and prints each
file's loudness measured on it and its encodes; --outputs separate makes the same three
files with three jobs one after the other (the mono one through `episode_spec`, since the
drop-in has no channels argument), the comparison row.

Usage: python3 benches/python/dropin_bench.py --minutes 60 --runs 3 --dir /tmp/dropin
(with `podcast_assembly` importable, e.g. the venv scripts/test-python.sh builds).
"""
import argparse
import array
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import wave

RATE = 22050  # espeak-ng's native rate
VOICES = [("en-us", 165, -6.0), ("en-gb", 150, 0.0), ("en-us+f3", 175, 6.0)]
VOCAB = (
    "the a to and of in that it we you is was for on with they so but about what just like "
    "people think really know recording microphone show episode listeners question story "
    "sound kitchen patience editing audio time money started working guest host today "
    "interesting important pretty different problem answer because actually maybe probably "
    "project community feedback interview studio power plosive pop bop pick top tip "
    "compression loudness music season website weekend morning tomorrow yesterday"
).split()
FILLERS = ["um", "uh"]
WORD_GAP_S = 0.07


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def word_clip(tmp, voice, wpm, gain_db, word):
    raw = os.path.join(tmp, "raw.wav")
    out = os.path.join(tmp, f"{voice}-{word}.wav")
    run("espeak-ng", "-v", voice, "-s", str(wpm), "-w", raw, word)
    run("sox", raw, "-r", str(RATE), "-c", "1", "-b", "16", out,
        "silence", "1", "0.005", "0.3%", "reverse", "silence", "1", "0.005", "0.3%", "reverse",
        "gain", str(gain_db))
    with wave.open(out) as w:
        return array.array("h", w.readframes(w.getnframes()))


def write_wav(path, samples, rate=RATE):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def make_material(d, minutes):
    os.makedirs(d, exist_ok=True)
    done = os.path.join(d, "template.json")
    if os.path.exists(done):
        return
    rng = random.Random(18)
    with tempfile.TemporaryDirectory() as tmp:
        clips = {}
        for v, (voice, wpm, gain) in enumerate(VOICES):
            for word in VOCAB + FILLERS:
                clips[(v, word)] = word_clip(tmp, voice, wpm, gain, word)
    total = int(minutes * 60 * RATE)
    audio = array.array("h")
    words = []
    gap = array.array("h", bytes(2 * int(WORD_GAP_S * RATE)))
    turn = 0
    while len(audio) < total:
        v = turn % 3
        for _ in range(rng.randint(2, 6)):  # sentences in this turn
            for _ in range(rng.randint(6, 14)):
                word = rng.choice(FILLERS) if rng.random() < 0.03 else rng.choice(VOCAB)
                start = len(audio) / RATE
                audio.extend(clips[(v, word)])
                words.append({"word": word, "start": round(start, 4),
                              "end": round(len(audio) / RATE, 4), "speaker": f"S{v + 1}"})
                audio.extend(gap)
            pause = 2.5 if rng.random() < 0.02 else rng.uniform(0.25, 0.6)
            audio.extend(array.array("h", bytes(2 * int(pause * RATE))))
        turn += 1
    del audio[total:]
    words = [w for w in words if w["end"] <= total / RATE]
    wav = os.path.join(d, "content.wav")
    write_wav(wav, audio)
    run("ffmpeg", "-y", "-i", wav, "-c:a", "libmp3lame", "-b:a", "128k", os.path.join(d, "content.mp3"))
    os.remove(wav)
    # Intro and outro: a chord with a spoken line; the bed: a soft plucked loop.
    for name, line in [("intro", "Welcome to the show."), ("outro", "Thanks for listening.")]:
        run("espeak-ng", "-v", "en-us", "-w", os.path.join(d, f"{name}-voice.wav"), line)
        run("sox", "-n", "-r", "44100", "-c", "2", os.path.join(d, f"{name}-music.wav"),
            "synth", "8", "pluck", "C3", "pluck", "E3", "pluck", "G3", "gain", "-8")
        run("sox", "-m", os.path.join(d, f"{name}-music.wav"),
            "|sox " + os.path.join(d, f"{name}-voice.wav") + " -r 44100 -c 2 -p pad 1 0",
            os.path.join(d, f"{name}.wav"))
    run("sox", "-n", "-r", "44100", "-c", "2", os.path.join(d, "bed.wav"),
        "synth", "20", "sine", "220", "sine", "277", "tremolo", "2", "40", "gain", "-12")
    with open(os.path.join(d, "words.json"), "w") as f:
        json.dump(words, f)
    template = {
        "segments": [
            {"id": "intro", "segment_type": "intro", "source": {"source_type": "static", "filename": "intro.wav"}},
            {"id": "content", "segment_type": "content", "source": {"source_type": "content"}},
            {"id": "outro", "segment_type": "outro", "source": {"source_type": "static", "filename": "outro.wav"}},
        ],
        "background_music_rules": [
            {"music_filename": "bed.wav", "apply_to_segments": ["content"], "volume_db": -22,
             "fade_in_s": 2, "fade_out_s": 3, "start_offset_s": 0, "end_offset_s": 0},
        ],
        "timing": {"content_start_offset_s": -1.0, "outro_start_offset_s": -1.0},
    }
    with open(done, "w") as f:
        json.dump(template, f)


def extras(out):
    """The two extra files of --outputs three/separate, beside ``out``."""
    stem = os.path.splitext(out)[0]
    return [{"path": stem + "-mono.mp3", "channels": 1, "bitrate_kbps": 64, "target_lufs": -19},
            {"path": stem + ".flac", "format": "flac"}]


def job(d, out, outputs):
    """One run, in this (child) process; prints one JSON line."""
    import podcast_assembly as pa
    with open(os.path.join(d, "template.json")) as f:
        template = json.load(f)
    with open(os.path.join(d, "words.json")) as f:
        words = json.load(f)
    assets = {n: os.path.join(d, n) for n in ("intro.wav", "outro.wav", "bed.wav")}
    args = dict(words=words, template=template, assets=assets)
    content = os.path.join(d, "content.mp3")
    t0 = time.perf_counter()
    reports = [pa.assemble_episode(content, output_path=out, **args,
                                   extra_outputs=extras(out) if outputs == "three" else None)]
    if outputs == "separate":
        mono, flac = extras(out)
        spec = pa.episode_spec(content, output_path=mono["path"], bitrate_kbps=64,
                               target_lufs=-19.0, **args)
        spec["output"]["channels"] = 1
        reports.append(pa.Assembler(spec).run())
        reports.append(pa.assemble_episode(content, output_path=flac["path"],
                                           output_format="flac", **args))
    wall = time.perf_counter() - t0
    files = [o for r in reports for o in r.outputs]
    r = reports[0].to_dict()
    verify = r.get("verify") or {}
    attempts = verify.get("attempts", [])
    print(json.dumps({
        "wall_s": wall,
        "out_s": reports[0].duration_ms / 1000,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "full_encodes": sum(1 for a in attempts if not a["measured"].get("repair")),
        "repairs": sum(1 for a in attempts if a["measured"].get("repair")),
        "lufs": reports[0].loudness["integrated_lufs"],
        "dbtp": reports[0].loudness["true_peak_dbtp"],
        "files": [{"name": os.path.basename(o["path"]), "channels": o["channels"],
                   "lufs": o["loudness"]["integrated_lufs"],
                   "dbtp": o["loudness"]["true_peak_dbtp"], "target": o["target_lufs"],
                   "encodes": o["encodes"]} for o in files],
        "stage_ms": r.get("stage_ms"),
    }))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default="/tmp/dropin")
    ap.add_argument("--outputs", choices=["one", "three", "separate"], default="one",
                    help="one: the default MP3; three: the same job also writes a mono MP3 "
                    "at -19 and a FLAC (extra_outputs); separate: those three, three jobs")
    ap.add_argument("--job", help=argparse.SUPPRESS)
    a = ap.parse_args()
    d = os.path.join(a.dir, f"{a.minutes:g}min")
    if a.job:
        job(d, a.job, a.outputs)
        return
    make_material(d, a.minutes)
    rows = []
    for k in range(a.runs):
        out = os.path.join(d, "episode.mp3")
        p = subprocess.run([sys.executable, __file__, "--minutes", str(a.minutes), "--dir", a.dir,
                            "--outputs", a.outputs, "--job", out],
                           check=True, capture_output=True, text=True)
        row = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"run {k + 1}: {row['wall_s']:.2f} s ({row['out_s'] / row['wall_s']:.0f}x realtime), "
              f"peak RSS {row['peak_rss_mib']:.0f} MiB, full encodes {row['full_encodes']}, "
              f"repairs {row['repairs']}, {row['lufs']:.2f} LUFS, {row['dbtp']:.2f} dBTP")
        if a.outputs != "one":
            print("  " + "; ".join(f"{f['name']} ({f['channels']} ch): {f['lufs']:.2f} LUFS "
                                   f"(target {f['target']:g}), {f['dbtp']:.2f} dBTP, "
                                   f"{f['encodes']} encode(s)" for f in row["files"]))
    walls = [r["wall_s"] for r in rows]
    print(f"median wall {statistics.median(walls):.2f} s over {len(rows)} runs; "
          f"stages of the last run (ms): {rows[-1]['stage_ms']}")


if __name__ == "__main__":
    main()
