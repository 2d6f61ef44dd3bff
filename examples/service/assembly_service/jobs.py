"""The job function: runs one leased job to a committed outcome.

:func:`run_leased_job` needs only a store, a lease and the settings, so the app's worker
threads, ``python -m assembly_service worker`` and a task queue (Celery) run jobs the same
way::

    lease = store.lease(job_id, owner, settings.lease_s)   # or store.lease_next(...)
    if lease is not None:
        run_leased_job(store, lease, settings)

While the assembly runs (GIL released), a monitor thread renews the lease every
``heartbeat_s``, writes progress (throttled), and stops the run when the lease is lost, a
cancel was requested, or the process is shutting down. Outputs are written into the job's
work folder and moved into place by :meth:`JobStore.complete` only while the lease is still
current (fencing). Checkpoints in ``<work_root>/<job_id>/checkpoints`` let the next attempt
resume after the last completed stage.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import podcast_assembly as pa

from . import logs
from .config import Settings
from .metrics import Metrics
from .store import Job, JobState, JobStore, Lease


# --- the spec ------------------------------------------------------------------------------


class SpecRejected(ValueError):
    """The payload is not a valid job; ``errors`` lists ``{"field", "message"}``."""

    def __init__(self, errors: List[Dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


# Spec paths (podcast_assembly's InvalidSpecError) -> the request field that produced them.
_SPEC_FIELDS = (("transcript", "words"), ("template", "template"),
                ("cleanup", "cleanup_options"), ("assets", "assets"),
                ("content", "content_path"), ("master", "target_lufs"),
                ("output_format", "output_format"), ("output", "output_format"),
                ("outputs[0]", "output_format"))
# A field of ``outputs[i]`` (i >= 1) -> the field of ``extra_outputs[i-1]`` that set it.
_EXTRA_FIELDS = (("master.target_lufs", "target_lufs"), ("master.ceiling_dbtp", "true_peak_dbtp"),
                 ("encoding.rate", "sample_rate"), ("encoding.format.bitrate", "bitrate_kbps"),
                 ("encoding.bitrate", "bitrate_kbps"), ("encoding", "format"),
                 ("sample_rate", "sample_rate"), ("channels", "channels"))


def _request_field(spec_path: str) -> str:
    m = re.match(r"^outputs\[(\d+)\]\.?(.*)$", spec_path)
    if m and int(m.group(1)) >= 1:
        field = f"extra_outputs[{int(m.group(1)) - 1}]"
        for prefix, name in _EXTRA_FIELDS:
            if m.group(2) == prefix or m.group(2).startswith((prefix + ".", prefix + "[")):
                return f"{field}.{name}"
        return field
    for prefix, name in _SPEC_FIELDS:
        if spec_path == prefix or spec_path.startswith((prefix + ".", prefix + "[")):
            return name
    return spec_path or "body"


def staged_outputs(payload: Dict[str, Any], work_dir: Path,
                   staging: Optional[Path] = None) -> List[Tuple[Path, str]]:
    """(staged path in the work folder, final path) for each output of the job.

    The staged names are fixed per job, so every attempt builds the same spec and the
    checkpoints of an earlier attempt match."""
    staging = work_dir / "staging" if staging is None else staging
    out = [(staging / f"episode.{payload['output_format']}", payload["output_path"])]
    cleaned = payload.get("cleaned_output_path")
    if cleaned:  # the cleaned content uses the episode's encoding
        out.append((staging / f"cleaned.{payload['output_format']}", cleaned))
    for i, extra in enumerate(payload.get("extra_outputs") or []):
        out.append((staging / f"extra-{i}.{extra['format']}", extra["path"]))
    return out


def _staged_cleaned(payload: Dict[str, Any], staged: List[Tuple[Path, str]]
                    ) -> Optional[Tuple[Path, str]]:
    return staged[1] if payload.get("cleaned_output_path") else None


def build_spec(payload: Dict[str, Any], work_dir: Path,
               staging: Optional[Path] = None,
               settings: Optional[Settings] = None) -> Dict[str, Any]:
    """The ``podcast_assembly`` spec of a job (paths in its work folder; ``staging``
    overrides the folder of the staged outputs; ``settings`` tighten the inputs' limits)."""
    staged = staged_outputs(payload, work_dir, staging)
    cleaned = _staged_cleaned(payload, staged)
    extras = payload.get("extra_outputs") or []
    spec = pa.episode_spec(
        payload["content_path"],
        output_path=staged[0][0],
        words=payload.get("words"),
        template=payload.get("template"),
        assets=payload.get("assets") or {},
        cleanup_options=payload.get("cleanup_options"),
        output_format=payload["output_format"],
        bitrate_kbps=payload["bitrate_kbps"],
        target_lufs=payload["target_lufs"],
        true_peak_dbtp=payload["true_peak_dbtp"],
        cleaned_output_path=cleaned[0] if cleaned else None,
        extra_outputs=[dict(o, path=dst) for o, (dst, _) in
                       zip(extras, staged[len(staged) - len(extras):])] or None,
        work_dir=work_dir / "checkpoints",
        # Template filenames and cleanup clips name keys of ``assets`` only (each confined to
        # the media root by requests.prepare), never a path of their own: a name missing from
        # assets is the same 422 whether or not a file of that name exists anywhere.
        local_paths=False,
    )
    if settings is not None:
        spec["limits"] = {"max_duration_s": settings.max_input_duration_s}
    return spec


def validate_payload(payload: Dict[str, Any], settings: Settings) -> None:
    """Validates the whole job the way a run would, without touching audio or disk.

    Raises :class:`SpecRejected` naming the request fields at fault.
    """
    import warnings

    # The spec names outputs in an existing folder (the work root, made at startup) and a
    # work folder that is never created: constructing an Assembler validates, it writes nothing.
    probe_dir = settings.work_root / f"validate-{uuid.uuid4().hex}"
    settings.work_root.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown cleanup keys are the backend's business
            pa.Assembler(build_spec(payload, probe_dir, staging=settings.work_root,
                                    settings=settings))
    except pa.InvalidSpecError as e:
        problems = getattr(e, "errors", None) or [{"path": "", "message": str(e)}]
        raise SpecRejected([{"field": _request_field(p.get("path", "")),
                             "message": f"{p.get('path') or 'spec'}: {p.get('message')}"}
                            for p in problems]) from None
    except FileNotFoundError as e:
        raise SpecRejected([{"field": "body", "message": f"missing file: {e.filename or e}"}]
                           ) from None
    except Exception as e:  # noqa: BLE001 - whatever the payload did, it is the request's fault
        raise SpecRejected([{"field": "body", "message": f"{type(e).__name__}: {e}"}]) from None


# --- publishing ----------------------------------------------------------------------------


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: Test hook: called with the name of each publication step (``staged``, ``intent``,
#: ``renamed:<i>``, ``renamed``); the kill tests set it to SIGKILL the process there.
PUBLISH_HOOK: Optional[Callable[[str], None]] = None


def _step(name: str) -> None:
    if PUBLISH_HOOK is not None:
        PUBLISH_HOOK(name)


def temp_name(final: str, job_id: str, fence: int) -> str:
    """The hidden name an output waits under, beside its final name, until the publish (one
    per lease: a stale worker never writes the current holder's file)."""
    return os.path.join(os.path.dirname(final),
                        f".{os.path.basename(final)}.{job_id}.{fence}.publish")


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stage_beside(src: Path, final: str, job_id: str, fence: int) -> str:
    """Puts the staged output ``src`` beside ``final`` under :func:`temp_name`, complete and
    on disk (a rename on one file system, a copy across them). Runs outside any store
    transaction: the slow copy never holds the store's write lock."""
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = temp_name(final, job_id, fence)
    try:
        os.replace(src, tmp)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        with open(src, "rb") as r, open(tmp, "wb") as w:
            shutil.copyfileobj(r, w, 1 << 20)
    _fsync_file(tmp)
    _fsync_dir(parent)
    return tmp


def remove_temps(job_id: str, finals: Sequence[str], up_to_fence: int) -> None:
    """Removes this job's publish temp files beside ``finals`` left by leases up to
    ``up_to_fence`` (this lease's and earlier, crashed ones; a newer lease's are never
    touched)."""
    for final in dict.fromkeys(finals):
        parent, prefix = os.path.dirname(final), f".{os.path.basename(final)}.{job_id}."
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            fence = name[len(prefix):-len(".publish")]
            if (name.startswith(prefix) and name.endswith(".publish") and fence.isdigit()
                    and int(fence) <= up_to_fence):
                try:
                    os.unlink(os.path.join(parent, name))
                except FileNotFoundError:
                    pass


def finish_publish(store: JobStore, job_id: str, files: Sequence[Sequence[str]]) -> bool:
    """Renames every recorded temp file onto its final name, then marks the job succeeded.
    Idempotent (a temp file already gone was renamed by an earlier try), so the worker and
    any reaper can both run it. Returns what ``store.finish_publish`` returns."""
    for i, (tmp, final) in enumerate(files):
        if os.path.exists(tmp):
            os.replace(tmp, final)
            _fsync_dir(os.path.dirname(final))
        elif not os.path.exists(final):
            raise FileNotFoundError(errno.ENOENT, "publish: neither the temp file nor the "
                                    "output exists", tmp)
        _step(f"renamed:{i}")
    _step("renamed")
    return store.finish_publish(job_id)


def remove_work(job_id: str, settings: Settings) -> None:
    """Removes the job's work folder (checkpoints, staged outputs) unless
    ``keep_work_dirs``."""
    if not settings.keep_work_dirs:
        shutil.rmtree(settings.work_root / job_id, ignore_errors=True)


def clean_finished(job: Job, settings: Settings) -> None:
    """Removes what a job that ended without its worker (dead or cancelled by a reaper, or
    cancelled while it waited) leaves behind: its work folder and publish temp files."""
    remove_work(job.job_id, settings)
    remove_temps(job.job_id, job.output_paths, job.fence)


def purge_expired(store: JobStore, settings: Settings, now: Optional[float] = None
                  ) -> List[str]:
    """Deletes the finished jobs older than ``retention_days`` and their work folders;
    returns their ids."""
    if settings.retention_days <= 0:
        return []
    t = time.time() if now is None else now
    ids = store.purge_finished(t - settings.retention_days * 86400)
    for job_id in ids:
        shutil.rmtree(settings.work_root / job_id, ignore_errors=True)
    if ids:
        logs.event("tasks.store.purged", jobs=len(ids), retention_days=settings.retention_days)
    return ids


def sweep_work(store: JobStore, settings: Settings) -> List[str]:
    """Removes the work folders no job will use again: a finished job's (its worker was
    killed between committing the end and removing the folder) and a purged job's. The
    reapers call this when they start and every ``purge_interval_s``; returns the job ids."""
    if settings.keep_work_dirs:
        return []
    try:
        names = sorted(os.listdir(settings.work_root))
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        job = store.get(name)
        if job is None or job.state in (JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED):
            remove_work(name, settings)
            removed.append(name)
    if removed:
        logs.event("tasks.store.work_swept", folders=len(removed))
    return removed


def recover_publishes(store: JobStore, settings: Settings,
                      metrics: Optional[Metrics] = None) -> int:
    """Finishes the publishes whose worker died after recording the intent (the reapers call
    this), then removes those jobs' work folders; returns how many it finished."""
    done = 0
    for job in store.interrupted_publishes():
        assert job.publish is not None
        try:
            finished = finish_publish(store, job.job_id, job.publish["files"])
        except OSError as e:
            logs.event("tasks.assemble.publish_error", logging.ERROR, episode_id=job.episode_id,
                       job_id=job.job_id, attempt=job.attempts,
                       error=f"{type(e).__name__}: {e}")
            continue
        if finished:
            done += 1
            if metrics is not None:
                metrics.inc("assembly_publishes_recovered_total")
            logs.event("tasks.assemble.publish_recovered", logging.WARNING,
                       episode_id=job.episode_id, job_id=job.job_id, attempt=job.attempts,
                       output=job.publish["result"].get("output_path"))
            remove_work(job.job_id, settings)  # last: once it is gone, the above is recorded
    return done


def _published_outputs(report: Any, staged: List[Tuple[Path, str]]) -> List[Dict[str, Any]]:
    """``Report.outputs`` (the episode first, then ``extra_outputs``) under their final
    names, each with its ``sha256``."""
    final = {str(src): dst for src, dst in staged}
    out = []
    for o in report.outputs:
        entry = {k: v for k, v in o.items() if k != "path"}
        entry["output_path"] = final.get(str(o["path"]), str(o["path"]))
        entry["sha256"] = _sha256(Path(o["path"]))
        out.append(entry)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- running -------------------------------------------------------------------------------


class JobControl:
    """Stops a running job from another thread; the first reason wins.

    Reasons: ``cancel`` (the user asked), ``shutdown`` (give the job back), ``lost`` (the lease
    is no longer ours).
    """

    def __init__(self) -> None:
        self.token = pa.CancelToken()
        self._lock = threading.Lock()
        self.reason: Optional[str] = None
        self.stopped_at: Optional[float] = None

    def stop(self, reason: str) -> None:
        """Cancels the run (idempotent)."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
                self.stopped_at = time.monotonic()
        self.token.cancel()


class Stalled(Exception):
    """The run reported no progress for ``stall_timeout_s`` (the watchdog stopped it)."""


class DeadlineExceeded(Exception):
    """The attempt ran past its deadline (``deadline_base_s`` + ``deadline_per_input_s`` per
    second of input)."""


def _unblock_fifos(payload: Dict[str, Any]) -> None:
    """A run stuck opening a FIFO input waits for a writer forever: open and close the write
    end once, so the reader sees end-of-file and its thread ends (with a decode error)."""
    for path in [payload.get("content_path"), *(payload.get("assets") or {}).values()]:
        try:
            if path and stat.S_ISFIFO(os.stat(path).st_mode):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


@dataclass
class Outcome:
    """How an attempt ended: ``succeeded``, ``failed``, ``dead``, ``cancelled``, ``released``
    (given back on shutdown) or ``lost`` (the lease went to someone else, nothing written)."""

    state: str
    job: Optional[Job] = None
    error: Optional[Dict[str, Any]] = None
    duration_s: float = 0.0
    stages_resumed: List[str] = field(default_factory=list)


@dataclass
class _Live:
    stage: Optional[str] = None
    stage_t0: float = 0.0
    progress: float = 0.0
    dirty: bool = False
    stages: Dict[str, float] = field(default_factory=dict)
    #: monotonic time of the last progress event (the watchdog's measure)
    last_event: float = 0.0


def _error_dict(e: BaseException, attempt: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": type(e).__name__, "message": str(e) or repr(e),
                           "attempt": attempt, "at": time.time()}
    if isinstance(e, pa.InvalidSpecError):
        out["errors"] = getattr(e, "errors", [])
    if isinstance(e, OSError) and e.filename:
        out["filename"] = str(e.filename)
    return out


def run_leased_job(store: JobStore, lease: Lease, settings: Settings, *,
                   control: Optional[JobControl] = None,
                   stopping: Optional[threading.Event] = None,
                   metrics: Optional[Metrics] = None) -> Outcome:
    """Runs the leased job and commits its outcome if the lease is still current.

    ``control`` lets the caller stop the run (the pool uses it for fast local cancels);
    ``stopping`` is the process's shutdown flag: once set, the run gets
    ``settings.shutdown_grace_s`` to finish its current stage (its checkpoint lands), then it
    is cancelled and the job is released (queued again, no failure counted).

    Never raises for a job's own failure; store errors propagate (the lease then simply
    expires and the job is re-queued).
    """
    control = control or JobControl()
    metrics = metrics or Metrics()
    job = lease.job
    base: Dict[str, Any] = dict(episode_id=job.episode_id, job_id=job.job_id,
                                attempt=job.attempts, fence=lease.fence)
    work_dir = settings.work_root / job.job_id
    checkpoints = work_dir / "checkpoints"
    staged = staged_outputs(job.payload, work_dir)
    t0 = time.monotonic()
    live = _Live(stage_t0=t0, last_event=t0)
    deadline_s = settings.deadline_s(float(job.payload.get("input_duration_s") or 0.0))
    lock = threading.Lock()

    has_checkpoints = checkpoints.is_dir() and any(checkpoints.iterdir())
    logs.event("tasks.assemble.start", **base, owner=lease.owner, failures=job.failures,
               lost_leases=job.lost_leases)
    if has_checkpoints:
        metrics.inc("assembly_job_resumes_total")
        logs.event("tasks.assemble.resumed", **base, from_stage=job.stage)

    def end_stage(now: float) -> None:
        if live.stage is not None:
            dur = now - live.stage_t0
            live.stages[live.stage] = live.stages.get(live.stage, 0.0) + dur
            metrics.observe("assembly_stage_duration_seconds", dur, stage=live.stage)
            logs.event("tasks.assemble.stage", **base, stage=live.stage,
                       duration_ms=round(dur * 1000))

    def on_progress(e: "pa.ProgressEvent") -> None:
        try:
            now = time.monotonic()
            with lock:
                if e.stage != live.stage:
                    end_stage(now)
                    live.stage, live.stage_t0 = e.stage, now
                live.progress = e.overall
                live.dirty = True
                live.last_event = now
        except Exception:  # never let bookkeeping stop the run
            logs.LOGGER.exception("progress bookkeeping failed")

    done = threading.Event()

    def monitor() -> None:
        last_beat = last_save = time.monotonic()
        lease_deadline = last_beat + settings.lease_s
        saved_stage: Optional[str] = None
        drain_t0: Optional[float] = None
        drain_stage: Optional[str] = None
        while not done.wait(0.1):
            now = time.monotonic()
            with lock:
                stage, progress, dirty = live.stage, live.progress, live.dirty
                quiet_s = now - live.last_event
            if quiet_s >= settings.stall_timeout_s:
                control.stop("stalled")
            elif now - t0 >= deadline_s:
                control.stop("deadline")
            if stopping is not None and stopping.is_set():
                if drain_t0 is None:
                    drain_t0, drain_stage = now, stage
                elif stage != drain_stage or now - drain_t0 >= settings.shutdown_grace_s:
                    control.stop("shutdown")
            try:
                if dirty and stage and (stage != saved_stage
                                        or now - last_save >= settings.progress_interval_s):
                    with lock:
                        live.dirty = False
                    if not store.save_progress(lease, stage, progress):
                        control.stop("lost")
                    saved_stage, last_save = stage, now
                if now - last_beat >= settings.heartbeat_s:
                    beat = store.heartbeat(lease, settings.lease_s)
                    last_beat = now
                    if not beat.held:
                        control.stop("lost")
                    else:
                        lease_deadline = now + settings.lease_s
                        if beat.cancel_requested:
                            control.stop("cancel")
            except Exception as e:  # store unreachable: keep trying until the lease is gone
                logs.event("tasks.assemble.heartbeat_error", logging.WARNING, **base,
                           error=f"{type(e).__name__}: {e}")
                if now >= lease_deadline:
                    control.stop("lost")

    mon = threading.Thread(target=monitor, name=f"monitor-{job.job_id[:8]}", daemon=True)
    mon.start()
    report = None
    error: Optional[BaseException] = None
    abandoned = False
    box: Dict[str, Any] = {}

    def attempt() -> None:
        # Validating (it opens every input) and running, on a thread of their own: either can
        # block in a system call (a hung mount, a FIFO without a writer).
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for p, _ in staged:
                    p.parent.mkdir(parents=True, exist_ok=True)
                asm = pa.Assembler(build_spec(job.payload, work_dir, settings=settings))
                box["report"] = asm.run(progress=on_progress, cancel=control.token)
        except BaseException as e:  # noqa: BLE001 - every failure is recorded, then handled
            box["error"] = e

    runner = threading.Thread(target=attempt, name=f"run-{job.job_id[:8]}", daemon=True)
    try:
        runner.start()
        # Wait in slices: a run stopped by cancel, shutdown, the watchdog or the deadline that
        # does not return is abandoned after abandon_after_s, so the attempt ends and this
        # thread moves on (a FIFO is opened for writing once so its reader's thread ends).
        while runner.is_alive():
            runner.join(0.2)
            stopped_at = control.stopped_at
            if (runner.is_alive() and stopped_at is not None
                    and time.monotonic() - stopped_at >= settings.abandon_after_s):
                abandoned = True
                _unblock_fifos(job.payload)
                break
        report, error = box.get("report"), box.get("error")
    finally:
        done.set()
        mon.join()
    if abandoned:
        logs.event("tasks.assemble.abandoned", logging.ERROR, **base, reason=control.reason,
                   stage=live.stage)
        error = pa.CancelledError(f"abandoned after {settings.abandon_after_s:g} s")
    if isinstance(error, pa.CancelledError) and control.reason == "stalled":
        error = Stalled(f"no progress for {settings.stall_timeout_s:g} s "
                        f"(stage {live.stage or 'start'})")
    elif isinstance(error, pa.CancelledError) and control.reason == "deadline":
        error = DeadlineExceeded(f"the attempt ran past its deadline of {deadline_s:g} s")
    now = time.monotonic()
    with lock:
        end_stage(now)
        live.stage = None
    duration = now - t0
    timing = dict(duration_ms=round(duration * 1000))

    def finish(outcome: Outcome) -> Outcome:
        outcome.duration_s = duration
        metrics.inc("assembly_job_attempts_total", outcome=outcome.state)
        metrics.observe("assembly_job_duration_seconds", duration, outcome=outcome.state)
        if outcome.state in ("dead", "cancelled", "failed"):
            remove_temps(job.job_id, [dst for _, dst in staged], lease.fence)
        if outcome.state in ("succeeded", "dead", "cancelled"):
            remove_work(job.job_id, settings)
        return outcome

    def cancelled() -> Outcome:
        if store.confirm_cancel(lease):
            logs.event("tasks.assemble.cancelled", **base, **timing, stage=job.stage)
            return finish(Outcome("cancelled", store.get(job.job_id)))
        return finish(Outcome("lost"))

    if error is None and report is not None:
        rd = report.to_dict()
        resumed = list(rd.get("stages_resumed") or [])
        final = staged[0][1]
        cleaned = _staged_cleaned(job.payload, staged)
        outputs = _published_outputs(report, staged)
        result = {
            "output_path": final,
            "cleaned_output_path": cleaned[1] if cleaned else None,
            "duration_ms": report.duration_ms,
            "size_bytes": report.size_bytes,
            "sample_rate": report.sample_rate,
            "channels": report.channels,
            "loudness": report.loudness,
            "sha256": outputs[0]["sha256"],
            "counts": rd.get("counts"),
            "stage_ms": rd.get("stage_ms"),
            "stages_resumed": resumed,
            "warnings": list(report.warnings),
            "words": report.words,
            "attempt": job.attempts,
            "outputs": outputs,
        }

        finals = [dst for _, dst in staged]
        files: List[Tuple[str, str]] = []
        try:
            for src, dst in staged:
                files.append((stage_beside(src, dst, job.job_id, lease.fence), dst))
            _step("staged")
            status = store.begin_publish(lease, result, files)
        except OSError as e:  # staging failed (disk full...): an ordinary failed attempt
            remove_temps(job.job_id, finals, lease.fence)
            error = e
        else:
            if status != "recorded":
                remove_temps(job.job_id, finals, lease.fence)
            if status == "cancel_requested":
                return cancelled()
            if status == "lost":
                logs.event("tasks.assemble.lost", logging.WARNING, **base, **timing,
                           reason="lease lost before publishing")
                return finish(Outcome("lost", duration_s=duration))
            _step("intent")
            # From here the job succeeds: a reaper finishes the renames if this process dies.
            finish_publish(store, job.job_id, files)
            _step("finished")  # the job is succeeded; its work folder is still there
            remove_temps(job.job_id, finals, lease.fence - 1)  # crashed earlier attempts'
            logs.event("tasks.assemble.done", **base, **timing, output=final,
                       output_ms=report.duration_ms, size_bytes=report.size_bytes,
                       lufs=(report.loudness or {}).get("integrated_lufs"),
                       stages_resumed=",".join(resumed) or None)
            return finish(Outcome("succeeded", store.get(job.job_id), None, duration, resumed))

    assert error is not None
    if isinstance(error, pa.CancelledError) and control.reason == "cancel":
        return cancelled()
    if isinstance(error, pa.CancelledError) and control.reason == "shutdown":
        released = store.release(lease)
        logs.event("tasks.assemble.released", **base, **timing, released=released)
        return finish(Outcome("released" if released else "lost"))
    if control.reason == "lost":
        logs.event("tasks.assemble.lost", logging.WARNING, **base, **timing,
                   reason="lease lost while running")
        return finish(Outcome("lost"))
    if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit: hand the job back
        store.release(lease)
        raise error

    err = _error_dict(error, job.attempts)
    metrics.inc("assembly_job_failures_total", error_type=err["type"])
    delay = settings.retry_delay_s(job.failures + 1)
    updated = store.fail(lease, err, settings.max_attempts, delay)
    if updated is None:
        return finish(Outcome("lost", error=err))
    logs.event("tasks.assemble.error", logging.WARNING, **base, **timing,
               error_type=err["type"], error=err["message"], failures=updated.failures,
               retry_in_s=None if updated.state == JobState.DEAD else round(delay, 3))
    if updated.state == JobState.DEAD:
        logs.event("tasks.assemble.dead", logging.ERROR, **base, **timing,
                   failures=updated.failures, error_type=err["type"])
        return finish(Outcome("dead", updated, err))
    return finish(Outcome("failed", updated, err))
