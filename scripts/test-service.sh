#!/usr/bin/env bash
# Runs the reference service's tests (examples/service): real server processes on loopback,
# kill -9 / SIGTERM loops, load and duplicate delivery, each reliability test on SQLite and on
# PostgreSQL, and Celery workers on Redis (PostgreSQL and Redis are started on loopback by
# scripts/services-up.sh, installed from Debian if missing, and stopped at the end).
# Uses the venv of scripts/test-python.sh (with podcast_assembly installed) and adds the
# service's pinned dependencies to it.
# Fails when a test fails or when pytest collected no tests.
# VENV overrides the venv folder (default: target/venv-py).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV:-target/venv-py}
if [ ! -x "$venv/bin/python" ]; then
  echo "error: $venv has no python; run scripts/test-python.sh first" >&2
  exit 1
fi
py="$(cd "$venv" && pwd)/bin/python"
if ! "$py" -c 'import podcast_assembly' 2>/dev/null; then
  echo "== pip install ./crates/assembly-py"
  "$py" -m pip install -q --no-deps ./crates/assembly-py
fi
echo "== pip install -r examples/service/requirements.txt"
"$py" -m pip install -q -r examples/service/requirements.txt

echo "== PostgreSQL and Redis on loopback (scripts/services-up.sh)"
eval "$(bash scripts/services-up.sh)"
echo "== pytest examples/service"
log=$(mktemp)
trap 'rm -f "$log"; bash scripts/services-down.sh' EXIT
(cd examples/service && "$py" -m pytest -q -rA -p no:cacheprovider -s tests) 2>&1 | tee "$log"
passed=$(grep -Eo '[0-9]+ passed' "$log" | tail -1 | awk '{print $1}')
if [ "${passed:-0}" -lt 1 ]; then
  echo "error: no service tests ran" >&2
  exit 1
fi
echo "== Service tests passed: $passed"
