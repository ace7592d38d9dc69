"""Every benchmarks/*.py script answers ``--help`` (exit 0, a usage line) without starting its work: three of them
had no argument parser, so ``--help`` began an Inception pass or ended in a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_answers_without_running(script: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--help"], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.startswith("usage:"), (res.stdout[-500:], res.stderr[-2000:])
