"""`policysearch train gps`: the trainer that drives Guided Policy Search on a task with a
dynamics model (the edge around `algos.gps`: problem construction, run folder, metrics,
checkpoints, plot, evaluation), as `run.train` drives the on-policy algorithms.

The run folder (`run.folder`) holds config.json, metrics.csv (one row per iteration of Algorithm
1), the policy as a checkpoint after every iteration (the same policy form as every algorithm's,
so `policysearch eval` and `policysearch.load` read it) together with the whole state of
Algorithm 1 (`run.gps_checkpoint`; `--resume RUN_DIR` continues from the last completed
iteration), the guiding controllers, learning_curve.png (policy and DDP cost per iteration) and
summary.json.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from policysearch.algos.gps import GPS, OBS_CLIP, ExampleGuide, GPSConfig, GPSState, example_guide, make_gps, policy_cost
from policysearch.envs import EnvSpec
from policysearch.envs.problems import GPSProblem, JaxTaskProblem, MujocoProblem, arm_reach_conditions
from policysearch.envs.systems import TASKS
from policysearch.errors import UserError, require
from policysearch.run.config import GPSRunConfig
from policysearch.run.checkpoint import load_extra, save_checkpoint, write_json_atomic
from policysearch.run import signals
from policysearch.run.finite import require_finite_update
from policysearch.run.folder import claim_new_run, claim_resume, write_config
from policysearch.run.gps_checkpoint import state_from_checkpoint, state_to_checkpoint
from policysearch.run.progress import Phases, phase
from policysearch.run.trainers import GPS_FOLDER_FIX, new_run_dir
from policysearch.run.snapshot import TrainedPolicy, TrainResult, frozen_policy, load, policy_meta

MUJOCO_TASKS = ("Swimmer", "Hopper", "Walker2d", "Walker2dTerrain", "Humanoid", "HumanoidTerrain")
RESUMABLE = ("iterations",)
"""The one setting a resumed GPS run may change (more iterations continue it); any other change,
of the task or of the algorithm, would make the saved sample set and policies inconsistent with
the run."""


def is_mujoco_task(env: str) -> bool:
    from policysearch.control.costs import robot_name

    return robot_name(env) in MUJOCO_TASKS


def make_problem(run: GPSRunConfig, example: TrainedPolicy | None = None) -> GPSProblem:
    """The GPSProblem of run.env (iLQR started from `example`'s rollouts, the policy loaded from
    run.example_policy), or a UserError saying why GPS cannot run on it."""
    require(not (run.example_policy or run.example_controls) or is_mujoco_task(run.env),
            f"--example-policy and --example-controls start iLQR on MuJoCo robots only, not on '{run.env}'; leave them out")
    if run.env in TASKS:
        kwargs = {"horizon": run.horizon} if run.horizon else {}
        task = TASKS[run.env](**kwargs)
        if run.env == "arm-reach-dense":
            conds = arm_reach_conditions()
            require(run.conditions <= len(conds), f"arm-reach-dense has {len(conds)} training starts, not {run.conditions}: pass --conditions {len(conds)} or fewer")
            conds = conds[: run.conditions]
        else:
            rng = np.random.default_rng(run.seed)
            x0 = np.asarray(task.x0, np.float32)
            half = len(x0) // 2
            conds = [x0] + [x0 + np.concatenate([rng.uniform(-run.condition_spread, run.condition_spread, half), np.zeros(len(x0) - half)]).astype(np.float32)
                            for _ in range(run.conditions - 1)]
        return JaxTaskProblem(task, conds)
    if is_mujoco_task(run.env):
        terrains = tuple(run.terrains) if "Terrain" in run.env else ()
        if example is None and run.example_policy:
            example = load(run.example_policy)
        starts, controls = saved_controls(run)
        return MujocoProblem(run.env, run.horizon or 150, run.conditions, run.condition_spread, run.seed, run.target_velocity,
                             terrains=terrains, example=None if example is None else example.act, example_u=controls,
                             segments=run.segments if terrains else 1, example_x0=starts)
    raise UserError(
        f"GPS needs a model of the dynamics and a cost, which '{run.env}' does not have: use a JAX task "
        f"({', '.join(TASKS)}) or a MuJoCo robot (Swimmer-v5, Hopper-v5, Walker2d-v5, Humanoid-v5, policysearch/Walker2dTerrain-v0, "
        "policysearch/HumanoidTerrain-v0)"
    )


def saved_controls(run: GPSRunConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The DDP solutions saved in the GPS run run.example_controls as (start states, controls),
    checked against this run's conditions and horizon. A run of the same conditions (as many
    controllers, each --horizon long) gives each condition's start x_bar[0] and nominal controls
    u_bar, used as they are (`MujocoProblem`'s example_x0); a run cut into other segments gives
    each terrain's controls end to end and no start states (the example motion they make is cut
    again, and repaired where it falls)."""
    if not run.example_controls:
        return [], []
    from policysearch.control.lqg import LinearGaussianController

    folder = Path(run.example_controls) / "controllers"
    found = sorted(folder.glob("condition_*"), key=lambda p: int(p.name.split("_")[1])) if folder.is_dir() else []
    terrains = "Terrain" in run.env
    count = len(run.terrains) if terrains else run.conditions
    require(len(found) > 0 and len(found) % count == 0, f"--example-controls '{run.example_controls}' holds {len(found)} controllers in "
            f"controllers/, this run has {count} terrains or conditions: pass a GPS run of the same task")
    saved = [LinearGaussianController.load(p)[0] for p in found]
    horizon, segments = run.horizon or 150, run.segments if terrains else 1
    if len(saved) == count * segments and all(len(c.u_bar) == horizon for c in saved):
        return [np.asarray(c.x_bar[0], np.float64) for c in saved], [np.asarray(c.u_bar, np.float64) for c in saved]
    per = len(saved) // count  # an earlier run's segments: each condition's controls end to end
    controls = [np.concatenate([np.asarray(c.u_bar) for c in saved[i * per : (i + 1) * per]]) for i in range(count)]
    require(all(len(u) == horizon * segments for u in controls), f"--example-controls '{run.example_controls}' has {len(controls[0])} steps of "
            f"controls per condition, this run needs --horizon x --segments = {horizon * segments}")
    return [], controls


def make_example_guide(example: TrainedPolicy | None, algo: GPSConfig, problem: GPSProblem) -> ExampleGuide | None:
    """The noisy example policy of algo.example_samples (None when it takes none)."""
    if example is None or not algo.example_samples:
        return None
    return example_guide(example.policy, example.params, example.obs_stats if example.norm.obs else None, example.norm.clip_obs,
                         algo.example_noise, problem.u_low, problem.u_high)


def env_spec(run: GPSRunConfig, problem: GPSProblem) -> EnvSpec:
    """The spec a GPS policy is saved with: it acts on problem.features_for(c)(x), the env's observation
    on MuJoCo robots and the state on JAX tasks."""
    lo, hi = (tuple(float(v) for v in a) for a in (problem.u_low, problem.u_high))
    return EnvSpec(run.env, problem.obs_dim, "gaussian", problem.control_dim, lo, hi)


def train_gps(run: GPSRunConfig, algo: GPSConfig, resume: str | Path | None = None) -> TrainResult:
    """Run Algorithm 1 (or continue the run in `resume` from its last completed iteration), keep
    everything in the run folder, and return it with the policy and the summary."""
    from policysearch.run.logging import MetricsLogger

    state, elapsed = None, 0.0
    if resume:
        lock, ckpt, meta = claim_resume(resume, "gps", run, algo, RESUMABLE)
        run = dataclasses.replace(run, run_dir=str(lock.run_dir))
    else:
        lock = claim_new_run(new_run_dir("gps", run), run.overwrite, fix=GPS_FOLDER_FIX)
    with lock:
        if resume:
            require("gps_state" in meta, f"'{ckpt}' holds no GPS state (written before GPS runs could be resumed); start a new run")
            elapsed = float(meta.get("wall_time", 0.0))
        t0 = time.perf_counter() - elapsed  # the run's time includes building the problem (the example's rollouts, their repair)
        # the phases go to stdout with the iteration lines; --json keeps stdout one JSON object, so they are off then
        show = run.progress and not run.json
        example = load(run.example_policy) if run.example_policy and is_mujoco_task(run.env) else None
        with phase(f"building the {run.env} model and its conditions", enabled=show and is_mujoco_task(run.env)):
            problem = make_problem(run, example)
        gps = make_gps(algo, problem, make_example_guide(example, algo, problem))
        run_dir = lock.run_dir
        if resume:
            state = state_from_checkpoint(load_extra(ckpt), meta["gps_state"], gps.policy.init(jax.random.PRNGKey(0)), ckpt)
        write_config(run_dir, "gps", run, algo)
        spec = env_spec(run, problem)
        logger = MetricsLogger(run_dir, resume_step=len(state.store) * problem.horizon if state is not None else None)
        try:
            if state is None:
                with Phases(enabled=show) as phases:
                    state = gps.init(run.seed, on_progress=phases)
            compiled = False
            while state.iteration < algo.iterations:
                signals.raise_if_stopped()
                # the first iteration of this process compiles its optimisers (seconds): its phases stay on the console
                with Phases(enabled=show, transient=compiled) as phases:
                    state, row = gps.iteration(state, on_progress=phases)
                compiled = True
                require_finite_update(state.best, row, row["iteration"], row["samples"] * problem.horizon)
                row = dict(row, step=row["samples"] * problem.horizon, wall_time=time.perf_counter() - t0)
                with signals.deferred():  # the row and the checkpoint of its iteration, both or neither
                    logger.log(row)
                    arrays, state_meta = state_to_checkpoint(state)
                    meta = dict(policy_meta(gps.policy, spec, state.obs_stats, OBS_CLIP), algo="gps", run=dataclasses.asdict(run),
                                algo_config=dataclasses.asdict(algo), iteration=row["iteration"], gps_state=state_meta, wall_time=row["wall_time"])
                    save_checkpoint(run_dir / "checkpoints", row["iteration"], state.best, meta, extra=arrays)
                if not run.json:
                    print(describe_iteration(row), flush=True)
            signals.raise_if_stopped()
        finally:
            logger.close()
        return _finish(run, run_dir, gps, state, spec, time.perf_counter() - t0, show)


def describe_iteration(row: dict[str, Any]) -> str:
    return (f"iter {row['iteration']:3d}  {'accept' if row['accepted'] else 'reject'}  w_r {row['w_r']:8.2g}  "
            f"value {row['value_new']:10.4g} vs {row['value_best']:10.4g} (new: true cost {row['policy_cost_new']:.4g}, ESS {row['ess_new_min']:.3g})  "
            f"policy cost {row['policy_cost_mean']:10.4g}  "
            f"DDP {row['ddp_cost_mean']:10.4g}  samples {row['samples']}  ({row['wall_time']:.0f} s)")


def describe(summary: dict[str, Any]) -> str:
    """The run's summary in one sentence."""
    extra = f"; env return {summary['eval_return_mean']:.1f} over {summary['eval_episodes']} episodes" if "eval_return_mean" in summary else ""
    return (f"GPS policy cost {summary['policy_cost']:.4g} vs DDP {summary['ddp_cost']:.4g} ({summary['accepted']}/{summary['iterations']} "
            f"iterations accepted, {summary['real_steps']} real steps, {summary['seconds']:.0f} s){extra}; run in {summary['run_dir']}")


def _finish(run: GPSRunConfig, run_dir: Path, gps: GPS, state: GPSState, spec: EnvSpec, seconds: float, show: bool = False) -> TrainResult:
    """Save the guiding controllers, score the policy, plot and write summary.json (the scoring
    shown as phases when `show`)."""
    problem = gps.problem
    for c, j in enumerate(state.ddp_sources):
        state.sources[j].controller.save(run_dir / "controllers" / f"condition_{c}", {"env": run.env, "condition": c})
    costs = []
    with phase("true cost of the final policy", len(problem.conditions), enabled=show, unit="conditions") as bar:
        for c in range(len(problem.conditions)):
            costs.append(policy_cost(problem, gps.policy, state.best, state.obs_stats, c))
            bar.advance(c + 1, detail=f"condition {c + 1}: cost {costs[-1]:.4g}")
    summary = {
        "env": run.env, "conditions": len(problem.conditions), "horizon": problem.horizon, "iterations": len(state.history),
        "accepted": sum(r["accepted"] for r in state.history), "policy_cost": float(np.mean(costs)),
        "ddp_cost": float(np.mean(state.ddp_costs)), "policy_costs": costs, "ddp_costs": list(state.ddp_costs),
        "samples": len(state.store), "real_steps": len(state.store) * problem.horizon, "seconds": seconds,
    }
    agent = frozen_policy(gps.policy, state.best, state.obs_stats, OBS_CLIP, spec, {"algo": "gps", "run": dataclasses.asdict(run)})
    if is_mujoco_task(run.env) and run.eval_episodes and not problem.terrains:
        from policysearch.run.evaluation import evaluate

        result = evaluate(agent, run.env, run.eval_episodes, seed=run.seed + 10_000, progress=f"final evaluation on {run.env}" if show else None)
        summary.update({f"eval_{k}": v for k, v in result.items()})
    from policysearch.run.viz import plot_gps_curve  # the one drawing `policysearch plot` redraws from metrics.csv

    plot_gps_curve(run_dir, state.history, float(np.mean(state.ddp_costs)), run.env)
    summary["run_dir"] = str(run_dir)
    write_json_atomic(run_dir / "summary.json", summary)
    return TrainResult(run_dir, agent, summary)
