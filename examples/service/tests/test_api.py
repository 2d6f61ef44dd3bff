"""The HTTP API against a real server process: the happy path, cancel, probes, metrics, and
every kind of rejected request (which must leave the store and the output folder as they
were)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import httpx
import podcast_assembly as pa

from assembly_service import metrics as prom

from conftest import SECRET, Media, Server, reference_output


def tree(root: Path) -> List[Tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of everything under ``root``."""
    out = []
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            out.append((str(p.relative_to(root)), st.st_size, st.st_mtime_ns))
    return sorted(out)


def test_accepts_in_milliseconds_runs_and_reports(server_factory, media: Media,
                                                  tmp_path: Path) -> None:
    srv: Server = server_factory(workers=1)
    srv.start()
    with srv.client() as c:
        payload = media.payload("ep-happy", content="talk-b.wav",
                                cleaned_output_path="clean/ep-happy.mp3")
        t0 = time.perf_counter()
        r = c.post("/api/tasks/assemble", json=payload)
        post_ms = (time.perf_counter() - t0) * 1000
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["ok"] is True and body["episode_id"] == "ep-happy" and body["created"]
        assert body["status"] in ("queued", "running")
        print(f"POST /api/tasks/assemble answered 202 in {post_ms:.1f} ms")
        assert post_ms < 2000  # the job itself takes seconds; the answer does not wait for it

        seen_stages = set()
        running_progress = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st = c.get("/api/tasks/assemble/ep-happy/status").json()
            if st["stage"]:
                seen_stages.add(st["stage"])
            if st["status"] == "running" and st["stage"]:
                running_progress.append(st["progress"])
            if st["status"] == "succeeded":
                break
            time.sleep(0.05)
        assert st["status"] == "succeeded", st
        assert st["job_id"] == body["job_id"] and st["attempts"] == 1 and st["error"] is None
        assert st["progress"] == 1.0
        res = st["result"]
        out = Path(res["output_path"])
        assert out == (srv.output_root / "ep-happy.mp3").resolve()
        data = out.read_bytes()
        assert res["size_bytes"] == len(data)
        assert res["sha256"] == hashlib.sha256(data).hexdigest()
        assert data == reference_output(media, payload, tmp_path)
        assert Path(res["cleaned_output_path"]).is_file()
        assert abs(res["loudness"]["integrated_lufs"] - -16.0) < 1.0
        assert res["loudness"]["true_peak_dbtp"] <= -0.9
        # the cleanup options arrived: every "um" removed, every pause over 1 s shortened, and
        # the silence before the first word and after the last trimmed to 0.5 s (trimEdges)
        words = media.words["talk-b.wav"]
        ums = sum(w["word"] == "um" for w in words)
        silences = [b["start"] - a["end"] for a, b in zip(words, words[1:])]
        edges = [words[0]["start"], 96.0 - words[-1]["end"]]
        long_gaps = sum(g > 1.0 for g in silences)  # maxPauseSeconds
        counts = res["counts"]
        assert counts["fillers_removed"] == ums and counts["pauses_shortened"] == long_gaps
        trimmed = sum(max(0.0, e - 0.5) for e in edges)
        assert abs(counts["edge_silence_removed_s"] - trimmed) < 0.05, (counts, edges)
        assert counts["source_duration_s"] == 96.0
        # intro 1 s + cleaned content + outro 1 s, overlapping by 0.5 s and 0.3 s
        cleaned_ms = counts["output_duration_s"] * 1000
        print(f"episode {res['duration_ms']} ms, cleaned content {cleaned_ms:.1f} ms of 96000 "
              f"({ums} fillers, {long_gaps} long pauses)")
        assert abs(res["duration_ms"] - (1000 + cleaned_ms + 1000 - 500 - 300)) <= 2
        assert "words" not in res
        full = c.get("/api/tasks/assemble/ep-happy/status",
                     params={"include_words": "true"}).json()
        assert len(full["result"]["words"]) > 10
        # Progress was visible while it ran: a stage and a fraction short of done. (The stages
        # before render take under 0.1 s here, one tick of the worker's monitor, so which of
        # them a poll catches is timing; the stage events below name every stage.)
        assert seen_stages and any(0.0 <= p < 1.0 for p in running_progress), (
            seen_stages, running_progress)

        # a repeat of the finished job maps to it and does not run again
        again = c.post("/api/tasks/assemble", json=payload).json()
        assert again["job_id"] == body["job_id"] and again["status"] == "succeeded"
        assert again["created"] is False
        # a new payload for a finished episode is a new job; this one asks for two more
        # files: a 64 kbit/s mono MP3 at -19 LUFS and a FLAC with a -2 dBTP ceiling
        extras = [{"path": "ep-happy-mono.mp3", "channels": 1, "bitrate_kbps": 64,
                   "target_lufs": -19.0},
                  {"path": "archive/ep-happy.flac", "format": "flac", "true_peak_dbtp": -2.0}]
        other = c.post("/api/tasks/assemble", json={**payload, "bitrate_kbps": 64,
                                                    "extra_outputs": extras}).json()
        assert other["job_id"] != body["job_id"] and other["created"] is True
        # ... and while that one is active, a third payload conflicts
        r = c.post("/api/tasks/assemble", json={**payload, "bitrate_kbps": 80})
        assert r.status_code == 409 and r.json()["job_id"] == other["job_id"]
        st = srv.wait_for(c, "ep-happy", ["succeeded"])
        srv.wait_work_cleaned()  # the attempt's bookkeeping is over
        outs = st["result"]["outputs"]
        root = srv.output_root.resolve()
        assert [o["output_path"] for o in outs] == [
            str(root / "ep-happy.mp3"), str(root / "ep-happy-mono.mp3"),
            str(root / "archive" / "ep-happy.flac")]
        assert st["result"]["sha256"] == outs[0]["sha256"]
        for o, (target, ceiling, channels) in zip(outs, [(-16.0, -1.0, 2), (-19.0, -1.0, 1),
                                                         (-16.0, -2.0, 2)]):
            data = Path(o["output_path"]).read_bytes()
            assert o["sha256"] == hashlib.sha256(data).hexdigest()
            assert o["size_bytes"] == len(data) and o["channels"] == channels
            assert pa.probe(o["output_path"])["channels"] == channels
            assert (o["target_lufs"], o["ceiling_dbtp"]) == (target, ceiling)
            print(f"{Path(o['output_path']).name}: {o['loudness']['integrated_lufs']:.2f} LUFS, "
                  f"{o['loudness']['true_peak_dbtp']:.2f} dBTP, {o['encodes']} encode(s)")
            assert abs(o["loudness"]["integrated_lufs"] - target) <= 0.2, o
            assert o["loudness"]["true_peak_dbtp"] <= ceiling, o

        m = prom.parse(c.get("/metrics").text)
        assert m['assembly_jobs{state="succeeded"}'] == 2
        assert m['assembly_job_attempts_total{outcome="succeeded"}'] == 2
        assert m['assembly_jobs_dispatched_total{new="true"}'] == 2
        assert m['assembly_jobs_dispatched_total{new="false"}'] == 1
        assert m['assembly_stage_duration_seconds_count{stage="render"}'] == 2
        assert m["assembly_queue_depth"] == 0
        assert c.get("/readyz").json()["ok"] is True
    done = srv.events("tasks.assemble.done")
    assert len(done) == 2 and all(int(e["duration_ms"]) > 0 for e in done)
    stages = {e["stage"] for e in srv.events("tasks.assemble.stage")}
    assert {"load", "analyze", "edit", "arrange", "master", "render"} <= stages
    dispatched = srv.events("tasks.assemble.dispatched")
    assert [e["new"] for e in dispatched] == ["true", "false", "true"]
    assert all(e["episode_id"] == "ep-happy" and e["job_id"] and "duration_ms" in e
               for e in dispatched)


def test_cancel_queued_and_running_jobs(server_factory, media: Media, database_url) -> None:
    srv: Server = server_factory(workers=1, heartbeat_s=0.5, lease_s=5,
                                 database_url=database_url)
    srv.start()
    with srv.client() as c:
        a = c.post("/api/tasks/assemble", json=media.payload("ep-c1")).json()
        b = c.post("/api/tasks/assemble", json=media.payload("ep-c2", content="talk-b.wav"))
        assert b.status_code == 202
        # the second job waits behind the first (one worker): cancelled at once
        r = c.post("/api/tasks/assemble/ep-c2/cancel")
        assert r.status_code == 202 and r.json()["status"] == "cancelled"
        st = srv.wait_for(c, "ep-c1", ["running"])
        deadline = time.monotonic() + 60
        while st["progress"] < 0.05 and time.monotonic() < deadline:
            st = c.get("/api/tasks/assemble/ep-c1/status").json()
            time.sleep(0.02)
        r = c.post("/api/tasks/assemble/ep-c1/cancel")
        assert r.status_code == 202 and r.json()["status"] in ("cancelling", "cancelled")
        st = srv.wait_for(c, "ep-c1", ["cancelled", "succeeded"], timeout=30)
        assert st["status"] == "cancelled" and st["job_id"] == a["job_id"]
        assert st["result"] is None
        assert not (srv.output_root / "ep-c1.mp3").exists()
        srv.wait_work_cleaned()  # the cancelled job's work folder is removed
        # cancel of a cancelled job is idempotent; of a missing episode 404
        assert c.post("/api/tasks/assemble/ep-c1/cancel").json()["status"] == "cancelled"
        assert c.post("/api/tasks/assemble/nope/cancel").status_code == 404
        assert c.get("/api/tasks/assemble/nope/status").status_code == 404
        # an operator can put a cancelled job back; it then runs to the end
        r = c.post(f"/api/tasks/jobs/{a['job_id']}/retry")
        assert r.status_code == 202
        st = srv.wait_for(c, "ep-c1", ["succeeded"])
        assert st["job_id"] == a["job_id"]
        # cancelling a finished job is a conflict
        assert c.post("/api/tasks/assemble/ep-c1/cancel").status_code == 409
    assert len(srv.events("tasks.assemble.cancelled")) == 1


def _chunks(total: int) -> Iterator[bytes]:
    piece = b" " * 65536
    sent = 0
    yield b'{"episode_id": "ep-big", "content_path": "talk-a.wav", "pad": "'
    while sent < total:
        yield piece
        sent += len(piece)
    yield b'"}'


def test_rejected_requests_leave_store_and_outputs_unchanged(server_factory, media: Media,
                                                            tmp_path: Path) -> None:
    srv: Server = server_factory(workers=1, max_body_bytes=1024 * 1024)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.wav").write_bytes((media.root / "short.wav").read_bytes())
    link_in = media.root / "link-out.wav"
    if not link_in.exists():
        link_in.symlink_to(outside / "secret.wav")
    srv.output_root.mkdir(parents=True)
    (srv.output_root / "escape").symlink_to(outside, target_is_directory=True)
    (srv.output_root / "in.wav").write_bytes((media.root / "short.wav").read_bytes())
    srv.start()
    with srv.client() as c:
        # one accepted job first, so "unchanged" covers a non-empty store and output folder
        ok = c.post("/api/tasks/assemble", json=media.payload("ep-ok", content="short.wav"))
        assert ok.status_code == 202
        srv.wait_for(c, "ep-ok", ["succeeded"])
        srv.wait_work_cleaned()
        before = (srv.rows(), tree(srv.output_root), tree(srv.data_dir / "work"),
                  tree(outside))

        good = media.payload("ep-bad", content="short.wav")
        cases: List[Tuple[str, Dict[str, Any], int, str]] = []

        def case(name: str, status: int, field: str, **kw: Any) -> None:
            cases.append((name, kw, status, field))

        case("no secret", 401, "", json=good, headers={"X-Tasks-Auth": ""})
        case("wrong secret", 401, "", json=good, headers={"X-Tasks-Auth": "test-secret-e"})
        case("malformed JSON", 400, "body", content=b'{"episode_id": "x", ',
             headers={"content-type": "application/json"})
        case("not an object", 422, "body", json=[1, 2])
        case("missing field", 422, "content_path",
             json={k: v for k, v in good.items() if k != "content_path"})
        case("wrong type", 422, "bitrate_kbps", json={**good, "bitrate_kbps": "fast"})
        case("out of range", 422, "target_lufs", json={**good, "target_lufs": 3.0})
        case("unknown field", 422, "colour", json={**good, "colour": "blue"})
        case("bad episode id", 422, "episode_id", json={**good, "episode_id": "../x"})
        case("NaN in words", 422, "words[0].start", content=json.dumps(
            {**good, "words": [{"word": "a", "start": float("nan"), "end": 1.0}]}).encode(),
             headers={"content-type": "application/json"})
        case("Infinity in template", 422, "body", content=json.dumps(
            {**good, "template": {**good["template"], "x": float("inf")}}).encode(),
             headers={"content-type": "application/json"})
        case("traversal", 422, "content_path", json={**good, "content_path": "../x.wav"})
        case("absolute outside", 422, "content_path",
             json={**good, "content_path": str(outside / "secret.wav")})
        case("symlink out", 422, "content_path", json={**good, "content_path": "link-out.wav"})
        case("missing file", 422, "content_path", json={**good, "content_path": "nope.wav"})
        case("asset traversal", 422, "assets.intro.wav",
             json={**good, "assets": {**good["assets"], "intro.wav": "assets/../../x.wav"}})
        case("output outside", 422, "output_path",
             json={**good, "output_path": str(outside / "x.mp3")})
        case("output traversal", 422, "output_path", json={**good, "output_path": "../x.mp3"})
        case("output via symlink", 422, "output_path",
             json={**good, "output_path": "escape/x.mp3"})
        case("output extension", 422, "output_path", json={**good, "output_path": "x.wav"})
        case("output is an input", 422, "output_path",
             json={**good, "content_path": str(srv.output_root / "in.wav"),
                   "output_path": "in.wav", "output_format": "wav"})
        case("extra output outside", 422, "extra_outputs[0].path",
             json={**good, "extra_outputs": [{"path": str(outside / "x.mp3")}]})
        case("extra output extension", 422, "extra_outputs[1].path",
             json={**good, "extra_outputs": [{"path": "a.flac", "format": "flac"},
                                              {"path": "b.wav"}]})
        case("extra output is the output", 422, "extra_outputs[0].path",
             json={**good, "output_path": "ep.mp3", "extra_outputs": [{"path": "./ep.mp3"}]})
        case("extra output channels", 422, "extra_outputs[0].channels",
             json={**good, "extra_outputs": [{"path": "m.mp3", "channels": 3}]})
        case("extra output unknown key", 422, "extra_outputs[0].colour",
             json={**good, "extra_outputs": [{"path": "m.mp3", "colour": "blue"}]})
        case("MP3 at 96 kHz (the library says)", 422, "extra_outputs[0].sample_rate",
             json={**good, "extra_outputs": [{"path": "hi.mp3", "sample_rate": 96000}]})
        case("320 kbit/s at 8 kHz (the library says)", 422, "extra_outputs[0].bitrate_kbps",
             json={**good, "extra_outputs": [{"path": "lo.mp3", "sample_rate": 8000,
                                              "bitrate_kbps": 320}]})
        case("unknown template asset", 422, "template", json={**good, "template": {
            "segments": [{"segment_type": "intro",
                          "source": {"source_type": "static", "filename": "jingle.wav"}},
                         {"segment_type": "content", "source": {"source_type": "content"}}]}})
        case("bad cleanup option", 422, "cleanup_options",
             json={**good, "cleanup_options": {"maxPauseSeconds": "long"}})
        case("bad word", 422, "words[1]", json={**good, "words": [
            {"word": "a", "start": 0.1, "end": 0.2}, {"word": "b", "start": 2.0, "end": 1.0}]})
        case("word without time", 422, "words[0]", json={**good, "words": [{"word": "a"}]})
        case("oversized", 413, "", content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
             headers={"content-type": "application/json"})
        case("oversized chunked", 413, "", content=_chunks(2 * 1024 * 1024),
             headers={"content-type": "application/json"})

        for name, kw, status, field in cases:
            r = c.post("/api/tasks/assemble", **kw)
            assert r.status_code == status, (name, r.status_code, r.text)
            body = r.json()
            assert body["ok"] is False, name
            if field:
                fields = [e["field"] for e in body["errors"]]
                assert any(f == field or f.startswith((field + ".", field + "["))
                           for f in fields), (name, fields, body)
        # the read side needs the secret too
        assert httpx.get(srv.url + "/api/tasks/dead").status_code == 401
        assert httpx.get(srv.url + "/api/tasks/assemble/ep-ok/status",
                         headers={"X-Tasks-Auth": SECRET[:-1]}).status_code == 401
        after = (srv.rows(), tree(srv.output_root), tree(srv.data_dir / "work"), tree(outside))
        assert after == before
    assert not srv.events("tasks.assemble.start")[1:]  # only ep-ok ever ran
