"""Service settings: environment variables ``ASSEMBLY_SERVICE_*`` or command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

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
    #: More accepted secrets, for rotation without downtime: deploy the new secret here,
    #: move the callers to it, then make it ``auth_secret`` and drop the old one. Environment:
    #: comma-separated. Default: none.
    auth_secrets: Tuple[str, ...] = ()
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
    #: Per request: most entries in each of ``template.segments``,
    #: ``template.background_music_rules`` and the cleanup options' ``insertedClips`` and
    #: ``soundEffects`` (422 above). Default: ``100``.
    max_segments: int = 100
    #: Per request: most entries in ``assets`` (422 above). Default: ``50``.
    max_assets: int = 50
    #: Per request: most entries in ``words`` (422 above). Default: ``200000``.
    max_words: int = 200_000
    #: Per request: the content and every distinct asset file together, in seconds of audio
    #: (probed from their headers at POST; 422 above). Each input is also decoded with this as
    #: its ``limits.max_duration_s``. Default: ``14400`` (4 h).
    max_input_duration_s: float = 14_400.0
    #: On shutdown, running jobs get this long to reach their next checkpoint (stage end)
    #: before they are cancelled and given back. With cancellation taking up to ~1 s under
    #: load, this keeps the exit well inside 8 s. Default: ``4``.
    shutdown_grace_s: float = 4.0
    #: Shutdown gives up waiting for workers after this long in total. Default: ``6``.
    shutdown_timeout_s: float = 6.0
    #: Progress watchdog: a run that reports no progress for this long (a hung network
    #: mount, a FIFO put in place of an input) is stopped and counted as a failed attempt
    #: (``Stalled``). Default: ``180``.
    stall_timeout_s: float = 180.0
    #: Overall deadline of one attempt: ``deadline_base_s`` plus ``deadline_per_input_s``
    #: per second of input audio (probed at POST); past it the run is stopped and counted as
    #: a failed attempt (``DeadlineExceeded``). Celery tasks get the matching ``time_limit``
    #: for the longest input ``max_input_duration_s`` allows. Defaults: ``600`` and ``1.0``.
    deadline_base_s: float = 600.0
    deadline_per_input_s: float = 1.0
    #: A stopped run (cancel, watchdog, deadline) that has not returned after this long is
    #: abandoned: the attempt is recorded and the worker thread moves on. Default: ``10``.
    abandon_after_s: float = 10.0
    #: Progress is written to the store at most this often per job (and at each stage).
    #: Default: ``0.5``.
    progress_interval_s: float = 0.5
    #: CPU niceness of worker threads (Linux), so HTTP stays responsive under load.
    #: Default: ``10``.
    worker_nice: int = 10
    #: Keep a job's work folder (checkpoints) after it finished. Default: ``False``.
    keep_work_dirs: bool = False
    #: Key of the completion callbacks' HMAC-SHA256 signature. Default: ``auth_secret``.
    callback_secret: Optional[str] = None
    #: A callback delivery waits this long for the receiver's answer. Default: ``5``.
    callback_timeout_s: float = 5.0
    #: Deliveries tried before a callback is given up. Default: ``8``.
    callback_max_attempts: int = 8
    #: Delay after the first failed delivery; doubles per failure, at most 300 s.
    #: Default: ``2``.
    callback_retry_base_s: float = 2.0
    #: Log lines: ``logfmt`` or ``json`` (one object per line, for Cloud Logging and other
    #: pipelines). Read by ``python -m assembly_service`` and Celery workers at start.
    #: Default: ``logfmt``.
    log_format: str = "logfmt"
    #: ``python -m assembly_service worker`` serves Prometheus ``/metrics`` on this port
    #: (all interfaces; 0: none). Default: ``0``.
    metrics_port: int = 0
    #: Finished jobs (succeeded, cancelled, dead) are deleted from the store, with their work
    #: folders, this many days after they finished (the reapers purge every
    #: ``purge_interval_s``); 0 keeps them forever. Output files are never deleted.
    #: Default: ``30``.
    retention_days: float = 30.0
    #: How often a reaper purges and sweeps the work root (also when it starts).
    #: Default: ``300``.
    purge_interval_s: float = 300.0
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
        object.__setattr__(self, "auth_secrets", tuple(self.auth_secrets))
        problems = []
        data = os.path.realpath(self.data_dir)
        for name, root in (("media_root", media), ("output_root", out)):
            root_s = os.path.realpath(root)
            if data == root_s or data.startswith(root_s.rstrip(os.sep) + os.sep):
                # requests could then read the job store as an input or overwrite it
                problems.append(f"data_dir ({data}) must not lie inside {name} ({root_s})")
        if not self.dev_mode and not self.secrets:
            problems.append("auth_secret is required unless dev_mode is on")
        if self.workers < 0:
            problems.append("workers must be >= 0")
        if self.lease_s <= 0 or self.heartbeat_s <= 0 or self.heartbeat_s * 2 > self.lease_s:
            problems.append("need 0 < 2 * heartbeat_s <= lease_s")
        if self.max_attempts < 1 or self.max_lost_leases < 1:
            problems.append("max_attempts and max_lost_leases must be >= 1")
        if not 0 <= self.shutdown_grace_s <= self.shutdown_timeout_s:
            problems.append("need 0 <= shutdown_grace_s <= shutdown_timeout_s")
        if min(self.max_segments, self.max_assets, self.max_words) < 1 or \
                self.max_input_duration_s <= 0:
            problems.append("max_segments, max_assets, max_words and max_input_duration_s "
                            "must be > 0")
        if min(self.stall_timeout_s, self.deadline_base_s, self.abandon_after_s) <= 0 or \
                self.deadline_per_input_s < 0:
            problems.append("stall_timeout_s, deadline_base_s and abandon_after_s must be > 0, "
                            "deadline_per_input_s >= 0")
        if self.poll_s <= 0 or self.max_body_bytes < 1024:
            problems.append("poll_s must be > 0 and max_body_bytes >= 1024")
        if self.log_format not in ("logfmt", "json"):
            problems.append("log_format must be 'logfmt' or 'json'")
        if self.queue not in ("threads", "celery"):
            problems.append("queue must be 'threads' or 'celery'")
        elif self.queue == "celery" and not self.broker_url:
            problems.append("queue 'celery' needs broker_url")
        if self.database_url is not None and not self.database_url.startswith(
                ("postgresql://", "postgres://", "sqlite:///")):
            problems.append("database_url must start with postgresql:// or sqlite:///")
        if problems:
            raise ValueError("invalid settings: " + "; ".join(problems))

    def deadline_s(self, input_duration_s: float) -> float:
        """The overall deadline of one attempt on this much input audio."""
        return self.deadline_base_s + self.deadline_per_input_s * max(0.0, input_duration_s)

    @property
    def secrets(self) -> Tuple[str, ...]:
        """Every accepted ``X-Tasks-Auth`` value (``auth_secret`` and ``auth_secrets``)."""
        return tuple(s for s in ((self.auth_secret or ""),) + self.auth_secrets if s)

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
          "max_segments": int, "max_assets": int, "max_words": int, "metrics_port": int,
          "log_format": str, "callback_secret": str, "callback_max_attempts": int,
          "worker_nice": int, "dev_mode": bool, "keep_work_dirs": bool,
          "media_root": Path, "output_root": Path, "data_dir": Path, "auth_secret": str,
          "auth_secrets": tuple,
          "database_url": str, "queue": str, "broker_url": str, "celery_queue": str}


def _parse(name: str, raw: str) -> Any:
    kind = _TYPES.get(name, float)
    try:
        if kind is bool:
            return _BOOL[raw.strip().lower()]
        if kind is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return kind(raw)
    except (KeyError, ValueError):
        raise ValueError(f"invalid settings: {ENV_PREFIX}{name.upper()}={raw!r}") from None
