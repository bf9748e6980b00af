"""`policysearch plan`: iLQR on a task, its controller saved with a cost plot (the edge around
`policysearch.control`)."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """Task: one of the JAX systems' tasks (pendulum-swingup, cartpole-swingup, arm-reach)."""
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


def make_task(env: str, horizon: int) -> Task:
    if env in TASKS:
        return TASKS[env](horizon=horizon)
    from policysearch.envs import check_env_id

    check_env_id(env)  # an unknown id gets its own message
    raise UserError(
        f"no trajectory-optimisation cost is defined for {env}: choose one of {', '.join(TASKS)} "
        "(MuJoCo locomotion costs are not implemented yet)"
    )


def run_plan(cfg: PlanConfig) -> dict[str, Any]:
    task = make_task(cfg.env, cfg.horizon)
    ilqr = ILQRConfig(max_iterations=cfg.iterations, tolerance=cfg.tolerance)
    lo, hi = jnp.asarray(task.u_low), jnp.asarray(task.u_high)
    solver = jax.jit(lambda x0, u: solve(task.dynamics, task.running_cost, task.terminal_cost, x0, u, lo, hi, ilqr))
    u0 = jnp.zeros((task.horizon, task.control_dim))
    solver.lower(task.initial_state(), u0).compile()
    t0 = time.perf_counter()
    sol: Solution = jax.block_until_ready(solver(task.initial_state(), u0))
    seconds = time.perf_counter() - t0
    iterations = int(sol.iterations)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else Path("runs") / f"plan-{cfg.env}"
    run_dir.mkdir(parents=True, exist_ok=True)
    controller = LinearGaussianController.from_solution(sol, cfg.temperature)
    controller.save(run_dir, {"task": task.name, "plan_config": dataclasses.asdict(cfg)})
    costs, mus, alphas = (np.asarray(a)[: iterations + 1] for a in (sol.costs, sol.mus, sol.alphas))
    _plot_costs(run_dir / "cost.png", costs, task.name)
    result = {
        "cost_initial": float(costs[0]),
        "cost_final": float(sol.cost),
        "iterations": iterations,
        "seconds": seconds,
        "final_state": [float(v) for v in np.asarray(sol.x[-1])],
        "run_dir": str(run_dir),
    }
    (run_dir / "plan.json").write_text(json.dumps(result, indent=2))
    if not cfg.json:
        for i in range(1, iterations + 1):
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
