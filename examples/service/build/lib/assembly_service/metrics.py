"""Prometheus metrics in the text exposition format (no client library needed).

Counters and histograms count what *this process* did (its workers, its requests); the
``assembly_jobs`` and queue gauges are read from the store at scrape time and so cover every
process sharing it.
"""

from __future__ import annotations

import math
import threading
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .store import Counts

Labels = Tuple[Tuple[str, str], ...]

STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
JOB_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)


def _labels(labels: Labels, extra: Optional[Tuple[str, str]] = None) -> str:
    items = list(labels) + ([extra] if extra else [])
    if not items:
        return ""
    esc = [(k, v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"'))
           for k, v in items]
    return "{" + ",".join(f'{k}="{v}"' for k, v in esc) + "}"


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.count = 0
        self.sum = 0.0

    def observe(self, v: float) -> None:
        self.count += 1
        self.sum += v
        for i, b in enumerate(self.buckets):
            if v <= b:
                self.counts[i] += 1


class Metrics:
    """Thread-safe counters and histograms, rendered by :meth:`render`."""

    _HELP = {
        "assembly_jobs_dispatched_total": ("counter", "Accepted POSTs (new: a job was created)."),
        "assembly_job_attempts_total": ("counter", "Finished attempts by outcome."),
        "assembly_job_failures_total": ("counter", "Failed attempts by error type."),
        "assembly_job_resumes_total": ("counter", "Attempts that resumed from a checkpoint."),
        "assembly_leases_expired_total": ("counter", "Expired leases re-queued by this process."),
        "assembly_publishes_recovered_total": (
            "counter", "Publishes a dead worker left half done, finished by this process."),
        "assembly_callbacks_total": ("counter", "Completion callback attempts by outcome."),
        "assembly_stage_duration_seconds": ("histogram", "Wall time per pipeline stage."),
        "assembly_job_duration_seconds": ("histogram", "Wall time per attempt by outcome."),
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: Dict[str, Dict[Labels, float]] = {}
        self._histograms: Dict[str, Dict[Labels, _Histogram]] = {}
        self.busy_workers = 0
        self.workers = 0

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Adds ``amount`` to a counter."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters.setdefault(name, {})
            series[key] = series.get(key, 0.0) + amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Records one histogram observation (seconds)."""
        key = tuple(sorted(labels.items()))
        buckets = STAGE_BUCKETS if name == "assembly_stage_duration_seconds" else JOB_BUCKETS
        with self._lock:
            series = self._histograms.setdefault(name, {})
            hist = series.get(key)
            if hist is None:
                hist = series[key] = _Histogram(buckets)
            hist.observe(value)

    def set_busy(self, delta: int) -> None:
        """Adjusts the busy-worker gauge."""
        with self._lock:
            self.busy_workers += delta

    def counter(self, name: str, **labels: str) -> float:
        """A counter's current value (0 if never incremented)."""
        with self._lock:
            return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self, counts: Optional[Counts]) -> str:
        """The exposition text; ``counts`` (from the store) feeds the job and queue gauges."""
        lines: List[str] = []

        def head(name: str, kind: str, text: str) -> None:
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")

        if counts is not None:
            head("assembly_jobs", "gauge", "Jobs in the store by state.")
            for state, n in sorted(counts.by_state.items()):
                lines.append(f'assembly_jobs{{state="{state}"}} {n}')
            head("assembly_queue_depth", "gauge", "Jobs ready to run (queued or retry due).")
            lines.append(f"assembly_queue_depth {counts.ready}")
            head("assembly_queue_oldest_age_seconds", "gauge",
                 "How long the oldest ready job has waited.")
            lines.append(f"assembly_queue_oldest_age_seconds {_num(counts.oldest_ready_age_s)}")
        with self._lock:
            head("assembly_workers", "gauge", "Worker threads in this process.")
            lines.append(f"assembly_workers {self.workers}")
            head("assembly_workers_busy", "gauge", "Worker threads running a job.")
            lines.append(f"assembly_workers_busy {self.busy_workers}")
            for name, (kind, text) in self._HELP.items():
                if kind == "counter":
                    head(name, kind, text)
                    for labels, v in sorted(self._counters.get(name, {}).items()):
                        lines.append(f"{name}{_labels(labels)} {_num(v)}")
                else:
                    head(name, kind, text)
                    for labels, h in sorted(self._histograms.get(name, {}).items()):
                        for b, c in zip(h.buckets, h.counts):
                            lines.append(f"{name}_bucket{_labels(labels, ('le', _num(b)))} {c}")
                        lines.append(f"{name}_bucket{_labels(labels, ('le', '+Inf'))} {h.count}")
                        lines.append(f"{name}_sum{_labels(labels)} {_num(h.sum)}")
                        lines.append(f"{name}_count{_labels(labels)} {h.count}")
        return "\n".join(lines) + "\n"


def parse(text: str) -> Dict[str, float]:
    """Sample lines of an exposition text as ``{'name{labels}': value}`` (for tests/tools)."""
    out: Dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


def samples(text: str, prefix: str) -> Iterable[Tuple[str, float]]:
    """Samples whose name starts with ``prefix``."""
    return [(k, v) for k, v in parse(text).items() if k.startswith(prefix)]
