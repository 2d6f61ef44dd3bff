#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, integration, doc tests).
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

echo "== Python package (scripts/test-python.sh)"
bash scripts/test-python.sh

echo "== Reference service (scripts/test-service.sh)"
bash scripts/test-service.sh
