"""Job lifecycle rules beyond the happy path: retry respects output conflicts, endpoints by
job id, a cancelled job never publishes, finished jobs leave no work folder and are purged
after the retention; the PostgreSQL store runs on the database's clock with a statement
timeout; the data folder may not lie inside a root."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assembly_service import jobs
from assembly_service.app import create_app
from assembly_service.config import Settings
from assembly_service.sqlite_store import SQLiteJobStore
from assembly_service.store import JobState, now_s

from conftest import SECRET, Media, fresh_pg_database

AUTH = {"X-Tasks-Auth": SECRET.encode("utf-8")}


def _app(tmp: Path, media: Media, **changes: Any) -> TestClient:
    settings = Settings(media_root=media.root, output_root=tmp / "out", data_dir=tmp / "data",
                        auth_secret=SECRET, workers=0, **changes)
    return TestClient(create_app(settings), headers=AUTH)


def test_retry_refuses_a_job_whose_output_another_active_job_writes(media: Media,
                                                                  tmp_path: Path) -> None:
    c = _app(tmp_path, media)
    with c:
        a = c.post("/api/tasks/assemble", json=media.payload(
            "ep-a", content="short.wav", output_path="shared.mp3")).json()
        assert c.post(f"/api/tasks/jobs/{a['job_id']}/cancel").json()["status"] == "cancelled"
        b = c.post("/api/tasks/assemble", json=media.payload(
            "ep-b", content="short.wav", output_path="shared.mp3"))
        assert b.status_code == 202  # ep-a's job is no longer active
        r = c.post(f"/api/tasks/jobs/{a['job_id']}/retry")
        assert r.status_code == 409 and "shared.mp3" in r.json()["error"], r.text
        assert c.get(f"/api/tasks/jobs/{a['job_id']}").json()["status"] == "cancelled"


def test_endpoints_by_job_id_and_episode_cancel_hits_the_active_job(media: Media,
                                                                    tmp_path: Path) -> None:
    c = _app(tmp_path, media)
    with c:
        first = c.post("/api/tasks/assemble", json=media.payload("ep-x", content="short.wav"))
        first_id = first.json()["job_id"]
        store = c.app.state.service["store"]
        lease = store.lease(first_id, "w", 30)
        assert store.complete(lease, {"n": 1})  # the first job of the episode succeeded
        second = c.post("/api/tasks/assemble", json=media.payload(
            "ep-x", content="short.wav", bitrate_kbps=64)).json()
        st = c.get(f"/api/tasks/jobs/{first_id}").json()
        assert st["status"] == "succeeded" and st["job_id"] == first_id
        assert c.get("/api/tasks/jobs/nope").status_code == 404
        assert c.post("/api/tasks/jobs/nope/cancel").status_code == 404
        assert c.post(f"/api/tasks/jobs/{first_id}/cancel").status_code == 409
        # cancel the episode: its active job, whatever was created last
        r = c.post("/api/tasks/assemble/ep-x/cancel").json()
        assert r["job_id"] == second["job_id"] and r["status"] == "cancelled"
        assert c.get(f"/api/tasks/jobs/{first_id}").json()["status"] == "succeeded"


def test_a_job_cancelled_while_running_never_publishes(media: Media, tmp_path: Path) -> None:
    """The cancel is requested while the job runs and its worker's next heartbeat is far
    away, so the run ends normally: the publish is refused, the job ends cancelled and
    nothing is under the output's name."""
    from assembly_service.requests import AssembleRequest, prepare

    settings = Settings(media_root=media.root, output_root=tmp_path / "out",
                        data_dir=tmp_path / "data", dev_mode=True, workers=0,
                        heartbeat_s=30, lease_s=60)
    store = SQLiteJobStore(settings.db_path)
    prepared = prepare(AssembleRequest(**media.payload("ep-late", content="short.wav")),
                       settings)
    job = store.create_or_get("ep-late", prepared.idem_key, prepared.payload,
                              prepared.output_paths).job
    lease = store.lease(job.job_id, "w", settings.lease_s)
    store.request_cancel(job.job_id)
    out = jobs.run_leased_job(store, lease, settings)
    assert out.state == "cancelled", out
    assert store.get(job.job_id).state == JobState.CANCELLED
    final = Path(prepared.output_paths[0])
    assert not final.exists() and not list(final.parent.glob(".*.publish"))
    assert not (settings.work_root / job.job_id).exists()
    store.close()


def test_finished_jobs_leave_no_work_folder_and_are_purged_after_retention(
        media: Media, tmp_path: Path) -> None:
    settings = Settings(media_root=media.root, output_root=tmp_path / "out",
                        data_dir=tmp_path / "data", dev_mode=True, workers=0,
                        retention_days=1.0)
    c = TestClient(create_app(settings))
    with c:
        store = c.app.state.service["store"]
        # a job waiting for its retry keeps its checkpoints; cancelled now, they go
        j = c.post("/api/tasks/assemble", json=media.payload("ep-f", content="short.wav"))
        job_id = j.json()["job_id"]
        lease = store.lease(job_id, "w", 30)
        (settings.work_root / job_id / "checkpoints").mkdir(parents=True)
        store.fail(lease, {"type": "X"}, 3, 60.0)
        assert (settings.work_root / job_id).is_dir()
        assert c.post(f"/api/tasks/jobs/{job_id}/cancel").json()["status"] == "cancelled"
        assert not (settings.work_root / job_id).exists()
        # a job dead-lettered by the reaper (its worker lost once too often)
        from assembly_service.worker import WorkerPool

        k = c.post("/api/tasks/assemble", json=media.payload("ep-k", content="short.wav"))
        kid = k.json()["job_id"]
        t = now_s()
        store.lease(kid, "w", 1, now=t)
        (settings.work_root / kid / "checkpoints").mkdir(parents=True)
        pool = WorkerPool(store, settings.with_changes(max_lost_leases=1), threads=0)
        time.sleep(1.1)
        assert pool.reap() == 1
        assert store.get(kid).state == JobState.DEAD
        assert not (settings.work_root / kid).exists()
        # the sweep (reapers, at start and every purge_interval_s): the folder of a job that
        # finished while its worker died before removing it goes, and one no job owns; a
        # queued or running job's checkpoints stay
        ids = [c.post("/api/tasks/assemble", json=media.payload(ep, content="short.wav"))
               .json()["job_id"] for ep in ("ep-q", "ep-r")]
        running = store.lease(ids[1], "w", 300)
        assert running is not None
        for name in (kid, "no-such-job", *ids):
            (settings.work_root / name / "checkpoints").mkdir(parents=True)
        assert jobs.sweep_work(store, settings.with_changes(keep_work_dirs=True)) == []
        assert jobs.sweep_work(store, settings) == sorted([kid, "no-such-job"])
        assert sorted(os.listdir(settings.work_root)) == sorted(ids)
        for i in ids:
            store.request_cancel(i)
        assert store.confirm_cancel(running)
        # retention: a day after they finished, both rows go (and any folder left)
        (settings.work_root / kid).mkdir()
        assert jobs.purge_expired(store, settings, now=now_s() + 3600) == []
        purged = jobs.purge_expired(store, settings, now=now_s() + 86400 + 60)
        assert sorted(purged) == sorted([job_id, kid, *ids])
        assert store.get(job_id) is None and store.get(kid) is None
        assert not (settings.work_root / kid).exists()
        assert jobs.purge_expired(store, settings.with_changes(retention_days=0),
                                  now=now_s() + 10 ** 9) == []


def test_postgres_leases_use_the_database_clock_with_timeouts(monkeypatch) -> None:
    from assembly_service import pg_store, store as store_mod

    url = fresh_pg_database()
    s = pg_store.PostgresJobStore(url, statement_timeout_ms=500)
    try:
        job = s.create_or_get("ep-clock", "ep-clock:a", {"x": 1}, ["/o/c.mp3"]).job
        # this machine's clock is an hour behind: its lease must not look expired elsewhere
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() - 3600)
        monkeypatch.setattr(store_mod, "now_s", lambda: real() - 3600)
        lease = s.lease(job.job_id, "slow-clock", 30)
        monkeypatch.undo()
        assert lease is not None and abs(lease.expires_at - (real() + 30)) < 5
        assert s.requeue_expired(10) == []
        assert s.get(job.job_id).state == JobState.RUNNING
        conn = s._conn()
        assert conn.execute("SHOW statement_timeout").fetchone()["statement_timeout"] == "500ms"
        import psycopg

        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(2)")
        assert conn.info.get_parameters().get("keepalives", "1") == "1"
    finally:
        s.close()


def test_the_data_folder_may_not_lie_inside_a_root(media: Media, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data_dir .* must not lie inside media_root"):
        Settings(media_root=media.root, data_dir=media.root / "service-data", dev_mode=True)
    with pytest.raises(ValueError, match="must not lie inside output_root"):
        Settings(media_root=media.root, output_root=tmp_path / "out",
                 data_dir=tmp_path / "out" / "data", dev_mode=True)
    Settings(media_root=media.root, output_root=tmp_path / "out", data_dir=tmp_path / "data",
             dev_mode=True)


def test_opening_the_postgres_store_does_not_wait_for_live_writers() -> None:
    """A worker starting while the app is inside a write must not take an exclusive table
    lock (schema migrations run once, not at every start): it used to deadlock the POST."""
    import psycopg

    from assembly_service.pg_store import PostgresJobStore

    url = fresh_pg_database()
    first = PostgresJobStore(url)
    writer = psycopg.connect(url)  # a transaction in progress, holding its row locks
    writer.execute("INSERT INTO jobs (job_id, episode_id, idem_key, payload, state, "
                   "created_at, updated_at, next_attempt_at) "
                   "VALUES ('j', 'e', 'e:k', '{}', 'queued', 0, 0, 0)")
    try:
        t0 = time.monotonic()
        second = PostgresJobStore(url, lock_timeout_ms=2000)
        assert time.monotonic() - t0 < 1.5
        second.close()
    finally:
        writer.rollback()
        writer.close()
        first.close()
