"""Shared test material: synthesized episodes (stdlib ``wave``, no numpy) and a real service
process on loopback that tests start, kill -9, SIGTERM and restart."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import wave
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import httpx
import pytest

from assembly_service import logs

RATE = 16_000
#: Set by scripts/services-up.sh (through scripts/test-service.sh). When set, the server must
#: answer: a test needing it fails instead of skipping.
PG_URL = os.environ.get("ASSEMBLY_TEST_PG_URL")
REDIS_URL = os.environ.get("ASSEMBLY_TEST_REDIS_URL")
SECRET = "test-secret-\u00e9"  # non-ASCII on purpose: the header is compared as bytes
SERVICE_DIR = Path(__file__).resolve().parents[1]
_PERIOD = [
    sum(a * math.sin(2 * math.pi * k * i / 100) for k, a in ((1, 1.0), (2, 0.5), (3, 0.3)))
    / 1.8 for i in range(100)
]


def write_wav(path: Path, samples: Sequence[float], rate: int = RATE) -> Path:
    pcm = array("h", (max(-32767, min(32767, int(round(s * 32767)))) for s in samples))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def script(duration_s: float, seed: int) -> List[Tuple[str, float, float]]:
    """Words of 0.2-0.4 s with short gaps, an "um" every 7th word, a 2.5 s pause every 9th."""
    rng = random.Random(seed)
    t, i, words = 0.3, 0, []
    vocab = ["so", "today", "we", "talk", "about", "audio", "and", "podcasts", "really"]
    while True:
        length = rng.uniform(0.2, 0.4)
        if t + length > duration_s - 0.5:
            break
        text = "um" if i % 7 == 4 else vocab[rng.randrange(len(vocab))]
        words.append((text, round(t, 3), round(t + length, 3)))
        t += length + (2.5 if i % 9 == 8 else rng.uniform(0.08, 0.2))
        i += 1
    return words


def speech(words: Sequence[Tuple[str, float, float]], duration_s: float, seed: int) -> List[float]:
    """Voiced bursts (160 Hz + harmonics, Hann envelope) over each word, faint noise between."""
    n = int(round(duration_s * RATE))
    rng = random.Random(seed)
    out = [rng.uniform(-0.0005, 0.0005) for _ in range(n)]
    for _, start, end in words:
        a, b = int(round(start * RATE)), min(n, int(round(end * RATE)))
        length = max(1, b - a)
        amp = rng.uniform(0.2, 0.4)
        for i in range(a, b):
            env = 0.5 - 0.5 * math.cos(2 * math.pi * (i - a) / length)
            out[i] += amp * env * _PERIOD[i % 100]
    return out


def tone(freq: float, duration_s: float, amp: float) -> List[float]:
    return [amp * math.sin(2 * math.pi * freq * i / RATE) for i in range(int(duration_s * RATE))]


@dataclass
class Media:
    root: Path
    words: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)

    def payload(self, episode_id: str, content: str = "talk-a.wav", **extra: Any) -> Dict[str, Any]:
        """A full request: content + words + intro/outro/bed template + cleanup options."""
        body: Dict[str, Any] = {
            "episode_id": episode_id,
            "content_path": content,
            "words": self.words.get(content),
            "template": {
                "segments": [
                    {"id": "intro", "segment_type": "intro",
                     "source": {"source_type": "static", "filename": "intro.wav"}},
                    {"id": "talk", "segment_type": "content",
                     "source": {"source_type": "content"}},
                    {"id": "outro", "segment_type": "outro",
                     "source": {"source_type": "static", "filename": "outro.wav"}},
                ],
                "background_music_rules": [
                    {"music_filename": "bed.wav", "apply_to_segments": ["content"],
                     "volume_db": -18.0}],
                "timing": {"content_start_offset_s": -0.5, "outro_start_offset_s": -0.3},
            },
            "assets": {"intro.wav": "assets/intro.wav", "outro.wav": "assets/outro.wav",
                       "bed.wav": "assets/bed.wav"},
            "cleanup_options": {"removeFillers": True, "fillerWords": ["um"],
                                "removePauses": True, "maxPauseSeconds": 1.0},
            "output_format": "mp3",
            "bitrate_kbps": 96,
        }
        body.update(extra)
        return body


def write_talk(path: Path, duration_s: float, seed: int, clip_s: float = 12.0
               ) -> List[Dict[str, Any]]:
    """A speech-like recording of ``duration_s`` (a whole number of ``clip_s`` clips: one
    synthesized clip repeated, so long inputs cost no Python time) and its word list."""
    clip_words = script(clip_s, seed)
    pcm = array("h", (max(-32767, min(32767, int(round(x * 32767))))
                      for x in speech(clip_words, clip_s, seed)))
    repeats = max(1, int(round(duration_s / clip_s)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes() * repeats)
    return [{"word": w, "start": round(s + k * clip_s, 3), "end": round(e + k * clip_s, 3),
             "speaker": "A"} for k in range(repeats) for w, s, e in clip_words]


def make_media(root: Path, contents: Dict[str, Tuple[float, int]]) -> Media:
    (root / "assets").mkdir(parents=True)
    media = Media(root)
    for name, (duration, seed) in contents.items():
        media.words[name] = write_talk(root / name, duration, seed)
    write_wav(root / "assets" / "intro.wav", tone(440.0, 1.0, 0.3))
    write_wav(root / "assets" / "outro.wav", tone(330.0, 1.0, 0.3))
    write_wav(root / "assets" / "bed.wav", tone(220.0, 3.0, 0.2))
    # A poison input: a valid WAV header promising audio, then garbage that is not PCM of
    # any length the header allows -> every run fails in decoding.
    (root / "poison.wav").write_bytes(_poison_wav())
    return media


def _poison_wav() -> bytes:
    data = bytes(random.Random(3).randrange(256) for _ in range(4001))
    fmt = (b"fmt " + (16).to_bytes(4, "little") + (1).to_bytes(2, "little")
           + (1).to_bytes(2, "little") + RATE.to_bytes(4, "little")
           + (RATE * 2).to_bytes(4, "little") + (2).to_bytes(2, "little")
           + (16).to_bytes(2, "little"))
    body = b"WAVE" + fmt + b"data" + (10 ** 8).to_bytes(4, "little") + data
    return b"RIFF" + (len(body)).to_bytes(4, "little") + body


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    root = tmp_path_factory.mktemp("media")
    # Lengths chosen so a job takes a few seconds here (~2 s per minute of content on one
    # loaded core): long enough to be killed mid-stage, short enough for the CI budget.
    return make_media(root, {"talk-a.wav": (120.0, 1), "talk-b.wav": (96.0, 2),
                             "talk-c.wav": (72.0, 3), "short.wav": (12.0, 4),
                             "talk-long.wav": (2400.0, 5)})


_REFERENCE: Dict[str, bytes] = {}


def reference_output(media: Media, payload: Dict[str, Any], tmp: Path) -> bytes:
    """The bytes an uninterrupted, in-process run of the same job produces."""
    from assembly_service.config import Settings
    from assembly_service.jobs import build_spec
    from assembly_service.requests import AssembleRequest, prepare

    import podcast_assembly as pa

    settings = Settings(media_root=media.root, data_dir=tmp / "ref-data", dev_mode=True)
    prepared = prepare(AssembleRequest(**payload), settings)
    key = hashlib.sha256(json.dumps({k: v for k, v in prepared.payload.items()
                                     if k not in ("episode_id", "output_path")},
                                    sort_keys=True).encode()).hexdigest()
    if key not in _REFERENCE:
        work = tmp / f"ref-{key[:12]}"
        spec = build_spec(prepared.payload, work)
        spec.pop("work_dir", None)  # no checkpoints: one straight run
        (work / "staging").mkdir(parents=True)
        pa.Assembler(spec).run()
        _REFERENCE[key] = Path(spec["output"]["path"]).read_bytes()
    return _REFERENCE[key]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m assembly_service serve`` as a child process on a fixed loopback port."""

    def __init__(self, tmp: Path, media: Media, **env: Any) -> None:
        self.tmp = tmp
        self.media = media
        self.port = free_port()
        self.data_dir = tmp / "data"
        self.output_root = media.root / "output" / f"{tmp.parent.name}-{tmp.name}"
        self.env = dict(os.environ)
        self.env.update({
            "ASSEMBLY_SERVICE_MEDIA_ROOT": str(media.root),
            "ASSEMBLY_SERVICE_OUTPUT_ROOT": str(self.output_root),
            "ASSEMBLY_SERVICE_DATA_DIR": str(self.data_dir),
            "ASSEMBLY_SERVICE_AUTH_SECRET": SECRET,
            "ASSEMBLY_SERVICE_WORKERS": "2",
            "PYTHONPATH": os.pathsep.join([str(SERVICE_DIR), self.env.get("PYTHONPATH", "")]),
        })
        self.env.update({f"ASSEMBLY_SERVICE_{k.upper()}": str(v) for k, v in env.items()
                         if v is not None})
        self.database_url: Optional[str] = env.get("database_url")
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.log_files: List[Path] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.starts += 1
        log = self.tmp / f"server-{self.starts}.log"
        self.log_files.append(log)
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "assembly_service", "serve", "--port", str(self.port)],
                env=self.env, stdout=f, stderr=subprocess.STDOUT, cwd=self.tmp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready: {log.read_text()[-3000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def sigterm(self, timeout: float = 30.0) -> Tuple[float, int]:
        """Sends SIGTERM; (seconds until the process exited, exit status)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        return time.monotonic() - t0, rc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self, auth: bool = True) -> httpx.Client:
        headers = {"X-Tasks-Auth": SECRET.encode("utf-8")} if auth else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def rows(self) -> List[Dict[str, Any]]:
        """Every job row, read straight from the store (SQLite file or PostgreSQL)."""
        if self.database_url:
            return pg_rows(self.database_url)
        path = self.data_dir / "jobs.sqlite3"
        if not path.exists():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY created_at")]
        finally:
            conn.close()

    def events(self, name: Optional[str] = None) -> List[Dict[str, str]]:
        """Parsed log events of every run of the server so far."""
        out = []
        for f in self.log_files:
            if not f.exists():
                continue
            for line in f.read_text(errors="replace").splitlines():
                if "event=" in line:
                    ev = logs.parse_line(line)
                    if name is None or ev.get("event") == name:
                        out.append(ev)
        return out

    def wait_work_cleaned(self, timeout: float = 15.0) -> None:
        """Waits until no job work folder is left. A worker removes it last, after it committed
        the job's end, logged it and counted it, so a status poll can see ``succeeded`` a
        moment before; once the folder is gone the attempt's bookkeeping is complete."""
        work = self.data_dir / "work"
        deadline = time.monotonic() + timeout
        while work.exists() and any(work.iterdir()):
            if time.monotonic() > deadline:
                raise AssertionError(f"work folders left: {sorted(os.listdir(work))}")
            time.sleep(0.05)

    def wait_for(self, client: httpx.Client, episode_id: str, states: Sequence[str],
                 timeout: float = 120.0) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: Dict[str, Any] = {}
        while time.monotonic() < deadline:
            r = client.get(f"/api/tasks/assemble/{episode_id}/status")
            if r.status_code == 200:
                body = r.json()
                if body["status"] in states:
                    return body
            time.sleep(0.1)
        raise AssertionError(f"{episode_id} did not reach {states}: {body}")


@pytest.fixture()
def server_factory(tmp_path: Path, media: Media):
    servers: List[Server] = []

    def make(**env: Any) -> Server:
        sub = tmp_path / f"s{len(servers)}"
        sub.mkdir()
        s = Server(sub, media, **env)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


# --- PostgreSQL ----------------------------------------------------------------------------


def missing_service(var: str) -> None:
    """A test needs PostgreSQL or Redis and ``var`` is not set: under CI (``CI`` set) that is
    a failure (a broken scripts/services-up.sh must not hide half the matrix), elsewhere a
    skip."""
    message = f"{var} is not set (scripts/test-service.sh sets it)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; under CI every store and broker test must run",
                    pytrace=False)
    pytest.skip(message)


def fresh_pg_database() -> str:
    """The URL of a new, empty database on the test server (one per test: no shared state).

    Skips when ``ASSEMBLY_TEST_PG_URL`` is not set (fails under CI); fails when it is set
    and the server does not answer."""
    if not PG_URL:
        missing_service("ASSEMBLY_TEST_PG_URL")
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _db = PG_URL.rpartition("/")
    return f"{base}/{name}"


def pg_rows(url: str) -> List[Dict[str, Any]]:
    """Every job row of the PostgreSQL store at ``url`` (booleans as 0/1, like SQLite)."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        try:
            rows = conn.execute("SELECT * FROM jobs ORDER BY created_at, seq").fetchall()
        except psycopg.errors.UndefinedTable:
            return []
    for r in rows:
        r["cancel_requested"] = int(r["cancel_requested"])
        r.pop("seq", None)
    return rows


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Optional[str]:
    """Runs a test once per store: SQLite (None: the default file) and PostgreSQL."""
    if request.param == "sqlite":
        return None
    return fresh_pg_database()
