"""`policysearch plan`: iLQR on a task, its controller saved with a cost plot (the edge around
`policysearch.control`)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.control.ilqr import STOP_REASONS, ILQRConfig, Solution, solve, trajectory_cost
from policysearch.control.lqg import LinearGaussianController
from policysearch.envs.systems import TASKS, Task
from policysearch.errors import UserError
from policysearch.run.config import PlanConfig
from policysearch.run.checkpoint import write_json_atomic
from policysearch.run.evaluation import closed_loop_on_env
from policysearch.run.folder import claim_new_run, default_run_dir
from policysearch.run.lock import RunLock


def make_task(env: str, horizon: int) -> Task:
    if env in TASKS:
        return TASKS[env](horizon=horizon)
    raise KeyError(env)


def run_plan(cfg: PlanConfig) -> dict[str, Any]:
    """Plan on a JAX task or a MuJoCo robot; a summary dict (also saved as plan.json)."""
    if cfg.env in TASKS:
        with _claim(cfg) as lock:
            return _plan_jax(cfg, lock.run_dir)
    from policysearch.control.costs import locomotion_cost
    from policysearch.envs import check_env_id

    spec = check_env_id(cfg.env)  # an unknown id gets its own message
    try:
        locomotion_cost(spec.id, 0)
    except KeyError:
        raise UserError(
            f"no trajectory-optimisation cost is defined for {cfg.env}: choose one of {', '.join(TASKS)}, "
            "Swimmer-v5, Hopper-v5, Walker2d-v5, Humanoid-v5 or the terrain tasks"
        ) from None
    with _claim(cfg) as lock:
        return _plan_mujoco(cfg, spec.id, lock.run_dir)


def _claim(cfg: PlanConfig) -> RunLock:
    """The plan's folder, locked while the plan runs (a new plan replaces the files of an earlier
    one there)."""
    return claim_new_run(Path(cfg.run_dir) if cfg.run_dir else default_run_dir("plan", cfg.env), overwrite=False,
                         fix="choose another --run-dir for the plan")


def _finish(cfg: PlanConfig, run_dir: Path, sol: Solution, controller: LinearGaussianController, seconds: float, name: str,
            extra: dict[str, Any]) -> dict[str, Any]:
    """Save the controller, the cost plot and plan.json (the summary, the task and the cost of every
    iteration, which `policysearch plot` redraws cost.png from); the summary."""
    from policysearch.run.viz import plot_costs

    iterations = int(sol.iterations)
    costs = np.asarray(sol.costs)[: iterations + 1]
    controller.save(run_dir, {"task": name, "plan_config": dataclasses.asdict(cfg)})
    plot_costs(run_dir / "cost.png", costs, name)
    result = {
        "cost_initial": float(np.asarray(sol.costs)[0]),
        "cost_final": float(sol.cost),
        "iterations": iterations,
        "stopped": STOP_REASONS[int(sol.stop)],
        "seconds": seconds,
        **extra,
        "run_dir": str(run_dir),
    }
    write_json_atomic(run_dir / "plan.json", dict(result, task=name, costs=[float(c) for c in costs]))
    return result


def _plan_mujoco(cfg: PlanConfig, env_id: str, run_dir: Path) -> dict[str, Any]:
    from policysearch.control.costs import initial_controls, locomotion_cost
    from policysearch.control.mujoco_ilqr import receding_start, solve_mujoco
    from policysearch.envs.mujoco_model import MujocoModel

    model = MujocoModel(env_id)
    cost = locomotion_cost(env_id, model.nq, cfg.target_velocity, model.ground, model.healthy_ranges)
    ilqr = ILQRConfig(max_iterations=cfg.iterations, tolerance=cfg.tolerance)
    valid = cost.health_test

    iteration_seconds: list[float] = []

    def log(row: dict[str, Any]) -> None:
        iteration_seconds.append(float(row["seconds"]))
        if not cfg.json:
            print(f"iter {row['iteration']:4d}  cost {row['cost']:12.6g}  mu {row['mu']:9.3g}  alpha {row['alpha']:6.3g}  ({row['seconds']:.2f} s)", flush=True)

    def log_window(row: dict[str, Any]) -> None:
        if not cfg.json:
            print(f"window from step {row['start']:4d}: {row['iterations']:3d} iterations, cost {row['cost']:10.4g}, "
                  f"valid for {row['valid_steps']} of {cfg.window + 1} states", flush=True)

    with jax.enable_x64(True):  # MuJoCo states are float64; so are the gains and the rollout
        t0 = time.perf_counter()
        x0, u0 = model.initial_state(), initial_controls(env_id, cfg.horizon, model.control_dim)
        extra: dict[str, Any] = {}
        if cfg.receding and valid is not None:
            zero_cost = float(trajectory_cost(cost.running, cost.terminal, jnp.asarray(model.rollout(x0, u0)), jnp.asarray(u0)))
            u0 = receding_start(model, cost.running, cost.terminal, x0, u0, valid, cfg.receding_config(), cfg.fd_eps, on_window=log_window)
            extra["receding_seconds"] = time.perf_counter() - t0
        sol = solve_mujoco(model, cost.running, cost.terminal, x0, u0, ilqr, log, cfg.fd_eps, valid)
        seconds = time.perf_counter() - t0
        if "receding_seconds" in extra:  # the plan's cost from where it started (the initial controls), and the
            extra.update(cost_initial=zero_cost, cost_receding_start=float(np.asarray(sol.costs)[0]))  # full solve's start
        t1 = time.perf_counter()  # the derivatives alone: one finite-difference linearisation along the plan
        model.linearize(np.asarray(sol.x), np.asarray(sol.u), cfg.fd_eps)
        extra["derivatives_seconds"] = time.perf_counter() - t1
        if len(iteration_seconds) > 1:  # the first iteration compiles
            extra["iteration_seconds_median"] = float(np.median(iteration_seconds[1:]))
        controller = LinearGaussianController.from_solution(sol, cfg.temperature)
        rollout = closed_loop_on_env(controller, env_id, video=run_dir / "plan.mp4" if cfg.video else None)
        result = _finish(cfg, run_dir, sol, controller, seconds, env_id, {**extra, "valid_steps": int(sol.valid_steps), **rollout})
    model.close()
    return result


def _plan_jax(cfg: PlanConfig, run_dir: Path) -> dict[str, Any]:
    task = make_task(cfg.env, cfg.horizon)
    ilqr = ILQRConfig(max_iterations=cfg.iterations, tolerance=cfg.tolerance)
    lo, hi = jnp.asarray(task.u_low), jnp.asarray(task.u_high)
    solver = jax.jit(lambda x0, u: solve(task.dynamics, task.running_cost, task.terminal_cost, x0, u, lo, hi, ilqr))
    u0 = jnp.zeros((task.horizon, task.control_dim))
    solver.lower(task.initial_state(), u0).compile()
    t0 = time.perf_counter()
    sol: Solution = jax.block_until_ready(solver(task.initial_state(), u0))
    seconds = time.perf_counter() - t0
    controller = LinearGaussianController.from_solution(sol, cfg.temperature)
    result = _finish(cfg, run_dir, sol, controller, seconds, task.name, {"final_state": [float(v) for v in np.asarray(sol.x[-1])]})
    if not cfg.json:
        costs, mus, alphas = (np.asarray(a) for a in (sol.costs, sol.mus, sol.alphas))
        for i in range(1, result["iterations"] + 1):
            print(f"iter {i:4d}  cost {costs[i]:12.6g}  mu {mus[i]:9.3g}  alpha {alphas[i]:6.3g}")
    return result


__all__ = ["PlanConfig", "make_task", "run_plan"]
