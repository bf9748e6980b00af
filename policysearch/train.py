"""The one trainer loop every on-policy algorithm runs: collect -> update -> log -> checkpoint
-> evaluate. It knows no algorithm's equations: those come in as an `Algorithm`."""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from policysearch.algos import ALGORITHMS, OnPolicyConfig
from policysearch.checkpoint import list_checkpoints, save_checkpoint, write_json_atomic
from policysearch.envs import Backend, make_env
from policysearch.errors import UserError, require, require_positive
from policysearch.logging import MetricsLogger
from policysearch.normalize import NormState
from policysearch.progress import TrainProgress
from policysearch.rollout import Collector, NormConfig
from policysearch.snapshot import FORMAT_VERSION, TrainedPolicy, TrainState, load_checkpoint, make_policy


@dataclass(frozen=True)
class RunConfig:
    """What to train on and how the run is kept: shared by every algorithm."""

    env: str = "Hopper-v5"
    """Gymnasium environment id (or `module:EnvId` for a user's env)."""
    total_steps: int = 1_000_000
    """Environment steps to train for (all envs together)."""
    seed: int = 0
    """Seed of parameters, sampling and environments."""
    num_envs: int = 8
    """Environments stepped in parallel."""
    run_dir: str = ""
    """Where config, metrics, checkpoints, plots and videos go (default: runs/ALGO-ENV-sSEED)."""
    backend: Backend = "auto"
    """Vector env backend: EnvPool where it serves the env, else Gymnasium."""
    normalize_obs: bool = True
    """Running mean/std observation normalisation (statistics saved with the policy)."""
    normalize_reward: bool = True
    """Scale rewards by the running std of the discounted return."""
    clip_obs: float = 10.0
    """Clip normalised observations to [-clip, clip]."""
    clip_reward: float = 10.0
    """Clip scaled rewards to [-clip, clip]."""
    checkpoint_every: int = 100_000
    """Steps between checkpoints (one is always written at the end)."""
    eval_every: int = 0
    """Steps between evaluations during training (0: only at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation (0: none)."""
    video: bool = True
    """Render an MP4 of the trained policy at the end (MuJoCo tasks)."""
    progress: bool = True
    """Show a live progress bar."""
    overwrite: bool = False
    """Start afresh in a run dir that already holds a run (its checkpoints are deleted)."""

    def __post_init__(self) -> None:
        require_positive("total_steps", self.total_steps)
        require_positive("num_envs", self.num_envs)
        require_positive("checkpoint_every", self.checkpoint_every)
        require(self.eval_every >= 0 and self.eval_episodes >= 0, "--eval-every and --eval-episodes must be >= 0")
        require_positive("clip_obs", self.clip_obs)
        require_positive("clip_reward", self.clip_reward)

    @property
    def norm(self) -> NormConfig:
        return NormConfig(self.normalize_obs, self.normalize_reward, self.clip_obs, self.clip_reward)


@dataclass
class TrainResult:
    run_dir: Path
    agent: TrainedPolicy
    state: TrainState
    final_eval: dict[str, float] | None


def default_run_dir(algo: str, run: RunConfig) -> Path:
    return Path("runs") / f"{algo}-{run.env.replace('/', '_').replace(':', '_')}-s{run.seed}"


def train(
    algo_name: str,
    run: RunConfig,
    algo_config: OnPolicyConfig,
    resume: Path | None = None,
    on_update: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train `algo_name` with `algo_config` on `run.env`; resume from `resume` if given."""
    require(algo_name in ALGORITHMS, f"unknown algorithm '{algo_name}'; choose from {sorted(ALGORITHMS)}")
    _, build = ALGORITHMS[algo_name]
    spu = algo_config.steps_per_update
    require(
        spu % run.num_envs == 0,
        f"--steps-per-update ({spu}) must be a multiple of --num-envs ({run.num_envs})",
    )
    run_dir = Path(run.run_dir) if run.run_dir else (Path(resume) if resume else default_run_dir(algo_name, run))
    num_updates = math.ceil(run.total_steps / spu)

    start_update, elapsed, recent = 0, 0.0, deque(maxlen=100)
    resumed_state: TrainState | None = None
    if resume is not None:
        resumed_state, meta, _, _ = load_checkpoint(Path(resume))
        require(meta["algo"] == algo_name, f"checkpoint in '{resume}' is a {meta['algo']} run; resume it with `policysearch train {meta['algo']}`")
        require(
            meta["env"] == run.env,
            f"checkpoint in '{resume}' was trained on {meta['env']}, not {run.env}; pass --env {meta['env']} or start a new run",
        )
        require(meta["num_envs"] == run.num_envs, f"checkpoint in '{resume}' used --num-envs {meta['num_envs']}; resume with the same")
        start_update, elapsed = meta["update"], meta["wall_time"]
        recent.extend(meta.get("recent_returns", []))

    env = make_env(run.env, run.num_envs, run.seed + 7919 * start_update, run.backend)
    policy = make_policy(env.spec, algo_config)
    algo = build(algo_config, policy, num_updates)
    if resumed_state is not None:
        state = resumed_state
        require(
            jax.tree.structure(state.algo) == jax.tree.structure(algo.init(jax.random.PRNGKey(0))),
            f"checkpoint in '{resume}' does not match this algorithm's state",
        )
    else:
        k_init, k_run = jax.random.split(jax.random.PRNGKey(run.seed))
        state = TrainState(algo.init(k_init), NormState.create(env.spec.obs_dim, run.num_envs), k_run)

    if resume is None and list_checkpoints(run_dir / "checkpoints"):
        require(
            run.overwrite,
            f"'{run_dir}' already holds a run: continue it with --resume {run_dir}, pick another --run-dir, or pass --overwrite",
        )
        shutil.rmtree(run_dir / "checkpoints")
    run_dir.mkdir(parents=True, exist_ok=True)
    config_record = {
        "algo": algo_name,
        "run": dataclasses.asdict(run),
        "algo_config": dataclasses.asdict(algo_config),
        "env_spec": dataclasses.asdict(env.spec),
        "backend": env.backend,
    }
    write_json_atomic(run_dir / "config.json", config_record)
    logger = MetricsLogger(run_dir, resume_step=start_update * spu if resume is not None else None)

    def snapshot(s: TrainState) -> TrainedPolicy:
        return TrainedPolicy(policy, s.algo.params, s.norm.obs, run.norm, env.spec, config_record)

    def checkpoint(s: TrainState, update: int, wall: float) -> None:
        meta = {
            "format": FORMAT_VERSION, "algo": algo_name, "env": run.env, "env_spec": dataclasses.asdict(env.spec),
            "algo_config": dataclasses.asdict(algo_config), "run": dataclasses.asdict(run),
            "norm": dataclasses.asdict(run.norm), "num_envs": run.num_envs, "update": update, "wall_time": wall,
            "recent_returns": list(recent),
        }
        save_checkpoint(run_dir / "checkpoints", update * spu, s, meta)

    def run_eval(s: TrainState, seed: int) -> dict[str, float]:
        from policysearch.evaluation import evaluate

        return evaluate(snapshot(s), run.env, run.eval_episodes, seed=seed, backend=run.backend)

    collector = Collector(env, policy, run.norm, algo_config.gamma)
    T = spu // run.num_envs
    ckpt_every = max(1, run.checkpoint_every // spu)
    eval_every = max(1, run.eval_every // spu) if run.eval_every else 0
    committed, last_saved = (state, start_update), start_update
    t_start = time.perf_counter() - elapsed
    final_eval = None
    with TrainProgress(f"{algo_name} {run.env}", num_updates * spu, start_update * spu, enabled=run.progress) as bar:
        try:
            for update in range(start_update + 1, num_updates + 1):
                t0 = time.perf_counter()
                batch, norm, key = collector.collect(state.algo.params, state.norm, state.key, T)
                algo_state, metrics = algo.update(state.algo, batch)
                state = TrainState(algo_state, norm, key)
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                finished = collector.episodes.pop()
                recent.extend(r for r, _ in finished)
                step = update * spu
                row: dict[str, Any] = {
                    "step": step,
                    "wall_time": time.perf_counter() - t_start,
                    "episode_return_mean": float(np.mean(recent)) if recent else None,
                    "episode_length_mean": float(np.mean([n for _, n in finished])) if finished else None,
                    "episodes": len(finished),
                    "steps_per_second": spu / (time.perf_counter() - t0),
                    "eval_return_mean": None,
                    **metrics,
                }
                last = update == num_updates
                if run.eval_episodes and ((eval_every and update % eval_every == 0) or last):
                    final_eval = run_eval(state, seed=run.seed + 10_000 + update)
                    row["eval_return_mean"] = final_eval["return_mean"]
                logger.log(row)
                committed = (state, update)
                if on_update is not None:
                    on_update(row)
                if update % ckpt_every == 0 or last:
                    checkpoint(state, update, time.perf_counter() - t_start)
                    last_saved = update
                bar.advance(step, row["episode_return_mean"])
        except KeyboardInterrupt:
            if committed[1] > last_saved:
                checkpoint(*committed, time.perf_counter() - t_start)
            raise
        finally:
            logger.close()
            env.close()
    agent = snapshot(state)
    _finish_artifacts(run_dir, run, algo_name, agent)
    return TrainResult(run_dir, agent, state, final_eval)


def _finish_artifacts(run_dir: Path, run: RunConfig, algo_name: str, agent: TrainedPolicy) -> None:
    from policysearch.envs.vector import ENVPOOL_MUJOCO
    from policysearch.viz import plot_learning_curve, record_video

    plot_learning_curve(run_dir, f"{algo_name.upper()} on {run.env}")
    if run.video and (run.env in ENVPOOL_MUJOCO or "mujoco" in str(getattr(_gym_spec(run.env), "entry_point", ""))):
        record_video(agent, run.env, run_dir / "policy.mp4", seed=run.seed)


def _gym_spec(env_id: str) -> Any:
    from policysearch.envs import check_env_id

    try:
        return check_env_id(env_id)
    except UserError:
        return None
