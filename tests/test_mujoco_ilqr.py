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


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5", "Swimmer-v5", "Humanoid-v5"])
def test_model_step_is_the_env_step(env_id: str) -> None:
    model = MujocoModel(env_id)
    us = np.random.default_rng(0).uniform(-0.5, 0.5, (30, model.control_dim))
    xs = model.rollout(model.initial_state(), us)
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    env.set_state(model.init_qpos, model.init_qvel)
    for u in us:
        env.step(u)
    # the humanoid's contact solver ends its iterations a little differently from a zero warm start
    # (the model's, so that a step is a function of (x, u) alone) than from the env's carried one
    np.testing.assert_allclose(np.concatenate([env.data.qpos, env.data.qvel]), xs[-1], atol=1e-5 if env_id == "Humanoid-v5" else 1e-9)
    batched = model.step_batch(xs[:-1], us)
    np.testing.assert_allclose(batched, xs[1:], atol=1e-12)


def test_model_step_depends_on_state_and_control_only() -> None:
    """A step does not depend on what the pooled MjData stepped before (MuJoCo keeps the
    constraint solver's warm start there): the same (x, u) steps to bit-identical states alone,
    in a batch beside other states, and after other steps. It did not, and iLQR runs from the
    same start took different paths (1e-14 differences grown by accept/reject decisions)."""
    model = MujocoModel("Walker2d-v5")
    rng = np.random.default_rng(3)
    xs = model.rollout(model.initial_state(), rng.uniform(-1, 1, (60, model.control_dim)))  # in contact
    x, u = xs[-1], rng.uniform(-1, 1, model.control_dim)
    alone = model.step(x, u)
    others = np.concatenate([xs[-20:], x[None]]), np.concatenate([rng.uniform(-1, 1, (20, model.control_dim)), u[None]])
    for _ in range(3):
        np.testing.assert_array_equal(model.step_batch(*others)[-1], alone)
        model.step_batch(others[0][::-1].copy(), others[1])
    np.testing.assert_array_equal(model.step(x, u), alone)


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5"])
def test_cost_prices_the_unhealthy_region(env_id: str) -> None:
    """`healthy` is the env's own test, and the barrier is zero well inside the healthy range and
    grows outside it (a plan that falls pays for it)."""
    from policysearch.control.costs import locomotion_cost

    model = MujocoModel(env_id)
    cost = locomotion_cost(env_id, model.nq, healthy=model.healthy_ranges)
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    x0 = model.initial_state()
    agree = 0
    for _ in range(200):
        x = x0.copy()
        x[1] = rng.uniform(0.4, 2.3)
        x[2] = rng.uniform(-1.5, 1.5)
        env.set_state(x[: model.nq], x[model.nq :])
        assert bool(cost.healthy(x)) == bool(env.is_healthy)
        agree += 1
    assert agree == 200
    upright = x0.copy()
    assert float(cost.barrier(upright)) == 0.0 and bool(cost.healthy(upright))
    low = x0.copy()
    low[1] = model.healthy_ranges[0][0] - 0.05
    lower = low.copy()
    lower[1] -= 0.1
    assert 0.0 < float(cost.barrier(low)) < float(cost.barrier(lower))
    assert float(cost.running(low, np.zeros(model.control_dim))) > float(cost.running(upright, np.zeros(model.control_dim))) + 10


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
@pytest.mark.parametrize(("env_id", "horizon"), [("Hopper-v5", 300), ("Swimmer-v5", 200)])
def test_planned_controller_moves_forward_on_the_real_env(tmp_path, env_id: str, horizon: int) -> None:
    """`policysearch plan` from the default start: the optimised closed-loop controller runs the
    whole horizon on the real env without terminating, moves forward, and the full-horizon iLQR
    lowered the cost of the plan it started from (for the walker, the receding-horizon one).
    Walker2d-v5 takes the same path as Hopper-v5 (receding start, full-horizon iLQR, healthy
    test) and passed at horizons 200 and 300, but costs 263 s of CI's 20 minutes on its own; its
    figure in the README is measured with `policysearch plan --env Walker2d-v5 --horizon 300`."""
    result = run_plan(PlanConfig(env=env_id, horizon=horizon, iterations=100, tolerance=1e-4, run_dir=str(tmp_path), json=True, video=False))
    assert result["cost_final"] < (0.75 if env_id == "Swimmer-v5" else 1.0) * result["cost_initial"]
    assert result["valid_steps"] == horizon + 1
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


def test_one_compiled_solve_serves_every_terrain(monkeypatch) -> None:
    """Two terrains, each its own MuJoCo model and ground-aware cost, share one trace of the jitted
    solve (the model is a traced handle, the ground profile an argument; it was ~12 s of compiling
    per terrain), and the second terrain's solution is the one a solve built for it alone finds,
    with its model and profile compiled in as constants (as before the sharing)."""
    import jax.numpy as jnp

    import policysearch.envs  # noqa: F401  (registers the terrain task)
    from policysearch.control import mujoco_ilqr
    from policysearch.control.costs import locomotion_cost
    from policysearch.control.ilqr import ILQRConfig, line_search_alphas, solve_model
    from policysearch.envs.terrain import ENV_ID

    traces: list[int] = []

    def counting_solve_model(*args, **kwargs):  # runs once per trace of the jitted solve
        traces.append(1)
        return solve_model(*args, **kwargs)

    monkeypatch.setattr(mujoco_ilqr, "solve_model", counting_solve_model)
    mujoco_ilqr._compiled.cache_clear()
    config, rng = ILQRConfig(max_iterations=3), np.random.default_rng(0)
    solutions = []
    try:
        for seed in (0, 1):
            model = MujocoModel(ENV_ID, terrain_seed=seed)
            ground = tuple(tuple(a.tolist()) for a in model.env.unwrapped.profile)
            cost = locomotion_cost(ENV_ID, model.nq, 2.5, ground, model.healthy_ranges)
            x0, u0 = model.initial_state(), rng.uniform(-0.3, 0.3, (6, model.control_dim))
            sol = mujoco_ilqr.solve_mujoco(model, cost.running, cost.terminal, x0, u0, config, valid=cost.healthy)
            solutions.append(sol)
            np.testing.assert_array_equal(np.asarray(sol.x), model.rollout(x0, np.asarray(sol.u)))  # this terrain's model stepped
        assert len(traces) == 1 and mujoco_ilqr._compiled.cache_info().currsize == 1
        assert not np.allclose(np.asarray(solutions[0].x), np.asarray(solutions[1].x))
        with jax.enable_x64(True):
            dynamics = mujoco_ilqr.MujocoDynamics(mujoco_ilqr._register(model), model.state_dim, 1e-3,
                                                  len(line_search_alphas(config.line_search_steps)))
            alone = jax.jit(lambda: solve_model(dynamics, cost.running, cost.terminal, jnp.asarray(x0), jnp.asarray(u0),
                                                jnp.asarray(model.u_low), jnp.asarray(model.u_high), config, cost.healthy))()
        assert int(alone.iterations) == int(sol.iterations) and int(sol.iterations) > 0
        for name in ("x", "u", "k", "K", "cost", "costs", "alphas"):
            np.testing.assert_allclose(np.asarray(getattr(sol, name)), np.asarray(getattr(alone, name)), rtol=1e-12, atol=1e-12, err_msg=name)
    finally:
        mujoco_ilqr._compiled.cache_clear()


def test_humanoid_cost_terms_and_health() -> None:
    """The free root's terms: the tilt angle^2 = 4 (q_x^2 + q_y^2) = 2 (1 - up_z) (zero upright,
    whatever the heading), the sideways velocity, and Humanoid-v5's health 1 < z < 2 measured
    above the terrain's ground on HumanoidTerrain."""
    import jax.numpy as jnp

    from policysearch.control.costs import locomotion_cost

    model = MujocoModel("policysearch/HumanoidTerrain-v0", terrain_seed=100)
    cost = locomotion_cost(model.env_id, model.nq, 1.0, model.ground, model.healthy_ranges)
    x = model.initial_state()
    assert cost.free_root and cost.z_range == (1.0, 2.0) and cost.first_joint == 7
    for angle, axis in ((0.0, 0), (0.7, 1), (1.2, 2), (np.pi / 2, 1)):  # about x, y, z (heading) by `angle`
        q = np.zeros(3)
        q[axis] = np.sin(angle / 2)
        xr = x.copy()
        xr[3:7] = [np.cos(angle / 2), *q]
        up_z = 1 - 2 * (xr[4] ** 2 + xr[5] ** 2)
        assert float(cost._angle_sq(jnp.asarray(xr))) == pytest.approx(2 * (1 - up_z), abs=1e-6)
        assert (float(cost._angle_sq(jnp.asarray(xr))) < 1e-9) == (axis == 2 or angle == 0)
    xs, h = (np.asarray(a) for a in model.ground)
    i = int(np.argmin(h))
    dip = x.copy()
    dip[0], dip[2] = xs[i], h[i] + 1.1
    assert h[i] < -0.1 and bool(cost.healthy(jnp.asarray(dip))) and float(cost.barrier(jnp.asarray(dip))) == 0.0
    dip[2] = h[i] + 0.95
    assert not bool(cost.healthy(jnp.asarray(dip))) and float(cost.barrier(jnp.asarray(dip))) > 0.0
    sideways = x.copy()
    sideways[model.nq + 1] = 1.0
    assert float(cost.running(jnp.asarray(sideways), jnp.zeros(model.nu))) > float(cost.running(jnp.asarray(x), jnp.zeros(model.nu)))


def test_ilqr_on_the_humanoid_lowers_the_cost_from_standing(tmp_path) -> None:
    """iLQR on Humanoid-v5 (state 47, 17 torques, finite-difference derivatives) over 20 steps from
    the standing start: the cost falls by more than 30%, the controller's closed loop on the real env
    stays healthy for the whole horizon, and the plan reports an iteration's time against the
    derivatives alone."""
    result = run_plan(PlanConfig(env="Humanoid-v5", horizon=20, iterations=10, receding=False, video=False,
                                 run_dir=str(tmp_path / "humanoid"), json=True))
    assert result["cost_final"] < 0.7 * result["cost_initial"], result  # measured: 31.2 -> 15.8
    assert not result["terminated"] and result["steps"] == 20
    assert 0 < result["derivatives_seconds"] and 0 < result["iteration_seconds_median"]
