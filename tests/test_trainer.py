"""Checkpoints, resume and reproducibility of the run layer, for every registered algorithm (as
Stable-Baselines3's suite parametrises its save/load and determinism tests over its algorithms):
the on-policy ones through `run.train`, Guided Policy Search through `run.train_gps`, both reached
through the trainer registry the CLI uses."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import policysearch
from policysearch.algos import ALGORITHMS, GPSConfig, PGConfig, PPOConfig, TRPOConfig
from policysearch.run.checkpoint import list_checkpoints
from policysearch.run.train import RunConfig, train
from policysearch.run.trainers import trainer

SMALL = PPOConfig(steps_per_update=512, minibatch_size=64, epochs=2)
TINY: dict[str, Any] = {
    "ppo": SMALL,
    "trpo": TRPOConfig(steps_per_update=512, critic_minibatch_size=128, critic_epochs=2),
    "pg": PGConfig(steps_per_update=512, critic_minibatch_size=128, critic_epochs=2),
    "gps": GPSConfig(iterations=2, lbfgs_iterations=10, init_iterations=20, ilqr_iterations=30, guiding_samples=6, policy_samples=3),
}
"""A tiny budget of every registered algorithm: two updates (iterations) each."""
assert set(TINY) == set(ALGORITHMS)


def _run(run_dir: Path, env: str = "CartPole-v1", total: int = 2048, **kw) -> RunConfig:
    return RunConfig(env=env, total_steps=total, num_envs=4, seed=3, run_dir=str(run_dir), progress=False, eval_episodes=0, video=False, **kw)


def _tiny_run(algo: str, run_dir: Path, updates: int = 2) -> tuple[Any, Any]:
    """(run config, algorithm config) of `updates` updates of `algo` on its tiny task: CartPole for
    the on-policy algorithms, the 2-link arm (horizon 20, 2 starts) for GPS."""
    config = TINY[algo]
    if ALGORITHMS[algo].kind == "on-policy":
        return _run(run_dir, total=updates * config.steps_per_update), config
    run = trainer(algo).run_config(env="arm-reach-dense", horizon=20, conditions=2, seed=3, run_dir=str(run_dir), json=True)
    return run, dataclasses.replace(config, iterations=updates)


def _train_tiny(algo: str, run_dir: Path, updates: int = 2, resume: bool = False):
    run, config = _tiny_run(algo, run_dir, updates)
    return trainer(algo).train(run, config, run_dir if resume else None)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _timeless(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in ("wall_time", "steps_per_second")} for r in rows]


def _some_obs(agent: Any, n: int = 16) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, agent.spec.obs_dim)).astype(np.float32)


@pytest.fixture(scope="module", params=sorted(ALGORITHMS))
def twin_runs(request, tmp_path_factory) -> tuple[str, Path, list]:
    """Two tiny runs of one algorithm with the same seed, trained once for the tests below:
    (algo, folder holding runs a and b, their TrainResults)."""
    root = tmp_path_factory.mktemp(request.param)
    return request.param, root, [_train_tiny(request.param, root / name) for name in ("a", "b")]


def test_checkpoint_round_trip_gives_identical_actions_for_every_algorithm(twin_runs) -> None:
    """The policy `policysearch.load` rebuilds from the last checkpoint (network settings and
    input standardisation from meta.json, parameters from arrays.safetensors, no per-algorithm
    code) acts exactly as the one the trainer returned."""
    _, root, (result, _) = twin_runs
    loaded = policysearch.load(root / "a")
    obs = _some_obs(loaded)
    np.testing.assert_array_equal(result.agent.act(obs), loaded.act(obs))
    np.testing.assert_array_equal(result.agent.act(obs[0]), loaded.act(obs[0]))
    assert loaded.policy == result.agent.policy  # the network's settings travel with the parameters
    # the input statistics travel with the policy: other statistics, other actions
    assert loaded.norm.obs and float(np.abs(np.asarray(loaded.obs_stats.mean)).sum()) > 0
    shifted = dataclasses.replace(loaded, obs_stats=loaded.obs_stats._replace(mean=loaded.obs_stats.mean + 1.0))
    assert not np.array_equal(shifted.act(obs), loaded.act(obs))


def test_same_seed_same_metrics_for_every_algorithm(twin_runs) -> None:
    """Seeded runs are reproducible on the CPU, for every algorithm."""
    _, root, _ = twin_runs
    tables = [_timeless(_rows(root / name)) for name in ("a", "b")]
    assert tables[0] == tables[1] and len(tables[0]) == 2


def test_resume_continues_steps_and_rows_for_every_algorithm(twin_runs, tmp_path: Path) -> None:
    """One update (iteration), then --resume to two: metrics.csv has one row per update with the
    steps of an uninterrupted run, and the last checkpoint counts two."""
    algo, root, _ = twin_runs
    run_dir = tmp_path / "r"
    _train_tiny(algo, run_dir, updates=1)
    _train_tiny(algo, run_dir, updates=2, resume=True)
    steps = [int(r["step"]) for r in _rows(run_dir)]
    assert len(steps) == 2 and steps == [int(r["step"]) for r in _rows(root / "a")]
    meta = json.loads((list_checkpoints(run_dir / "checkpoints")[-1] / "meta.json").read_text())
    assert meta.get("update", meta.get("iteration")) == 2


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_resume_with_a_changed_setting_is_refused_before_anything_is_written(tmp_path: Path, algo: str) -> None:
    """Only the length of a run (--total-steps, --iterations) may change on resume: another
    hidden width is refused by name, and the folder is byte for byte as it was."""
    run_dir = tmp_path / "r"
    _train_tiny(algo, run_dir, updates=1)
    before = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
    run, config = _tiny_run(algo, run_dir, updates=2)
    with pytest.raises(policysearch.UserError, match="--hidden"):
        trainer(algo).train(run, dataclasses.replace(config, hidden=(7,)), run_dir)
    assert {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()} == before


def _tb_scalars(tb_dir: Path) -> dict[int, dict[str, float]]:
    """The scalars of the TensorBoard event files in tb_dir, by step (the records' framing: an
    8-byte length, its 4-byte CRC, the Event proto, its 4-byte CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[int, dict[str, float]] = {}
    for path in sorted(tb_dir.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for value in event.summary.value:
                out.setdefault(event.step, {})[value.tag] = value.simple_value
    return out


def test_run_folder_contents(tmp_path: Path) -> None:
    train("ppo", _run(tmp_path / "r"), SMALL)
    run_dir = tmp_path / "r"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["run"]["env"] == "CartPole-v1" and config["algo_config"]["steps_per_update"] == 512
    rows = _rows(run_dir)
    assert [int(r["step"]) for r in rows] == [512, 1024, 1536, 2048]
    assert {"step", "wall_time", "episode_return_mean"} <= set(rows[0])
    scalars = _tb_scalars(run_dir / "tb")  # each row's finite numbers, float32, under its step
    assert sorted(scalars) == [512, 1024, 1536, 2048]
    for r in rows:
        want = {k: float(v) for k, v in r.items() if k != "step" and v not in ("", "True", "False") and math.isfinite(float(v))}
        got = scalars[int(r["step"])]
        assert set(got) == want.keys() and "policy_objective" in got
        assert all(got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-9) for k in want)  # the CSV keeps 6 digits
    assert (run_dir / "learning_curve.png").stat().st_size > 1000
    assert list_checkpoints(run_dir / "checkpoints")


def test_checkpoint_round_trip_of_a_gaussian_policy_on_envpool(tmp_path: Path) -> None:
    result = train("ppo", _run(tmp_path / "r", env="Hopper-v5"), SMALL)
    loaded = policysearch.load(tmp_path / "r")
    obs = np.random.default_rng(0).normal(size=(16, 11)).astype(np.float32)
    np.testing.assert_array_equal(result.agent.act(obs), loaded.act(obs))
    np.testing.assert_array_equal(result.agent.act(obs[0]), loaded.act(obs[0]))
    # the normalisation statistics travel with the policy: different stats, different actions
    assert float(np.abs(np.asarray(loaded.obs_stats.mean)).sum()) > 0


def test_crash_loses_only_work_since_last_checkpoint(tmp_path: Path) -> None:
    """A failure after update 3 with checkpoints every 2 updates: resume restarts at update 3 and
    the CSV row logged after the checkpoint is replaced, not duplicated."""
    run_dir = tmp_path / "r"

    def crash(row: dict) -> None:
        if row["step"] == 1536:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        train("ppo", _run(run_dir, total=4096, checkpoint_every=1024), SMALL, on_update=crash)
    assert [int(r["step"]) for r in _rows(run_dir)] == [512, 1024, 1536]
    assert int(json.loads((list_checkpoints(run_dir / "checkpoints")[-1] / "meta.json").read_text())["step"]) == 1024
    train("ppo", _run(run_dir, total=2560, checkpoint_every=1024), SMALL, resume=run_dir)
    assert [int(r["step"]) for r in _rows(run_dir)] == [512, 1024, 1536, 2048, 2560]


def test_interrupt_saves_a_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"

    def interrupt(row: dict) -> None:
        if row["step"] == 1536:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train("ppo", _run(run_dir, total=4096, checkpoint_every=100_000), SMALL, on_update=interrupt)
    assert int(json.loads((list_checkpoints(run_dir / "checkpoints")[-1] / "meta.json").read_text())["step"]) == 1536


def test_half_written_checkpoint_is_ignored(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    train("ppo", _run(run_dir, total=1024), SMALL)
    (run_dir / "checkpoints" / ".tmp-crashed").mkdir()
    (run_dir / "checkpoints" / "step_000000999999").mkdir()  # no meta.json: incomplete
    assert list_checkpoints(run_dir / "checkpoints")[-1].name == "step_000000001024"
    assert policysearch.load(run_dir).meta["step"] == 1024


@pytest.mark.parametrize("env", ["CartPole-v1", "Hopper-v5"])
def test_same_seed_same_metrics(tmp_path: Path, env: str) -> None:
    """Seeded runs are reproducible on the CPU (EnvPool and Gymnasium backends)."""
    tables = []
    for name in ("a", "b"):
        train("ppo", _run(tmp_path / name, env=env, total=1536), SMALL)
        tables.append([{k: v for k, v in r.items() if k not in ("wall_time", "steps_per_second")} for r in _rows(tmp_path / name)])
    assert tables[0] == tables[1]
    assert len(tables[0]) == 3


def test_different_seeds_differ(tmp_path: Path) -> None:
    train("ppo", _run(tmp_path / "a", total=1024), SMALL)
    train("ppo", RunConfig(**{**_run(tmp_path / "b", total=1024).__dict__, "seed": 4}), SMALL)
    assert _rows(tmp_path / "a")[-1]["loss"] != _rows(tmp_path / "b")[-1]["loss"]


def test_python_api(tmp_path: Path) -> None:
    model = policysearch.PPO("CartPole-v1", seed=0, num_envs=4, steps_per_update=512, epochs=2, run_dir=str(tmp_path / "r"), progress=False, eval_episodes=0)
    model.learn(1024)
    obs = np.zeros(4, np.float32)
    action = model.act(obs)
    assert action.shape == () and action in (0, 1)
    saved = model.save(tmp_path / "saved")
    assert policysearch.load(saved).act(obs) == action
    with pytest.raises(policysearch.UserError, match="no keyword"):
        policysearch.PPO("CartPole-v1", learnin_rate=1e-3)


def test_python_api_writes_files_only_where_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As SB3's learn(): without run_dir nothing is written in the working folder (the run lives
    in a scratch folder that goes with the model); with run_dir, a second learn() into it is
    refused in the API's words (keywords and methods, not the CLI's flags)."""
    monkeypatch.chdir(tmp_path)
    kwargs = dict(seed=0, num_envs=2, steps_per_update=256, epochs=1, progress=False, eval_episodes=0)
    model = policysearch.PPO("CartPole-v1", **kwargs).learn(256)
    assert list(tmp_path.iterdir()) == []
    scratch = model.result.run_dir
    assert scratch.is_dir() and not (scratch / "policy.mp4").exists()
    model.save(tmp_path / "saved")
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]
    del model
    import gc

    gc.collect()
    assert not scratch.exists()
    policysearch.PPO("CartPole-v1", run_dir="r", **kwargs).learn(256)
    with pytest.raises(policysearch.UserError) as err:
        policysearch.PPO("CartPole-v1", run_dir="r", **kwargs).learn(256)
    assert 'resume("r", total_steps)' in str(err.value) and "overwrite=True" in str(err.value) and "--" not in str(err.value)
    with pytest.raises(policysearch.UserError, match="^learning_rate= must be positive"):
        policysearch.PPO("CartPole-v1", learning_rate=-1.0)


def test_profile_times_every_phase_and_changes_nothing(tmp_path: Path) -> None:
    """--profile splits the updates' wall time into phases (the first update, which compiles,
    left out) and writes profile.json; the run it times computes exactly what an untimed run does."""
    plain = train("ppo", _run(tmp_path / "plain", total=2048), SMALL)
    timed = train("ppo", dataclasses.replace(_run(tmp_path / "timed", total=2048), profile=True), SMALL)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("wall_time", "steps_per_second")} for r in rows]  # noqa: E731
    assert strip(_rows(tmp_path / "plain")) == strip(_rows(tmp_path / "timed"))
    assert "profile" not in plain.summary
    prof = timed.summary["profile"]
    steps_per_update = SMALL.steps_per_update
    assert prof["updates"] == 2048 // steps_per_update - 1 and prof["steps"] == prof["updates"] * steps_per_update
    for phase in ("env", "policy", "rollout other", "to device", "update", "logging"):
        assert prof[phase] > 0, phase
    phases = sum(v for k, v in prof.items() if k not in ("total", "updates", "steps", "steps_per_second", "env_steps_per_second"))
    assert prof["total"] == pytest.approx(phases)
    assert prof["env_steps_per_second"] > prof["steps_per_second"] > 0
    assert json.loads((tmp_path / "timed" / "profile.json").read_text()) == pytest.approx(prof)
