"""Synthesized inputs for the tests: speech-like bursts with a word list, tones, beds.

Everything is written with the stdlib ``wave`` module; no numpy.
"""

from __future__ import annotations

import json
import math
import random
import wave
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import pytest

RATE = 16_000
F0 = 160.0  # period of exactly 100 samples at 16 kHz
_PERIOD = [
    sum(a * math.sin(2 * math.pi * k * i / 100) for k, a in ((1, 1.0), (2, 0.5), (3, 0.3), (5, 0.15)))
    / 1.95
    for i in range(100)
]


def write_wav(path: Path, samples: Sequence[float], rate: int = RATE, channels: int = 1) -> Path:
    """Writes interleaved float samples in [-1, 1] as 16-bit PCM."""
    pcm = array("h", (max(-32767, min(32767, int(round(s * 32767)))) for s in samples))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def speech(words: Sequence[Tuple[str, float, float]], duration_s: float, seed: int = 1,
           level: float = 0.3) -> List[float]:
    """Voiced bursts (160 Hz with harmonics, Hann envelope) over every word span, faint noise
    (-66 dBFS) elsewhere."""
    n = int(round(duration_s * RATE))
    rng = random.Random(seed)
    out = [rng.uniform(-0.0005, 0.0005) for _ in range(n)]
    for _, start, end in words:
        a, b = int(round(start * RATE)), min(n, int(round(end * RATE)))
        length = max(1, b - a)
        for i in range(a, b):
            env = 0.5 - 0.5 * math.cos(2 * math.pi * (i - a) / length)
            out[i] += level * env * _PERIOD[i % 100]
    return out


def tone(freq: float, duration_s: float, amp: float, rate: int = RATE) -> List[float]:
    n = int(round(duration_s * rate))
    return [amp * math.sin(2 * math.pi * freq * i / rate) for i in range(n)]


def read_wav(path: Path) -> Tuple[int, int, int]:
    """(frames, rate, channels) of a WAV file."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes(), w.getframerate(), w.getnchannels()


def script(duration_s: float, seed: int = 7) -> List[Tuple[str, float, float]]:
    """A word-timed script: words of 0.2-0.4 s with short gaps, an "um" every 8th word and a
    2.5 s pause every 12th gap."""
    rng = random.Random(seed)
    t, i, words = 0.3, 0, []
    vocab = ["so", "today", "we", "talk", "about", "audio", "and", "podcasts", "really"]
    while True:
        length = rng.uniform(0.2, 0.4)
        if t + length > duration_s - 0.5:
            break
        text = "um" if i % 8 == 5 else vocab[rng.randrange(len(vocab))]
        words.append((text, round(t, 3), round(t + length, 3)))
        t += length + (2.5 if i % 12 == 11 else rng.uniform(0.08, 0.2))
        i += 1
    return words


@dataclass
class Episode:
    dir: Path
    content: Path
    words: List[Tuple[str, float, float]]
    words_path: Path
    duration_s: float
    assets: Dict[str, Path] = field(default_factory=dict)

    def backend_words(self) -> List[dict]:
        return [{"word": w, "start": s, "end": e, "speaker": "A"} for w, s, e in self.words]

    def spec(self, output: str = "out/episode.mp3", template: bool = True, **extra) -> dict:
        spec: dict = {
            "version": 1,
            "content": str(self.content),
            "transcript": {"format": "words", "path": str(self.words_path)},
            "output": {"path": str(self.dir / output)},
        }
        if output.endswith(".wav"):
            spec["output"]["encoding"] = {"format": "wav"}
        if template:
            spec["assets"] = {k: str(v) for k, v in self.assets.items()}
            spec["template"] = {
                "segments": [
                    {"segment_type": "intro", "asset": "intro"},
                    {"segment_type": "content", "asset": "content"},
                    {"segment_type": "outro", "asset": "outro"},
                ],
                "timing": {"content_start_offset_s": -0.5, "outro_start_offset_s": -0.5},
                "background_music_rules": [{"asset": "bed", "apply_to_segments": ["content"]}],
            }
        spec.update(extra)
        return spec


def make_episode(dir: Path, duration_s: float = 20.0, seed: int = 7) -> Episode:
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "out").mkdir(exist_ok=True)
    words = script(duration_s, seed)
    content = write_wav(dir / "raw.wav", speech(words, duration_s, seed))
    words_path = dir / "words.json"
    words_path.write_text(json.dumps(
        [{"word": w, "start": s, "end": e, "speaker": "A"} for w, s, e in words]))
    ep = Episode(dir, content, words, words_path, duration_s)
    ep.assets["intro"] = write_wav(dir / "intro.wav", tone(440.0, 2.0, 0.3))
    ep.assets["outro"] = write_wav(dir / "outro.wav", tone(330.0, 2.0, 0.3))
    ep.assets["bed"] = write_wav(dir / "bed.wav", tone(220.0, 5.0, 0.2))
    return ep


@pytest.fixture
def episode(tmp_path: Path) -> Episode:
    return make_episode(tmp_path / "job")
