#!/usr/bin/env bash
# Installs the Python package into a venv, then runs its pytest suite and mypy's stubtest.
# Fails when a test fails or when pytest collected no tests.
# WHEEL: install that wheel (scripts/test.sh passes the one scripts/build-wheel.sh built, so
# the tests run on what users install); unset: build it from source the way
# `pip install ./crates/assembly-py` does (PEP 517 through maturin).
# VENV overrides the venv folder (default: target/venv-py, reused between runs).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV:-target/venv-py}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
py="$(cd "$venv" && pwd)/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q pytest mypy
if [ -n "${WHEEL:-}" ]; then
  echo "== pip install $WHEEL"
  "$py" -m pip install -q --force-reinstall --no-deps "$WHEEL"
else
  echo "== pip install ./crates/assembly-py"
  "$py" -m pip install -q --force-reinstall --no-deps ./crates/assembly-py
fi

echo "== pytest"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
(cd crates/assembly-py && "$py" -m pytest -q -p no:cacheprovider tests) 2>&1 | tee "$log"
passed=$(grep -Eo '[0-9]+ passed' "$log" | tail -1 | awk '{print $1}')
if [ "${passed:-0}" -lt 1 ]; then
  echo "error: no Python tests ran" >&2
  exit 1
fi

echo "== stubtest"
"$py" -m mypy.stubtest podcast_assembly._native
echo "== Python tests passed: $passed"
