"""Celery workers on a Redis broker against a PostgreSQL store: the app enqueues and a worker
runs the jobs; a worker killed with SIGKILL mid-job has its task redelivered by the broker and
the job resumes from its checkpoint; the same task delivered twice runs the job once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from assembly_service import logs
from assembly_service.config import Settings
from assembly_service.requests import AssembleRequest, prepare
from assembly_service.store import Job, JobState

from conftest import (REDIS_URL, SECRET, SERVICE_DIR, Media, Server, fresh_pg_database,
                      missing_service, reference_output)


def _require_redis() -> str:
    if not REDIS_URL:
        missing_service("ASSEMBLY_TEST_REDIS_URL")
    import redis

    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()  # set: must answer
    return REDIS_URL


def _celery_env(tmp: Path, media: Media, **extra: object) -> Dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ASSEMBLY_SERVICE_MEDIA_ROOT": str(media.root),
        "ASSEMBLY_SERVICE_OUTPUT_ROOT": str(media.root / "output" / f"celery-{tmp.name}"),
        "ASSEMBLY_SERVICE_DATA_DIR": str(tmp / "data"),
        "ASSEMBLY_SERVICE_AUTH_SECRET": SECRET,
        "ASSEMBLY_SERVICE_QUEUE": "celery",
        "ASSEMBLY_SERVICE_BROKER_URL": _require_redis(),
        "ASSEMBLY_SERVICE_CELERY_QUEUE": f"assembly-{uuid.uuid4().hex[:8]}",  # per test
        "ASSEMBLY_SERVICE_DATABASE_URL": fresh_pg_database(),
        "PYTHONPATH": os.pathsep.join([str(SERVICE_DIR), os.environ.get("PYTHONPATH", "")]),
    })
    env.update({f"ASSEMBLY_SERVICE_{k.upper()}": str(v) for k, v in extra.items()})
    return env


class Worker:
    """``celery -A assembly_service.celery_app worker`` (prefork) in its own process group."""

    def __init__(self, env: Dict[str, str], log: Path, concurrency: int = 1) -> None:
        self.log = log
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "assembly_service.celery_app", "worker",
                 "-Q", env["ASSEMBLY_SERVICE_CELERY_QUEUE"], "-c", str(concurrency),
                 "--pool", "prefork", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "-l", "INFO", "-n", f"w{uuid.uuid4().hex[:6]}@%h"],
                env=env, stdout=f, stderr=subprocess.STDOUT, cwd=log.parent,
                start_new_session=True)

    def kill9(self) -> None:
        """SIGKILL to the main process and its pool children at once: the machine is gone."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def events(self, name: str) -> List[Dict[str, str]]:
        return [e for e in (logs.parse_line(line) for line in
                            self.log.read_text(errors="replace").splitlines() if "event=" in line)
                if e.get("event") == name]


def _store_and_job(env: Dict[str, str], media: Media, episode: str, content: str
                   ) -> Tuple[Settings, object, Job, dict]:
    from assembly_service.store import open_store

    settings = Settings.from_env(env)
    store = open_store(settings)
    payload = media.payload(episode, content=content)
    prepared = prepare(AssembleRequest(**payload), settings)
    job = store.create_or_get(episode, prepared.idem_key, prepared.payload,
                              prepared.output_paths).job
    return settings, store, job, payload


def _wait(store, job_id: str, pred, timeout: float, what: str) -> Job:
    deadline = time.monotonic() + timeout
    job = store.get(job_id)
    while time.monotonic() < deadline:
        job = store.get(job_id)
        if pred(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{what}: {job}")


def test_app_enqueues_and_a_celery_worker_runs_the_jobs(media: Media, tmp_path: Path) -> None:
    env = _celery_env(tmp_path, media)
    srv = Server(tmp_path, media, workers=0)
    srv.env.update({k: v for k, v in env.items() if k.startswith("ASSEMBLY_SERVICE_")})
    srv.database_url = env["ASSEMBLY_SERVICE_DATABASE_URL"]
    srv.output_root = Path(env["ASSEMBLY_SERVICE_OUTPUT_ROOT"])
    worker = Worker(srv.env, tmp_path / "worker.log")
    try:
        srv.start()
        payloads = {f"ep-q{i}": media.payload(f"ep-q{i}", content=c)
                    for i, c in enumerate(("short.wav", "talk-c.wav", "short.wav"))}
        with srv.client() as c:
            for payload in payloads.values():
                assert c.post("/api/tasks/assemble", json=payload).status_code == 202
            for episode in payloads:
                st = srv.wait_for(c, episode, ["succeeded"], timeout=180)
                assert st["attempts"] == 1
    finally:
        srv.stop()
        worker.stop()
    assert worker.proc.returncode == 0
    assert len(srv.events("tasks.celery.sent")) == 3
    assert not srv.events("tasks.assemble.start")  # the app ran nothing itself
    starts = worker.events("tasks.assemble.start")
    assert len(starts) == 3 and all(e["owner"].startswith("celery:") for e in starts)
    for episode, payload in payloads.items():
        assert (srv.output_root / f"{episode}.mp3").read_bytes() == reference_output(
            media, payload, tmp_path), episode


def test_sigkilled_worker_task_is_redelivered_and_resumes(media: Media, tmp_path: Path) -> None:
    # Redis hands the lost worker's message out again after the visibility timeout. It must
    # outlast the time to the kill below (about half the job), or Redis restores the message
    # while the first worker still runs it, and the second worker gets it while the dead
    # worker's lease still looks live and skips it as a duplicate.
    env = _celery_env(tmp_path, media, lease_s=2, heartbeat_s=0.25, progress_interval_s=0.1,
                      visibility_timeout_s=40)
    # the 40-minute talk: a 2-minute one now finishes in under a second, before the poll
    # below can see it past 50 %
    settings, store, job, payload = _store_and_job(env, media, "ep-kill", "talk-long.wav")
    from assembly_service.celery_app import enqueue, make_celery

    first = Worker(env, tmp_path / "worker-1.log")
    second = None
    try:
        enqueue(make_celery(settings), job.job_id)  # one message, no app, no reaper thread
        running = _wait(store, job.job_id, lambda j: j.state == JobState.RUNNING
                        and j.progress >= 0.5, 120, "the job did not reach 50 %")
        first.kill9()
        print(f"killed at progress {running.progress:.2f}, stage {running.stage}")
        second = Worker(env, tmp_path / "worker-2.log")
        done = _wait(store, job.job_id, lambda j: j.state == JobState.SUCCEEDED, 300,
                     "the job was not redelivered and finished")
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert done.attempts == 2 and done.lost_leases == 1 and done.failures == 0
    assert done.result["stages_resumed"], "the second attempt did not resume from a checkpoint"
    assert len(second.events("tasks.assemble.resumed")) == 1
    assert [e["job_id"] for e in second.events("tasks.assemble.done")] == [job.job_id]
    assert not first.events("tasks.assemble.done")
    out = Path(env["ASSEMBLY_SERVICE_OUTPUT_ROOT"]) / "ep-kill.mp3"
    assert out.read_bytes() == reference_output(media, payload, tmp_path)
    print(f"resumed stages {done.result['stages_resumed']}")
    store.close()


def test_same_task_delivered_twice_runs_once(media: Media, tmp_path: Path) -> None:
    env = _celery_env(tmp_path, media)
    settings, store, job, payload = _store_and_job(env, media, "ep-twice", "talk-c.wav")
    from assembly_service.celery_app import enqueue, make_celery

    worker = Worker(env, tmp_path / "worker.log", concurrency=2)
    try:
        app = make_celery(settings)
        enqueue(app, job.job_id)
        enqueue(app, job.job_id)  # both deliveries are taken at once by the two pool processes
        done = _wait(store, job.job_id, lambda j: j.state == JobState.SUCCEEDED, 180,
                     "the job did not finish")
        enqueue(app, job.job_id)  # and a late duplicate after it finished
        deadline = time.monotonic() + 30
        while len(worker.events("tasks.celery.skipped")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()
    assert done.attempts == 1 and done.fence == 1
    assert len(worker.events("tasks.assemble.start")) == 1
    assert len(worker.events("tasks.assemble.done")) == 1
    skipped = worker.events("tasks.celery.skipped")
    assert len(skipped) == 2 and {e["job_id"] for e in skipped} == {job.job_id}
    assert skipped[-1]["reason"] == "finished"
    out = Path(env["ASSEMBLY_SERVICE_OUTPUT_ROOT"]) / "ep-twice.mp3"
    assert out.read_bytes() == reference_output(media, payload, tmp_path)
    store.close()


def _redis_server(port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                             "--save", "", "--appendonly", "no"],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    import redis

    deadline = time.monotonic() + 20
    while True:
        try:
            redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5).ping()
            return proc
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.05)


def test_broker_down_during_post_the_outbox_sends_the_job_later(media: Media,
                                                                tmp_path: Path) -> None:
    """Redis is down when the job is accepted: the POST still answers 202 (the job is in the
    store), the send fails, and the app's outbox sends it once Redis is back: it runs."""
    _require_redis()  # the suite's Redis must be there (CI); this test runs its own
    from conftest import free_port

    port = free_port()
    env = _celery_env(tmp_path, media, poll_s=0.2)
    env["ASSEMBLY_SERVICE_BROKER_URL"] = f"redis://127.0.0.1:{port}"
    srv = Server(tmp_path, media, workers=0)
    srv.env.update({k: v for k, v in env.items() if k.startswith("ASSEMBLY_SERVICE_")})
    srv.database_url = env["ASSEMBLY_SERVICE_DATABASE_URL"]
    srv.output_root = Path(env["ASSEMBLY_SERVICE_OUTPUT_ROOT"])
    redis_log = tmp_path / "redis.log"
    worker = None
    broker = None
    try:
        srv.start()  # the broker is not running
        payload = media.payload("ep-outbox", content="short.wav")
        with srv.client() as c:
            r = c.post("/api/tasks/assemble", json=payload)
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            time.sleep(1.0)  # five outbox polls with the broker still down
            [row] = srv.rows()
            assert row["state"] == "queued" and row["dispatched_at"] is None
            assert srv.events("tasks.celery.send_error")
            broker = _redis_server(port, redis_log)
            worker = Worker(srv.env, tmp_path / "worker.log")
            st = srv.wait_for(c, "ep-outbox", ["succeeded"], timeout=120)
            assert st["job_id"] == job_id and st["attempts"] == 1
    finally:
        srv.stop()
        if worker is not None:
            worker.stop()
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)
    [row] = srv.rows()
    assert row["dispatched_at"] is not None
    assert [e["job_id"] for e in srv.events("tasks.celery.sent")] == [job_id]
    assert (srv.output_root / "ep-outbox.mp3").read_bytes() == reference_output(
        media, payload, tmp_path)


def test_a_job_committed_but_never_sent_is_sent_by_the_next_app(media: Media,
                                                               tmp_path: Path) -> None:
    """The app died between its commit and its send: the job is in the store, no task on the
    broker. Any app instance started later sends it from the outbox; it runs once."""
    env = _celery_env(tmp_path, media, poll_s=0.2)
    settings, store, job, payload = _store_and_job(env, media, "ep-orphan", "short.wav")
    assert [j.job_id for j in store.owed_dispatches()] == [job.job_id]
    srv = Server(tmp_path, media, workers=0)
    srv.env.update({k: v for k, v in env.items() if k.startswith("ASSEMBLY_SERVICE_")})
    srv.database_url = env["ASSEMBLY_SERVICE_DATABASE_URL"]
    worker = Worker(srv.env, tmp_path / "worker.log")
    try:
        srv.start()
        done = _wait(store, job.job_id, lambda j: j.state == JobState.SUCCEEDED, 120,
                     "the orphaned job was not sent and run")
    finally:
        srv.stop()
        worker.stop()
    assert done.attempts == 1 and store.owed_dispatches() == []
    assert [e["job_id"] for e in srv.events("tasks.celery.sent")] == [job.job_id]
    assert len(worker.events("tasks.assemble.start")) == 1
    out = Path(env["ASSEMBLY_SERVICE_OUTPUT_ROOT"]) / "ep-orphan.mp3"
    assert out.read_bytes() == reference_output(media, payload, tmp_path)
    store.close()
