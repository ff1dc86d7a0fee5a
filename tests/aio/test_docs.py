"""docs/aio.md's python examples run, in order, as one script in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "aio.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_the_examples_of_docs_aio_run(tmp_path: Path) -> None:
    blocks = _BLOCK.findall(DOC.read_text("utf-8"))
    assert len(blocks) >= 3
    script = tmp_path / "aio_examples.py"
    script.write_text("\n\n".join(blocks), "utf-8")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "1 Deposited(amount=Decimal('10.00'))" in done.stdout


def test_importing_eventkeep_aio_loads_no_web_framework() -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    code = (
        "import sys, eventkeep, eventkeep.aio, eventkeep.testing.aio; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('starlette', 'uvicorn', 'httpx', 'anyio')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
