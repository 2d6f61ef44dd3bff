"""Service settings: environment variables ``ASSEMBLY_SERVICE_*`` or command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

ENV_PREFIX = "ASSEMBLY_SERVICE_"


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    """Everything the app, the workers and the job function read.

    Each field maps to ``ASSEMBLY_SERVICE_<FIELD>`` (upper case). Paths are made absolute.
    """

    #: Every input path of a request must resolve inside this folder. Required.
    media_root: Path
    #: Every output path must resolve inside this folder; relative output paths are relative
    #: to it. Default: ``<media_root>/output``.
    output_root: Optional[Path] = None
    #: Job store and per-job work folders. Default: ``./service-data``.
    data_dir: Path = Path("service-data")
    #: Shared secret for the internal endpoints (header ``X-Tasks-Auth``). Required unless
    #: ``dev_mode``. Default: none.
    auth_secret: Optional[str] = None
    #: Skips the shared-secret check (local development only). Default: ``False``.
    dev_mode: bool = False
    #: Worker threads in the app process (0: the app only accepts jobs; run
    #: ``python -m assembly_service worker`` elsewhere). Default: one per core.
    workers: int = field(default_factory=_default_workers)
    #: How long a lease lasts without a heartbeat. Default: ``30``.
    lease_s: float = 30.0
    #: Heartbeat period (renews the lease, picks up cancel requests). Default: ``2``.
    heartbeat_s: float = 2.0
    #: Idle workers look for jobs (and expired leases) this often. Default: ``0.5``.
    poll_s: float = 0.5
    #: Failed attempts before a job is dead. Default: ``3``.
    max_attempts: int = 3
    #: Lost leases (worker killed or stalled) before a job is dead. Default: ``10``.
    max_lost_leases: int = 10
    #: Retry delay after the first failure; doubles per failure. Default: ``2``.
    retry_base_s: float = 2.0
    #: Upper bound of the retry delay. Default: ``60``.
    retry_max_s: float = 60.0
    #: Request bodies above this get 413. Default: 8 MiB.
    max_body_bytes: int = 8 * 1024 * 1024
    #: On shutdown, running jobs get this long to reach their next checkpoint (stage end)
    #: before they are cancelled and given back. With cancellation taking up to ~1 s under
    #: load, this keeps the exit well inside 8 s. Default: ``4``.
    shutdown_grace_s: float = 4.0
    #: Shutdown gives up waiting for workers after this long in total. Default: ``6``.
    shutdown_timeout_s: float = 6.0
    #: Progress is written to the store at most this often per job (and at each stage).
    #: Default: ``0.5``.
    progress_interval_s: float = 0.5
    #: CPU niceness of worker threads (Linux), so HTTP stays responsive under load.
    #: Default: ``10``.
    worker_nice: int = 10
    #: Keep a job's work folder (checkpoints) after it finished. Default: ``False``.
    keep_work_dirs: bool = False
    #: The job store: ``postgresql://...`` (many machines) or ``sqlite:///path`` (one
    #: machine). Default: none, the SQLite file ``<data_dir>/jobs.sqlite3``.
    database_url: Optional[str] = None
    #: Who runs accepted jobs: ``threads`` (the app's worker pool and ``worker`` processes
    #: polling the store) or ``celery`` (the app enqueues a Celery task per job on
    #: ``broker_url``; run ``celery -A assembly_service.celery_app worker``). Default:
    #: ``threads``.
    queue: str = "threads"
    #: Celery broker (Redis) when ``queue`` is ``celery``. Default: none.
    broker_url: Optional[str] = None
    #: Redis visibility timeout of Celery messages: a task a lost worker took is delivered
    #: again after this long (a redelivery of a job still running under a live lease does
    #: nothing). Default: ``3600``.
    visibility_timeout_s: float = 3600.0
    #: Celery queue the app sends jobs to and workers consume (``-Q``). Default: ``assembly``.
    celery_queue: str = "assembly"

    def __post_init__(self) -> None:
        media = Path(os.path.realpath(self.media_root))
        object.__setattr__(self, "media_root", media)
        out = self.output_root if self.output_root is not None else media / "output"
        object.__setattr__(self, "output_root", Path(os.path.abspath(out)))
        object.__setattr__(self, "data_dir", Path(os.path.abspath(self.data_dir)))
        problems = []
        if not self.dev_mode and not self.auth_secret:
            problems.append("auth_secret is required unless dev_mode is on")
        if self.workers < 0:
            problems.append("workers must be >= 0")
        if self.lease_s <= 0 or self.heartbeat_s <= 0 or self.heartbeat_s * 2 > self.lease_s:
            problems.append("need 0 < 2 * heartbeat_s <= lease_s")
        if self.max_attempts < 1 or self.max_lost_leases < 1:
            problems.append("max_attempts and max_lost_leases must be >= 1")
        if not 0 <= self.shutdown_grace_s <= self.shutdown_timeout_s:
            problems.append("need 0 <= shutdown_grace_s <= shutdown_timeout_s")
        if self.poll_s <= 0 or self.max_body_bytes < 1024:
            problems.append("poll_s must be > 0 and max_body_bytes >= 1024")
        if self.queue not in ("threads", "celery"):
            problems.append("queue must be 'threads' or 'celery'")
        elif self.queue == "celery" and not self.broker_url:
            problems.append("queue 'celery' needs broker_url")
        if self.database_url is not None and not self.database_url.startswith(
                ("postgresql://", "postgres://", "sqlite:///")):
            problems.append("database_url must start with postgresql:// or sqlite:///")
        if problems:
            raise ValueError("invalid settings: " + "; ".join(problems))

    @property
    def db_path(self) -> Path:
        """The SQLite job store file."""
        return self.data_dir / "jobs.sqlite3"

    @property
    def store_description(self) -> str:
        """The job store, for logs (a PostgreSQL URL without its password)."""
        if self.database_url and "://" in self.database_url and "@" in self.database_url:
            scheme, rest = self.database_url.split("://", 1)
            return f"{scheme}://{rest.split('@', 1)[1]}"
        return self.database_url or str(self.db_path)

    @property
    def work_root(self) -> Path:
        """Per-job work folders (checkpoints and staged outputs)."""
        return self.data_dir / "work"

    @property
    def resolved_output_root(self) -> Path:
        """The output root with symlinks resolved (it may not exist yet)."""
        assert self.output_root is not None
        return Path(os.path.realpath(self.output_root))

    def retry_delay_s(self, failures: int) -> float:
        """Delay before the retry that follows the ``failures``-th failure."""
        return min(self.retry_max_s, self.retry_base_s * (2 ** max(0, failures - 1)))

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **overrides: Any) -> "Settings":
        """Reads ``ASSEMBLY_SERVICE_*`` from ``env`` (default: ``os.environ``); ``overrides``
        (e.g. command-line flags that were given) win."""
        env = os.environ if env is None else env
        values: Dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "media_root" not in values:
            raise ValueError(f"invalid settings: {ENV_PREFIX}MEDIA_ROOT is required")
        return cls(**values)

    def with_changes(self, **changes: Any) -> "Settings":
        """A copy with some fields changed."""
        return replace(self, **changes)


_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}
_TYPES = {"workers": int, "max_attempts": int, "max_lost_leases": int, "max_body_bytes": int,
          "worker_nice": int, "dev_mode": bool, "keep_work_dirs": bool,
          "media_root": Path, "output_root": Path, "data_dir": Path, "auth_secret": str,
          "database_url": str, "queue": str, "broker_url": str, "celery_queue": str}


def _parse(name: str, raw: str) -> Any:
    kind = _TYPES.get(name, float)
    try:
        if kind is bool:
            return _BOOL[raw.strip().lower()]
        return kind(raw)
    except (KeyError, ValueError):
        raise ValueError(f"invalid settings: {ENV_PREFIX}{name.upper()}={raw!r}") from None
