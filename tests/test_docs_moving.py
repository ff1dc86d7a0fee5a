"""docs/moving.md: its Python example runs, and the commands it names exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "moving.md"
SRC = Path(__file__).resolve().parent.parent / "src"


def test_the_python_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```$", DOC.read_text("utf-8"), re.M | re.S)
    assert blocks
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", "\n\n".join(blocks)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_export_format_example_is_what_export_writes() -> None:
    text = DOC.read_text("utf-8")
    sample = re.search(r"```text\n(.*?)```", text, re.S)
    assert sample is not None
    kinds = re.findall(r'^\{"kind":"(\w+)"', sample.group(1), re.M)
    assert kinds == ["header", "event", "event", "end"]
