"""Completion callbacks: a job whose request named a ``callback_url`` is POSTed there once it
reaches a terminal state (``succeeded``, ``cancelled``, ``dead``).

The store keeps one ``callbacks`` row per such job (created with the job), so a delivery
survives restarts: :class:`CallbackSender` (a thread of every worker pool and of the Celery
app) finds the terminal jobs whose callback is still owed, claims one (so two processes do
not send it at once), POSTs it and records the outcome. A failed delivery (no answer within
``callback_timeout_s``, a non-2xx status) is retried with exponential backoff
(``callback_retry_base_s`` doubling, at most 5 minutes) up to ``callback_max_attempts`` times.
The job itself never waits for any of this.

The body is JSON; ``X-Assembly-Signature: sha256=<hex>`` is the HMAC-SHA256, keyed with
``callback_secret``, of ``<X-Assembly-Timestamp>.<body>``: the receiver recomputes it
(constant-time compare) and rejects old timestamps to stop replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Optional

from . import logs
from .config import Settings
from .metrics import Metrics
from .store import Job, JobStore

SIGNATURE_HEADER = "X-Assembly-Signature"
TIMESTAMP_HEADER = "X-Assembly-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def callback_body(job: Job) -> Dict[str, Any]:
    """What the callback says: the job's terminal status (the result without its words)."""
    result = job.result
    if result is not None:
        result = {k: v for k, v in result.items() if k != "words"}
    return {"event": "assembly.job.finished", "job_id": job.job_id,
            "episode_id": job.episode_id, "status": job.state.value,
            "attempts": job.attempts, "failures": job.failures, "error": job.error,
            "result": result, "finished_at": job.finished_at}


def retry_delay_s(settings: Settings, attempts: int) -> float:
    """Delay after the ``attempts``-th failed delivery."""
    return min(300.0, settings.callback_retry_base_s * (2 ** max(0, attempts - 1)))


class CallbackSender:
    """A daemon thread delivering owed callbacks every ``poll_s``."""

    def __init__(self, store: JobStore, settings: Settings,
                 metrics: Optional[Metrics] = None) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.secret = settings.callback_secret or (settings.secrets or ("",))[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="assembly-callbacks",
                                        daemon=True)

    def start(self) -> None:
        """Starts the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread (a delivery under way finishes first, bounded by its timeout)."""
        self._stop.set()
        self._thread.join(timeout=self.settings.callback_timeout_s + 1)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.poll_s):
            try:
                self.deliver_owed()
            except Exception as e:  # noqa: BLE001 - store hiccup: next poll
                logs.event("tasks.callback.store_error", logging.WARNING,
                           error=f"{type(e).__name__}: {e}")

    def deliver_owed(self) -> int:
        """Sends every callback that is due; returns how many were delivered."""
        delivered = 0
        for job, url, attempts in self.store.owed_callbacks():
            if self._stop.is_set():
                break
            hold = self.settings.callback_timeout_s + 5  # no other sender meanwhile
            if not self.store.claim_callback(job.job_id, hold):
                continue
            ok, detail = self._post(url, job)
            attempt = attempts + 1
            give_up = not ok and attempt >= self.settings.callback_max_attempts
            retry_at = None if ok or give_up else time.time() + retry_delay_s(self.settings,
                                                                              attempt)
            self.store.record_callback(job.job_id, ok, retry_at, None if ok else detail)
            if self.metrics is not None:
                self.metrics.inc("assembly_callbacks_total",
                                 outcome="delivered" if ok else ("gave_up" if give_up
                                                                 else "retry"))
            level = logging.INFO if ok else (logging.ERROR if give_up else logging.WARNING)
            logs.event("tasks.callback." + ("delivered" if ok else
                                            "abandoned" if give_up else "failed"), level,
                       episode_id=job.episode_id, job_id=job.job_id, attempt=job.attempts,
                       delivery=attempt, status=job.state.value, detail=detail,
                       retry_in_s=None if retry_at is None else round(retry_at - time.time(), 3))
            delivered += ok
        return delivered

    def _post(self, url: str, job: Job) -> "tuple[bool, str]":
        body = json.dumps(callback_body(job), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=True).encode("ascii")
        ts = str(int(time.time()))
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(self.secret, ts, body), "X-Assembly-Job-Id": job.job_id,
            "User-Agent": "podcast-assembly-service"})
        try:
            with urllib.request.urlopen(req, timeout=self.settings.callback_timeout_s) as r:
                return 200 <= r.status < 300, f"HTTP {r.status}"
        except urllib.error.HTTPError as e:
            return False, f"HTTP {e.code}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            return False, f"{type(e).__name__}: {getattr(e, 'reason', e)}"
