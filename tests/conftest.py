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


@pytest.fixture
def cli():
    return run_cli
