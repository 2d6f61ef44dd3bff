"""No job runs forever: a FIFO put in place of an input after validation blocks the run in a
system call; the progress watchdog stops it and counts a failure, a cancel lands anyway, the
overall deadline stops a run that is slow but alive, and the worker thread is free again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict

from conftest import Media, Server, reference_output


def _worker(srv: Server, name: str, **settings: Any) -> subprocess.Popen:
    env = dict(srv.env)
    env.update({f"ASSEMBLY_SERVICE_{k.upper()}": str(v) for k, v in settings.items()})
    log = srv.tmp / f"{name}.log"
    srv.log_files.append(log)  # srv.events() reads it too
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "assembly_service", "worker",
                                 "--workers", "1"], env=env, stdout=f,
                                stderr=subprocess.STDOUT, cwd=srv.tmp)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def _fifo_job(srv: Server, c: Any, media: Media, episode: str) -> Dict[str, Any]:
    """Accepts a job on a regular file, then replaces the file by a FIFO (no writer)."""
    folder = media.root / f"fifo-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    path = folder / "raw.wav"
    shutil.copyfile(media.root / "short.wav", path)
    payload = media.payload(episode, content=str(path.relative_to(media.root)))
    r = c.post("/api/tasks/assemble", json=payload)
    assert r.status_code == 202, r.text
    path.unlink()
    os.mkfifo(path)
    return r.json()


def test_fifo_input_is_stopped_by_the_watchdog_cancel_lands_and_deadline_holds(
        server_factory, media: Media, tmp_path: Path) -> None:
    srv: Server = server_factory(workers=0, max_attempts=1, heartbeat_s=0.25, lease_s=5,
                                 abandon_after_s=1.0)
    srv.start()
    with srv.client() as c:
        # 1. cancel lands on a run blocked on a FIFO (the watchdog far away)
        job = _fifo_job(srv, c, media, "ep-fifo-cancel")
        w = _worker(srv, "worker-cancel", stall_timeout_s=600)
        try:
            srv.wait_for(c, "ep-fifo-cancel", ["running"], timeout=60)
            time.sleep(0.5)
            assert c.post("/api/tasks/assemble/ep-fifo-cancel/cancel").status_code == 202
            t0 = time.monotonic()
            st = srv.wait_for(c, "ep-fifo-cancel", ["cancelled", "dead", "succeeded"],
                              timeout=30)
            took = time.monotonic() - t0
            assert st["status"] == "cancelled" and st["job_id"] == job["job_id"], st
            assert took < 5.0, took  # heartbeat + abandon_after_s, not forever
        finally:
            _stop(w)

        # 2. the watchdog stops a run that makes no progress; the thread runs the next job
        job = _fifo_job(srv, c, media, "ep-fifo-stall")
        ok = media.payload("ep-after-stall", content="short.wav")
        w = _worker(srv, "worker-stall", stall_timeout_s=1.5)
        try:
            st = srv.wait_for(c, "ep-fifo-stall", ["dead", "succeeded", "cancelled"],
                              timeout=60)
            assert st["status"] == "dead" and st["job_id"] == job["job_id"], st
            assert st["error"]["type"] == "Stalled" and st["failures"] == 1, st["error"]
            assert c.post("/api/tasks/assemble", json=ok).status_code == 202
            st = srv.wait_for(c, "ep-after-stall", ["succeeded", "dead"], timeout=60)
            assert st["status"] == "succeeded", st
        finally:
            _stop(w)
        assert (srv.output_root / "ep-after-stall.mp3").read_bytes() == reference_output(
            media, ok, tmp_path)

        # 3. the overall deadline (scaled by the input's length) stops a slow, live run
        slow = media.payload("ep-deadline", content="talk-long.wav")
        assert c.post("/api/tasks/assemble", json=slow).status_code == 202
        w = _worker(srv, "worker-deadline", stall_timeout_s=600, deadline_base_s=2.0,
                    deadline_per_input_s=0.0)
        try:
            st = srv.wait_for(c, "ep-deadline", ["dead", "succeeded"], timeout=60)
            assert st["status"] == "dead" and st["error"]["type"] == "DeadlineExceeded", st
        finally:
            _stop(w)
    rows = {r["episode_id"]: r for r in srv.rows()}
    # 40 min of content + intro 1 s + outro 1 s + bed 3 s
    assert json.loads(rows["ep-deadline"]["payload"])["input_duration_s"] == 2405.0
    assert not (srv.output_root / "ep-deadline.mp3").exists()
    assert len(srv.events("tasks.assemble.abandoned")) >= 2  # the two FIFO runs


def test_celery_tasks_get_a_matching_time_limit(media: Media, tmp_path: Path) -> None:
    from assembly_service.celery_app import celery_config
    from assembly_service.config import Settings

    s = Settings(media_root=media.root, data_dir=tmp_path, dev_mode=True, workers=0,
                 queue="celery", broker_url="redis://127.0.0.1:1", max_input_duration_s=3600,
                 deadline_base_s=300, deadline_per_input_s=0.5, abandon_after_s=10)
    assert s.deadline_s(600) == 600.0
    assert celery_config(s)["task_time_limit"] == 300 + 0.5 * 3600 + 10 + 60
