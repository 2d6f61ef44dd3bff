"""The job store interface: what the web app, the workers and the job function need.

Two implementations: :class:`~assembly_service.sqlite_store.SQLiteJobStore` (one machine) and
:class:`~assembly_service.pg_store.PostgresJobStore` (``SELECT ... FOR UPDATE SKIP LOCKED`` for
leasing, a row lock for the fenced writes). :func:`open_store` picks one from the settings.

The rules every implementation keeps:

* ``create_or_get`` is idempotent: one job per idempotency key, ever. Concurrent calls with the
  same key return the same job; exactly one of them reports ``created``.
* A lease grants a job to one owner until ``expires_at`` and carries a **fencing token**: the
  job's ``fence`` counter, incremented by every lease. Every write a worker makes
  (``heartbeat``, ``save_progress``, ``complete``, ``fail``, ``confirm_cancel``, ``release``)
  names its lease and only applies while that lease is current (same fence, same owner,
  state ``running``). A worker that lost its lease (it stalled past the expiry and the job was
  leased again) can therefore never overwrite the newer attempt's progress or result.
* Publication is exactly once and all or nothing. The worker first copies every output next
  to its final name under a temporary name (``.<name>.<job_id>.publish``), outside any
  transaction. ``begin_publish`` then records the intent (the temp/final pairs and the
  result) in the job's row, fenced and only if no cancel was requested: from that commit on
  the job *will* succeed. The worker renames each temp file onto its final name and calls
  ``finish_publish`` (state ``succeeded``). If the worker dies in between, the intent is found
  by ``interrupted_publishes`` once its lease expired, and any reaper finishes the renames and
  the commit (renames are idempotent: a temp file already gone was renamed). A job with a
  recorded intent is never re-queued or run again, so a published file is never replaced by
  a second run; before the intent nothing is under a final name.
"""

from __future__ import annotations

import abc
import enum
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple


class JobState(str, enum.Enum):
    """A job's state. ``failed`` means "the last attempt failed, a retry is scheduled"."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"


#: States in which a job still has work ahead of it.
ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING, JobState.FAILED)
#: States a job never leaves on its own (``retry`` moves dead/cancelled jobs back to queued).
TERMINAL_STATES = (JobState.SUCCEEDED, JobState.CANCELLED, JobState.DEAD)


@dataclass(frozen=True)
class Job:
    """One row of the store, as read at one moment."""

    job_id: str
    episode_id: str
    idem_key: str
    payload: Dict[str, Any]
    state: JobState
    #: Leases granted so far (each start of the job, including restarts after a lost worker).
    attempts: int
    #: Attempts that ended with an error; ``max_attempts`` of them make the job ``dead``.
    failures: int
    #: Leases that expired because the worker died or stalled.
    lost_leases: int
    #: Fencing token of the newest lease (0 before the first lease).
    fence: int
    lease_owner: Optional[str]
    lease_expires_at: Optional[float]
    cancel_requested: bool
    stage: Optional[str]
    progress: float
    error: Optional[Dict[str, Any]]
    result: Optional[Dict[str, Any]]
    output_paths: List[str]
    created_at: float
    updated_at: float
    started_at: Optional[float]
    finished_at: Optional[float]
    next_attempt_at: float
    #: The recorded publish intent (``{"files": [[temp, final], ...], "result": {...}}``)
    #: while its renames are under way; None otherwise.
    publish: Optional[Dict[str, Any]] = None

    @property
    def is_active(self) -> bool:
        """True while the job is queued, running or waiting for a retry."""
        return self.state in ACTIVE_STATES

    def to_dict(self) -> Dict[str, Any]:
        """Every field as plain JSON data (state as its string)."""
        d = asdict(self)
        d["state"] = self.state.value
        return d


@dataclass(frozen=True)
class Lease:
    """A job granted to ``owner`` until ``expires_at``; ``fence`` is its fencing token."""

    job: Job
    owner: str
    fence: int
    expires_at: float

    @property
    def job_id(self) -> str:
        """The leased job's id."""
        return self.job.job_id


@dataclass(frozen=True)
class Beat:
    """What a heartbeat learned: whether the lease is still held, and whether a cancel waits."""

    held: bool
    cancel_requested: bool = False
    expires_at: Optional[float] = None


@dataclass(frozen=True)
class CreateResult:
    """The job for an idempotency key and whether this call created it."""

    job: Job
    created: bool


@dataclass(frozen=True)
class Transition:
    """A state change made by ``requeue_expired`` (for logs and metrics)."""

    job: Job
    previous_owner: Optional[str]
    reason: str = "lease_expired"


class Conflict(Exception):
    """The request collides with another active job (``job``): a different payload for the same
    episode, or an output path another episode's active job writes."""

    def __init__(self, message: str, job: Job, field_name: str) -> None:
        super().__init__(message)
        self.job = job
        self.field_name = field_name


class NotFound(Exception):
    """No such job."""


class InvalidTransition(Exception):
    """The job's state does not allow the operation (e.g. cancel a succeeded job)."""

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


@dataclass
class Counts:
    """Number of jobs per state; ``ready`` = queued or failed jobs whose retry time has come."""

    by_state: Dict[str, int] = field(default_factory=dict)
    ready: int = 0
    oldest_ready_age_s: float = 0.0


class JobStore(abc.ABC):
    """Durable job state shared by the web app, in-process workers and worker processes."""

    # --- producers (the web app) -------------------------------------------------------------

    @abc.abstractmethod
    def create_or_get(self, episode_id: str, idem_key: str, payload: Dict[str, Any],
                      output_paths: Sequence[str]) -> CreateResult:
        """The job for ``idem_key``; creates it (state ``queued``) if there is none.

        Raises :class:`Conflict` when the episode has another active job (a different payload)
        or another episode's active job writes one of ``output_paths``. Nothing is written when
        it raises.
        """

    @abc.abstractmethod
    def get(self, job_id: str) -> Optional[Job]:
        """The job, or None."""

    @abc.abstractmethod
    def latest_for_episode(self, episode_id: str) -> Optional[Job]:
        """The episode's newest job, or None."""

    @abc.abstractmethod
    def active_for_episode(self, episode_id: str) -> Optional[Job]:
        """The episode's active job (queued, running or failed), or None."""

    @abc.abstractmethod
    def purge_finished(self, before: float, limit: int = 500) -> List[str]:
        """Deletes up to ``limit`` finished jobs (succeeded, cancelled, dead) that finished
        before ``before``; returns their ids (the caller removes their work folders)."""

    @abc.abstractmethod
    def request_cancel(self, job_id: str) -> Job:
        """Cancels a queued/failed job at once, or flags a running one for its worker.

        Raises :class:`NotFound`, or :class:`InvalidTransition` for a finished job.
        """

    @abc.abstractmethod
    def retry(self, job_id: str) -> Job:
        """Moves a ``dead`` or ``cancelled`` job back to ``queued`` with its failure count reset
        (an operator's decision after fixing the cause).

        Raises :class:`NotFound`, or :class:`InvalidTransition` for another state, when the
        episode has another active job, or when another active job writes one of its outputs.
        """

    @abc.abstractmethod
    def list_dead(self, limit: int = 100) -> List[Job]:
        """Dead jobs, newest first."""

    @abc.abstractmethod
    def counts(self, now: Optional[float] = None) -> Counts:
        """Jobs per state, for the queue-depth gauge and readiness."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raises when the store cannot be reached."""

    # --- consumers (workers) -----------------------------------------------------------------

    @abc.abstractmethod
    def lease_next(self, owner: str, lease_s: float, now: Optional[float] = None
                   ) -> Optional[Lease]:
        """Leases the oldest job that is ready (queued, or failed with its retry time passed)."""

    @abc.abstractmethod
    def lease(self, job_id: str, owner: str, lease_s: float, now: Optional[float] = None
              ) -> Optional[Lease]:
        """Leases this job if it is ready (for a task queue that delivers job ids)."""

    @abc.abstractmethod
    def heartbeat(self, lease: Lease, lease_s: float, now: Optional[float] = None) -> Beat:
        """Extends the lease; ``held`` is False when it is no longer current."""

    @abc.abstractmethod
    def save_progress(self, lease: Lease, stage: str, progress: float) -> bool:
        """Records stage and progress; False when the lease is no longer current."""

    @abc.abstractmethod
    def begin_publish(self, lease: Lease, result: Dict[str, Any],
                      files: Sequence[Tuple[str, str]]) -> str:
        """Records the intent to publish (``files``: ``(temp, final)`` pairs, every temp file
        already complete beside its final name) and the result, if the lease is current and no
        cancel was requested. Returns ``"recorded"``, ``"lost"`` (the lease is not current:
        nothing written) or ``"cancel_requested"`` (nothing written; the worker confirms the
        cancel)."""

    @abc.abstractmethod
    def finish_publish(self, job_id: str) -> bool:
        """Marks a job whose publish intent was recorded ``succeeded`` with the intent's result
        (the caller renamed every file). False if no intent is pending (already finished)."""

    @abc.abstractmethod
    def interrupted_publishes(self, now: Optional[float] = None) -> List[Job]:
        """Running jobs with a recorded publish intent whose lease expired (their worker died
        between ``begin_publish`` and ``finish_publish``): a reaper finishes them."""

    def complete(self, lease: Lease, result: Dict[str, Any]) -> bool:
        """Marks the job ``succeeded`` with no files to publish (``begin_publish`` then
        ``finish_publish``); False when the lease is not current or a cancel was requested."""
        if self.begin_publish(lease, result, []) != "recorded":
            return False
        return self.finish_publish(lease.job_id)

    @abc.abstractmethod
    def fail(self, lease: Lease, error: Dict[str, Any], max_attempts: int,
             retry_delay_s: float) -> Optional[Job]:
        """Records a failed attempt: ``failed`` with a retry time, or ``dead`` once ``failures``
        reaches ``max_attempts``. None when the lease is no longer current."""

    @abc.abstractmethod
    def confirm_cancel(self, lease: Lease) -> bool:
        """The worker stopped a job whose cancel was requested: ``cancelled``."""

    @abc.abstractmethod
    def release(self, lease: Lease) -> bool:
        """Gives the job back (``queued``, no failure counted), e.g. on shutdown."""

    @abc.abstractmethod
    def requeue_expired(self, max_lost_leases: int, now: Optional[float] = None
                        ) -> List[Transition]:
        """Jobs ``running`` past their lease expiry (their worker died) and with no publish
        intent (see ``interrupted_publishes``): back to ``queued``;
        ``cancelled`` if a cancel was requested; ``dead`` after ``max_lost_leases`` lost leases
        (a job that kills its worker every time)."""

    # --- the outbox (Celery mode) -------------------------------------------------------------

    @abc.abstractmethod
    def mark_dispatched(self, job_id: str) -> None:
        """Records that the job's task was handed to the broker."""

    @abc.abstractmethod
    def owed_dispatches(self, now: Optional[float] = None, limit: int = 100) -> List[Job]:
        """Jobs ready to run (queued, or failed with the retry due) whose task was never handed
        to the broker since they entered that state: a new job whose send failed or whose app
        died between the commit and the send, a re-queued or retried one. Every transition
        into ``queued`` or ``failed`` owes a delivery; ``mark_dispatched`` pays it."""

    # --- completion callbacks ----------------------------------------------------------------

    @abc.abstractmethod
    def owed_callbacks(self, now: Optional[float] = None, limit: int = 100
                       ) -> List[Tuple[Job, str, int]]:
        """Terminal jobs whose callback is due and not yet delivered (nor given up):
        ``(job, url, deliveries tried so far)``."""

    @abc.abstractmethod
    def claim_callback(self, job_id: str, hold_s: float) -> bool:
        """Takes the job's due callback for ``hold_s`` (no other sender sends it meanwhile);
        False when another sender has it or it is no longer owed."""

    @abc.abstractmethod
    def record_callback(self, job_id: str, delivered: bool, retry_at: Optional[float],
                        error: Optional[str]) -> None:
        """Records a delivery: done when ``delivered`` (or given up: ``retry_at`` None), else
        due again at ``retry_at``."""

    def close(self) -> None:  # pragma: no cover - default does nothing
        """Releases connections."""


def job_from_row(row: Any) -> Job:
    """A :class:`Job` from a ``jobs`` row read by column name (a ``sqlite3.Row`` or a
    psycopg dict row); JSON columns are decoded."""
    return Job(
        job_id=row["job_id"],
        episode_id=row["episode_id"],
        idem_key=row["idem_key"],
        payload=json.loads(row["payload"]),
        state=JobState(row["state"]),
        attempts=row["attempts"],
        failures=row["failures"],
        lost_leases=row["lost_leases"],
        fence=row["fence"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        cancel_requested=bool(row["cancel_requested"]),
        stage=row["stage"],
        progress=row["progress"],
        error=json.loads(row["error"]) if row["error"] else None,
        result=json.loads(row["result"]) if row["result"] else None,
        output_paths=json.loads(row["output_paths"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        next_attempt_at=row["next_attempt_at"],
        publish=json.loads(row["publish"]) if row["publish"] else None,
    )


def failed_attempt(failures: int, max_attempts: int, retry_delay_s: float, t: float
                   ) -> Tuple[str, int, float, Optional[float]]:
    """After an attempt failed at ``t``, with ``failures`` failed attempts before it:
    ``(state, failures, next_attempt_at, finished_at)``; ``dead`` once ``max_attempts``
    attempts failed, else ``failed`` with the retry due ``retry_delay_s`` later."""
    failures += 1
    dead = failures >= max_attempts
    return ("dead" if dead else "failed", failures, t + (0.0 if dead else retry_delay_s),
            t if dead else None)


def lost_lease(job: Job, max_lost_leases: int, t: float
               ) -> Tuple[str, int, Optional[float], Optional[Dict[str, Any]]]:
    """For a running ``job`` whose lease expired (its worker died or stalled) at ``t``:
    ``(state, lost_leases, finished_at, error)``. A cancel request ends it ``cancelled``;
    the ``max_lost_leases``-th loss sends it ``dead``; otherwise it is ``queued`` again."""
    lost = job.lost_leases + 1
    if job.cancel_requested:
        return "cancelled", lost, t, job.error
    if lost >= max_lost_leases:
        return "dead", lost, t, {"type": "WorkerLost", "message": f"the job's worker was lost "
                                 f"{lost} times (killed or stalled past its lease)"}
    return "queued", lost, None, job.error

def open_store(settings: Any) -> JobStore:
    """The store ``settings.database_url`` names (default: the SQLite file in ``data_dir``)."""
    url = settings.database_url
    if url and url.startswith(("postgresql://", "postgres://")):
        from .pg_store import PostgresJobStore

        return PostgresJobStore(url)
    from .sqlite_store import SQLiteJobStore

    if url and url.startswith("sqlite:///"):
        return SQLiteJobStore(url[len("sqlite:///"):])
    return SQLiteJobStore(settings.db_path)


def now_s() -> float:
    """Wall-clock seconds (leases are compared across processes)."""
    return time.time()
