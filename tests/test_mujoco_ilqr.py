"""iLQR on MuJoCo robots: the model against the real env, its linearisation against the true next
state, and (slow) optimised closed-loop controllers run on the real Gymnasium environments."""

from __future__ import annotations

import gymnasium as gym
import jax
import numpy as np
import pytest

from policysearch.control.lqg import LinearGaussianController
from policysearch.envs.mujoco_model import MujocoModel
from policysearch.run.evaluation import closed_loop_on_env
from policysearch.run.plan import PlanConfig, run_plan


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5", "Swimmer-v5"])
def test_model_step_is_the_env_step(env_id: str) -> None:
    model = MujocoModel(env_id)
    us = np.random.default_rng(0).uniform(-0.5, 0.5, (30, model.control_dim))
    xs = model.rollout(model.initial_state(), us)
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    env.set_state(model.init_qpos, model.init_qvel)
    for u in us:
        env.step(u)
    np.testing.assert_allclose(np.concatenate([env.data.qpos, env.data.qvel]), xs[-1], atol=1e-9)
    batched = model.step_batch(xs[:-1], us)
    np.testing.assert_allclose(batched, xs[1:], atol=1e-12)


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Swimmer-v5"])
def test_linearisation_predicts_small_perturbations(env_id: str) -> None:
    """f(x + dx, u + du) - f(x, u) ~ f_x dx + f_u du for perturbations of 1e-5, at states along
    a trajectory (median relative error; a contact or joint limit switching can spoil one)."""
    model = MujocoModel(env_id)
    rng = np.random.default_rng(1)
    us = rng.uniform(-0.3, 0.3, (40, model.control_dim))
    xs = model.rollout(model.initial_state(), us)
    f_x, f_u = model.linearize(xs, us)
    errors = []
    for t in range(5, 40, 3):
        dx, du = 1e-5 * rng.normal(size=model.state_dim), 1e-5 * rng.normal(size=model.control_dim)
        true = model.step(xs[t] + dx, us[t] + du) - xs[t + 1]
        errors.append(np.linalg.norm(true - f_x[t] @ dx - f_u[t] @ du) / np.linalg.norm(true))
    assert np.median(errors) < 1e-2, errors
    # the linear model beats "nothing changes" by orders of magnitude
    assert np.median(errors) < 0.1 * 1.0


@pytest.mark.slow
@pytest.mark.parametrize(("env_id", "horizon"), [("Hopper-v5", 150), ("Walker2d-v5", 150), ("Swimmer-v5", 200)])
def test_planned_controller_moves_forward_on_the_real_env(tmp_path, env_id: str, horizon: int) -> None:
    result = run_plan(PlanConfig(env=env_id, horizon=horizon, iterations=100, tolerance=1e-4, run_dir=str(tmp_path), json=True, video=False))
    assert result["cost_final"] < 0.75 * result["cost_initial"]
    assert result["steps"] == horizon and not result["terminated"], result
    assert result["x_travelled"] > 0.5, result
    # the saved controller reproduces the run
    with jax.enable_x64(True):
        controller, _ = LinearGaussianController.load(tmp_path)
        again = closed_loop_on_env(controller, env_id)
    assert again["steps"] == horizon and not again["terminated"]
    assert again["x_travelled"] == pytest.approx(result["x_travelled"], abs=0.05)


def test_mujoco_solve_says_why_it_stopped() -> None:
    """The MuJoCo driver names its stopping rule as the JAX one does."""
    from policysearch.control.costs import initial_controls, locomotion_cost
    from policysearch.control.ilqr import STOP_REASONS, ILQRConfig
    from policysearch.control.mujoco_ilqr import solve_mujoco

    model = MujocoModel("Swimmer-v5")
    cost = locomotion_cost("Swimmer-v5", model.nq)
    u0 = initial_controls("Swimmer-v5", 20, model.control_dim)
    capped = solve_mujoco(model, cost.running, cost.terminal, model.initial_state(), u0, ILQRConfig(max_iterations=2))
    assert STOP_REASONS[int(capped.stop)] == "iteration cap" and int(capped.iterations) == 2
    flat = solve_mujoco(model, cost.running, cost.terminal, model.initial_state(), u0, ILQRConfig(gradient_tolerance=1e30))
    assert STOP_REASONS[int(flat.stop)] == "stationary" and int(flat.iterations) == 0
