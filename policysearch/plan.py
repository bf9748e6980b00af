"""`policysearch plan`: iLQR on a task, its controller saved with a cost plot (the edge around
`policysearch.control`)."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.control.ilqr import ILQRConfig, Solution, solve
from policysearch.control.lqg import LinearGaussianController
from policysearch.envs.systems import TASKS, Task
from policysearch.errors import UserError, require_positive


@dataclass(frozen=True)
class PlanConfig:
    """Trajectory optimisation of one task."""

    env: str = "pendulum-swingup"
    """Task: a JAX system (pendulum-swingup, cartpole-swingup, arm-reach) or a MuJoCo robot with a
    locomotion cost (Swimmer-v5, Hopper-v5, Walker2d-v5)."""
    target_velocity: float = 1.0
    """Forward velocity the locomotion cost asks for (MuJoCo robots)."""
    video: bool = True
    """Render the closed-loop rollout to an MP4 (MuJoCo robots)."""
    fd_eps: float = 1e-3
    """Finite-difference step of the MuJoCo Jacobians (wide enough to average over contacts)."""
    horizon: int = 100
    """Time steps T."""
    iterations: int = 100
    """iLQR iteration cap."""
    tolerance: float = 1e-6
    """Relative cost decrease below which iLQR stops."""
    temperature: float = 1.0
    """Scale of the controller's covariance Q_uu^-1."""
    run_dir: str = ""
    """Where the controller and the cost plot go (default: runs/plan-ENV)."""
    json: bool = False
    """Print one JSON object of the result."""

    def __post_init__(self) -> None:
        require_positive("horizon", self.horizon)
        require_positive("iterations", self.iterations)
        require_positive("temperature", self.temperature)
        require_positive("fd_eps", self.fd_eps)


def make_task(env: str, horizon: int) -> Task:
    if env in TASKS:
        return TASKS[env](horizon=horizon)
    raise KeyError(env)


def run_plan(cfg: PlanConfig) -> dict[str, Any]:
    """Plan on a JAX task or a MuJoCo robot; a summary dict (also saved as plan.json)."""
    if cfg.env in TASKS:
        return _plan_jax(cfg)
    from policysearch.control.costs import locomotion_cost
    from policysearch.envs import check_env_id

    spec = check_env_id(cfg.env)  # an unknown id gets its own message
    try:
        locomotion_cost(spec.id, 0)
    except KeyError:
        raise UserError(
            f"no trajectory-optimisation cost is defined for {cfg.env}: choose one of {', '.join(TASKS)}, "
            "Swimmer-v5, Hopper-v5 or Walker2d-v5"
        ) from None
    return _plan_mujoco(cfg, spec.id)


def _run_dir(cfg: PlanConfig) -> Path:
    run_dir = Path(cfg.run_dir) if cfg.run_dir else Path("runs") / f"plan-{cfg.env.replace('/', '_')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _finish(cfg: PlanConfig, run_dir: Path, sol: Solution, seconds: float, name: str, extra: dict[str, Any]) -> tuple[dict[str, Any], LinearGaussianController]:
    """Save the controller, the cost plot and plan.json; print the iteration log."""
    iterations = int(sol.iterations)
    controller = LinearGaussianController.from_solution(sol, cfg.temperature)
    controller.save(run_dir, {"task": name, "plan_config": dataclasses.asdict(cfg)})
    costs, mus, alphas = (np.asarray(a)[: iterations + 1] for a in (sol.costs, sol.mus, sol.alphas))
    _plot_costs(run_dir / "cost.png", costs, name)
    result = {
        "cost_initial": float(costs[0]),
        "cost_final": float(sol.cost),
        "iterations": iterations,
        "seconds": seconds,
        **extra,
        "run_dir": str(run_dir),
    }
    (run_dir / "plan.json").write_text(json.dumps(result, indent=2))
    return result, controller


def _plan_mujoco(cfg: PlanConfig, env_id: str) -> dict[str, Any]:
    from policysearch.control.costs import initial_controls, locomotion_cost
    from policysearch.control.mujoco_ilqr import solve_mujoco
    from policysearch.envs.mujoco_model import MujocoModel

    model = MujocoModel(env_id)
    cost = locomotion_cost(env_id, model.nq, cfg.target_velocity)
    ilqr = ILQRConfig(max_iterations=cfg.iterations, tolerance=cfg.tolerance)

    def log(row: dict[str, Any]) -> None:
        if not cfg.json:
            print(f"iter {row['iteration']:4d}  cost {row['cost']:12.6g}  mu {row['mu']:9.3g}  alpha {row['alpha']:6.3g}  ({row['seconds']:.2f} s)", flush=True)

    with jax.enable_x64(True):  # MuJoCo states are float64; so are the gains and the rollout
        t0 = time.perf_counter()
        sol = solve_mujoco(model, cost.running, cost.terminal, model.initial_state(), initial_controls(env_id, cfg.horizon, model.control_dim), ilqr, log, cfg.fd_eps)
        seconds = time.perf_counter() - t0
        run_dir = _run_dir(cfg)
        controller = LinearGaussianController.from_solution(sol, cfg.temperature)
        rollout = closed_loop_on_env(controller, env_id, video=run_dir / "plan.mp4" if cfg.video else None)
        result, _ = _finish(cfg, run_dir, sol, seconds, env_id, rollout)
    model.close()
    return result


def closed_loop_on_env(controller: LinearGaussianController, env_id: str, video: Path | None = None) -> dict[str, Any]:
    """Run the controller's mean on the real Gymnasium env from the default initial state (no
    reset noise) for its horizon: env_return, steps, terminated, x_travelled."""
    out = run_from_default_start(lambda t, obs, x: controller.act(t, x), env_id, controller.horizon, video)
    del out["path"]
    return out


def run_from_default_start(
    act: Callable[[int, np.ndarray, np.ndarray], np.ndarray], env_id: str, horizon: int, video: Path | None = None, **env_kwargs: Any,
) -> dict[str, Any]:
    """Run u_t = act(t, obs_t, x_t) (x = (qpos, qvel)), clipped to [-1, 1], on the real MuJoCo env
    from its default initial state (no reset noise) for `horizon` steps or until the episode ends:
    env_return, steps, terminated, x_travelled and the root's (x, z) path."""
    import gymnasium as gym

    from policysearch.viz import follow_root_body, write_video

    kwargs = {"render_mode": "rgb_array", "width": 480, "height": 360} if video is not None else {}
    env = gym.make(env_id, **kwargs, **env_kwargs)
    env.reset(seed=0)
    inner = env.unwrapped
    inner.set_state(inner.init_qpos, inner.init_qvel)
    obs = inner._get_obs()
    if video is not None:
        env.render()
        follow_root_body(env)
    frames = [env.render()] if video is not None else []
    ret, steps, terminated, x_start = 0.0, 0, False, float(inner.data.qpos[0])
    path = [(x_start, float(inner.data.qpos[1]))]
    for t in range(horizon):
        x = np.concatenate([inner.data.qpos, inner.data.qvel])
        obs, reward, terminated, truncated, _ = env.step(np.clip(act(t, obs, x), -1.0, 1.0))
        ret, steps = ret + float(reward), steps + 1
        path.append((float(inner.data.qpos[0]), float(inner.data.qpos[1])))
        if video is not None and t % 4 == 3:
            frames.append(env.render())
        if terminated or truncated:
            break
    if video is not None:
        write_video(video, frames, fps=round(1.0 / (4 * inner.dt)))
    out = {"env_return": ret, "steps": steps, "terminated": bool(terminated), "x_travelled": path[-1][0] - x_start, "path": path}
    env.close()
    return out


def _plan_jax(cfg: PlanConfig) -> dict[str, Any]:
    task = make_task(cfg.env, cfg.horizon)
    ilqr = ILQRConfig(max_iterations=cfg.iterations, tolerance=cfg.tolerance)
    lo, hi = jnp.asarray(task.u_low), jnp.asarray(task.u_high)
    solver = jax.jit(lambda x0, u: solve(task.dynamics, task.running_cost, task.terminal_cost, x0, u, lo, hi, ilqr))
    u0 = jnp.zeros((task.horizon, task.control_dim))
    solver.lower(task.initial_state(), u0).compile()
    t0 = time.perf_counter()
    sol: Solution = jax.block_until_ready(solver(task.initial_state(), u0))
    seconds = time.perf_counter() - t0
    result, _ = _finish(cfg, _run_dir(cfg), sol, seconds, task.name, {"final_state": [float(v) for v in np.asarray(sol.x[-1])]})
    if not cfg.json:
        costs, mus, alphas = (np.asarray(a) for a in (sol.costs, sol.mus, sol.alphas))
        for i in range(1, result["iterations"] + 1):
            print(f"iter {i:4d}  cost {costs[i]:12.6g}  mu {mus[i]:9.3g}  alpha {alphas[i]:6.3g}")
    return result


def _plot_costs(path: Path, costs: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.semilogy(np.arange(len(costs)), costs, "o-", markersize=3)
    ax.set_xlabel("iLQR iteration")
    ax.set_ylabel("trajectory cost")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["PlanConfig", "make_task", "run_plan"]
