"""`--preset zoo`: the RL Zoo's per-task settings land in the run's config, flags given override
them, a resumed preset run keeps them, bad names are refused; and `--no-ortho-init` gives
PyTorch's nn.Linear initialisation."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest

from policysearch.algos.presets import ACTION_DIMS, ZOO, find_preset, robot
from policysearch.cli import train_args
from policysearch.errors import UserError
from policysearch.core.policies import Policy
from tests.conftest import one_line_error, run_cli


def test_zoo_trpo_on_hopper_and_flags_override() -> None:
    _, args = train_args(["trpo", "--env", "Hopper-v5", "--preset", "zoo", "--cg-iterations", "30"])
    assert (args.run.num_envs, args.algo.steps_per_update, args.algo.critic_epochs) == (2, 2048, 20)
    assert args.algo.cg_iterations == 30  # the flag given wins over the preset's 25
    _, cheetah = train_args(["trpo", "--env", "HalfCheetah-v5", "--preset", "zoo"])
    assert cheetah.algo.cg_iterations == 25
    # the Zoo's target_kl (0.04 on HalfCheetah) and damping 0.1 bound sb3-contrib's KL averaged over the 6 action
    # dimensions: ours is the whole action distribution's KL, so both are 6 times larger here (tests/test_peers.py)
    assert (cheetah.algo.max_kl, cheetah.algo.cg_damping) == (0.24, 0.6)
    _, plain = train_args(["trpo", "--env", "Hopper-v5"])
    assert plain.algo.critic_epochs == 10 and plain.run.num_envs == 8  # no preset: our defaults


def test_every_zoo_value_is_a_flag_of_its_algorithm() -> None:
    for (algo, name), preset in ZOO.items():
        _, args = train_args([algo, "--env", f"{name}-v5", "--preset", "zoo"])
        for key, value in preset.values.items():
            where = args.run if hasattr(args.run, key) else args.algo
            assert getattr(where, key) == value, (algo, name, key)
        assert preset.source.startswith("https://github.com/DLR-RM/rl-baselines3-zoo/blob/")


def test_the_trpo_presets_action_dimensions_are_the_tasks() -> None:
    import gymnasium as gym

    for robot_name, dims in ACTION_DIMS.items():
        env = gym.make(f"{robot_name}-v5")
        assert env.action_space.shape == (dims,), robot_name
        env.close()
        assert ZOO[("trpo", robot_name)].values["max_kl"] == pytest.approx((0.04 if robot_name == "HalfCheetah" else 0.01) * dims)


def test_robot_names() -> None:
    assert robot("Hopper-v5") == robot("Hopper-v4") == "Hopper"
    assert robot("policysearch/Walker2dTerrain-v0") == "Walker2dTerrain"
    with pytest.raises(UserError, match="serves ppo on"):
        find_preset("zoo", "ppo", "CartPole-v1")


@pytest.mark.parametrize("argv, fragments", [
    (["train", "trpo", "--env", "CartPole-v1", "--preset", "zoo"], ["no settings for trpo on CartPole-v1", "leave out --preset"]),
    (["train", "ppo", "--preset", "tuned"], ["unknown preset 'tuned'", "zoo"]),
    (["train", "gps", "--preset", "zoo"], ["unknown flag --preset"]),
])
def test_bad_presets_are_refused(argv: list[str], fragments: list[str]) -> None:
    one_line_error(run_cli(*argv), 2, *fragments)


def test_torch_default_init() -> None:
    """ortho_init=False: hidden and head weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
    kaiming_uniform with a = sqrt 5), so std 1/sqrt(3 fan_in)."""
    params = Policy(11, 3, "gaussian", (256, 256), "relu", -2.0, ortho_init=False).init(jax.random.PRNGKey(0))
    for layer, fan_in in (("Dense_0", 11), ("Dense_1", 256), ("Dense_2", 256)):
        w = np.asarray(params.actor["params"][layer]["kernel"])
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound / math.sqrt(3)
    ortho = Policy(11, 3, "gaussian", (256, 256), "relu").init(jax.random.PRNGKey(0))
    w = np.asarray(ortho.actor["params"]["Dense_1"]["kernel"])
    np.testing.assert_allclose(w.T @ w, 2.0 * np.eye(256), atol=1e-4)  # orthogonal, gain sqrt 2


def test_preset_run_resumes_with_its_settings(tmp_path) -> None:
    """A zoo PPO run on Hopper (1 env, 512 steps per update, 256x256 ReLU) trains, and resumes with
    the same --preset (as a sweep's retried trial does) under the same settings."""
    run_dir = tmp_path / "run"
    common = ["--preset", "zoo", "--eval-episodes", "0", "--no-video", "--no-progress"]
    first = run_cli("train", "ppo", "--env", "Hopper-v5", "--total-steps", "512", "--run-dir", str(run_dir), *common)
    assert first.returncode == 0, first.stderr[-2000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["run"]["num_envs"] == 1
    assert config["algo_config"]["hidden"] == [256, 256] and config["algo_config"]["ortho_init"] is False
    again = run_cli("train", "ppo", "--env", "Hopper-v5", "--total-steps", "1024", "--resume", str(run_dir), *common)
    assert again.returncode == 0, again.stderr[-2000:]
    rows = (run_dir / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2  # header, updates at 512 and 1024 steps
