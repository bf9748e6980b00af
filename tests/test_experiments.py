"""The GPS terrain experiment's summary over seeds (experiments/gps_terrain.py), and its humanoid
run end to end at a tiny budget. The walker's runs end to end at a tiny budget from the README's
own commands (tests/test_readme.py)."""

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


def test_humanoid_terrain_experiment_end_to_end_at_a_tiny_budget(tmp_path: Path) -> None:
    """`--robot humanoid` (the paper's Figure 5): the example trained on flat ground with the
    terrain task's observation, GPS on the four training terrains, PPO and TRPO on the terrain set,
    then every method, DDP and TBDP on the four test terrains: the table, the episodes, the
    figure, and each method's video and frame strip on one test terrain."""
    import json
    import subprocess

    out = tmp_path / "humanoid"
    cmd = [sys.executable, str(ROOT / "experiments" / "gps_terrain.py"), "--robot", "humanoid", "--train-example", "2048", "--horizon", "6",
           "--test-horizon", "8", "--gps-iterations", "1", "--ilqr-iterations", "2", "--guiding-samples", "2", "--policy-samples", "2",
           "--rl-factor", "0.5", "--video-terrain", "101", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads((out / "results.json").read_text())
    assert set(table) == {"GPS", "example", "PPO", "TRPO", "DDP", "TBDP"}
    assert all(row["terrains"] == 4 for row in table.values())
    assert table["example"]["real_steps"] == 2048 and table["GPS"]["real_steps"] > 0
    assert table["PPO"]["real_steps"] >= 0.5 * table["GPS"]["real_steps"]
    details = json.loads((out / "details.json").read_text())
    assert details["robot"] == "humanoid" and details["env"] == "policysearch/HumanoidTerrain-v0"
    assert (out / "terrain.png").stat().st_size > 10_000 and (out / "strip.png").stat().st_size > 10_000
    assert sorted(p.stem for p in (out / "videos").glob("*.mp4")) == sorted(table)
    assert json.loads((out / "example" / "config.json").read_text())["run"]["env"] == "policysearch/HumanoidFlat-v0"

    # --resume keeps the finished runs (example, PPO) and continues an interrupted GPS and TRPO
    # (checkpoints, no summary) from their last checkpoint: nothing trains again, the table is the same
    for run in ("gps", "trpo"):
        (out / run / "summary.json").unlink()
    again = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished, kept (--resume)") == 2
    resumed = json.loads((out / "results.json").read_text())
    assert all(resumed[m]["return_mean"] == table[m]["return_mean"] for m in table)  # the same policies
    assert {m: r["real_steps"] for m, r in resumed.items() if "real_steps" in r} == {m: r["real_steps"] for m, r in table.items() if "real_steps" in r}
    assert all(resumed[m] == table[m] for m in ("example", "PPO", "DDP", "TBDP"))  # kept runs: their rows as they were, seconds too
    # a kept run of other settings is refused before anything runs: exit 2, one line naming the flag
    other = subprocess.run([*cmd[:-2], "--guiding-samples", "3", "--out", str(out), "--resume"], capture_output=True, text=True, timeout=900)
    assert other.returncode == 2 and "--guiding-samples" in other.stderr and len(other.stderr.strip().splitlines()) == 1, other.stderr[-3000:]

    # the imitation diagnostic on this run: the example's and the DDP controllers' labels
    script = str(ROOT / "experiments" / "imitation_coverage.py")
    for labels in (["--labels", "example", "--example-policy", str(out / "example")], ["--labels", "ddp", "--gps-run", str(out / "gps")]):
        done = subprocess.run([sys.executable, script, *labels, "--episodes", "1", "--fit-steps", "20"], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        ran = [line for line in done.stdout.splitlines() if line.startswith("cloned network on the")]
        assert len(ran) == 2 and all(len(json.loads(line.split("ran ")[1].split(" of")[0])) == 4 for line in ran), done.stdout
    missing = subprocess.run([sys.executable, script, "--labels", "ddp", "--gps-run", str(tmp_path / "none")], capture_output=True, text=True, timeout=900)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1 and "--gps-run" in missing.stderr, missing.stderr[-3000:]


def test_a_bad_flag_of_an_experiment_script_exits_2_with_one_line() -> None:
    """The experiments' scripts parse with `errors.ArgumentParser` under `cli.guarded`: argparse's
    usage block becomes one line naming the flag."""
    import subprocess

    for script, flags in (("gps_terrain.py", ["--robot", "dog"]), ("imitation_coverage.py", ["--labels", "foo"]),
                          ("guiding_samples.py", ["--bogus"])):
        done = subprocess.run([sys.executable, str(ROOT / "experiments" / script), *flags], capture_output=True, text=True, timeout=300)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and script in lines[0], done.stderr[-2000:]
