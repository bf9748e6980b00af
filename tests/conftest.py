"""Shared test setup: CPU JAX, offscreen MuJoCo rendering, and a CLI runner."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MUJOCO_GL", "egl")

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `policysearch ARGS` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "policysearch.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )


def one_line_error(result: subprocess.CompletedProcess | tuple[int, str], code: int, *fragments: str) -> str:
    """Assert a refusal as the README promises it: exit `code`, one line on stderr holding every
    fragment, no traceback. `result` is a finished process or its (exit code, stderr)."""
    rc, stderr = (result.returncode, result.stderr) if isinstance(result, subprocess.CompletedProcess) else result
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert rc == code, (rc, stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def cli():
    return run_cli
