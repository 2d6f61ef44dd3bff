"""The PostgreSQL job store: the same :class:`~assembly_service.store.JobStore` for many worker
processes on many machines.

Leasing takes the row with ``SELECT ... FOR UPDATE SKIP LOCKED``: concurrent workers skip a row
another transaction is leasing instead of waiting for it, and never lease the same job. Every
fenced write (heartbeat, progress, complete, fail, cancel, release) locks the job's row
(``FOR UPDATE``) and checks the lease (same fence, same owner, state ``running``) in the same
transaction, so a worker whose lease went to someone else changes nothing, and ``complete``
runs ``publish`` while it holds the row lock. ``create_or_get`` and ``retry`` check the
episode's active jobs and the output paths under one transaction-scoped advisory lock, the
equivalent of SQLite's single writer for those checks.

Times come from the database server's clock (``clock_timestamp()``), so lease expiry does not
depend on the workers' clocks agreeing. Every connection has a ``statement_timeout`` and TCP
keepalives.
"""

from __future__ import annotations

import json
import threading
import uuid
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import psycopg
from psycopg.rows import DictRow, dict_row

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
)

SCHEMA_VERSION = 2
# pg_advisory_xact_lock keys (arbitrary, fixed): schema setup, and the create/retry checks.
_LOCK_SCHEMA = 0x6A6F6273_0001
_LOCK_CREATE = 0x6A6F6273_0002

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS jobs (
        job_id           TEXT PRIMARY KEY,
        episode_id       TEXT NOT NULL,
        idem_key         TEXT NOT NULL UNIQUE,
        payload          TEXT NOT NULL,
        state            TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        failures         INTEGER NOT NULL DEFAULT 0,
        lost_leases      INTEGER NOT NULL DEFAULT 0,
        fence            BIGINT NOT NULL DEFAULT 0,
        lease_owner      TEXT,
        lease_expires_at DOUBLE PRECISION,
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
        stage            TEXT,
        progress         DOUBLE PRECISION NOT NULL DEFAULT 0,
        error            TEXT,
        result           TEXT,
        output_paths     TEXT NOT NULL DEFAULT '[]',
        created_at       DOUBLE PRECISION NOT NULL,
        updated_at       DOUBLE PRECISION NOT NULL,
        started_at       DOUBLE PRECISION,
        finished_at      DOUBLE PRECISION,
        next_attempt_at  DOUBLE PRECISION NOT NULL,
        seq              BIGSERIAL
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, next_attempt_at, created_at)",
    "CREATE INDEX IF NOT EXISTS jobs_episode ON jobs (episode_id, created_at)",
    """CREATE TABLE IF NOT EXISTS job_outputs (
        path   TEXT NOT NULL,
        job_id TEXT NOT NULL REFERENCES jobs (job_id),
        PRIMARY KEY (path, job_id)
    )""",
    "CREATE TABLE IF NOT EXISTS job_store_meta (version INTEGER NOT NULL)",
]

# Schema version 1 -> 2 (idempotent; run with _SCHEMA when the stored version is older).
_MIGRATIONS = [
    # the publish intent (exactly-once publication)
    "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS publish TEXT",
    # the outbox: NULL while a queued job's task still has to be sent (Celery mode)
    "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS dispatched_at DOUBLE PRECISION",
    # the completion callbacks still owed
    """CREATE TABLE IF NOT EXISTS callbacks (
        job_id   TEXT PRIMARY KEY REFERENCES jobs (job_id),
        url      TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at  DOUBLE PRECISION NOT NULL DEFAULT 0,
        done_at  DOUBLE PRECISION,
        error    TEXT
    )""",
]

_ACTIVE = [s.value for s in ACTIVE_STATES]
_READY_SQL = "state IN ('queued', 'failed') AND next_attempt_at <= %s"
_FENCED = "job_id = %s AND fence = %s AND lease_owner = %s AND state = 'running'"



class PostgresJobStore(JobStore):
    """:class:`JobStore` in a PostgreSQL database (tables created on first use).

    ``url`` is a libpq connection string (``postgresql://user@host:port/db``). One connection
    per thread; ``lock_timeout_ms`` bounds how long a write waits for a row lock.
    """

    def __init__(self, url: str, lock_timeout_ms: int = 10_000,
                 connect_timeout_s: int = 10, statement_timeout_ms: int = 30_000) -> None:
        self.url = url
        self.lock_timeout_ms = lock_timeout_ms
        self.connect_timeout_s = connect_timeout_s
        self.statement_timeout_ms = statement_timeout_ms
        self._local = threading.local()
        self._all: List["psycopg.Connection[DictRow]"] = []
        self._all_lock = threading.Lock()
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_SCHEMA,))
            # DDL only when the schema is missing or old: CREATE INDEX and ALTER TABLE lock
            # the table even when there is nothing to do, and would wait for (or deadlock
            # with) the live writers of the processes already running.
            made = db.execute("SELECT to_regclass('job_store_meta') IS NOT NULL AS made"
                              ).fetchone()
            assert made is not None
            row = (db.execute("SELECT version FROM job_store_meta").fetchone()
                   if made["made"] else None)
            if row is None or row["version"] < SCHEMA_VERSION:
                for statement in _SCHEMA + _MIGRATIONS:
                    db.execute(statement)
                row = db.execute("SELECT version FROM job_store_meta").fetchone()
                if row is None:
                    db.execute("INSERT INTO job_store_meta (version) VALUES (%s)",
                               (SCHEMA_VERSION,))
                else:
                    db.execute("UPDATE job_store_meta SET version = %s", (SCHEMA_VERSION,))
            elif row["version"] != SCHEMA_VERSION:
                raise RuntimeError(f"job store schema {row['version']}, expected "
                                   f"{SCHEMA_VERSION}")

    # --- connections -------------------------------------------------------------------------

    def _conn(self) -> psycopg.Connection[DictRow]:
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.closed:
            conn = None
        if conn is None:
            # statement_timeout: no call hangs on a stuck server; TCP keepalives: a dead peer
            # (a vanished machine, a dropped NAT entry) is noticed within about a minute.
            conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row,
                                   connect_timeout=self.connect_timeout_s,
                                   options=f"-c statement_timeout={int(self.statement_timeout_ms)}",
                                   keepalives=1, keepalives_idle=30, keepalives_interval=10,
                                   keepalives_count=3)
            conn.execute(f"SET lock_timeout = {int(self.lock_timeout_ms)}")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[DictRow]]:
        conn = self._conn()
        try:
            with conn.transaction():
                yield conn
        except psycopg.OperationalError:
            # a broken connection is not reused: the next call of this thread reconnects
            if conn.closed or conn.broken:
                self._local.conn = None
            raise

    def _clock(self) -> float:
        """The database server's clock (seconds since the epoch): every lease time is
        written and compared on this one clock, so the machines' clocks may differ."""
        row = self._conn().execute(
            "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS t").fetchone()
        assert row is not None
        return float(row["t"])

    def _read(self, sql: str, params: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        with self._tx() as db:
            return db.execute(sql, params).fetchall()

    @staticmethod
    def _get(db: psycopg.Connection[DictRow], job_id: str, lock: bool = False) -> Optional[Job]:
        row = db.execute("SELECT * FROM jobs WHERE job_id = %s" + (" FOR UPDATE" if lock else ""),
                         (job_id,)).fetchone()
        return job_from_row(row) if row else None

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except psycopg.Error:
                pass
        self._local = threading.local()

    # --- producers ---------------------------------------------------------------------------

    def create_or_get(self, episode_id: str, idem_key: str, payload: Dict[str, Any],
                      output_paths: Sequence[str]) -> CreateResult:
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_CREATE,))
            row = db.execute("SELECT * FROM jobs WHERE idem_key = %s", (idem_key,)).fetchone()
            if row:
                return CreateResult(job_from_row(row), created=False)
            row = db.execute("SELECT * FROM jobs WHERE episode_id = %s AND state = ANY(%s) "
                             "ORDER BY created_at DESC LIMIT 1", (episode_id, _ACTIVE)).fetchone()
            if row:
                raise Conflict(f"episode {episode_id!r} has an active job with a different "
                               "payload", job_from_row(row), "episode_id")
            for path in output_paths:
                row = db.execute(
                    "SELECT j.* FROM job_outputs o JOIN jobs j ON j.job_id = o.job_id "
                    "WHERE o.path = %s AND j.state = ANY(%s) LIMIT 1",
                    (path, _ACTIVE)).fetchone()
                if row:
                    raise Conflict(f"an active job of episode {row['episode_id']!r} writes "
                                   f"{path!r}", job_from_row(row), "output_path")
            t = self._clock()
            job_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO jobs (job_id, episode_id, idem_key, payload, state, output_paths, "
                "created_at, updated_at, next_attempt_at) "
                "VALUES (%s, %s, %s, %s, 'queued', %s, %s, %s, %s)",
                (job_id, episode_id, idem_key, json.dumps(payload, sort_keys=True),
                 json.dumps(list(output_paths)), t, t, t))
            for p in dict.fromkeys(output_paths):
                db.execute("INSERT INTO job_outputs (path, job_id) VALUES (%s, %s)", (p, job_id))
            if payload.get("callback_url"):
                db.execute("INSERT INTO callbacks (job_id, url) VALUES (%s, %s)",
                           (job_id, payload["callback_url"]))
            job = self._get(db, job_id)
            assert job is not None
            return CreateResult(job, created=True)

    def get(self, job_id: str) -> Optional[Job]:
        with self._tx() as db:
            return self._get(db, job_id)

    def latest_for_episode(self, episode_id: str) -> Optional[Job]:
        rows = self._read("SELECT * FROM jobs WHERE episode_id = %s "
                          "ORDER BY created_at DESC, seq DESC LIMIT 1", (episode_id,))
        return job_from_row(rows[0]) if rows else None

    def active_for_episode(self, episode_id: str) -> Optional[Job]:
        rows = self._read("SELECT * FROM jobs WHERE episode_id = %s AND state = ANY(%s) "
                          "ORDER BY created_at DESC, seq DESC LIMIT 1", (episode_id, _ACTIVE))
        return job_from_row(rows[0]) if rows else None

    def purge_finished(self, before: float, limit: int = 500) -> List[str]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT job_id FROM jobs WHERE state IN ('succeeded', 'cancelled', 'dead') "
                "AND finished_at < %s LIMIT %s FOR UPDATE SKIP LOCKED",
                (before, int(limit))).fetchall()
            ids = [r["job_id"] for r in rows]
            if ids:
                db.execute("DELETE FROM job_outputs WHERE job_id = ANY(%s)", (ids,))
                db.execute("DELETE FROM callbacks WHERE job_id = ANY(%s)", (ids,))
                db.execute("DELETE FROM jobs WHERE job_id = ANY(%s)", (ids,))
            return ids

    def request_cancel(self, job_id: str) -> Job:
        with self._tx() as db:
            job = self._get(db, job_id, lock=True)
            if job is None:
                raise NotFound(job_id)
            t = self._clock()
            if job.state in (JobState.QUEUED, JobState.FAILED):
                db.execute("UPDATE jobs SET state = 'cancelled', cancel_requested = TRUE, "
                           "finished_at = %s, updated_at = %s WHERE job_id = %s",
                           (t, t, job_id))
            elif job.state == JobState.RUNNING:
                db.execute("UPDATE jobs SET cancel_requested = TRUE, updated_at = %s "
                           "WHERE job_id = %s", (t, job_id))
            elif job.state != JobState.CANCELLED:
                raise InvalidTransition(f"job is {job.state.value}", job)
            out = self._get(db, job_id)
            assert out is not None
            return out

    def retry(self, job_id: str) -> Job:
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_CREATE,))
            job = self._get(db, job_id, lock=True)
            if job is None:
                raise NotFound(job_id)
            if job.state not in (JobState.DEAD, JobState.CANCELLED):
                raise InvalidTransition(f"only dead or cancelled jobs are retried; job is "
                                        f"{job.state.value}", job)
            row = db.execute("SELECT * FROM jobs WHERE episode_id = %s AND state = ANY(%s) "
                             "LIMIT 1", (job.episode_id, _ACTIVE)).fetchone()
            if row:
                raise InvalidTransition("the episode has another active job", job_from_row(row))
            for path in job.output_paths:
                row = db.execute(
                    "SELECT j.* FROM job_outputs o JOIN jobs j ON j.job_id = o.job_id "
                    "WHERE o.path = %s AND j.state = ANY(%s) LIMIT 1",
                    (path, _ACTIVE)).fetchone()
                if row:
                    raise InvalidTransition(f"an active job of episode {row['episode_id']!r} "
                                            f"writes {path!r}", job_from_row(row))
            t = self._clock()
            db.execute("UPDATE jobs SET state = 'queued', failures = 0, lost_leases = 0, "
                       "dispatched_at = NULL, "
                       "cancel_requested = FALSE, finished_at = NULL, next_attempt_at = %s, "
                       "updated_at = %s WHERE job_id = %s", (t, t, job_id))
            db.execute("UPDATE callbacks SET attempts = 0, next_at = 0, done_at = NULL, "
                       "error = NULL WHERE job_id = %s", (job_id,))
            out = self._get(db, job_id)
            assert out is not None
            return out

    def list_dead(self, limit: int = 100) -> List[Job]:
        rows = self._read("SELECT * FROM jobs WHERE state = 'dead' "
                          "ORDER BY finished_at DESC LIMIT %s", (int(limit),))
        return [job_from_row(r) for r in rows]

    def counts(self, now: Optional[float] = None) -> Counts:
        t = self._clock() if now is None else now
        with self._tx() as db:
            by_state = {s.value: 0 for s in JobState}
            for r in db.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state"):
                by_state[r["state"]] = r["n"]
            row = db.execute(f"SELECT COUNT(*) AS n, MIN(next_attempt_at) AS oldest FROM jobs "
                             f"WHERE {_READY_SQL}", (t,)).fetchone()
        assert row is not None  # an aggregate always returns a row
        oldest = row["oldest"]
        return Counts(by_state, row["n"], max(0.0, t - oldest) if oldest is not None else 0.0)

    def ping(self) -> None:
        self._read("SELECT 1 AS one")

    # --- consumers ---------------------------------------------------------------------------

    def _lease_row(self, db: psycopg.Connection[DictRow], job_id: str, owner: str, lease_s: float,
                   t: float) -> Lease:
        expires = t + lease_s
        row = db.execute("UPDATE jobs SET state = 'running', attempts = attempts + 1, "
                         "fence = fence + 1, lease_owner = %s, lease_expires_at = %s, "
                         "started_at = COALESCE(started_at, %s), updated_at = %s "
                         "WHERE job_id = %s RETURNING *",
                         (owner, expires, t, t, job_id)).fetchone()
        assert row is not None  # the caller holds the row's lock
        job = job_from_row(row)
        return Lease(job, owner, job.fence, expires)

    def lease_next(self, owner: str, lease_s: float, now: Optional[float] = None
                   ) -> Optional[Lease]:
        t = self._clock() if now is None else now
        with self._tx() as db:
            row = db.execute(f"SELECT job_id FROM jobs WHERE {_READY_SQL} "
                             "ORDER BY next_attempt_at, created_at LIMIT 1 "
                             "FOR UPDATE SKIP LOCKED", (t,)).fetchone()
            if row is None:
                return None
            return self._lease_row(db, row["job_id"], owner, lease_s, t)

    def lease(self, job_id: str, owner: str, lease_s: float, now: Optional[float] = None
              ) -> Optional[Lease]:
        t = self._clock() if now is None else now
        with self._tx() as db:
            row = db.execute(f"SELECT job_id FROM jobs WHERE job_id = %s AND {_READY_SQL} "
                             "FOR UPDATE SKIP LOCKED", (job_id, t)).fetchone()
            if row is None:
                return None
            return self._lease_row(db, job_id, owner, lease_s, t)

    def _held(self, db: psycopg.Connection[DictRow], lease: Lease) -> Optional[Dict[str, Any]]:
        """Locks the job's row and returns it if ``lease`` is current."""
        return db.execute(f"SELECT * FROM jobs WHERE {_FENCED} FOR UPDATE",
                          (lease.job_id, lease.fence, lease.owner)).fetchone()

    def heartbeat(self, lease: Lease, lease_s: float, now: Optional[float] = None) -> Beat:
        t = self._clock() if now is None else now
        expires = t + lease_s
        with self._tx() as db:
            row = db.execute(f"UPDATE jobs SET lease_expires_at = %s, updated_at = %s "
                             f"WHERE {_FENCED} RETURNING cancel_requested",
                             (expires, t, lease.job_id, lease.fence, lease.owner)).fetchone()
        if row is None:
            return Beat(held=False)
        return Beat(True, bool(row["cancel_requested"]), expires)

    def save_progress(self, lease: Lease, stage: str, progress: float) -> bool:
        with self._tx() as db:
            cur = db.execute(f"UPDATE jobs SET stage = %s, progress = %s, updated_at = %s "
                             f"WHERE {_FENCED}", (stage, float(progress), self._clock(),
                                                  lease.job_id, lease.fence, lease.owner))
            return cur.rowcount == 1

    def begin_publish(self, lease: Lease, result: Dict[str, Any],
                      files: Sequence[Tuple[str, str]]) -> str:
        with self._tx() as db:
            row = self._held(db, lease)
            if row is None:
                return "lost"
            if row["cancel_requested"]:
                return "cancel_requested"
            intent = {"files": [list(f) for f in files], "result": result}
            db.execute("UPDATE jobs SET publish = %s, updated_at = %s WHERE job_id = %s",
                       (json.dumps(intent, sort_keys=True), self._clock(), lease.job_id))
            return "recorded"

    def finish_publish(self, job_id: str) -> bool:
        with self._tx() as db:
            row = db.execute("SELECT publish FROM jobs WHERE job_id = %s AND state = 'running' "
                             "AND publish IS NOT NULL FOR UPDATE", (job_id,)).fetchone()
            if row is None:
                return False
            result = json.loads(row["publish"])["result"]
            t = self._clock()
            db.execute("UPDATE jobs SET state = 'succeeded', result = %s, error = NULL, "
                       "publish = NULL, progress = 1.0, lease_owner = NULL, "
                       "lease_expires_at = NULL, finished_at = %s, updated_at = %s "
                       "WHERE job_id = %s", (json.dumps(result, sort_keys=True), t, t, job_id))
            return True

    def interrupted_publishes(self, now: Optional[float] = None) -> List[Job]:
        t = self._clock() if now is None else now
        rows = self._read("SELECT * FROM jobs WHERE state = 'running' AND publish IS NOT NULL "
                          "AND lease_expires_at < %s", (t,))
        return [job_from_row(r) for r in rows]

    def fail(self, lease: Lease, error: Dict[str, Any], max_attempts: int,
             retry_delay_s: float) -> Optional[Job]:
        with self._tx() as db:
            row = self._held(db, lease)
            if row is None:
                return None
            t = self._clock()
            state, failures, next_at, finished = failed_attempt(row["failures"], max_attempts,
                                                                retry_delay_s, t)
            db.execute("UPDATE jobs SET state = %s, failures = %s, error = %s, "
                       "dispatched_at = NULL, "
                       "lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = %s, "
                       "finished_at = %s, updated_at = %s WHERE job_id = %s",
                       (state, failures, json.dumps(error, sort_keys=True), next_at, finished, t,
                        lease.job_id))
            return self._get(db, lease.job_id)

    def confirm_cancel(self, lease: Lease) -> bool:
        with self._tx() as db:
            t = self._clock()
            cur = db.execute(f"UPDATE jobs SET state = 'cancelled', lease_owner = NULL, "
                             f"lease_expires_at = NULL, finished_at = %s, updated_at = %s "
                             f"WHERE {_FENCED}", (t, t, lease.job_id, lease.fence, lease.owner))
            return cur.rowcount == 1

    def release(self, lease: Lease) -> bool:
        with self._tx() as db:
            t = self._clock()
            cur = db.execute(f"UPDATE jobs SET state = 'queued', dispatched_at = NULL, "
                             f"lease_owner = NULL, "
                             f"lease_expires_at = NULL, next_attempt_at = %s, updated_at = %s "
                             f"WHERE {_FENCED}", (t, t, lease.job_id, lease.fence, lease.owner))
            return cur.rowcount == 1

    def mark_dispatched(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET dispatched_at = %s WHERE job_id = %s",
                       (self._clock(), job_id))

    def owed_dispatches(self, now: Optional[float] = None, limit: int = 100) -> List[Job]:
        t = self._clock() if now is None else now
        rows = self._read(
            "SELECT * FROM jobs WHERE state IN ('queued', 'failed') AND dispatched_at IS NULL "
            "AND next_attempt_at <= %s ORDER BY next_attempt_at LIMIT %s", (t, int(limit)))
        return [job_from_row(r) for r in rows]

    def owed_callbacks(self, now: Optional[float] = None, limit: int = 100
                       ) -> List[Tuple[Job, str, int]]:
        t = self._clock() if now is None else now
        rows = self._read(
            "SELECT j.*, c.url AS cb_url, c.attempts AS cb_attempts FROM callbacks c "
            "JOIN jobs j ON j.job_id = c.job_id WHERE c.done_at IS NULL AND c.next_at <= %s "
            "AND j.state IN ('succeeded', 'cancelled', 'dead') ORDER BY c.next_at LIMIT %s",
            (t, int(limit)))
        return [(job_from_row(r), r["cb_url"], r["cb_attempts"]) for r in rows]

    def claim_callback(self, job_id: str, hold_s: float) -> bool:
        with self._tx() as db:
            t = self._clock()
            cur = db.execute("UPDATE callbacks SET next_at = %s WHERE job_id = %s "
                             "AND done_at IS NULL AND next_at <= %s", (t + hold_s, job_id, t))
            return cur.rowcount == 1

    def record_callback(self, job_id: str, delivered: bool, retry_at: Optional[float],
                        error: Optional[str]) -> None:
        with self._tx() as db:
            if delivered or retry_at is None:
                db.execute("UPDATE callbacks SET attempts = attempts + 1, done_at = %s, "
                           "error = %s WHERE job_id = %s", (self._clock(), error, job_id))
            else:
                db.execute("UPDATE callbacks SET attempts = attempts + 1, next_at = %s, "
                           "error = %s WHERE job_id = %s", (retry_at, error, job_id))

    def requeue_expired(self, max_lost_leases: int, now: Optional[float] = None
                        ) -> List[Transition]:
        t = self._clock() if now is None else now
        out: List[Transition] = []
        with self._tx() as db:
            # SKIP LOCKED: a row another reaper (or its heartbeat) holds right now is left to it
            rows = db.execute("SELECT * FROM jobs WHERE state = 'running' "
                              "AND lease_expires_at < %s AND publish IS NULL "
                              "FOR UPDATE SKIP LOCKED", (t,)).fetchall()
            for row in rows:
                job = job_from_row(row)
                state, lost, finished, error = lost_lease(job, max_lost_leases, t)
                new = db.execute(
                    "UPDATE jobs SET state = %s, lost_leases = %s, lease_owner = NULL, "
                    "dispatched_at = NULL, "
                    "lease_expires_at = NULL, next_attempt_at = %s, finished_at = %s, "
                    "error = %s, updated_at = %s WHERE job_id = %s RETURNING *",
                    (state, lost, t, finished, json.dumps(error) if error else None, t,
                     job.job_id)).fetchone()
                assert new is not None  # locked above
                out.append(Transition(job_from_row(new), job.lease_owner))
        return out
