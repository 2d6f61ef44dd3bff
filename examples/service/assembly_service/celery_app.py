"""Celery workers on a Redis broker: the same job function, run by an existing distributed
engine instead of the in-process pool.

Run a worker with the service's settings in the environment (``ASSEMBLY_SERVICE_*``; the job
store must be shared by every machine, i.e. ``ASSEMBLY_SERVICE_DATABASE_URL=postgresql://...``)::

    celery -A assembly_service.celery_app worker --concurrency 2 -Q assembly

The app enqueues one ``assembly_service.assemble(job_id)`` task per accepted job when
``ASSEMBLY_SERVICE_QUEUE=celery``. The task is safe to deliver any number of times:

* ``acks_late`` + ``task_reject_on_worker_lost``: the message is acknowledged only after the
  job function returned. A worker process that dies mid-job (SIGKILL, OOM, lost machine) leaves
  the message unacknowledged; the pool requeues it at once when only its child died, and Redis
  delivers it again after ``visibility_timeout_s`` when the whole worker is gone.
* Idempotent through the job store: the task leases the job (fencing token). If the job is
  done, or running under a live lease (the previous delivery is still at work), the task does
  nothing. If it is running under an expired lease (its worker died), the lease is reaped and
  the job resumes from its checkpoints (which must be on storage every worker sees).
* A failed attempt schedules its retry as a new delivery with the store's backoff
  (``countdown``); the store decides whether the job is dead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable, Dict, Optional

from celery import Celery
from celery.signals import worker_init, worker_process_init

from . import logs
from .callbacks import CallbackSender
from .config import Settings
from .jobs import (clean_finished, purge_expired, recover_publishes, run_leased_job,
                   sweep_work)
from .store import JobState, JobStore, open_store, now_s

TASK_NAME = "assembly_service.assemble"


def celery_config(settings: Settings) -> Dict[str, Any]:
    """The Celery settings the task's guarantees depend on."""
    return dict(
        broker_url=settings.broker_url,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a busy worker does not hold messages others could run
        task_ignore_result=True,  # the job store holds results
        task_default_queue=settings.celery_queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # our logfmt lines go to stderr unchanged
        # A backstop behind the job's own watchdog and deadline (which stop the run and
        # record the failure): the longest attempt an accepted request can have, plus the
        # time an abandoned run is given, plus a minute.
        task_time_limit=settings.deadline_s(settings.max_input_duration_s)
        + settings.abandon_after_s + 60,
    )


def make_celery(settings: Settings) -> Celery:
    """A Celery app (client side: the web app only sends tasks with it)."""
    app = Celery("assembly_service")
    app.conf.update(celery_config(settings))
    return app


def enqueue(app: Celery, job_id: str, countdown: float = 0.0) -> None:
    """Sends one ``assemble`` task for the job."""
    app.send_task(TASK_NAME, args=[job_id], countdown=countdown or None)


def run_job_task(store: JobStore, settings: Settings, job_id: str, owner: str,
                 schedule: Callable[[str, float], None]) -> str:
    """One delivery of the task: leases and runs the job, or does nothing when another
    delivery has it or it is finished. ``schedule(job_id, delay_s)`` sends a later delivery
    (retries after a failure). Returns what happened (for logs and tests)."""
    job = store.get(job_id)
    if job is None:
        logs.event("tasks.celery.skipped", logging.WARNING, job_id=job_id, reason="no such job")
        return "missing"
    t = now_s()
    if (job.state == JobState.RUNNING and job.lease_expires_at is not None
            and job.lease_expires_at < t):
        # the previous worker died: a recorded publish is finished, any other lease goes back
        # to the queue (or dead after too many)
        recover_publishes(store, settings)
        store.requeue_expired(settings.max_lost_leases, now=t)
    lease = store.lease(job_id, owner, settings.lease_s)
    if lease is None:
        job = store.get(job_id)
        assert job is not None
        if job.state in (JobState.QUEUED, JobState.FAILED) and job.next_attempt_at > now_s():
            delay = job.next_attempt_at - now_s()
            schedule(job_id, delay)
            logs.event("tasks.celery.deferred", job_id=job_id, retry_in_s=round(delay, 3))
            return "deferred"
        reason = "running under a live lease" if job.state == JobState.RUNNING else "finished"
        logs.event("tasks.celery.skipped", episode_id=job.episode_id, job_id=job_id,
                   state=job.state.value, reason=reason)
        return "skipped"
    outcome = run_leased_job(store, lease, settings)
    if outcome.state == "failed" and outcome.job is not None:
        schedule(job_id, max(0.0, outcome.job.next_attempt_at - now_s()))
        store.mark_dispatched(job_id)
    elif outcome.state == "released":
        schedule(job_id, 0.0)
        store.mark_dispatched(job_id)
    return outcome.state


class Dispatcher:
    """The web app's side when ``queue`` is ``celery``: sends a task per accepted job, and a
    reaper thread that puts jobs whose worker died (lease expired) back in the store's queue
    and sends them again, so such a job never waits for the broker's visibility timeout (a
    duplicate delivery that follows is a no-op)."""

    def __init__(self, store: JobStore, settings: Settings, metrics: Any = None) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.celery = make_celery(settings)
        self.callbacks = CallbackSender(store, settings, metrics)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reaper, name="assembly-celery-reaper",
                                        daemon=True)

    def start(self) -> None:
        """Starts the reaper thread and the callback sender."""
        self._thread.start()
        self.callbacks.start()

    def stop(self) -> None:
        """Stops the reaper thread and the callback sender."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.callbacks.stop()

    def send(self, job_id: str, countdown: float = 0.0) -> bool:
        """Enqueues the job and records it in the outbox; False (logged) when the broker
        cannot be reached: the job stays owed and the reaper sends it once the broker is back.
        """
        try:
            enqueue(self.celery, job_id, countdown)
        except Exception as e:  # noqa: BLE001 - broker down: the outbox keeps the delivery
            logs.event("tasks.celery.send_error", logging.ERROR, job_id=job_id,
                       error=f"{type(e).__name__}: {e}")
            return False
        self.store.mark_dispatched(job_id)
        logs.event("tasks.celery.sent", job_id=job_id)
        return True

    def _reaper(self) -> None:
        last_purge: Optional[float] = None  # the first poll purges and sweeps
        while not self._stop.wait(self.settings.poll_s):
            try:
                recover_publishes(self.store, self.settings, self.metrics)
                moved = self.store.requeue_expired(self.settings.max_lost_leases)
                if (last_purge is None
                        or time.monotonic() - last_purge >= self.settings.purge_interval_s):
                    last_purge = time.monotonic()
                    purge_expired(self.store, self.settings)
                    sweep_work(self.store, self.settings)
                for tr in moved:
                    if tr.job.state in (JobState.DEAD, JobState.CANCELLED):
                        clean_finished(tr.job, self.settings)
                    if self.metrics is not None:
                        self.metrics.inc("assembly_leases_expired_total")
                    logs.event("tasks.assemble.lease_expired", logging.WARNING,
                               episode_id=tr.job.episode_id, job_id=tr.job.job_id,
                               previous_owner=tr.previous_owner, state=tr.job.state.value,
                               lost_leases=tr.job.lost_leases)
                # the outbox: every job that still owes a delivery (the ones just re-queued,
                # sends that failed, an app that died between its commit and its send)
                for job in self.store.owed_dispatches():
                    if not self.send(job.job_id):
                        break  # broker down: try again next poll
            except Exception as e:  # noqa: BLE001 - store hiccup: next poll
                logs.event("tasks.worker.store_error", logging.WARNING, error=str(e))


# --- the worker side (``celery -A assembly_service.celery_app worker``) -------------------------

_state: Dict[str, Any] = {}
_lock = threading.RLock()


def _worker_settings() -> Settings:
    with _lock:
        if "settings" not in _state:
            _state["settings"] = Settings.from_env()
        return _state["settings"]


def _worker_store() -> JobStore:
    with _lock:
        if _state.get("pid") != os.getpid():  # never share a connection across fork
            _state["pid"] = os.getpid()
            _state["store"] = None
        if _state["store"] is None:
            _state["store"] = open_store(_worker_settings())
        return _state["store"]


def _app_from_env() -> Celery:
    try:
        settings = _worker_settings()
    except ValueError:
        # imported without the service's settings (e.g. by a tool): an unconfigured app
        return Celery("assembly_service")
    return make_celery(settings)


app = _app_from_env()


@worker_init.connect
@worker_process_init.connect
def _configure_logs(**_kwargs: Any) -> None:
    logs.configure(os.environ.get("ASSEMBLY_SERVICE_LOG_LEVEL", "INFO").upper(),
                   os.environ.get("ASSEMBLY_SERVICE_LOG_FORMAT") or "logfmt")


@app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)
def assemble(job_id: str) -> str:
    """Runs the job ``job_id`` once, whatever the number of deliveries."""
    owner = f"celery:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    return run_job_task(_worker_store(), _worker_settings(), job_id, owner,
                        lambda jid, delay: assemble.apply_async((jid,), countdown=delay or None))


