#!/usr/bin/env python3
"""Regenerates the bundled demo episode material (needs espeak-ng, sox and ffmpeg).

The content is synthesized one word at a time, so every word's time in `words.json` is known
exactly (no aligner needed). It holds what the assembler cleans up: fillers ("um", "uh",
"you know"), two long pauses, a spoken "flubber" retake and a word to censor. Two speakers use
two voices at different levels, so leveling has something to do.

Usage: python3 examples/demo/make_demo.py   (writes into examples/demo/)
"""
import json
import os
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RATE = 22050  # espeak-ng's native rate

# (speaker, text, pause after in seconds). A pause of 0 means the default word gap.
SCRIPT = [
    ("host", "Welcome back to the show everybody.", 0.35),
    ("host", "Today um we are talking about how podcasts get made.", 0.3),
    ("guest", "Thanks for having me. It is uh great to be here.", 2.6),
    ("host", "So tell us, how did you you know get started with audio?", 0.3),
    ("guest", "I started recording in my kitchen with a cheap microphone.", 0.3),
    ("guest", "The sound was terrible and the dog barked in the middle of the best take.", 0.4),
    ("guest", "We fixed it in post with a lot of patience flubber", 0.6),
    ("guest", "We fixed it later by editing for many long nights.", 0.3),
    ("host", "That sounds like um a lot of work. Was it worth it?", 3.1),
    ("guest", "Absolutely. Darn it, I would do it all again tomorrow.", 0.3),
    ("host", "Uh thank you so much for joining us today.", 0.3),
    ("guest", "Thank you, it was a pleasure.", 0.5),
]
VOICES = {"host": ("en-us", 165, 0.0), "guest": ("en-gb", 150, -6.0)}  # voice, wpm, gain dB
WORD_GAP_S = 0.07


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def trimmed_word(tmp, i, word, voice, wpm, gain_db):
    raw = os.path.join(tmp, f"w{i}.wav")
    out = os.path.join(tmp, f"t{i}.wav")
    run("espeak-ng", "-v", voice, "-s", str(wpm), "-w", raw, word)
    # Trim leading and trailing silence so the word's span is exactly the file.
    run("sox", raw, "-r", str(RATE), "-c", "1", "-b", "16", out,
        "silence", "1", "0.005", "0.3%", "reverse", "silence", "1", "0.005", "0.3%", "reverse",
        "gain", str(gain_db))
    info = subprocess.run(["soxi", "-s", out], check=True, capture_output=True, text=True)
    return out, int(info.stdout.strip())


def silence(tmp, name, seconds):
    path = os.path.join(tmp, name)
    run("sox", "-n", "-r", str(RATE), "-c", "1", "-b", "16", path, "trim", "0", f"{seconds:.6f}")
    return path


def main():
    with tempfile.TemporaryDirectory() as tmp:
        pieces, words, t = [], [], 0
        pieces.append(silence(tmp, "lead.wav", 0.5))
        t = int(0.5 * RATE)
        n = 0
        for speaker, line, pause in SCRIPT:
            voice, wpm, gain = VOICES[speaker]
            tokens = line.split()
            for j, token in enumerate(tokens):
                spoken = token.strip(".,?!")
                path, frames = trimmed_word(tmp, n, spoken, voice, wpm, gain)
                words.append({"word": token, "start": round(t / RATE, 4),
                              "end": round((t + frames) / RATE, 4), "speaker": speaker})
                pieces.append(path)
                t += frames
                gap = pause if j == len(tokens) - 1 and pause > 0 else WORD_GAP_S
                g = int(round(gap * RATE))
                pieces.append(silence(tmp, f"g{n}.wav", g / RATE))
                t += g
                n += 1
        content = os.path.join(tmp, "content.wav")
        run("sox", *pieces, content)
        # A quiet room tone under everything, as in a real recording.
        noisy = os.path.join(tmp, "content_noisy.wav")
        noise = os.path.join(tmp, "noise.wav")
        run("sox", "-n", "-r", str(RATE), "-c", "1", "-b", "16", noise, "synth",
            f"{t / RATE:.6f}", "whitenoise", "vol", "0.0015")
        run("sox", "-m", "-v", "1", content, "-v", "1", noise, noisy)
        run("ffmpeg", "-y", "-i", noisy, "-codec:a", "libmp3lame", "-b:a", "64k",
            os.path.join(HERE, "content.mp3"))
        with open(os.path.join(HERE, "words.json"), "w") as f:
            json.dump({"words": words}, f, indent=1)
            f.write("\n")

        # Intro and outro: a short chord sting under a spoken line.
        for name, text in (("intro", "This is the Demo Show. Made with podcast assembly."),
                           ("outro", "Thanks for listening to the Demo Show. See you next week.")):
            voice = os.path.join(tmp, f"{name}_voice.wav")
            run("espeak-ng", "-v", "en-us", "-s", "160", "-w", voice, text)
            v2 = os.path.join(tmp, f"{name}_v2.wav")
            run("sox", voice, "-r", "44100", "-c", "2", v2, "pad", "1.0", "0.5")
            sting = os.path.join(tmp, f"{name}_sting.wav")
            run("sox", "-n", "-r", "44100", "-c", "2", sting, "synth", "6", "pluck", "C3",
                "pluck", "E3", "pluck", "G3", "fade", "0", "6", "3", "vol", "0.25")
            mixed = os.path.join(tmp, f"{name}.wav")
            run("sox", "-m", "-v", "1", v2, "-v", "1", sting, mixed)
            run("ffmpeg", "-y", "-i", mixed, "-codec:a", "libmp3lame", "-b:a", "96k",
                os.path.join(HERE, f"{name}.mp3"))

        # A 16-second music bed: a slow two-chord pad, meant to loop under the content.
        bed = os.path.join(tmp, "bed.wav")
        a = os.path.join(tmp, "bed_a.wav")
        b = os.path.join(tmp, "bed_b.wav")
        run("sox", "-n", "-r", "44100", "-c", "2", a, "synth", "8", "sine", "A2", "sine", "C4",
            "sine", "E4", "tremolo", "3", "20", "vol", "0.2")
        run("sox", "-n", "-r", "44100", "-c", "2", b, "synth", "8", "sine", "F2", "sine", "A3",
            "sine", "C4", "tremolo", "3", "20", "vol", "0.2")
        run("sox", a, b, bed)
        run("ffmpeg", "-y", "-i", bed, "-codec:a", "libmp3lame", "-b:a", "64k",
            os.path.join(HERE, "bed.mp3"))


if __name__ == "__main__":
    main()
