"""Checkpoints, resume and reproducibility of the shared trainer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import policysearch
from policysearch.algos import PPOConfig
from policysearch.checkpoint import list_checkpoints
from policysearch.train import RunConfig, train

SMALL = PPOConfig(steps_per_update=512, minibatch_size=64, epochs=2)


def _run(run_dir: Path, env: str = "CartPole-v1", total: int = 2048, **kw) -> RunConfig:
    return RunConfig(env=env, total_steps=total, num_envs=4, seed=3, run_dir=str(run_dir), progress=False, eval_episodes=0, video=False, **kw)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_run_folder_contents(tmp_path: Path) -> None:
    train("ppo", _run(tmp_path / "r"), SMALL)
    run_dir = tmp_path / "r"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["run"]["env"] == "CartPole-v1" and config["algo_config"]["steps_per_update"] == 512
    rows = _rows(run_dir)
    assert [int(r["step"]) for r in rows] == [512, 1024, 1536, 2048]
    assert {"step", "wall_time", "episode_return_mean"} <= set(rows[0])
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert (run_dir / "learning_curve.png").stat().st_size > 1000
    assert list_checkpoints(run_dir / "checkpoints")


def test_checkpoint_round_trip_gives_identical_actions(tmp_path: Path) -> None:
    result = train("ppo", _run(tmp_path / "r", env="Hopper-v5"), SMALL)
    loaded = policysearch.load(tmp_path / "r")
    obs = np.random.default_rng(0).normal(size=(16, 11)).astype(np.float32)
    np.testing.assert_array_equal(result.agent.act(obs), loaded.act(obs))
    np.testing.assert_array_equal(result.agent.act(obs[0]), loaded.act(obs[0]))
    # the normalisation statistics travel with the policy: different stats, different actions
    assert float(np.abs(np.asarray(loaded.obs_stats.mean)).sum()) > 0


def test_resume_continues_steps_and_rows(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    train("ppo", _run(run_dir, total=1024), SMALL)
    train("ppo", _run(run_dir, total=2048), SMALL, resume=run_dir)
    assert [int(r["step"]) for r in _rows(run_dir)] == [512, 1024, 1536, 2048]
    meta = json.loads((list_checkpoints(run_dir / "checkpoints")[-1] / "meta.json").read_text())
    assert meta["step"] == 2048 and meta["update"] == 4


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
    with pytest.raises(policysearch.UserError, match="no option"):
        policysearch.PPO("CartPole-v1", learnin_rate=1e-3)
