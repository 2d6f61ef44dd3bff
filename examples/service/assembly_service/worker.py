"""Worker threads: lease a job, run it with :func:`run_leased_job`, repeat.

:class:`WorkerPool` runs inside the web app (``workers`` threads) or on its own
(``python -m assembly_service worker``): both share the store, so any number of processes on
any number of machines can work one queue.
"""

from __future__ import annotations

import http.server
import logging
import os
import signal
import socket
import threading
import time
import uuid
from typing import Dict, List, Optional

from . import logs
from .callbacks import CallbackSender
from .config import Settings
from .jobs import (JobControl, clean_finished, purge_expired, recover_publishes,
                   run_leased_job, sweep_work)
from .metrics import Metrics
from .store import JobStore, Lease


def _lower_priority(nice: int) -> None:
    """Raises this thread's niceness (Linux threads are scheduled individually), so the HTTP
    thread wins the CPU while assemblies run."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
    except OSError:
        pass


class WorkerPool:
    """``settings.workers`` threads (or ``threads``) working the store's queue."""

    def __init__(self, store: JobStore, settings: Settings, metrics: Optional[Metrics] = None,
                 threads: Optional[int] = None) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.size = settings.workers if threads is None else threads
        self.owner_prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self._wake = threading.Condition()
        self._pending_wakes = 0
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        self._running: Dict[str, tuple] = {}  # job_id -> (Lease, JobControl)
        self.callbacks = CallbackSender(store, settings, self.metrics)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the threads."""
        self.metrics.workers = self.size
        self.callbacks.start()
        reaper = threading.Thread(target=self._reaper, name="assembly-reaper", daemon=True)
        reaper.start()
        self._threads.append(reaper)
        for i in range(self.size):
            t = threading.Thread(target=self._loop, args=(f"{self.owner_prefix}:{i}",),
                                 name=f"assembly-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self) -> None:
        """A job was just queued: an idle worker looks now instead of at its next poll."""
        with self._wake:
            self._pending_wakes += 1
            self._wake.notify()

    def stop(self) -> bool:
        """Stops taking jobs; running jobs finish their current stage (bounded by
        ``shutdown_grace_s``), then are cancelled and released. Returns True if every thread
        ended within ``shutdown_timeout_s``; leases of jobs still running then are released
        here (the process is about to exit and take the runs with it)."""
        t0 = time.monotonic()
        self.stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = t0 + self.settings.shutdown_timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in self._threads if t.is_alive()]
        self.callbacks.stop()
        with self._lock:
            left = list(self._running.values())
        for lease, control in left:
            control.stop("shutdown")
            try:
                self.store.release(lease)
            except Exception as e:  # noqa: BLE001 - the lease will expire instead
                logs.event("tasks.worker.release_error", logging.WARNING, job_id=lease.job_id,
                           error=str(e))
        logs.event("tasks.worker.stopped", owner=self.owner_prefix,
                   duration_ms=round((time.monotonic() - t0) * 1000),
                   threads_left=len(alive))
        return not alive

    # --- jobs ----------------------------------------------------------------------------------

    def cancel_local(self, job_id: str) -> bool:
        """Stops the job at once if one of these threads runs it (its worker then confirms
        the cancel in the store)."""
        with self._lock:
            entry = self._running.get(job_id)
        if entry is None:
            return False
        entry[1].stop("cancel")
        return True

    def running(self) -> List[str]:
        """Ids of the jobs these threads run now."""
        with self._lock:
            return list(self._running)

    def _idle(self) -> None:
        with self._wake:
            if self._pending_wakes == 0 and not self.stopping.is_set():
                self._wake.wait(self.settings.poll_s)
            self._pending_wakes = max(0, self._pending_wakes - 1)

    def reap(self) -> int:
        """Finishes the publishes of workers that died after recording the intent, and
        re-queues jobs whose lease expired (their worker died); returns how many it moved."""
        recover_publishes(self.store, self.settings, self.metrics)
        moved = self.store.requeue_expired(self.settings.max_lost_leases)
        for tr in moved:
            self.metrics.inc("assembly_leases_expired_total")
            dead = tr.job.state.value == "dead"
            logs.event("tasks.assemble.lease_expired", logging.ERROR if dead else logging.WARNING,
                       episode_id=tr.job.episode_id, job_id=tr.job.job_id,
                       attempt=tr.job.attempts, previous_owner=tr.previous_owner,
                       state=tr.job.state.value, lost_leases=tr.job.lost_leases)
            if dead:
                logs.event("tasks.assemble.dead", logging.ERROR, episode_id=tr.job.episode_id,
                           job_id=tr.job.job_id, attempt=tr.job.attempts, reason="worker lost")
            if tr.job.state.value in ("dead", "cancelled"):
                clean_finished(tr.job, self.settings)
        if moved:
            self.wake()
        return len(moved)

    def _reaper(self) -> None:
        # Its own thread: expired leases are re-queued within poll_s even while every worker
        # is busy, so no job shows `running` for long after its worker died.
        last_purge: Optional[float] = None  # the first poll purges and sweeps
        while not self.stopping.wait(self.settings.poll_s):
            try:
                self.reap()
                if (last_purge is None
                        or time.monotonic() - last_purge >= self.settings.purge_interval_s):
                    last_purge = time.monotonic()
                    purge_expired(self.store, self.settings)
                    sweep_work(self.store, self.settings)
            except Exception as e:  # noqa: BLE001 - store hiccup: try again next poll
                logs.event("tasks.worker.store_error", logging.WARNING,
                           owner=self.owner_prefix, error=f"{type(e).__name__}: {e}")

    def _loop(self, owner: str) -> None:
        _lower_priority(self.settings.worker_nice)
        while not self.stopping.is_set():
            lease: Optional[Lease] = None
            try:
                lease = self.store.lease_next(owner, self.settings.lease_s)
            except Exception as e:  # noqa: BLE001 - store hiccup: log, back off, go on
                logs.event("tasks.worker.store_error", logging.WARNING, owner=owner,
                           error=f"{type(e).__name__}: {e}")
                time.sleep(self.settings.poll_s)
                continue
            if lease is None:
                self._idle()
                continue
            control = JobControl()
            with self._lock:
                self._running[lease.job_id] = (lease, control)
            self.metrics.set_busy(+1)
            try:
                run_leased_job(self.store, lease, self.settings, control=control,
                               stopping=self.stopping, metrics=self.metrics)
            except Exception as e:  # noqa: BLE001 - a store error at commit: the lease expires
                logs.event("tasks.worker.job_error", logging.ERROR, owner=owner,
                           job_id=lease.job_id, error=f"{type(e).__name__}: {e}")
            finally:
                self.metrics.set_busy(-1)
                with self._lock:
                    self._running.pop(lease.job_id, None)


def run_standalone(settings: Settings, threads: Optional[int] = None) -> int:
    """``python -m assembly_service worker``: a pool without the web app, until SIGTERM/SIGINT.

    Returns the exit status (0 after a clean shutdown)."""
    from .store import open_store

    store = open_store(settings)
    pool = WorkerPool(store, settings, threads=threads)
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logs.event("tasks.worker.signal", signal=signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = serve_metrics(pool, settings.metrics_port) if settings.metrics_port else None
    pool.start()
    logs.event("tasks.worker.started", owner=pool.owner_prefix, threads=pool.size,
               db=settings.store_description)
    while not done.wait(0.5):
        pass
    clean = pool.stop()
    if server is not None:
        server.shutdown()
    store.close()
    return 0 if clean else 1


def serve_metrics(pool: WorkerPool, port: int) -> "http.server.ThreadingHTTPServer":
    """Serves ``GET /metrics`` (this process's counters, the store's gauges) on ``port`` from
    a daemon thread; returns the server (``shutdown()`` stops it)."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            try:
                counts = pool.store.counts()
            except Exception:  # noqa: BLE001 - still serve this process's metrics
                counts = None
            body = pool.metrics.render(counts).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:  # scrapes are not events
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="assembly-metrics",
                     daemon=True).start()
    logs.event("tasks.worker.metrics", port=port)
    return server
