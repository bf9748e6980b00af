"""Every user error through the CLI: exit code 2 and one line that names the problem and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import one_line_error, run_cli

REPO = Path(__file__).resolve().parents[1]


def _assert_user_error(result, *fragments: str) -> None:
    one_line_error(result, 2, *fragments)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A short CartPole run to load, resume and corrupt."""
    run_dir = tmp_path_factory.mktemp("runs") / "cartpole"
    result = run_cli(
        "train", "ppo", "--env", "CartPole-v1", "--total-steps", "2048", "--num-envs", "4",
        "--run-dir", str(run_dir), "--no-progress", "--eval-episodes", "0",
    )
    assert result.returncode == 0, result.stderr
    return run_dir


def test_unknown_env_names_close_matches() -> None:
    _assert_user_error(run_cli("train", "ppo", "--env", "Hoper-v5", "--total-steps", "10"), "unknown environment 'Hoper-v5'", "Hopper-v5")


def test_unsupported_action_space() -> None:
    result = run_cli("train", "ppo", "--env", "tests.fake_envs:PolicysearchTest/MultiDiscrete-v0", "--total-steps", "64", cwd=REPO)
    _assert_user_error(result, "MultiDiscrete", "Box and Discrete")


@pytest.mark.parametrize(
    ("flag", "value", "fragment"),
    [
        ("--total-steps", "0", "--total-steps must be positive"),
        ("--total-steps", "-5", "--total-steps must be positive"),
        ("--learning-rate", "0", "--learning-rate must be positive"),
        ("--learning-rate", "-3e-4", "--learning-rate must be positive"),
        ("--gamma", "1.5", "--gamma must be in [0, 1]"),
    ],
)
def test_invalid_hyperparameters(flag: str, value: str, fragment: str) -> None:
    _assert_user_error(run_cli("train", "ppo", "--env", "CartPole-v1", flag, value), fragment)


def test_steps_per_update_must_split_over_envs() -> None:
    result = run_cli("train", "ppo", "--env", "CartPole-v1", "--num-envs", "3", "--total-steps", "100", "--no-progress")
    _assert_user_error(result, "multiple of --num-envs")


def test_unknown_algorithm_and_command() -> None:
    _assert_user_error(run_cli("train", "sac"), "unknown algorithm 'sac'")
    _assert_user_error(run_cli("fly"), "unknown command 'fly'")


def test_missing_checkpoint(tmp_path: Path) -> None:
    _assert_user_error(run_cli("eval", str(tmp_path / "nowhere")), "no checkpoint found")
    _assert_user_error(run_cli("train", "ppo", "--resume", str(tmp_path / "nowhere")), "no checkpoint found")


def test_corrupt_checkpoint(trained_run: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained_run, broken)
    ckpt = sorted((broken / "checkpoints").glob("step_*"))[-1]
    data = (ckpt / "arrays.safetensors").read_bytes()
    (ckpt / "arrays.safetensors").write_bytes(data[: len(data) // 2])
    _assert_user_error(run_cli("eval", str(broken)), "corrupt", "arrays.safetensors")
    (ckpt / "meta.json").write_text("{ not json")
    _assert_user_error(run_cli("eval", str(broken)), "corrupt", "meta.json")


def test_checkpoint_from_another_env(trained_run: Path) -> None:
    _assert_user_error(run_cli("eval", str(trained_run), "--env", "Acrobot-v1"), "trained on CartPole-v1", "--env CartPole-v1")
    _assert_user_error(run_cli("train", "ppo", "--resume", str(trained_run), "--env", "Acrobot-v1"), "trained on CartPole-v1", "--env CartPole-v1")


def test_new_run_refuses_to_mix_with_an_existing_one(trained_run: Path) -> None:
    result = run_cli("train", "ppo", "--env", "CartPole-v1", "--total-steps", "2048", "--run-dir", str(trained_run))
    _assert_user_error(result, "already holds a run", "--resume", "--overwrite")


def test_eval_prints_json(trained_run: Path) -> None:
    result = run_cli("eval", str(trained_run), "--episodes", "3", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) == {"return_mean", "return_std", "episodes", "length_mean"}
    assert summary["episodes"] == 3 and summary["return_mean"] > 0


def test_plan_json_and_errors(tmp_path: Path) -> None:
    result = run_cli("plan", "--env", "pendulum-swingup", "--horizon", "100", "--run-dir", str(tmp_path / "p"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["cost_final"] < 0.01 * summary["cost_initial"] and summary["iterations"] > 1
    assert (tmp_path / "p" / "cost.png").exists() and list((tmp_path / "p" / "controller").glob("step_*"))
    _assert_user_error(run_cli("plan", "--env", "Hoper-v5"), "unknown environment")
    _assert_user_error(run_cli("plan", "--horizon", "0"), "--horizon must be positive")
    _assert_user_error(run_cli("plan", "--env", "Hopper-v5", "--window", "20", "--commit", "30"), "--commit (30) must be at most --window (20)")
    _assert_user_error(run_cli("plan", "--env", "Hopper-v5", "--window-iterations", "0"), "--window-iterations must be positive")
    _assert_user_error(run_cli("plan", "--env", "CartPole-v1"), "no trajectory-optimisation cost is defined for CartPole-v1")
