"""The job function without the web app (the way a Celery task will call it): a direct run,
and a stale worker whose lease was taken over (fencing: it publishes nothing)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from assembly_service.config import Settings
from assembly_service.jobs import run_leased_job
from assembly_service.requests import AssembleRequest, prepare
from assembly_service.sqlite_store import SQLiteJobStore
from assembly_service.store import JobState, now_s

from conftest import Media, reference_output


def _setup(tmp_path: Path, media: Media, episode: str):
    settings = Settings(media_root=media.root, output_root=tmp_path / "out",
                        data_dir=tmp_path / "data", dev_mode=True, heartbeat_s=0.1, lease_s=5)
    store = SQLiteJobStore(settings.db_path)
    payload = media.payload(episode, content="short.wav")
    prepared = prepare(AssembleRequest(**payload), settings)
    job = store.create_or_get(episode, prepared.idem_key, prepared.payload,
                              prepared.output_paths).job
    return settings, store, payload, job


def test_run_leased_job_outside_the_app(tmp_path: Path, media: Media) -> None:
    settings, store, payload, job = _setup(tmp_path, media, "ep-direct")
    lease = store.lease(job.job_id, "celery-worker-1", settings.lease_s)
    assert lease is not None and lease.fence == 1
    assert store.lease(job.job_id, "celery-worker-2", settings.lease_s) is None  # taken
    outcome = run_leased_job(store, lease, settings)
    assert outcome.state == "succeeded", outcome.error
    done = store.get(job.job_id)
    assert done.state == JobState.SUCCEEDED and done.lease_owner is None
    out = tmp_path / "out" / "ep-direct.mp3"
    data = out.read_bytes()
    assert done.result["sha256"] == hashlib.sha256(data).hexdigest()
    assert data == reference_output(media, payload, tmp_path)
    assert done.result["stages_resumed"] == []
    assert not (settings.work_root / job.job_id).exists()
    store.close()


def test_a_stale_worker_publishes_nothing(tmp_path: Path, media: Media) -> None:
    settings, store, payload, job = _setup(tmp_path, media, "ep-stale")
    stale = store.lease(job.job_id, "worker-a", 1.0)
    assert stale is not None
    # worker-a stalls; its lease runs out and the job goes to worker-b
    later = now_s() + 5
    assert store.requeue_expired(10, now=later)[0].job.state == JobState.QUEUED
    current = store.lease(job.job_id, "worker-b", settings.lease_s, now=later)
    assert current is not None and current.fence == stale.fence + 1
    outcome = run_leased_job(store, stale, settings)
    assert outcome.state == "lost"
    assert not (tmp_path / "out" / "ep-stale.mp3").exists()
    row = store.get(job.job_id)
    assert row.state == JobState.RUNNING and row.lease_owner == "worker-b"
    assert row.fence == current.fence and row.result is None
    # the current holder runs and commits
    outcome = run_leased_job(store, current, settings)
    assert outcome.state == "succeeded"
    assert (tmp_path / "out" / "ep-stale.mp3").read_bytes() == reference_output(
        media, payload, tmp_path)
    store.close()
