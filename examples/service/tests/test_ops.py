"""What operators see: a signed completion callback, retried with backoff after failures
and never holding up the job; JSON log lines; a standalone worker's /metrics."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import httpx

from assembly_service import metrics as prom

from conftest import SECRET, Media, Server, free_port


class Receiver:
    """A callback endpoint on loopback that fails its first ``failures`` requests (500)."""

    def __init__(self, failures: int) -> None:
        self.requests: List[Dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"t": time.time(), "body": body,
                                       "headers": dict(self.headers), "path": self.path})
                code = 500 if len(outer.requests) <= failures else 204
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_a: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/assembly"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def _json_lines(path: Path) -> List[Dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            obj = json.loads(line)  # every line is one JSON object
            assert isinstance(obj, dict) and obj.get("severity") and obj.get("time"), line
            out.append(obj)
    return out


def test_signed_callback_is_retried_json_logs_and_worker_metrics(
        server_factory, media: Media, tmp_path: Path) -> None:
    receiver = Receiver(failures=2)
    srv: Server = server_factory(workers=0, poll_s=0.2, callback_retry_base_s=0.3,
                                 log_format="json")
    srv.start()
    port = free_port()
    env = dict(srv.env)
    env.update({"ASSEMBLY_SERVICE_METRICS_PORT": str(port)})
    wlog = tmp_path / "worker.log"
    with open(wlog, "wb") as f:
        worker = subprocess.Popen([sys.executable, "-m", "assembly_service", "worker",
                                   "--workers", "1"], env=env, stdout=f,
                                  stderr=subprocess.STDOUT, cwd=srv.tmp)
    try:
        with srv.client() as c:
            payload = media.payload("ep-cb", content="short.wav", callback_url=receiver.url)
            bad = c.post("/api/tasks/assemble", json={**payload, "episode_id": "ep-cb2",
                                                      "callback_url": "file:///etc/passwd"})
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "callback_url"
            r = c.post("/api/tasks/assemble", json=payload)
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            st = srv.wait_for(c, "ep-cb", ["succeeded", "dead"], timeout=120)
            assert st["status"] == "succeeded", st
            deadline = time.monotonic() + 30
            while len(receiver.requests) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # no delivery after the one that was accepted
            m = prom.parse(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        receiver.close()
    reqs = receiver.requests
    assert len(reqs) == 3, [r["t"] for r in reqs]
    # the job did not wait for its callback: it had finished before the first delivery
    assert st["finished_at"] <= reqs[0]["t"]
    # backoff: 0.3 s then 0.6 s (plus a poll of 0.2 s each)
    gaps = [b["t"] - a["t"] for a, b in zip(reqs, reqs[1:])]
    assert gaps[0] >= 0.25 and gaps[1] >= 0.55, gaps
    for req in reqs:
        h = {k.lower(): v for k, v in req["headers"].items()}
        expected = "sha256=" + hmac.new(SECRET.encode(), h["x-assembly-timestamp"].encode()
                                        + b"." + req["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(h["x-assembly-signature"], expected)
        body = json.loads(req["body"])
        assert body["job_id"] == job_id and body["status"] == "succeeded"
        assert body["result"]["sha256"] == st["result"]["sha256"] and "words" not in body["result"]
    assert req["path"] == "/hooks/assembly"
    # the worker's metrics endpoint
    assert m['assembly_job_attempts_total{outcome="succeeded"}'] == 1
    assert m['assembly_callbacks_total{outcome="retry"}'] == 2
    assert m['assembly_callbacks_total{outcome="delivered"}'] == 1
    assert m['assembly_jobs{state="succeeded"}'] == 1
    # JSON logs, one object per line, with the job's identity and stage
    wl = _json_lines(wlog)
    sl = _json_lines(srv.log_files[0])
    stages = [e for e in wl if e["message"] == "tasks.assemble.stage"]
    assert {e["stage"] for e in stages} >= {"load", "render"}
    assert all(e["job_id"] == job_id and e["episode_id"] == "ep-cb" and e["attempt"] == 1
               for e in stages)
    assert [e["delivery"] for e in wl if e["message"].startswith("tasks.callback.")] == [1, 2, 3]
    assert [e["severity"] for e in wl if e["message"] == "tasks.callback.failed"] == [
        "WARNING", "WARNING"]
    assert any(e["message"] == "tasks.assemble.dispatched" and e["job_id"] == job_id
               for e in sl)
