"""Load and duplicate delivery against a real server process."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import List

import httpx

from conftest import Media, Server, reference_output


def test_healthz_p99_under_50_ms_while_8_assemblies_run(server_factory, media: Media) -> None:
    srv: Server = server_factory()  # default worker count: one per core
    srv.start()
    contents = ("talk-a.wav", "talk-b.wav", "talk-c.wav", "short.wav")
    with srv.client() as c:
        for i in range(8):
            r = c.post("/api/tasks/assemble",
                       json=media.payload(f"ep-l{i}", content=contents[i % 4]))
            assert r.status_code == 202
        srv.wait_for(c, "ep-l0", ["running"])

    latencies: List[float] = []
    failures: List[str] = []
    busy_seen: List[int] = []
    lock = threading.Lock()

    def hammer(n: int) -> None:
        local, errs = [], []
        with httpx.Client(base_url=srv.url, timeout=10.0) as hc:
            for _ in range(n):
                t0 = time.perf_counter()
                try:
                    r = hc.get("/healthz")
                    ok = r.status_code == 200 and r.json() == {"ok": True}
                except httpx.HTTPError as e:
                    ok = False
                    errs.append(repr(e))
                local.append(time.perf_counter() - t0)
                if not ok:
                    errs.append("bad response")
        with lock:
            latencies.extend(local)
            failures.extend(errs)

    def watch(stop: threading.Event) -> None:
        while not stop.is_set():
            busy_seen.append(sum(r["state"] == "running" for r in srv.rows()))
            stop.wait(0.25)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    # two clients at once (a prober and a status poller, say), 500 requests each
    threads = [threading.Thread(target=hammer, args=(500,)) for _ in range(2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    wall = time.monotonic() - t0
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"/healthz x{len(latencies)} in {wall:.1f} s: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms; jobs running while measured: {busy_seen}")
    assert len(latencies) == 1000 and not failures, failures[:5]
    assert max(busy_seen) >= 1  # the assemblies really ran during the measurement
    assert p99 < 50.0

    with srv.client() as c:
        for i in range(8):
            srv.wait_for(c, f"ep-l{i}", ["succeeded"], timeout=240)


def test_same_job_delivered_10_times_at_once_runs_once(server_factory, media: Media,
                                                       tmp_path: Path, database_url) -> None:
    srv: Server = server_factory(database_url=database_url)
    srv.start()
    payload = media.payload("ep-dup", content="talk-c.wav")
    barrier = threading.Barrier(10)
    responses: List[httpx.Response] = []
    lock = threading.Lock()

    def deliver() -> None:
        with srv.client() as c:
            barrier.wait()
            r = c.post("/api/tasks/assemble", json=payload)
        with lock:
            responses.append(r)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in responses] == [202] * 10
    ids = {r.json()["job_id"] for r in responses}
    assert len(ids) == 1
    assert sum(r.json()["created"] for r in responses) == 1
    (job_id,) = ids
    with srv.client() as c:
        st = srv.wait_for(c, "ep-dup", ["succeeded"])
        # and once more after it finished: still the same job, not run again
        again = c.post("/api/tasks/assemble", json=payload).json()
    assert st["job_id"] == job_id and again["job_id"] == job_id and st["attempts"] == 1
    assert len(srv.rows()) == 1
    starts = [e for e in srv.events("tasks.assemble.start") if e["job_id"] == job_id]
    assert len(starts) == 1
    srv.wait_work_cleaned()
    assert len(srv.events("tasks.assemble.done")) == 1
    outputs = sorted(p.name for p in srv.output_root.iterdir())
    assert outputs == ["ep-dup.mp3"]
    assert (srv.output_root / "ep-dup.mp3").read_bytes() == reference_output(media, payload,
                                                                             tmp_path)


def test_healthz_answers_while_the_store_is_locked(server_factory, media: Media) -> None:
    """Liveness never waits for the store: a POST stuck on SQLite's write lock does not
    delay /healthz (the POST completes once the lock is gone)."""
    srv: Server = server_factory(workers=1)
    srv.start()
    lock = sqlite3.connect(srv.data_dir / "jobs.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # hold the single writer lock
    result: List[httpx.Response] = []

    def post() -> None:
        with srv.client() as c:
            result.append(c.post("/api/tasks/assemble", json=media.payload("ep-lock",
                                                                           content="short.wav")))

    poster = threading.Thread(target=post)
    poster.start()
    try:
        time.sleep(0.3)
        assert not result  # the POST waits for the lock ...
        with httpx.Client(base_url=srv.url, timeout=2.0) as hc:
            for _ in range(50):  # ... while liveness answers
                assert hc.get("/healthz").status_code == 200
        assert not result
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    poster.join(timeout=30)
    assert result and result[0].status_code == 202
    with srv.client() as c:
        srv.wait_for(c, "ep-lock", ["succeeded"])
