"""A poison job ends ``dead`` after 3 attempts and stays there; a standalone worker process
runs jobs the app accepted."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import Media, Server, reference_output


def test_poison_job_is_dead_after_3_attempts_and_not_retried(server_factory, media: Media,
                                                             database_url) -> None:
    srv: Server = server_factory(workers=2, retry_base_s=0.2, poll_s=0.1,
                                 database_url=database_url)
    srv.start()
    with srv.client() as c:
        r = c.post("/api/tasks/assemble", json=media.payload("ep-poison", content="poison.wav",
                                                             words=None))
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        st = srv.wait_for(c, "ep-poison", ["dead"], timeout=60)
        assert st["attempts"] == 3 and st["failures"] == 3
        assert st["error"]["type"] == "DecodeError", st["error"]
        assert st["error"]["attempt"] == 3 and "poison.wav" in st["error"]["message"]
        dead = c.get("/api/tasks/dead").json()["jobs"]
        assert [d["job_id"] for d in dead] == [job_id]
        assert dead[0]["error"]["type"] == "DecodeError"
        # well past every backoff: no fourth attempt
        time.sleep(1.5)
        st = c.get("/api/tasks/assemble/ep-poison/status").json()
        assert st["status"] == "dead" and st["attempts"] == 3
        metrics = c.get("/metrics").text
        assert 'assembly_jobs{state="dead"} 1' in metrics
        assert 'assembly_job_failures_total{error_type="DecodeError"} 3' in metrics
    starts = [e for e in srv.events("tasks.assemble.start") if e["job_id"] == job_id]
    assert [int(e["attempt"]) for e in starts] == [1, 2, 3]
    errors = srv.events("tasks.assemble.error")
    assert [e["failures"] for e in errors] == ["1", "2", "3"]
    assert len(srv.events("tasks.assemble.dead")) == 1
    assert not (srv.output_root / "ep-poison.mp3").exists()


def test_standalone_worker_process_runs_the_apps_jobs(server_factory, media: Media,
                                                      tmp_path: Path) -> None:
    srv: Server = server_factory(workers=0)  # the app only accepts
    srv.start()
    log = tmp_path / "worker.log"
    with open(log, "wb") as f:
        worker = subprocess.Popen([sys.executable, "-m", "assembly_service", "worker",
                                   "--workers", "1"], env=srv.env, stdout=f,
                                  stderr=subprocess.STDOUT, cwd=srv.tmp)
    try:
        payload = media.payload("ep-w", content="short.wav")
        with srv.client() as c:
            assert c.post("/api/tasks/assemble", json=payload).status_code == 202
            st = srv.wait_for(c, "ep-w", ["succeeded"], timeout=120)
        assert st["attempts"] == 1
        assert (srv.output_root / "ep-w.mp3").read_bytes() == reference_output(media, payload,
                                                                               tmp_path)
        assert not srv.events("tasks.assemble.start")  # the app ran nothing itself
    finally:
        worker.send_signal(signal.SIGTERM)
        rc = worker.wait(timeout=30)
    text = log.read_text()
    assert "event=tasks.assemble.done" in text
    assert f":{worker.pid}:" in text  # the lease owner names the worker process
    assert rc == 0
