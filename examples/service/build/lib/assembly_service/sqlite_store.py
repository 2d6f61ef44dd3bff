"""The SQLite job store: one file, WAL mode, safe across threads and processes.

Every write is one ``BEGIN IMMEDIATE`` transaction (SQLite's single writer lock), so a lease
check and the write it guards happen atomically across every process using the file.
``synchronous=FULL``: a job acknowledged with 202 survives a power cut, not only a killed
process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .store import (
    ACTIVE_STATES,
    Beat,
    Conflict,
    Counts,
    CreateResult,
    InvalidTransition,
    Job,
    JobState,
    JobStore,
    Lease,
    NotFound,
    Transition,
    failed_attempt,
    job_from_row,
    lost_lease,
    now_s,
)

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id           TEXT PRIMARY KEY,
    episode_id       TEXT NOT NULL,
    idem_key         TEXT NOT NULL UNIQUE,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    failures         INTEGER NOT NULL DEFAULT 0,
    lost_leases      INTEGER NOT NULL DEFAULT 0,
    fence            INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    stage            TEXT,
    progress         REAL NOT NULL DEFAULT 0,
    error            TEXT,
    result           TEXT,
    output_paths     TEXT NOT NULL DEFAULT '[]',
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    next_attempt_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, next_attempt_at, created_at);
CREATE INDEX IF NOT EXISTS jobs_episode ON jobs (episode_id, created_at);
CREATE TABLE IF NOT EXISTS job_outputs (
    path   TEXT NOT NULL,
    job_id TEXT NOT NULL REFERENCES jobs (job_id),
    PRIMARY KEY (path, job_id)
);
"""

# Schema version 1 -> 2.
_MIGRATIONS = [
    # 2: the publish intent (exactly-once publication)...
    "ALTER TABLE jobs ADD COLUMN publish TEXT",
    # and the outbox: NULL while a queued job's task still has to be sent (Celery mode)
    "ALTER TABLE jobs ADD COLUMN dispatched_at REAL",
    # and the completion callbacks still owed
    """CREATE TABLE IF NOT EXISTS callbacks (
        job_id   TEXT PRIMARY KEY REFERENCES jobs (job_id),
        url      TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at  REAL NOT NULL DEFAULT 0,
        done_at  REAL,
        error    TEXT
    )""",
]

_ACTIVE = tuple(s.value for s in ACTIVE_STATES)
_READY_SQL = "state IN ('queued', 'failed') AND next_attempt_at <= ?"
# A worker's write applies only while its lease is the current one.
_FENCED = "job_id = ? AND fence = ? AND lease_owner = ? AND state = 'running'"



class SQLiteJobStore(JobStore):
    """:class:`JobStore` in one SQLite file (created on first use).

    One connection per thread; ``busy_timeout_ms`` bounds how long a writer waits for the lock.
    """

    def __init__(self, path: "str | os.PathLike[str]", busy_timeout_ms: int = 10_000) -> None:
        self.path = os.fspath(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: List[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        conn = self._conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                for statement in _MIGRATIONS:  # 1 -> 2 (the only step so far)
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        elif version != SCHEMA_VERSION:
            raise RuntimeError(f"{self.path}: job store schema {version}, expected "
                               f"{SCHEMA_VERSION}")

    # --- connections -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"{self.path}: cannot switch the job store to WAL ({mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def _get(self, conn: sqlite3.Connection, job_id: str) -> Optional[Job]:
        row = conn.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return job_from_row(row) if row else None

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    # --- producers ---------------------------------------------------------------------------

    def create_or_get(self, episode_id: str, idem_key: str, payload: Dict[str, Any],
                      output_paths: Sequence[str]) -> CreateResult:
        with self._write() as db:
            row = db.execute("SELECT * FROM jobs WHERE idem_key = ?", (idem_key,)).fetchone()
            if row:
                return CreateResult(job_from_row(row), created=False)
            marks = ",".join("?" * len(_ACTIVE))
            row = db.execute(
                f"SELECT * FROM jobs WHERE episode_id = ? AND state IN ({marks}) "
                "ORDER BY created_at DESC LIMIT 1", (episode_id, *_ACTIVE)).fetchone()
            if row:
                raise Conflict(f"episode {episode_id!r} has an active job with a different "
                               "payload", job_from_row(row), "episode_id")
            for path in output_paths:
                row = db.execute(
                    f"SELECT j.* FROM job_outputs o JOIN jobs j ON j.job_id = o.job_id "
                    f"WHERE o.path = ? AND j.state IN ({marks}) LIMIT 1",
                    (path, *_ACTIVE)).fetchone()
                if row:
                    raise Conflict(f"an active job of episode {row['episode_id']!r} writes "
                                   f"{path!r}", job_from_row(row), "output_path")
            t = now_s()
            job_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO jobs (job_id, episode_id, idem_key, payload, state, output_paths, "
                "created_at, updated_at, next_attempt_at) "
                "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (job_id, episode_id, idem_key, json.dumps(payload, sort_keys=True),
                 json.dumps(list(output_paths)), t, t, t))
            db.executemany("INSERT INTO job_outputs (path, job_id) VALUES (?, ?)",
                           [(p, job_id) for p in dict.fromkeys(output_paths)])
            if payload.get("callback_url"):
                db.execute("INSERT INTO callbacks (job_id, url) VALUES (?, ?)",
                           (job_id, payload["callback_url"]))
            job = self._get(db, job_id)
            assert job is not None
            return CreateResult(job, created=True)

    def get(self, job_id: str) -> Optional[Job]:
        return self._get(self._conn(), job_id)

    def latest_for_episode(self, episode_id: str) -> Optional[Job]:
        row = self._conn().execute(
            "SELECT * FROM jobs WHERE episode_id = ? ORDER BY created_at DESC, rowid DESC "
            "LIMIT 1", (episode_id,)).fetchone()
        return job_from_row(row) if row else None

    def active_for_episode(self, episode_id: str) -> Optional[Job]:
        marks = ",".join("?" * len(_ACTIVE))
        row = self._conn().execute(
            f"SELECT * FROM jobs WHERE episode_id = ? AND state IN ({marks}) "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1", (episode_id, *_ACTIVE)).fetchone()
        return job_from_row(row) if row else None

    def purge_finished(self, before: float, limit: int = 500) -> List[str]:
        with self._write() as db:
            ids = [r["job_id"] for r in db.execute(
                "SELECT job_id FROM jobs WHERE state IN ('succeeded', 'cancelled', 'dead') "
                "AND finished_at < ? LIMIT ?", (before, int(limit))).fetchall()]
            for job_id in ids:
                db.execute("DELETE FROM job_outputs WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM callbacks WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            return ids

    def request_cancel(self, job_id: str) -> Job:
        with self._write() as db:
            job = self._get(db, job_id)
            if job is None:
                raise NotFound(job_id)
            t = now_s()
            if job.state in (JobState.QUEUED, JobState.FAILED):
                db.execute("UPDATE jobs SET state = 'cancelled', cancel_requested = 1, "
                           "finished_at = ?, updated_at = ? WHERE job_id = ?", (t, t, job_id))
            elif job.state == JobState.RUNNING:
                db.execute("UPDATE jobs SET cancel_requested = 1, updated_at = ? "
                           "WHERE job_id = ?", (t, job_id))
            elif job.state != JobState.CANCELLED:
                raise InvalidTransition(f"job is {job.state.value}", job)
            out = self._get(db, job_id)
            assert out is not None
            return out

    def retry(self, job_id: str) -> Job:
        with self._write() as db:
            job = self._get(db, job_id)
            if job is None:
                raise NotFound(job_id)
            if job.state not in (JobState.DEAD, JobState.CANCELLED):
                raise InvalidTransition(f"only dead or cancelled jobs are retried; job is "
                                        f"{job.state.value}", job)
            marks = ",".join("?" * len(_ACTIVE))
            row = db.execute(
                f"SELECT * FROM jobs WHERE episode_id = ? AND state IN ({marks}) LIMIT 1",
                (job.episode_id, *_ACTIVE)).fetchone()
            if row:
                raise InvalidTransition("the episode has another active job", job_from_row(row))
            for path in job.output_paths:
                row = db.execute(
                    f"SELECT j.* FROM job_outputs o JOIN jobs j ON j.job_id = o.job_id "
                    f"WHERE o.path = ? AND j.state IN ({marks}) LIMIT 1",
                    (path, *_ACTIVE)).fetchone()
                if row:
                    raise InvalidTransition(f"an active job of episode {row['episode_id']!r} "
                                            f"writes {path!r}", job_from_row(row))
            t = now_s()
            db.execute("UPDATE jobs SET state = 'queued', failures = 0, lost_leases = 0, "
                       "dispatched_at = NULL, "
                       "cancel_requested = 0, finished_at = NULL, next_attempt_at = ?, "
                       "updated_at = ? WHERE job_id = ?", (t, t, job_id))
            db.execute("UPDATE callbacks SET attempts = 0, next_at = 0, done_at = NULL, "
                       "error = NULL WHERE job_id = ?", (job_id,))
            out = self._get(db, job_id)
            assert out is not None
            return out

    def list_dead(self, limit: int = 100) -> List[Job]:
        rows = self._conn().execute(
            "SELECT * FROM jobs WHERE state = 'dead' ORDER BY finished_at DESC LIMIT ?",
            (int(limit),)).fetchall()
        return [job_from_row(r) for r in rows]

    def counts(self, now: Optional[float] = None) -> Counts:
        t = now_s() if now is None else now
        conn = self._conn()
        by_state = {s.value: 0 for s in JobState}
        for row in conn.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state"):
            by_state[row["state"]] = row["n"]
        row = conn.execute(f"SELECT COUNT(*) AS n, MIN(next_attempt_at) AS oldest FROM jobs "
                           f"WHERE {_READY_SQL}", (t,)).fetchone()
        oldest = row["oldest"]
        return Counts(by_state, row["n"], max(0.0, t - oldest) if oldest is not None else 0.0)

    def ping(self) -> None:
        self._conn().execute("SELECT 1").fetchone()

    # --- consumers ---------------------------------------------------------------------------

    def _lease_row(self, db: sqlite3.Connection, row: sqlite3.Row, owner: str, lease_s: float,
                   t: float) -> Lease:
        job_id = row["job_id"]
        expires = t + lease_s
        db.execute("UPDATE jobs SET state = 'running', attempts = attempts + 1, "
                   "fence = fence + 1, lease_owner = ?, lease_expires_at = ?, "
                   "started_at = COALESCE(started_at, ?), updated_at = ? WHERE job_id = ?",
                   (owner, expires, t, t, job_id))
        job = self._get(db, job_id)
        assert job is not None
        return Lease(job, owner, job.fence, expires)

    def lease_next(self, owner: str, lease_s: float, now: Optional[float] = None
                   ) -> Optional[Lease]:
        t = now_s() if now is None else now
        conn = self._conn()
        # Cheap read first: most polls find nothing and should not take the write lock.
        ready = conn.execute(f"SELECT 1 FROM jobs WHERE {_READY_SQL} LIMIT 1", (t,)).fetchone()
        if ready is None:
            return None
        with self._write() as db:
            row = db.execute(f"SELECT * FROM jobs WHERE {_READY_SQL} "
                             "ORDER BY next_attempt_at, created_at LIMIT 1", (t,)).fetchone()
            if row is None:
                return None
            return self._lease_row(db, row, owner, lease_s, t)

    def lease(self, job_id: str, owner: str, lease_s: float, now: Optional[float] = None
              ) -> Optional[Lease]:
        t = now_s() if now is None else now
        with self._write() as db:
            row = db.execute(f"SELECT * FROM jobs WHERE job_id = ? AND {_READY_SQL}",
                             (job_id, t)).fetchone()
            if row is None:
                return None
            return self._lease_row(db, row, owner, lease_s, t)

    def heartbeat(self, lease: Lease, lease_s: float, now: Optional[float] = None) -> Beat:
        t = now_s() if now is None else now
        with self._write() as db:
            expires = t + lease_s
            cur = db.execute(f"UPDATE jobs SET lease_expires_at = ?, updated_at = ? "
                             f"WHERE {_FENCED}", (expires, t, lease.job_id, lease.fence,
                                                  lease.owner))
            if cur.rowcount != 1:
                return Beat(held=False)
            row = db.execute("SELECT cancel_requested FROM jobs WHERE job_id = ?",
                             (lease.job_id,)).fetchone()
            return Beat(True, bool(row["cancel_requested"]), expires)

    def save_progress(self, lease: Lease, stage: str, progress: float) -> bool:
        with self._write() as db:
            cur = db.execute(f"UPDATE jobs SET stage = ?, progress = ?, updated_at = ? "
                             f"WHERE {_FENCED}", (stage, float(progress), now_s(),
                                                  lease.job_id, lease.fence, lease.owner))
            return cur.rowcount == 1

    def begin_publish(self, lease: Lease, result: Dict[str, Any],
                      files: Sequence[Tuple[str, str]]) -> str:
        with self._write() as db:
            row = db.execute(f"SELECT cancel_requested FROM jobs WHERE {_FENCED}",
                             (lease.job_id, lease.fence, lease.owner)).fetchone()
            if row is None:
                return "lost"
            if row["cancel_requested"]:
                return "cancel_requested"
            intent = {"files": [list(f) for f in files], "result": result}
            db.execute(f"UPDATE jobs SET publish = ?, updated_at = ? WHERE {_FENCED}",
                       (json.dumps(intent, sort_keys=True), now_s(), lease.job_id,
                        lease.fence, lease.owner))
            return "recorded"

    def finish_publish(self, job_id: str) -> bool:
        with self._write() as db:
            row = db.execute("SELECT publish FROM jobs WHERE job_id = ? AND state = 'running' "
                             "AND publish IS NOT NULL", (job_id,)).fetchone()
            if row is None:
                return False
            result = json.loads(row["publish"])["result"]
            t = now_s()
            db.execute("UPDATE jobs SET state = 'succeeded', result = ?, error = NULL, "
                       "publish = NULL, progress = 1.0, lease_owner = NULL, "
                       "lease_expires_at = NULL, finished_at = ?, updated_at = ? "
                       "WHERE job_id = ?", (json.dumps(result, sort_keys=True), t, t, job_id))
            return True

    def interrupted_publishes(self, now: Optional[float] = None) -> List[Job]:
        t = now_s() if now is None else now
        rows = self._conn().execute(
            "SELECT * FROM jobs WHERE state = 'running' AND publish IS NOT NULL "
            "AND lease_expires_at < ?", (t,)).fetchall()
        return [job_from_row(r) for r in rows]

    def fail(self, lease: Lease, error: Dict[str, Any], max_attempts: int,
             retry_delay_s: float) -> Optional[Job]:
        with self._write() as db:
            job = self._get(db, lease.job_id)
            if (job is None or job.state != JobState.RUNNING or job.fence != lease.fence
                    or job.lease_owner != lease.owner):
                return None
            t = now_s()
            state, failures, next_at, finished = failed_attempt(job.failures, max_attempts,
                                                                retry_delay_s, t)
            db.execute("UPDATE jobs SET state = ?, failures = ?, error = ?, lease_owner = NULL, "
                       "dispatched_at = NULL, "
                       "lease_expires_at = NULL, next_attempt_at = ?, finished_at = ?, "
                       "updated_at = ? WHERE job_id = ?",
                       (state, failures, json.dumps(error, sort_keys=True), next_at, finished, t,
                        lease.job_id))
            return self._get(db, lease.job_id)

    def confirm_cancel(self, lease: Lease) -> bool:
        with self._write() as db:
            t = now_s()
            cur = db.execute(f"UPDATE jobs SET state = 'cancelled', lease_owner = NULL, "
                             f"lease_expires_at = NULL, finished_at = ?, updated_at = ? "
                             f"WHERE {_FENCED}", (t, t, lease.job_id, lease.fence, lease.owner))
            return cur.rowcount == 1

    def release(self, lease: Lease) -> bool:
        with self._write() as db:
            t = now_s()
            cur = db.execute(f"UPDATE jobs SET state = 'queued', dispatched_at = NULL, "
                             f"lease_owner = NULL, "
                             f"lease_expires_at = NULL, next_attempt_at = ?, updated_at = ? "
                             f"WHERE {_FENCED}", (t, t, lease.job_id, lease.fence, lease.owner))
            return cur.rowcount == 1

    def mark_dispatched(self, job_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE jobs SET dispatched_at = ? WHERE job_id = ?", (now_s(), job_id))

    def owed_dispatches(self, now: Optional[float] = None, limit: int = 100) -> List[Job]:
        t = now_s() if now is None else now
        rows = self._conn().execute(
            "SELECT * FROM jobs WHERE state IN ('queued', 'failed') AND dispatched_at IS NULL "
            "AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?", (t, int(limit))).fetchall()
        return [job_from_row(r) for r in rows]

    def owed_callbacks(self, now: Optional[float] = None, limit: int = 100
                       ) -> List[Tuple[Job, str, int]]:
        t = now_s() if now is None else now
        rows = self._conn().execute(
            "SELECT j.*, c.url AS cb_url, c.attempts AS cb_attempts FROM callbacks c "
            "JOIN jobs j ON j.job_id = c.job_id WHERE c.done_at IS NULL AND c.next_at <= ? "
            "AND j.state IN ('succeeded', 'cancelled', 'dead') ORDER BY c.next_at LIMIT ?",
            (t, int(limit))).fetchall()
        return [(job_from_row(r), r["cb_url"], r["cb_attempts"]) for r in rows]

    def claim_callback(self, job_id: str, hold_s: float) -> bool:
        with self._write() as db:
            t = now_s()
            cur = db.execute("UPDATE callbacks SET next_at = ? WHERE job_id = ? "
                             "AND done_at IS NULL AND next_at <= ?", (t + hold_s, job_id, t))
            return cur.rowcount == 1

    def record_callback(self, job_id: str, delivered: bool, retry_at: Optional[float],
                        error: Optional[str]) -> None:
        with self._write() as db:
            if delivered or retry_at is None:
                db.execute("UPDATE callbacks SET attempts = attempts + 1, done_at = ?, "
                           "error = ? WHERE job_id = ?", (now_s(), error, job_id))
            else:
                db.execute("UPDATE callbacks SET attempts = attempts + 1, next_at = ?, "
                           "error = ? WHERE job_id = ?", (retry_at, error, job_id))

    def requeue_expired(self, max_lost_leases: int, now: Optional[float] = None
                        ) -> List[Transition]:
        t = now_s() if now is None else now
        conn = self._conn()
        if conn.execute("SELECT 1 FROM jobs WHERE state = 'running' AND lease_expires_at < ? "
                        "AND publish IS NULL LIMIT 1", (t,)).fetchone() is None:
            return []
        out: List[Transition] = []
        with self._write() as db:
            rows = db.execute("SELECT * FROM jobs WHERE state = 'running' "
                              "AND lease_expires_at < ? AND publish IS NULL", (t,)).fetchall()
            for row in rows:
                job = job_from_row(row)
                state, lost, finished, error = lost_lease(job, max_lost_leases, t)
                db.execute("UPDATE jobs SET state = ?, lost_leases = ?, lease_owner = NULL, "
                           "dispatched_at = NULL, "
                           "lease_expires_at = NULL, next_attempt_at = ?, finished_at = ?, "
                           "error = ?, updated_at = ? WHERE job_id = ?",
                           (state, lost, t, finished, json.dumps(error) if error else None, t,
                            job.job_id))
                new = self._get(db, job.job_id)
                assert new is not None
                out.append(Transition(new, job.lease_owner))
        return out
