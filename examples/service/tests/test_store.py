"""Both job stores on their own (SQLite, PostgreSQL): idempotency, leases, fencing, retries,
dead letters.

Times are passed explicitly (``now=``) where leases expire, so nothing here sleeps.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from assembly_service.sqlite_store import SQLiteJobStore
from assembly_service.store import Conflict, InvalidTransition, JobState, JobStore, now_s

from conftest import fresh_pg_database


def _open(kind: str, tmp_path: Path, url: str = "") -> JobStore:
    if kind == "sqlite":
        return SQLiteJobStore(tmp_path / "jobs.sqlite3")
    from assembly_service.pg_store import PostgresJobStore

    return PostgresJobStore(url)


@pytest.fixture(params=["sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture()
def pg_url(kind: str) -> str:
    return fresh_pg_database() if kind == "postgres" else ""


@pytest.fixture()
def store(kind: str, pg_url: str, tmp_path: Path) -> JobStore:
    s = _open(kind, tmp_path, pg_url)
    yield s
    s.close()


def _new(store: JobStore, episode: str = "ep-1", digest: str = "a", out: str = "/o/1.mp3"):
    return store.create_or_get(episode, f"{episode}:{digest}", {"episode_id": episode,
                                                                "d": digest}, [out])


def test_wal_mode_and_schema(tmp_path: Path) -> None:
    store = SQLiteJobStore(tmp_path / "jobs.sqlite3")
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
    store.close()


def test_create_is_idempotent_and_conflicts_name_the_field(store: JobStore) -> None:
    first = _new(store)
    again = _new(store)
    assert first.created and not again.created
    assert again.job.job_id == first.job.job_id
    assert again.job.state == JobState.QUEUED
    with pytest.raises(Conflict) as e:
        _new(store, digest="b", out="/o/other.mp3")  # same episode, other payload, active
    assert e.value.field_name == "episode_id" and e.value.job.job_id == first.job.job_id
    with pytest.raises(Conflict) as e:
        _new(store, episode="ep-2", out="/o/1.mp3")  # another episode writing the same file
    assert e.value.field_name == "output_path"
    assert store.counts().by_state["queued"] == 1


def test_concurrent_creates_make_one_job(kind: str, pg_url: str, tmp_path: Path) -> None:
    _open(kind, tmp_path, pg_url).close()
    results, barrier = [], threading.Barrier(10)

    def post() -> None:
        s = _open(kind, tmp_path, pg_url)  # a connection per "process"
        barrier.wait()
        results.append(_new(s))
        s.close()

    threads = [threading.Thread(target=post) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.job.job_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    check = _open(kind, tmp_path, pg_url)
    assert sum(check.counts().by_state.values()) == 1
    check.close()


def test_fencing_token_stops_a_stale_worker(store: JobStore) -> None:
    job = _new(store).job
    t = now_s()
    a = store.lease_next("worker-a", 10, now=t)
    assert a is not None and a.fence == 1 and a.job.attempts == 1
    assert store.lease_next("worker-b", 10, now=t) is None  # leased: nobody else gets it
    # worker-a stalls past its lease; the job is re-queued and leased by worker-b
    moved = store.requeue_expired(max_lost_leases=10, now=t + 11)
    assert [m.job.state for m in moved] == [JobState.QUEUED]
    assert moved[0].job.lost_leases == 1 and moved[0].previous_owner == "worker-a"
    b = store.lease_next("worker-b", 10, now=t + 11)
    assert b is not None and b.fence == 2 and b.job.attempts == 2
    # every write of the stale lease is refused; it can record no publish intent
    assert not store.heartbeat(a, 10).held
    assert not store.save_progress(a, "edit", 0.5)
    assert store.begin_publish(a, {"x": 1}, [("/o/.1.tmp", "/o/1.mp3")]) == "lost"
    assert not store.complete(a, {"x": 1})
    assert store.fail(a, {"type": "X"}, 3, 1.0) is None
    assert not store.confirm_cancel(a) and not store.release(a)
    assert store.get(job.job_id).publish is None
    # the current lease works
    assert store.heartbeat(b, 10).held
    assert store.save_progress(b, "master", 0.8)
    assert store.begin_publish(b, {"x": 2}, [("/o/.1.tmp", "/o/1.mp3")]) == "recorded"
    assert store.get(job.job_id).publish == {"files": [["/o/.1.tmp", "/o/1.mp3"]],
                                             "result": {"x": 2}}
    assert store.finish_publish(job.job_id)
    done = store.get(job.job_id)
    assert done.state == JobState.SUCCEEDED and done.result == {"x": 2}
    assert done.lease_owner is None and done.progress == 1.0 and done.publish is None
    assert not store.finish_publish(job.job_id)  # exactly once
    assert not store.complete(b, {"x": 3})


def test_a_recorded_publish_is_finished_never_requeued(store: JobStore) -> None:
    _new(store)
    t = now_s()
    lease = store.lease_next("w", 10, now=t)
    assert store.begin_publish(lease, {"x": 1}, [("/o/.t", "/o/1.mp3")]) == "recorded"
    # the worker dies before finishing: its lease expires, the job is not run again
    assert store.interrupted_publishes(now=t + 5) == []
    assert store.requeue_expired(10, now=t + 11) == []
    assert store.lease_next("w2", 10, now=t + 11) is None
    [job] = store.interrupted_publishes(now=t + 11)
    assert job.job_id == lease.job_id and job.publish["files"] == [["/o/.t", "/o/1.mp3"]]
    assert store.finish_publish(job.job_id)
    assert store.get(job.job_id).state == JobState.SUCCEEDED
    assert store.interrupted_publishes(now=t + 11) == []


def test_a_cancel_request_stops_the_publish(store: JobStore) -> None:
    _new(store)
    lease = store.lease_next("w", 10)
    store.request_cancel(lease.job_id)
    assert store.begin_publish(lease, {"x": 1}, [("/o/.t", "/o/1.mp3")]) == "cancel_requested"
    job = store.get(lease.job_id)
    assert job.state == JobState.RUNNING and job.publish is None and job.result is None
    assert store.heartbeat(lease, 10).held  # still ours: the worker confirms the cancel
    assert store.confirm_cancel(lease)
    assert store.get(lease.job_id).state == JobState.CANCELLED


def test_failures_retry_with_delay_then_dead(store: JobStore) -> None:
    job = _new(store).job
    t = now_s()
    for attempt in (1, 2, 3):
        lease = store.lease_next("w", 10, now=t)
        assert lease is not None and lease.job.attempts == attempt
        updated = store.fail(lease, {"type": "DecodeError", "message": "bad"}, 3, 5.0)
        if attempt < 3:
            assert updated.state == JobState.FAILED and updated.failures == attempt
            t = updated.next_attempt_at
            assert t - updated.updated_at == pytest.approx(5.0)
            assert store.lease_next("w", 10, now=t - 0.1) is None  # not before the delay
        else:
            assert updated.state == JobState.DEAD and updated.failures == 3
    assert store.lease_next("w", 10, now=t + 3600) is None
    dead = store.list_dead()
    assert [d.job_id for d in dead] == [job.job_id]
    assert dead[0].error["type"] == "DecodeError" and dead[0].attempts == 3
    # an operator may put it back; counters reset, the fence keeps counting
    again = store.retry(job.job_id)
    assert again.state == JobState.QUEUED and again.failures == 0
    lease = store.lease_next("w", 10, now=t + 3600)
    assert lease.fence == 4


def test_lost_leases_cap_and_cancel_of_a_dead_worker(store: JobStore) -> None:
    _new(store)
    t = now_s()
    for i in range(1, 4):
        assert store.lease_next(f"w{i}", 1, now=t) is not None
        t += 2
        moved = store.requeue_expired(max_lost_leases=3, now=t)
        assert moved[0].job.lost_leases == i
    assert moved[0].job.state == JobState.DEAD
    assert moved[0].job.error["type"] == "WorkerLost"

    other = _new(store, episode="ep-2", out="/o/2.mp3").job
    lease = store.lease_next("w", 1, now=t)
    assert lease.job_id == other.job_id
    assert store.request_cancel(other.job_id).cancel_requested
    assert store.heartbeat(lease, 1, now=t).cancel_requested
    moved = store.requeue_expired(max_lost_leases=3, now=t + 2)  # worker died before confirming
    assert moved[0].job.state == JobState.CANCELLED


def test_cancel_rules(store: JobStore) -> None:
    queued = _new(store).job
    assert store.request_cancel(queued.job_id).state == JobState.CANCELLED
    assert store.request_cancel(queued.job_id).state == JobState.CANCELLED  # idempotent
    job = _new(store, episode="ep-2", out="/o/2.mp3").job
    lease = store.lease_next("w", 10)
    assert store.complete(lease, {})
    with pytest.raises(InvalidTransition):
        store.request_cancel(job.job_id)
    with pytest.raises(InvalidTransition):
        store.retry(job.job_id)


def test_release_requeues_without_a_failure(store: JobStore) -> None:
    _new(store)
    lease = store.lease_next("w", 10)
    assert store.release(lease)
    job = store.get(lease.job_id)
    assert job.state == JobState.QUEUED and job.failures == 0 and job.attempts == 1
    assert store.lease_next("w2", 10).fence == 2


def test_a_new_payload_after_the_job_finished_is_a_new_job(store: JobStore) -> None:
    first = _new(store).job
    lease = store.lease_next("w", 10)
    assert store.complete(lease, {"n": 1})
    second = _new(store, digest="b")
    assert second.created and second.job.job_id != first.job_id
    assert store.latest_for_episode("ep-1").job_id == second.job.job_id


def test_concurrent_leases_never_share_a_job(kind: str, pg_url: str, tmp_path: Path) -> None:
    """8 threads, each with its own store (connections), lease 30 jobs as fast as they can:
    every job is leased exactly once (SKIP LOCKED on PostgreSQL, the write lock on SQLite)."""
    setup = _open(kind, tmp_path, pg_url)
    for i in range(30):
        _new(setup, episode=f"ep-{i}", out=f"/o/{i}.mp3")
    leased: list = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        s = _open(kind, tmp_path, pg_url)
        barrier.wait()
        while True:
            lease = s.lease_next(f"w{n}", 10)
            if lease is None:
                break
            with lock:
                leased.append(lease.job_id)
            assert s.complete(lease, {"by": n})
        s.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(leased) == 30 and len(set(leased)) == 30
    assert setup.counts().by_state["succeeded"] == 30
    setup.close()


def test_the_outbox_owes_a_delivery_for_every_ready_job_until_it_is_sent(store: JobStore
                                                                         ) -> None:
    job = _new(store).job  # committed; the app died before sending it
    assert [j.job_id for j in store.owed_dispatches()] == [job.job_id]
    store.mark_dispatched(job.job_id)
    assert store.owed_dispatches() == []
    t = now_s()
    lease = store.lease_next("w", 10, now=t)
    assert store.owed_dispatches(now=t) == []  # running: nothing to send
    store.requeue_expired(10, now=t + 11)  # its worker died: queued again, owed again
    assert [j.job_id for j in store.owed_dispatches(now=t + 11)] == [job.job_id]
    store.mark_dispatched(job.job_id)
    lease = store.lease_next("w", 10, now=t + 11)
    failed = store.fail(lease, {"type": "X"}, 3, 5.0)  # a retry owes a delivery when due
    assert store.owed_dispatches(now=failed.next_attempt_at - 1) == []
    assert [j.job_id for j in store.owed_dispatches(now=failed.next_attempt_at)] == [job.job_id]
