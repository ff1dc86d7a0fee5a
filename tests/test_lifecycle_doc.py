"""docs/lifecycle.md's Python example runs, so it cannot drift from the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md"


def test_the_lifecycle_doc_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```$", DOC.read_text("utf-8"), re.M | re.S)
    assert blocks
    script = tmp_path / "lifecycle_example.py"
    script.write_text("\n\n".join(blocks), "utf-8")
    src = Path(__file__).resolve().parent.parent / "src"
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "the operations log: 2 operation(s), 1 of which removed 3 event(s)" in done.stdout
