"""`policysearch train gps`: Guided Policy Search on a task with a dynamics model (the edge around
`algos.gps`: problem construction, run folder, metrics, checkpoint, plot, evaluation).

The run folder holds config.json, metrics.csv (one row per iteration of Algorithm 1), the policy
as a checkpoint after every iteration (safetensors + JSON, atomic; `policysearch eval` loads it)
together with the whole state of Algorithm 1 (`algos.gps_state`; `--resume RUN_DIR` continues from
the last completed iteration), the guiding controllers, learning_curve.png (policy and DDP cost per
iteration) and summary.json.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from policysearch.algos.gps import OBS_CLIP, GPSConfig, GPSResult, policy_cost, run_gps
from policysearch.algos.gps_problems import GPSProblem, JaxTaskProblem, MujocoProblem, arm_reach_conditions
from policysearch.algos.gps_state import GPSState, state_from_checkpoint, state_to_checkpoint
from policysearch.checkpoint import find_checkpoint, list_checkpoints, load_extra, read_meta, save_checkpoint, write_json_atomic
from policysearch.envs.systems import TASKS
from policysearch.errors import UserError, require, require_positive
from policysearch.snapshot import config_from_dict

MUJOCO_TASKS = ("Swimmer", "Hopper", "Walker2d", "Walker2dTerrain")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class GPSRunConfig:
    """What GPS trains on and where the run goes."""

    env: str = "arm-reach-dense"
    """A task with a dynamics model: a JAX system (arm-reach-dense, arm-reach, pendulum-swingup,
    cartpole-swingup) or a MuJoCo robot with a locomotion cost (Swimmer-v5, Hopper-v5, Walker2d-v5,
    policysearch/Walker2dTerrain-v0: one condition per --terrains seed)."""
    conditions: int = 4
    """Training conditions (initial states). arm-reach-dense has its 4 documented starts; other
    tasks use the default start and perturbed ones."""
    horizon: int = 0
    """Time steps T of every trajectory (0: the task's default, 150 for MuJoCo robots)."""
    condition_spread: float = 0.1
    """Perturbation (rad) of the joint angles of the extra initial states."""
    terrains: tuple[int, ...] = (0, 1, 2, 3)
    """Training terrain seeds of policysearch/Walker2dTerrain-v0 (one condition each; --conditions is ignored there)."""
    example_policy: str = ""
    """A trained policysearch run (PPO, TRPO or GPS) whose deterministic rollout from each condition
    is the controls iLQR starts from: the paper initialised DDP from example motions. MuJoCo robots
    only; empty: the robot's default start (`control.costs.initial_controls` and continuation)."""
    target_velocity: float = 1.0
    """Forward velocity (m/s) of the MuJoCo robots' locomotion cost."""
    seed: int = 0
    """Seed of parameters, sampling and initial-state perturbations."""
    run_dir: str = ""
    """Where the run goes (default: runs/gps-ENV-sSEED)."""
    eval_episodes: int = 10
    """Episodes of the final evaluation on the real env (MuJoCo robots)."""
    overwrite: bool = False
    """Start afresh in a run dir that already holds a run."""
    json: bool = False
    """Print the summary as one JSON object."""

    def __post_init__(self) -> None:
        require_positive("conditions", self.conditions)
        require(self.horizon >= 0, f"--horizon must be >= 0, got {self.horizon}")
        require(self.eval_episodes >= 0, f"--eval-episodes must be >= 0, got {self.eval_episodes}")
        require(self.target_velocity > 0, f"--target-velocity must be > 0, got {self.target_velocity}")


def is_mujoco_task(env: str) -> bool:
    from policysearch.control.costs import robot_name

    return robot_name(env) in MUJOCO_TASKS


def make_problem(run: GPSRunConfig) -> GPSProblem:
    """The GPSProblem of run.env, or a UserError saying why GPS cannot run on it."""
    require(not run.example_policy or is_mujoco_task(run.env),
            f"--example-policy starts iLQR on MuJoCo robots only, not on '{run.env}'; leave it out")
    if run.env in TASKS:
        kwargs = {"horizon": run.horizon} if run.horizon else {}
        task = TASKS[run.env](**kwargs)
        if run.env == "arm-reach-dense":
            conds = arm_reach_conditions()[: run.conditions]
        else:
            rng = np.random.default_rng(run.seed)
            x0 = np.asarray(task.x0, np.float32)
            half = len(x0) // 2
            conds = [x0] + [x0 + np.concatenate([rng.uniform(-run.condition_spread, run.condition_spread, half), np.zeros(len(x0) - half)]).astype(np.float32)
                            for _ in range(run.conditions - 1)]
        return JaxTaskProblem(task, conds)
    if is_mujoco_task(run.env):
        terrains = tuple(run.terrains) if "Terrain" in run.env else ()
        example = None
        if run.example_policy:
            from policysearch.snapshot import load

            example = load(run.example_policy).act
        return MujocoProblem(run.env, run.horizon or 150, run.conditions, run.condition_spread, run.seed, run.target_velocity,
                             terrains=terrains, example=example)
    raise UserError(
        f"GPS needs a model of the dynamics and a cost, which '{run.env}' does not have: use a JAX task "
        f"({', '.join(TASKS)}) or a MuJoCo robot (Swimmer-v5, Hopper-v5, Walker2d-v5, policysearch/Walker2dTerrain-v0)"
    )


def _prepare_run_dir(run: GPSRunConfig) -> Path:
    run_dir = Path(run.run_dir) if run.run_dir else Path("runs") / f"gps-{run.env.replace('/', '_')}-s{run.seed}"
    if (run_dir / "checkpoints").exists() and list_checkpoints(run_dir / "checkpoints"):
        require(run.overwrite, f"'{run_dir}' already holds a run: pass --overwrite to replace it, or choose another --run-dir")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def policy_meta(run: GPSRunConfig, algo: GPSConfig, problem: GPSProblem, row: dict[str, Any], obs_stats: Any = None) -> dict[str, Any]:
    """What `snapshot.load` needs to rebuild the policy (with its input standardisation, if any),
    and where it came from."""
    lo, hi = (tuple(float(v) for v in a) for a in (problem.u_low, problem.u_high))
    norm = None if obs_stats is None else {"mean": np.asarray(obs_stats.mean).tolist(), "var": np.asarray(obs_stats.var).tolist(), "clip": OBS_CLIP}
    return {
        "format": FORMAT_VERSION, "obs_norm": norm, "algo": "gps", "env": run.env, "iteration": row.get("iteration", 0),
        "env_spec": {"env_id": run.env, "obs_dim": problem.obs_dim, "action_kind": "gaussian", "action_dim": problem.control_dim,
                     "action_low": lo, "action_high": hi},
        "run": dataclasses.asdict(run), "algo_config": dataclasses.asdict(algo),
    }


def resumed_state(resume: Path, run: GPSRunConfig, problem: GPSProblem, algo: GPSConfig) -> tuple[GPSState, float]:
    """The GPS state of the last checkpoint in `resume` and the wall time it had taken, or a
    UserError naming what does not match."""
    from policysearch.algos.gps import make_policy

    ckpt = find_checkpoint(resume)
    meta = read_meta(ckpt)
    require(meta.get("algo") == "gps", f"'{resume}' holds a {meta.get('algo')} run; resume it with `policysearch train {meta.get('algo')} --resume {resume}`")
    require("gps_state" in meta, f"'{ckpt}' holds no GPS state (written before GPS runs could be resumed); start a new run")
    require(meta["run"]["env"] == run.env, f"'{resume}' was trained on {meta['run']['env']}, not {run.env}; pass --env {meta['run']['env']} or start a new run")
    fixed = (changed_fields(config_from_dict(GPSRunConfig, meta["run"]), run, RESUMABLE_CHANGES)
             + changed_fields(config_from_dict(GPSConfig, meta["algo_config"]), algo, RESUMABLE_CHANGES))
    require(not fixed, f"'{resume}' was trained with other {', '.join('--' + n.replace('_', '-') for n in fixed)}; "
                       f"only {', '.join('--' + n.replace('_', '-') for n in RESUMABLE_CHANGES)} may change on --resume")
    state = state_from_checkpoint(load_extra(ckpt), meta["gps_state"], make_policy(problem, algo).init(jax.random.PRNGKey(0)), ckpt)
    return state, float(meta.get("wall_time", 0.0))


RESUMABLE_CHANGES = ("iterations", "run_dir", "overwrite", "json", "eval_episodes")
"""Settings a resumed GPS run may change (more iterations continue it; the others only say where
and how it reports); any other change, of the task or of the algorithm, would make the saved
sample set and policies inconsistent with the run."""


def changed_fields(saved: Any, given: Any, free: tuple[str, ...]) -> list[str]:
    """Fields of two configs of one dataclass that differ, leaving out those in `free`."""
    return [f.name for f in dataclasses.fields(saved) if f.name not in free and getattr(saved, f.name) != getattr(given, f.name)]


def train_gps(run: GPSRunConfig, algo: GPSConfig, resume: str = "") -> dict[str, Any]:
    """Run Algorithm 1 (or continue the run in `resume` from its last completed iteration), keep
    everything in the run folder, and return the summary."""
    from policysearch.logging import MetricsLogger

    problem = make_problem(run)
    state, elapsed = None, 0.0
    if resume:
        state, elapsed = resumed_state(Path(resume), run, problem, algo)
        run = dataclasses.replace(run, run_dir=resume)
        run_dir = Path(resume)
    else:
        run_dir = _prepare_run_dir(run)
    write_json_atomic(run_dir / "config.json", {"algo": "gps", "run": dataclasses.asdict(run), "algo_config": dataclasses.asdict(algo)})
    horizon = problem.horizon
    logger = MetricsLogger(run_dir, resume_step=len(state.store) * horizon if state is not None else None)
    t0 = time.perf_counter() - elapsed

    def on_iteration(row: dict[str, Any], state: GPSState) -> None:
        row = dict(row, step=row["samples"] * horizon, wall_time=time.perf_counter() - t0)
        logger.log(row)
        arrays, state_meta = state_to_checkpoint(state)
        meta = dict(policy_meta(run, algo, problem, row, state.obs_stats), gps_state=state_meta, wall_time=row["wall_time"])
        save_checkpoint(run_dir / "checkpoints", row["iteration"], state.best, meta, extra=arrays)
        if not run.json:
            print(f"iter {row['iteration']:3d}  {'accept' if row['accepted'] else 'reject'}  w_r {row['w_r']:8.2g}  "
                  f"value {row['value_new']:10.4g} vs {row['value_best']:10.4g}  policy cost {row['policy_cost_mean']:10.4g}  "
                  f"DDP {row['ddp_cost_mean']:10.4g}  samples {row['samples']}  ({row['wall_time']:.0f} s)", flush=True)

    result = run_gps(problem, algo, run.seed, on_iteration=on_iteration, state=state)
    logger.close()
    seconds = time.perf_counter() - t0
    for c, ctrl in enumerate(result.controllers):
        ctrl.save(run_dir / "controllers" / f"condition_{c}", {"env": run.env, "condition": c})
    summary = summarise(run, problem, result, seconds)
    if is_mujoco_task(run.env) and run.eval_episodes and not problem.terrains:
        from policysearch.evaluation import evaluate
        from policysearch.snapshot import load

        summary.update({f"eval_{k}": v for k, v in evaluate(load(run_dir), run.env, run.eval_episodes, seed=run.seed + 10_000).items()})
    _plot(run_dir, result, run.env)
    summary["run_dir"] = str(run_dir)
    write_json_atomic(run_dir / "summary.json", summary)
    return summary


def summarise(run: GPSRunConfig, problem: GPSProblem, result: GPSResult, seconds: float) -> dict[str, Any]:
    costs = [policy_cost(problem, result.policy, result.params, c, result.features) for c in range(len(problem.conditions))]
    return {
        "env": run.env, "conditions": len(problem.conditions), "horizon": problem.horizon, "iterations": len(result.history),
        "accepted": sum(r["accepted"] for r in result.history), "policy_cost": float(np.mean(costs)),
        "ddp_cost": float(np.mean(result.ddp_costs)), "policy_costs": costs, "ddp_costs": result.ddp_costs,
        "samples": result.samples, "real_steps": result.samples * problem.horizon, "seconds": seconds,
    }


def _plot(run_dir: Path, result: GPSResult, env: str) -> Path:
    import matplotlib.pyplot as plt

    from policysearch.viz import save_axes

    it = [0] + [r["iteration"] for r in result.history]
    cost = [result.history[0]["policy_cost_initial"]] + [r["policy_cost_mean"] for r in result.history]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(it, cost, "o-", label="GPS policy (mean over conditions)")
    ax.axhline(float(np.mean(result.ddp_costs)), color="k", ls="--", label="DDP controllers")
    for r in result.history:
        if not r["accepted"]:
            ax.plot(r["iteration"], r["policy_cost_mean"], "x", color="tab:red")
    return save_axes(fig, ax, run_dir / "learning_curve.png", "GPS iteration (x: rejected)", "cost", f"GPS on {env}")
