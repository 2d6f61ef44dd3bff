"""The README's Python example runs as written (from a folder that sees `examples/`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def python_blocks(md: Path) -> list:
    return re.findall(r"```python\n(.*?)```", md.read_text(), flags=re.S)


def test_readme_python_example_runs(tmp_path):
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "README.md has no python example"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    for code in blocks:
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        duration_ms, size, lufs = out.stdout.split("\n")[-2].split()
        assert int(duration_ms) > 10_000 and int(size) > 100_000
        assert abs(float(lufs) + 16.0) <= 1.0
    assert (tmp_path / "demo-out" / "episode.mp3").stat().st_size == int(size)


def test_python_doc_examples_run():
    import doctest

    import podcast_assembly._backend as backend

    result = doctest.testmod(backend)
    assert result.attempted > 0 and result.failed == 0, result
