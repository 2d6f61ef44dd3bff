"""Scale-out on PostgreSQL: two standalone worker processes share one store and one queue."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from assembly_service import logs as logs_mod

from conftest import Media, Server, fresh_pg_database, reference_output


def test_two_worker_processes_run_20_jobs_each_exactly_once(server_factory, media: Media,
                                                             tmp_path: Path) -> None:
    srv: Server = server_factory(workers=0, database_url=fresh_pg_database(), poll_s=0.1)
    srv.start()
    workers, logs = [], []
    for n in range(2):
        log = tmp_path / f"worker-{n}.log"
        logs.append(log)
        with open(log, "wb") as f:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "assembly_service", "worker", "--workers", "1"],
                env=srv.env, stdout=f, stderr=subprocess.STDOUT, cwd=srv.tmp))
    try:
        payloads = {f"ep-s{i}": media.payload(f"ep-s{i}", content="short.wav")
                    for i in range(20)}
        with srv.client() as c:
            ids = {}
            for episode, payload in payloads.items():
                r = c.post("/api/tasks/assemble", json=payload)
                assert r.status_code == 202, r.text
                ids[episode] = r.json()["job_id"]
            for episode in payloads:
                st = srv.wait_for(c, episode, ["succeeded"], timeout=240)
                assert st["attempts"] == 1 and st["job_id"] == ids[episode]
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        rcs = [w.wait(timeout=30) for w in workers]
    assert rcs == [0, 0]
    rows = srv.rows()
    assert len(rows) == 20
    assert all(r["state"] == "succeeded" and r["attempts"] == 1 and r["fence"] == 1
               and r["lost_leases"] == 0 for r in rows)
    # exactly one start and one commit per job, across both processes
    starts: Counter = Counter()
    dones: Counter = Counter()
    per_worker = []
    for log in logs:
        events = [logs_mod.parse_line(line) for line in log.read_text().splitlines()
                  if "event=" in line]
        mine = [e["job_id"] for e in events if e.get("event") == "tasks.assemble.start"]
        per_worker.append(len(mine))
        starts.update(mine)
        dones.update(e["job_id"] for e in events if e.get("event") == "tasks.assemble.done")
    print(f"jobs per worker process: {per_worker}")
    assert set(starts) == set(ids.values()) and set(starts.values()) == {1}
    assert set(dones) == set(ids.values()) and set(dones.values()) == {1}
    assert all(n > 0 for n in per_worker), per_worker  # both processes took jobs
    assert not srv.events("tasks.assemble.start")  # the app ran nothing itself
    expected = reference_output(media, payloads["ep-s0"], tmp_path)
    for episode in payloads:
        assert (srv.output_root / f"{episode}.mp3").read_bytes() == expected, episode
