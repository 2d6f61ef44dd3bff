"""Under CI the PostgreSQL and Redis tests fail instead of skipping when their server is not
configured, so a broken scripts/services-up.sh cannot hide half the matrix. Runs pytest on a
throwaway test in a child process with the variables removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import SERVICE_DIR

PROBE = '''
from conftest import fresh_pg_database
from test_celery import _require_redis


def test_needs_postgres():
    fresh_pg_database()


def test_needs_redis():
    _require_redis()
'''


def _run(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe_services.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items()
           if k not in ("ASSEMBLY_TEST_PG_URL", "ASSEMBLY_TEST_REDIS_URL", "CI")}
    if ci:
        env["CI"] = "true"
    env["PYTHONPATH"] = os.pathsep.join([str(SERVICE_DIR / "tests"), str(SERVICE_DIR)])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rA", str(tmp_path / "test_probe_services.py")],
                          cwd=SERVICE_DIR / "tests", env=env, capture_output=True, text=True,
                          timeout=120)


def test_store_and_broker_tests_fail_under_ci_and_skip_elsewhere(tmp_path: Path) -> None:
    under_ci = _run(tmp_path, ci=True)
    assert under_ci.returncode == 1, under_ci.stdout
    assert "2 failed" in under_ci.stdout and "skipped" not in under_ci.stdout, under_ci.stdout
    assert "every store and broker test must run" in under_ci.stdout
    local = _run(tmp_path, ci=False)
    assert "2 skipped" in local.stdout, local.stdout
