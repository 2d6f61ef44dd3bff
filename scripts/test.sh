#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, integration, doc tests), the
# Python wheel (built, then installed without Rust), the Python package's tests on it, the
# reference service's, and the review page in a real browser (Debian's Chromium).
# Fails when a test fails or when a suite that should run tests ran none.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== cargo test --workspace"
cargo test --workspace --exclude assembly-py --all-targets 2>&1 | tee "$log"
cargo test --workspace --exclude assembly-py --doc 2>&1 | tee -a "$log"

passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
echo "== Rust tests passed: $passed"
if [ "$passed" -lt 1 ]; then
  echo "error: no Rust tests ran" >&2
  exit 1
fi

echo "== Python wheel (scripts/build-wheel.sh, then scripts/test-wheel.sh: no Rust on PATH)"
bash scripts/build-wheel.sh
wheel=$(ls target/wheels/podcast_assembly-*.whl)
bash scripts/test-wheel.sh

echo "== Python package (scripts/test-python.sh, on that wheel)"
WHEEL="$wheel" bash scripts/test-python.sh

echo "== Reference service (scripts/test-service.sh)"
bash scripts/test-service.sh

echo "== Review page in Chromium (scripts/test-review.sh)"
bash scripts/test-review.sh
