#!/usr/bin/env bash
# Builds what a Python backend installs: the podcast_assembly wheel (abi3: one wheel for
# CPython >= 3.9; release; manylinux, checked with `auditwheel show`) and an sdist, into DIST
# (default target/wheels). Prints the wheel's path, size and platform tag. docs/deploy.md's
# container recipe runs exactly this; scripts/test-wheel.sh installs the result.
#
#   DIST      output folder (default target/wheels; old podcast_assembly files there are removed)
#   VENV      the build tools' venv (default target/venv-build: maturin, auditwheel)
#   PYTHON    the interpreter that makes that venv (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

dist=${DIST:-target/wheels}
venv=${VENV:-target/venv-build}
python=${PYTHON:-python3}
# manylinux_2_17 (manylinux2014: glibc 2.17 and later, so every current Linux distribution).
# A plain build on this Debian 12 machine links glibc 2.34 symbols (maturin refuses the tag);
# `--zig` links against glibc 2.17's symbols instead, with zig (PyPI `ziglang`) as the C
# compiler for LAME and as the linker. maturin refuses to tag a wheel whose module needs a
# newer glibc symbol than the policy allows, and `auditwheel show` below says it again.
policy=${MANYLINUX:-manylinux_2_17}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "maturin>=1.16,<2" "auditwheel>=6" "ziglang>=0.13"
export PATH="$(cd "$venv/bin" && pwd):$PATH" # maturin runs `python -m ziglang`
mkdir -p "$dist"
rm -f "$dist"/podcast_assembly-*

echo "== maturin build --release ($policy)"
"$venv/bin/maturin" build --release --zig --manifest-path crates/assembly-py/Cargo.toml \
  --compatibility "$policy" --out "$dist"
echo "== maturin sdist"
"$venv/bin/maturin" sdist --manifest-path crates/assembly-py/Cargo.toml --out "$dist"

wheel=$(ls "$dist"/podcast_assembly-*.whl)
echo "== auditwheel show"
"$venv/bin/auditwheel" show "$wheel"
echo "wheel: $wheel ($(( $(stat -c %s "$wheel") / 1024 )) KiB)"
ls -l "$dist"
