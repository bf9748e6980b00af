"""The GPS terrain experiment's summary over seeds (experiments/gps_terrain.py). The experiment
runs end to end at a tiny budget from the README's own commands (tests/test_readme.py)."""

from __future__ import annotations

import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def test_summary_over_seeds() -> None:
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        from gps_terrain import aggregate
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    row = lambda k, r, n: {"successes": k, "terrains": 4, "return_mean": r, "real_steps": n}  # noqa: E731
    summary = aggregate({0: {"GPS": row(3, 100.0, 10), "DDP": row(1, 50.0, 0)}, 1: {"GPS": row(4, 200.0, 30)}})
    assert summary["GPS"]["successes"] == {"0": 3, "1": 4} and summary["GPS"]["successes_mean"] == 3.5
    assert summary["GPS"]["return_mean"] == 150.0 and summary["GPS"]["return_std"] == 50.0 and summary["GPS"]["real_steps_mean"] == 20.0
    assert summary["DDP"]["successes"] == {"0": 1}  # a method missing from a seed is left out there
