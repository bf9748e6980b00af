"""Every user error through the CLI: exit code 2 and one line that names the problem and the fix."""

from __future__ import annotations

import json
import subprocess
import sys
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
    _assert_user_error(run_cli("eval", str(tmp_path / "nowhere")), "'" + str(tmp_path / "nowhere") + "' does not exist")
    _assert_user_error(run_cli("train", "ppo", "--resume", str(tmp_path / "nowhere")), "no checkpoint found", "pass the run folder")
    _assert_user_error(run_cli("eval", str(tmp_path)), "no checkpoint found")
    started = tmp_path / "started"
    started.mkdir()
    (started / "config.json").write_text("{}")  # a run that has not reached its first checkpoint
    _assert_user_error(run_cli("eval", str(started)), "has written no checkpoint yet", "--checkpoint-every")


def test_messages_whose_advice_works(tmp_path: Path) -> None:
    """The first hour's messages (issue 15, item 7): each says what is wrong and a fix that works."""
    _assert_user_error(run_cli("train", "ppo", "--lr", "1e-3"), "unknown flag --lr", "did you mean --learning-rate?")
    _assert_user_error(run_cli("train", "ppo", "--learnin-rate", "1e-3"), "did you mean --learning-rate?")
    _assert_user_error(run_cli("train", "ppo", "--total-steps", "1.5"), "--total-steps", "'1.5' is not an integer")
    _assert_user_error(run_cli("train", "ppo", "--loss", "foo"), "--loss", "clip")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # 1e6 and 2.5e5 are integers: accepted, so the run goes on to the next check (the folder under a file)
    for steps in ("1e6", "2.5e5", "1_000_000"):
        _assert_user_error(run_cli("train", "ppo", "--total-steps", steps, "--run-dir", str(blocker / "x")), "which is a file")
    _assert_user_error(run_cli("train", "ppo", "--env", "nosuchmodule:MyEnv-v0"), "cannot import module 'nosuchmodule'", "PYTHONPATH")
    help_text = run_cli("train", "ppo", "--help").stdout
    assert help_text.count("(default: runs/ALGO-ENV-sSEED)") == 1 and "(default: '')" not in help_text
    top = run_cli("--help").stdout
    assert all(f"  {name} " in top for name in ("ppo", "trpo", "pg", "gps"))


def test_help_and_bad_input_answer_without_importing_jax() -> None:
    """`--help` and the refusal of bad input must not wait for JAX's 1-2 s import (issue 15, item
    6): each command below runs in one process that checks JAX was never imported."""
    script = """
import sys
from policysearch.cli import main
for argv in (["--help"], ["train", "ppo", "--help"], ["train", "gps", "--help"], ["plan", "--help"], ["eval", "--help"],
             ["train", "ppo", "--env", "Hoper-v5"], ["train", "trpo", "--max-kl", "-1"], ["train", "ppo", "--lr", "3"],
             ["eval", "/nonexistent"], ["plot", "/nonexistent"], ["train", "gps", "--conditions", "0"]):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code in (0, 2, None), (argv, code)
    assert "jax" not in sys.modules, argv
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_dict_observations_are_flattened(tmp_path: Path) -> None:
    """A Dict observation space trains, evaluates and reloads: every env the library makes
    flattens it (FlattenObservation), as the CLI cannot be told to."""
    run_dir = tmp_path / "dict"
    result = run_cli("train", "ppo", "--env", "tests.fake_envs:PolicysearchTest/DictObs-v0", "--total-steps", "512", "--num-envs", "2",
                     "--steps-per-update", "256", "--run-dir", str(run_dir), "--no-progress", "--eval-episodes", "2", "--no-video", cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads(next((run_dir / "checkpoints").glob("step_*/meta.json")).read_text())
    assert meta["env_spec"]["obs_dim"] == 5
    out = run_cli("eval", str(run_dir), "--episodes", "2", "--json", cwd=REPO)
    assert out.returncode == 0 and json.loads(out.stdout)["episodes"] == 2, out.stderr[-2000:]


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
