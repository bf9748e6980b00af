"""`policysearch sweep` and `policysearch report`: the grid's expansion and refusals, the report's
statistics against NumPy and SciPy, and sweeps on a real Ray cluster that the test starts
(`ray start --head`) and joins with --address: every trial finishes, a second run of the same
command trains nothing, and a worker killed mid-trial is retried and resumes with one metrics row
per update."""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

import ray_local
from conftest import one_line_error, run_cli
from policysearch.errors import UserError
from policysearch.sweep import stats
from policysearch.sweep.grid import SweepArgs, expand


def test_grid_expands_to_named_trials_with_scoped_flags(tmp_path: Path) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('algos = ["ppo"]\nenvs = ["CartPole-v1"]\nseeds = [0, 1]\n[set]\ntotal-steps = [4096]\n"ppo:learning-rate" = [1e-3, 3e-4]\n')
    trials = expand(SweepArgs(grid=str(grid), algos=("trpo",), set=("num-envs=2",)))
    names = sorted(t.name for t in trials)
    assert names == sorted(["ppo-CartPole-v1-learning-rate=0.001-s0", "ppo-CartPole-v1-learning-rate=0.001-s1",
                            "ppo-CartPole-v1-learning-rate=0.0003-s0", "ppo-CartPole-v1-learning-rate=0.0003-s1",
                            "trpo-CartPole-v1-s0", "trpo-CartPole-v1-s1"])
    trpo = next(t for t in trials if t.algo == "trpo")
    assert trpo.settings == {"total-steps": "4096", "num-envs": "2"}  # PPO's learning rate is not TRPO's flag
    assert trpo.argv()[:5] == ["trpo", "--env", "CartPole-v1", "--seed", "0"] and "--total-steps" in trpo.argv()


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--envs", "CartPole-v1"], "needs algorithms and envs"),
    (["--algos", "gps", "--envs", "CartPole-v1"], "cannot be swept"),
    (["--algos", "ppo", "--envs", "CartPole-v1", "--set", "learning-rate"], "has no '='"),
    (["--algos", "ppo", "--envs", "CartPole-v1", "--set", "seed=1,2"], "the sweep sets it"),
    (["--algos", "ppo", "--envs", "CartPole-v1", "--set", "trpo:max-kl=0.01"], "not in the sweep"),
    (["--algos", "ppo", "--envs", "CartPole-v1", "--set", "clip-coeff=0.1"], "trial ppo-CartPole-v1"),
    (["--algos", "ppo", "--envs", "CartPole-v1", "--grid", "nowhere.toml"], "not found"),
])
def test_bad_sweeps_are_refused_in_one_line(argv: list[str], fragment: str, tmp_path: Path) -> None:
    one_line_error(run_cli("sweep", *argv, "--out", str(tmp_path / "s"), "--dry-run"), 2, fragment)


def test_report_statistics_against_numpy_and_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 30.0, 8)
    np.testing.assert_allclose(stats.iqm(x), sps.trim_mean(x, 0.25))
    x5 = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    np.testing.assert_allclose(stats.iqm(x5), sps.trim_mean(x5, 0.25))  # one wild seed moves it little
    lo, hi = stats.bootstrap_ci(x, resamples=20_000)
    ref = sps.bootstrap((x,), np.mean, n_resamples=20_000, method="percentile", random_state=1).confidence_interval
    assert abs(lo - ref.low) < 3.0 and abs(hi - ref.high) < 3.0 and lo < x.mean() < hi
    a, b = rng.normal(10.0, 1.0, 6), rng.normal(5.0, 1.0, 6)
    diff, dlo, dhi = stats.difference_ci(a, b)
    assert diff == pytest.approx(a.mean() - b.mean()) and dlo < diff < dhi and dlo > 0  # five standard deviations apart
    # curves on different step grids: interpolated onto the overlap, mean and band per point
    c1 = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))
    c2 = (np.array([5.0, 15.0, 25.0]), np.array([10.0, 20.0, 30.0]))
    band = stats.curve_band([c1, c2], points=3)
    np.testing.assert_allclose(band["steps"], [5.0, 12.5, 20.0])
    np.testing.assert_allclose(band["mean"], [(5.0 + 10.0) / 2, (12.5 + 17.5) / 2, (20.0 + 25.0) / 2])
    assert np.all(band["low"] <= band["mean"]) and np.all(band["mean"] <= band["high"])


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A one-node Ray cluster started as a user would (`ray start --head`), stopped at the end."""
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).parent / "ray"
    temp = tmp_path_factory.mktemp("ray")
    port = 6379 + os.getpid() % 1000
    # the cluster's own auth token, given to it and to every command joining it: a token in Ray's
    # default place (~/.ray/auth_token) can be rewritten by another cluster started on the machine
    # meanwhile (the README test's local sweep), and joining would then be refused
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    with ray_local.head_slot():
        start = subprocess.run([str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                                f"--temp-dir={temp}", "--disable-usage-stats"], capture_output=True, text=True, env=env, timeout=180)
        assert start.returncode == 0, start.stderr[-2000:]
        yield f"127.0.0.1:{port}"
        ray_local.stop(temp)  # `ray stop` for this cluster alone: the plain one would end other tests' local sweeps
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _rows(run_dir: Path) -> list[int]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


TINY = ["--set", "total-steps=1024", "--set", "steps-per-update=256", "--set", "num-envs=2", "--set", "eval-episodes=2",
        "--set", "ppo:minibatch-size=64", "--set", "ppo:epochs=2"]


def test_sweep_on_a_cluster_finishes_every_trial_and_a_rerun_trains_nothing(ray_cluster: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "--algos", "ppo", "pg", "--envs", "CartPole-v1", "--seeds", "0", "1", *TINY, "--out", str(out),
            "--address", ray_cluster]
    first = run_cli(*argv, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 4 and all(r["state"] == "new" for r in results.values())
    for name in results:
        assert _rows(out / name) == [256, 512, 768, 1024]
        assert json.loads((out / name / "summary.json").read_text())["steps"] == 1024
    again = run_cli(*argv, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(r["state"] == "finished" for r in json.loads((out / "results.json").read_text()).values())
    assert _rows(out / "ppo-CartPole-v1-s0") == [256, 512, 768, 1024]  # nothing trained, nothing appended
    for name in results:  # one load segment per trial, from the first command: the rerun trained nothing
        segments = json.loads((out / name / "cpu.json").read_text())["segments"]
        assert len(segments) == 1 and segments[0]["own"] > 0.1 and segments[0]["wall"] > 0  # compiles come from the cache: 0.48 s seen
    rep = run_cli("report", str(out), "--json")
    assert rep.returncode == 0, rep.stderr[-2000:]
    report = json.loads(rep.stdout)
    groups = report["groups"]
    assert len(report["trials"]) == 4 and all(t["finished"] and t["steps"] == 1024 for t in report["trials"])
    assert [(g["algo"], g["seeds"], g["finished"], g["evaluated"]) for g in groups] == [("ppo", 2, 2, 2), ("pg", 2, 2, 2)]
    assert groups[1]["vs"]["group"] == groups[0]["group"] and (out / "curves.png").stat().st_size > 0
    assert (out / "report.md").read_text().count("\n") == 4  # header, rule, two groups
    assert all(g["cpu"]["trials"] == 2 and g["cpu"]["own_cores"] > 0 for g in groups)


def test_a_worker_killed_mid_trial_is_retried_and_resumes(ray_cluster: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    run_dir = out / "ppo-CartPole-v1-s0"
    argv = ["sweep", "--algos", "ppo", "--envs", "CartPole-v1", "--set", "total-steps=4096", "--set", "steps-per-update=256",
            "--set", "num-envs=2", "--set", "checkpoint-every=256", "--set", "eval-episodes=1", "--set", "minibatch-size=64",
            "--out", str(out), "--address", ray_cluster]
    killed: list[int] = []

    def kill_once_checkpointed() -> None:
        deadline = time.time() + 600
        while time.time() < deadline:
            ckpts = run_dir / "checkpoints"
            if ckpts.exists() and len([p for p in ckpts.iterdir() if p.name.startswith("step")]) >= 3 and (run_dir / "worker.pid").exists():
                pid = int((run_dir / "worker.pid").read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=kill_once_checkpointed, daemon=True)
    watcher.start()
    done = run_cli(*argv, timeout=900)
    watcher.join(timeout=5)
    assert killed, "the trial ended before it could be killed"
    assert done.returncode == 0, done.stderr[-3000:]
    steps = _rows(run_dir)
    assert steps == list(range(256, 4096 + 1, 256))  # one row per update: none lost, none twice
    assert int((run_dir / "worker.pid").read_text()) != killed[0]  # finished by another worker
    assert "--resume" in (run_dir / "trial.log").read_text()
    assert len(json.loads((run_dir / "cpu.json").read_text())["segments"]) == 1  # the killed segment recorded nothing


def test_cpu_segments_count_own_and_others_cores(tmp_path: Path) -> None:
    """sweep.cpu: CPU burnt in this process is `own`; a process burning CPU meanwhile that this
    one does not wait for is `others`; segments add up."""
    import resource

    from policysearch.sweep import cpu

    def burn(seconds: float) -> None:
        start = resource.getrusage(resource.RUSAGE_SELF)
        while sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - sum(start[:2]) < seconds:
            sum(i * i for i in range(1000))

    burner = [sys.executable, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass"]
    with cpu.recorded(tmp_path):
        burn(0.3)
    other = subprocess.Popen(burner)
    with cpu.recorded(tmp_path):
        other.wait()  # waited for inside the segment: its CPU is the trial's own (RUSAGE_CHILDREN)
    neighbour = subprocess.Popen(burner)
    with cpu.recorded(tmp_path):
        os.waitid(os.P_PID, neighbour.pid, os.WEXITED | os.WNOWAIT)  # until it ends, unreaped: not a child's CPU yet
    neighbour.wait()
    first, child, third = json.loads((tmp_path / "cpu.json").read_text())["segments"]
    assert first["own"] >= 0.3 and first["others"] >= 0 and first["cpus"] == os.cpu_count()
    assert child["own"] >= 0.55
    assert third["own"] < 0.3 and third["others"] >= 0.5
    total = cpu.load(tmp_path)
    walls = first["wall"] + child["wall"] + third["wall"]
    assert total["wall"] == pytest.approx(walls)
    assert total["own_cores"] == pytest.approx((first["own"] + child["own"] + third["own"]) / walls)
    assert cpu.load(tmp_path / "nothing") is None


def test_sweep_without_the_grid_folder_writable_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(run_cli("sweep", "--algos", "ppo", "--envs", "CartPole-v1", "--out", str(blocker / "s")), 2, "cannot write")


def test_report_of_a_folder_without_a_sweep_is_refused(tmp_path: Path) -> None:
    one_line_error(run_cli("report", str(tmp_path)), 2, "no sweep.json")


def test_expand_refuses_an_empty_value_list() -> None:
    with pytest.raises(UserError, match="no values"):
        expand(SweepArgs(algos=("ppo",), envs=("CartPole-v1",), set=("learning-rate=",)))

def test_dry_run_lists_every_trial_with_each_repeated_set_flag(tmp_path: Path) -> None:
    result = run_cli("sweep", "--algos", "ppo", "--envs", "CartPole-v1", "--seeds", "3", "--set", "total-steps=4096",
                     "--set", "learning-rate=1e-3,3e-4", "--out", str(tmp_path / "s"), "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all(": new: policysearch train ppo --env CartPole-v1 --seed 3 --total-steps 4096 --learning-rate" in ln
                                   for ln in lines), lines


def test_a_folder_of_other_settings_is_refused_and_a_tag_names_the_variant_apart(tmp_path: Path) -> None:
    """A finished trial is skipped only when its folder holds a run of the grid's settings: a
    grid that asks other values for the same trial names is refused (it would report the old run
    as its own); --tag puts the variant in folders of its own."""
    out = tmp_path / "s"
    flags = ["--total-steps", "512", "--steps-per-update", "256", "--num-envs", "2", "--eval-episodes", "0"]
    trained = run_cli("train", "ppo", "--env", "CartPole-v1", "--seed", "0", *flags, "--no-video", "--no-progress",
                      "--run-dir", str(out / "ppo-CartPole-v1-s0"), timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    grid = ["sweep", "--algos", "ppo", "--envs", "CartPole-v1", "--set", "total-steps=512", "--set", "steps-per-update=256",
            "--set", "num-envs=2", "--set", "eval-episodes=0", "--out", str(out), "--dry-run"]
    same = run_cli(*grid)
    assert same.returncode == 0 and same.stdout.startswith("ppo-CartPole-v1-s0: finished"), same.stdout + same.stderr
    one_line_error(run_cli(*grid, "--set", "learning-rate=0.001"), 2, "holds a run with learning-rate=0.0003, this grid asks learning-rate=0.001")
    tagged = run_cli(*grid, "--set", "learning-rate=0.001", "--tag", "fast lr")
    assert tagged.returncode == 0 and tagged.stdout.startswith("ppo-CartPole-v1-fast_lr-s0: new"), tagged.stdout + tagged.stderr


def test_report_compares_a_peer_with_ours_of_the_same_settings(tmp_path: Path) -> None:
    """sb3-trpo [preset=zoo] is compared with trpo [preset=zoo], not with the env's first group
    (ppo); our groups with the env's first group; the difference is the means' difference."""
    from policysearch.sweep.report import report

    trials = []
    for algo, settings, returns in (("ppo", {}, [10.0, 12.0, 14.0]), ("trpo", {"preset": "zoo"}, [30.0, 32.0, 34.0]),
                                    ("sb3-trpo", {"preset": "zoo"}, [20.0, 21.0, 22.0])):
        for seed, ret in enumerate(returns):
            name = f"{algo}-s{seed}"
            trials.append({"name": name, "algo": algo, "env": "Hopper-v5", "seed": seed, "settings": settings})
            (tmp_path / name).mkdir()
            (tmp_path / name / "summary.json").write_text(json.dumps({"eval_return_mean": ret, "steps": 10, "wall_time": 1.0,
                                                                      "steps_per_second": 10.0}))
    (tmp_path / "sweep.json").write_text(json.dumps({"trials": trials}))
    groups = {g["algo"]: g for g in report(tmp_path)["groups"]}
    assert "vs" not in groups["ppo"]
    assert groups["trpo"]["vs"]["group"] == "ppo Hopper-v5" and groups["trpo"]["vs"]["difference"] == pytest.approx(20.0)
    assert groups["sb3-trpo"]["vs"]["group"] == "trpo Hopper-v5 [preset=zoo]"
    assert groups["sb3-trpo"]["vs"]["difference"] == pytest.approx(-11.0)
