"""Every code block of the README runs as written, in order, in a fresh folder, with short
budgets: the test changes only the numbers that say how long to train, plan or evaluate (the
table BUDGETS, each entry applied where the README has it; a budget the table does not know
fails the test) and appends tiny-budget flags to the experiment's commands (EXTRA). `make test`
and the peers' `make bench` are dry-run (`make -n`): the first is what runs this test, the second
installs PyTorch. Everything else runs: `make demo` (at DEMO_STEPS=2048), `source
.venv/bin/activate`, every `policysearch` command, the Python snippet and the experiment."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import ray_local

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)

BUDGETS = {
    "--total-steps 1e6": "--total-steps 2048",
    "--total-steps 1e5": "--total-steps 2048",
    "--total-steps 1000000": "--total-steps 2048",
    "--total-steps 2000000": "--total-steps 4096",
    "--total-steps 65536": "--total-steps 4096",
    "--train-example 1000000": "--train-example 2048",
    ".learn(1_000_000)": ".learn(2048)",
    "--episodes 10": "--episodes 2",
    "episodes=10": "episodes=2",
    "range(1000)": "range(50)",
    "--horizon 300": "--horizon 20 --window 10 --commit 5 --window-iterations 3 --iterations 3",
    "--horizon 100": "--horizon 100",
    "--iterations 10          #": "--iterations 1 --horizon 20 #",
    "--conditions 3 --iterations 6": "--conditions 1 --iterations 1 --horizon 20 --eval-episodes 1",
    "--iterations 10 #": "--iterations 2 #",
    "--seeds 0 1 2": "--seeds 0",
    "total-steps=1000000": "total-steps=2048",
}
"""README text -> what the test runs instead: only budgets (steps, iterations, horizons, episodes, seeds)."""
BUDGET_FLAG = re.compile(r"--(total-steps|train-example|episodes|horizon|iterations|conditions|seeds)\b|\.learn\(|episodes=|range\(|total-steps=")
EXTRA = {"experiments/gps_terrain.py": "--horizon 8 --test-horizon 10 --gps-iterations 1 --ilqr-iterations 2 --guiding-samples 2 "
         "--rl-factor 0.5 --roughness 2"}
"""Flags appended to a command naming the key: the experiment's budget, which its README command leaves at the defaults."""
DRY_RUN = {"make test": "make -n test", "make bench": "make -n bench",
           "ray stop": f"{sys.executable} {ROOT / 'tests' / 'ray_local.py'} \"$RAY_TMPDIR\""}
"""Commands the test replaces: the first is what runs this test, the second installs PyTorch, and
`ray stop` would end every Ray process of the user (other tests' clusters too), so the test ends
only the cluster the README started (tests/ray_local.py)."""


def readme_blocks() -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in BLOCK.findall((ROOT / "README.md").read_text())]


def shorten(code: str) -> str:
    """The block with the budgets of BUDGETS and EXTRA applied; a budget flag left unshortened fails."""
    lines = []
    for line in code.splitlines():
        line = next((DRY_RUN[k] + line[len(k):] for k in DRY_RUN if line.startswith(k + " ") or line == k), line)
        if line.startswith("make demo"):
            line = "make demo DEMO_STEPS=2048" + line[len("make demo"):]
        hits = [k for k in BUDGETS if k in line]
        for k in hits:
            line = line.replace(k, BUDGETS[k])
        for key, extra in EXTRA.items():
            if key in line:
                command, hash_, comment = line.partition(" #")
                line = f"{command} {extra}{hash_}{comment}"
        body = line.split(" #", 1)[0]
        if BUDGET_FLAG.search(body) and not hits and not any(k in line for k in EXTRA):
            raise AssertionError(f"README line with a budget the test does not shorten: {line!r}; add it to BUDGETS")
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_every_budget_in_the_readme_is_shortened() -> None:
    """The table covers the README (a new command with a 1M-step budget would otherwise run for
    minutes in CI, or slip through unrun)."""
    blocks = readme_blocks()
    assert len(blocks) >= 5 and any(lang == "python" for lang, _ in blocks)
    for _, code in blocks:
        shorten(code)


@pytest.mark.slow
def test_readme_code_blocks_run_as_written(tmp_path: Path) -> None:
    """Run the README's blocks in order in one folder, as a new user would after cloning: the bash
    blocks in one shell each (so `source .venv/bin/activate` holds for the lines after it), the
    Python one with the venv's python. The repository's files are linked in, so `make demo`,
    `source .venv/bin/activate` and `python experiments/...` resolve as in a clone."""
    if not (ROOT / ".venv" / "bin" / "policysearch").exists():
        pytest.skip("needs the project's .venv (made by `make demo` / `make test`)")
    stamp = ROOT / ".venv" / ".installed"
    stale = [n for n in ("pyproject.toml", "constraints.txt") if not stamp.exists() or (ROOT / n).stat().st_mtime > stamp.stat().st_mtime]
    # `make demo` below would reinstall the package from this test's folder into the shared venv
    assert not stale, f".venv is older than {stale}: run `make venv` first"
    for name in ("Makefile", "pyproject.toml", "constraints.txt", ".venv", "experiments", "policysearch", "README.md"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    # Ray's temp dir of its own: `--address auto` finds the cluster the README started there, and
    # `ray stop` ends that one alone (a short path, as Ray's socket paths must be)
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    env.update(MUJOCO_GL=env.get("MUJOCO_GL", "egl"), PATH="/usr/local/bin:/usr/bin:/bin", JAX_PLATFORMS="cpu", RAY_TMPDIR=ray_tmp)
    activated = False
    for i, (lang, code) in enumerate(readme_blocks()):
        script = shorten(code)
        if lang == "python":
            cmd = [str(ROOT / ".venv" / "bin" / "python"), "-c", script]
        else:
            prefix = "set -euo pipefail\n" + ("source .venv/bin/activate\n" if activated else "")
            cmd = ["bash", "-c", prefix + script]
            activated = activated or "source .venv/bin/activate" in script
        head = ray_local.head_slot() if "ray start --head" in script else contextlib.nullcontext()
        with head:  # one test's Ray head at a time on the machine (tests/ray_local.py)
            try:
                done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
            finally:
                ray_local.stop(ray_tmp)  # nothing of a failed block's cluster outlives it
        assert done.returncode == 0, f"README block {i} ({lang}) failed:\n{script}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert activated, "the README never says to activate the venv, so its commands would not be found"
    assert (tmp_path / "runs" / "hopper" / "learning_curve.png").exists() and (tmp_path / "runs" / "hopper" / "policy.mp4").exists()
    assert (tmp_path / "hopper-policy" / "meta.json").exists()
    assert (tmp_path / "hopper.onnx").stat().st_size > 1000  # "Deploy a policy": the export its Python block ran
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink()) == ["hopper-policy", "hopper.onnx", "runs"], \
        "the Python API wrote files it was not asked to"
    check_terrain_experiment(tmp_path / "runs" / "gps-terrain")


def check_terrain_experiment(out: Path) -> None:
    """The experiment's last README command (one seed, its example trained first) at the tiny
    budget of EXTRA: every method trained or built, run on every test terrain, and the figure,
    table and episodes written."""
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
