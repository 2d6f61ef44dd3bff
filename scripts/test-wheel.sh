#!/usr/bin/env bash
# Installs the wheel from scripts/build-wheel.sh the way a Python backend's image does: into a
# fresh venv, with no Rust toolchain on PATH (cargo and rustc are hidden; the script fails if
# either can still be found), then imports podcast_assembly and runs the README's Python
# example with it. Prints the wheel's size and the import time.
#
#   WHEEL     the wheel (default: the one podcast_assembly-*.whl in target/wheels)
#   PYTHON    the interpreter that makes the venv (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

wheel=${WHEEL:-$(ls target/wheels/podcast_assembly-*.whl)}
python=$(command -v "${PYTHON:-python3}")
venv=$(mktemp -d)/venv
out=$(mktemp -d)
trap 'rm -rf "$(dirname "$venv")" "$out"' EXIT

# PATH without any folder that holds cargo or rustc (rustup's ~/.cargo/bin, /usr/local/cargo).
clean=""
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  if [ -e "$d/cargo" ] || [ -e "$d/rustc" ]; then
    continue
  fi
  clean="${clean:+$clean:}$d"
done
export PATH="$clean"
unset CARGO_HOME RUSTUP_HOME CARGO_TARGET_DIR
if command -v cargo >/dev/null 2>&1 || command -v rustc >/dev/null 2>&1; then
  echo "error: a Rust toolchain is still on PATH" >&2
  exit 1
fi

"$python" -m venv "$venv"
echo "== pip install $(basename "$wheel") (no cargo, no rustc on PATH)"
"$venv/bin/python" -m pip install -q --no-cache-dir "$wheel"
echo "wheel size: $(( $(stat -c %s "$wheel") / 1024 )) KiB"

echo "== import podcast_assembly"
"$venv/bin/python" -c "import podcast_assembly; print('podcast_assembly', podcast_assembly.__version__)"
# Import time in a fresh interpreter: the best of three (the first also warms the page cache).
"$venv/bin/python" - <<'PY'
import subprocess, sys, time
best = min(
    (lambda t0: (subprocess.run([sys.executable, "-c", "import podcast_assembly"], check=True),
                 time.perf_counter() - t0)[1])(time.perf_counter())
    for _ in range(3)
)
base = min(
    (lambda t0: (subprocess.run([sys.executable, "-c", "pass"], check=True),
                 time.perf_counter() - t0)[1])(time.perf_counter())
    for _ in range(3)
)
print(f"import time: {1000 * (best - base):.0f} ms (interpreter start {1000 * base:.0f} ms)")
PY

echo "== README's Python example"
# The block under "## Python" in README.md, as written, in a scratch folder that sees the
# repository's examples/ (it reads examples/demo and writes demo-out/).
"$venv/bin/python" - "$out" <<'PY'
import os, re, sys
out = sys.argv[1]
block = re.findall(r"```python\n(.*?)```", open("README.md").read(), flags=re.S)[0]
os.symlink(os.path.abspath("examples"), os.path.join(out, "examples"))
os.chdir(out)
exec(compile(block, "README.md", "exec"), {})
size = os.path.getsize("demo-out/episode.mp3")
assert size > 100_000, f"demo-out/episode.mp3: {size} bytes"
print(f"README example: demo-out/episode.mp3 written, {size} bytes")
PY
echo "== the service on the wheel: pip install ./examples/service"
# examples/service/pyproject.toml depends on podcast-assembly by name; the wheel installed
# above satisfies it (no source build), as in docs/deploy.md's container recipe.
# From a scratch copy: setuptools writes build/ and *.egg-info beside the sources it builds.
cp -r examples/service "$out/service"
rm -rf "$out/service/build" "$out/service/"*.egg-info
"$venv/bin/python" -m pip install -q --no-cache-dir "$wheel" "$out/service"
"$venv/bin/python" -c "import assembly_service.app, podcast_assembly; print('assembly_service imports')"
echo "== wheel test passed"
