"""The GPS terrain experiment (experiments/gps_terrain.py) end to end at a tiny budget: every
method trained or built, run on every test terrain, and the figure, table and episodes written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gps_terrain_experiment_runs_end_to_end(tmp_path) -> None:
    out = tmp_path / "terrain"
    cmd = [sys.executable, str(ROOT / "experiments" / "gps_terrain.py"), "--out", str(out), "--horizon", "8", "--test-horizon", "10",
           "--gps-iterations", "1", "--ilqr-iterations", "2", "--guiding-samples", "2", "--rl-factor", "0.5", "--roughness", "2",
           "--train-example", "2048"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads((out / "results.json").read_text())
    assert set(table) == {"GPS", "DDP", "TBDP", "PPO", "TRPO", "example"}
    assert table["example"]["real_steps"] >= 2048 and (out / "example" / "metrics.csv").exists()
    for row in table.values():
        assert row["terrains"] == 4 and 0 <= row["successes"] <= 4
    assert table["PPO"]["real_steps"] >= 0.5 * table["GPS"]["real_steps"] > 0
    details = json.loads((out / "details.json").read_text())
    assert details["roughness"] == 2.0 and details["test_horizon"] == 10
    for episodes in details["episodes"].values():
        assert [e["terrain"] for e in episodes] == [100, 101, 102, 103]
        assert all(1 <= e["steps"] <= 10 for e in episodes)
    assert (out / "terrain.png").stat().st_size > 10_000


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
