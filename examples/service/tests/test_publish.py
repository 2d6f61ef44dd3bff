"""Publication is exactly once and all or nothing: a worker process is killed (SIGKILL) at
every step of publishing a job with two outputs, and once more after the job succeeded but
before its work folder was removed, then a fresh worker recovers. Every file under its final
name belongs to a succeeded job, equals a clean run's bytes, and is never replaced after the
job succeeded (same inode and mtime), and no temp file and no work folder is left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

from conftest import Media, Server, reference_output

STEPS = ("staged", "intent", "renamed:0", "renamed", "finished")
KILLER = Path(__file__).with_name("publish_killer.py")


def _stat(path: Path) -> Tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


def _worker(srv: Server, args: List[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, *args], env=srv.env, stdout=f,
                                stderr=subprocess.STDOUT, cwd=srv.tmp)


def _temps(root: Path) -> List[str]:
    return sorted(str(p) for p in root.rglob("*.publish"))


def test_killed_at_every_publish_step_outputs_are_published_exactly_once(
        server_factory, media: Media, tmp_path: Path, database_url) -> None:
    # The app only accepts (0 workers, so no reaper of its own); worker processes do the rest.
    srv: Server = server_factory(workers=0, lease_s=2, heartbeat_s=0.5, poll_s=0.2,
                                 database_url=database_url)
    srv.start()
    cleaned: Dict[str, bytes] = {}
    with srv.client() as c:
        for step in STEPS:
            ep = f"ep-kill-{step.replace(':', '-')}"
            payload = media.payload(ep, content="short.wav",
                                    cleaned_output_path=f"clean/{ep}.mp3")
            r = c.post("/api/tasks/assemble", json=payload)
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            out = srv.output_root / f"{ep}.mp3"
            clean = srv.output_root / "clean" / f"{ep}.mp3"

            killer = _worker(srv, [str(KILLER), step], srv.tmp / f"killer-{ep}.log")
            assert killer.wait(timeout=120) == -9, (step, (srv.tmp / f"killer-{ep}.log")
                                                    .read_text()[-3000:])
            row = next(r for r in srv.rows() if r["job_id"] == job_id)
            assert (srv.data_dir / "work" / job_id).is_dir(), step  # the dead worker's
            present = {p: _stat(p) for p in (out, clean) if p.exists()}
            if step == "finished":  # the job is done; only its work folder is left
                assert row["state"] == "succeeded" and row["publish"] is None, row
                assert set(present) == {out, clean}
            elif step == "staged":  # before the intent: nothing under a final name
                assert row["state"] == "running", (step, row["state"])
                assert row["publish"] is None and not present
                assert len(_temps(srv.output_root)) == 2
            else:  # the intent is recorded: the job will succeed without running again
                assert row["state"] == "running", (step, row["state"])
                assert row["publish"] is not None
                expected = {"intent": set(), "renamed:0": {out}, "renamed": {out, clean}}
                assert set(present) == expected[step], (step, present)

            rec_log = srv.tmp / f"recover-{ep}.log"
            recover = _worker(srv, ["-m", "assembly_service", "worker", "--workers", "1"],
                              rec_log)
            try:
                st = srv.wait_for(c, ep, ["succeeded", "failed", "dead"], timeout=120)
                assert st["status"] == "succeeded", st
                assert st["job_id"] == job_id
                # published after the intent: finished by the reaper, never run again
                starts = rec_log.read_text().count("event=tasks.assemble.start ")
                if step == "staged":
                    assert st["attempts"] == 2 and starts == 1
                # the work folder goes last with the recovered publish (after its log line),
                # or in the new worker's sweep when it starts (the job had already succeeded)
                srv.wait_work_cleaned()
                if step != "staged":
                    assert st["attempts"] == 1 and starts == 0, (st["attempts"], starts)
                    recovered = "event=tasks.assemble.publish_recovered" in rec_log.read_text()
                    assert recovered == (step != "finished"), step
                # files that were in place at the kill were not replaced
                for p, before in present.items():
                    assert _stat(p) == before, (step, p)
                after = {p: _stat(p) for p in (out, clean)}
                time.sleep(1.0)  # five reaper polls: nothing touches a succeeded job's files
                assert {p: _stat(p) for p in (out, clean)} == after
            finally:
                recover.terminate()
                recover.wait(timeout=30)
            assert out.read_bytes() == reference_output(media, payload, tmp_path)
            cleaned[step] = clean.read_bytes()
            assert _temps(srv.output_root) == [], step

    assert len(set(cleaned.values())) == 1  # the cleaned content: the same bytes every time
    # every file under a final name belongs to a succeeded job
    rows = srv.rows()
    owned = {p for r in rows if r["state"] == "succeeded"
             for p in json.loads(r["output_paths"])}
    finals = {str(p.resolve()) for p in srv.output_root.rglob("*") if p.is_file()}
    assert finals <= owned, finals - owned
    assert all(r["state"] == "succeeded" for r in rows)


def test_outputs_are_copied_across_file_systems_outside_the_store_lock(
        media: Media, tmp_path: Path, monkeypatch) -> None:
    """The work folder on tmpfs, the output root on disk: publishing copies. While the copy
    runs, another process's write to the SQLite store gets through with a short busy
    timeout (the copy is staged before the transaction; only renames follow it)."""
    import shutil
    import tempfile

    from assembly_service import jobs
    from assembly_service.config import Settings
    from assembly_service.requests import AssembleRequest, prepare
    from assembly_service.sqlite_store import SQLiteJobStore

    shm = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        assert shm.stat().st_dev != tmp_path.stat().st_dev, "need two file systems"
        settings = Settings(media_root=media.root, output_root=tmp_path / "out",
                            data_dir=shm / "data", dev_mode=True, workers=0)
        store = SQLiteJobStore(settings.db_path)
        other = SQLiteJobStore(settings.db_path, busy_timeout_ms=200)  # another writer
        payload = media.payload("ep-xdev", content="short.wav",
                                cleaned_output_path="clean/ep-xdev.mp3")
        prepared = prepare(AssembleRequest(**payload), settings)
        job = store.create_or_get("ep-xdev", prepared.idem_key, prepared.payload,
                                  prepared.output_paths).job
        lease = store.lease(job.job_id, "w", settings.lease_s)
        writes: List[str] = []
        real_copy = shutil.copyfileobj

        def copy_while_another_writer_writes(src: Any, dst: Any, length: int = 0) -> None:
            real_copy(src, dst, length)

            def write() -> None:
                try:
                    other.create_or_get(f"ep-other{len(writes)}", f"ep-other:{len(writes)}",
                                        {"x": 1},
                                        [f"/o/other-{len(writes)}.mp3"])
                    writes.append("ok")
                except Exception as e:  # noqa: BLE001 - recorded, asserted below
                    writes.append(f"{type(e).__name__}: {e}")

            t = threading.Thread(target=write)
            t.start()
            t.join()

        monkeypatch.setattr(jobs.shutil, "copyfileobj", copy_while_another_writer_writes)
        out = jobs.run_leased_job(store, lease, settings)
        assert out.state == "succeeded", out
        assert writes == ["ok", "ok"], writes  # one per output, each during its copy
        final = Path(prepared.output_paths[0])
        assert final.read_bytes() == reference_output(media, payload, tmp_path)
        assert Path(prepared.output_paths[1]).stat().st_size > 1000
        assert _temps(tmp_path / "out") == []
        store.close()
        other.close()
    finally:
        shutil.rmtree(shm, ignore_errors=True)
