"""docs/erasure.md's ``python`` blocks run in order as one script, so they cannot drift."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "erasure.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_the_erasure_examples_run(tmp_path: Path) -> None:
    blocks = _BLOCK.findall(DOC.read_text("utf-8"))
    assert len(blocks) >= 4
    script = tmp_path / "erasure_examples.py"
    script.write_text("\n\n".join(blocks), "utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
