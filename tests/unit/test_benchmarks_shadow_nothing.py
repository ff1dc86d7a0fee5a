"""A script run as ``python benchmarks/X.py`` has benchmarks/ first on sys.path: a module there
named like a standard library module (copy, http, profile) would replace it for everything
imported (``dataclasses`` imports ``copy``)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_no_benchmark_module_shadows_the_standard_library() -> None:
    names = {path.stem for path in BENCHMARKS.glob("*.py")} | {
        path.name for path in BENCHMARKS.iterdir() if (path / "__init__.py").exists()
    }
    assert names, "no benchmark modules found"
    assert not names & set(sys.stdlib_module_names)
