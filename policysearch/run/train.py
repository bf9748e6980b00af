"""The one trainer loop every on-policy algorithm runs: collect -> update -> log -> checkpoint
-> evaluate. It knows no algorithm's equations: those come in as an `Algorithm`."""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from policysearch.algos import ALGORITHMS, Algorithm, OnPolicyConfig
from policysearch.core.normalize import NormState
from policysearch.core.policies import Policy
from policysearch.envs import EnvSpec, VecEnv, make_env
from policysearch.envs.rollout import Collector
from policysearch.errors import NonFiniteError, UserError, require
from policysearch.run import signals
from policysearch.run.config import RunConfig
from policysearch.run.checkpoint import fill_tree, load_extra, named_arrays, save_checkpoint, write_json_atomic
from policysearch.run.folder import claim_new_run, claim_resume, write_config
from policysearch.run.lock import RunLock
from policysearch.run.logging import MetricsLogger
from policysearch.run.schema import from_dict
from policysearch.run.finite import require_finite_update
from policysearch.run.timing import NoTimes, PhaseTimes
from policysearch.run.progress import TrainProgress
from policysearch.run.trainers import check_on_policy, new_run_dir
from policysearch.run.snapshot import TrainedPolicy, TrainResult, policy_meta





class TrainState(NamedTuple):
    """Everything an on-policy run carries between updates, checkpointed for --resume: the
    algorithm's state, the normalisation statistics and the rollout key."""

    algo: Any
    norm: NormState
    key: jax.Array


RESUMABLE = ("total_steps",)
"""The one setting a resumed on-policy run may change (it extends or shortens the run)."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a checkpointed on-policy run stands (its meta.json's counters)."""

    update: int
    wall_time: float
    recent_returns: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        require(self.update >= 0 and self.wall_time >= 0, f"negative counters (update {self.update}, wall_time {self.wall_time})")


def resume_point(meta: dict[str, Any], ckpt: Path) -> ResumePoint:
    return from_dict(ResumePoint, meta, f"the meta.json of '{ckpt}'", others=True)


def make_policy(spec: EnvSpec, config: OnPolicyConfig) -> Policy:
    return Policy(spec.obs_dim, spec.action_dim, spec.action_kind, tuple(config.hidden), config.activation, config.log_std_init,
                  config.ortho_init)


class _Run(NamedTuple):
    """A started run: the lock held on its folder (`lock.run_dir`), env, algorithm, state and
    where its counters stand."""

    lock: RunLock
    env: VecEnv
    algo: Algorithm
    state: TrainState
    start_update: int
    elapsed: float
    recent_returns: list[float]
    config_record: dict[str, Any]


def _start(algo_name: str, run: RunConfig, algo_config: OnPolicyConfig, resume: Path | None, num_updates: int) -> _Run:
    """Check the settings (and on resume the saved run, before anything is written), then open
    the run folder, the envs and the algorithm with its initial or restored state."""
    check_on_policy(algo_name, run, algo_config, resume)
    start_update, elapsed, recent, ckpt = 0, 0.0, [], None
    if resume is not None:
        lock, ckpt, meta = claim_resume(resume, algo_name, run, algo_config, RESUMABLE)
    else:
        lock = claim_new_run(new_run_dir(algo_name, run), run.overwrite)
    try:
        if ckpt is not None:
            point = resume_point(meta, ckpt)
            start_update, elapsed, recent = point.update, point.wall_time, list(point.recent_returns)
        env = make_env(run.env, run.num_envs, run.seed + 7919 * start_update, run.backend)
        policy = make_policy(env.spec, algo_config)
        algo = ALGORITHMS[algo_name].make(algo_config, policy, num_updates)
        k_init, k_run = jax.random.split(jax.random.PRNGKey(run.seed))
        state = TrainState(algo.init(k_init), NormState.create(env.spec.obs_dim, run.num_envs), k_run)
        if ckpt is not None:
            state = fill_tree(state, load_extra(ckpt), ckpt)
        record = write_config(lock.run_dir, algo_name, run, algo_config, env_spec=dataclasses.asdict(env.spec), backend=env.backend)
    except BaseException:
        lock.release()
        raise
    return _Run(lock, env, algo, state, start_update, elapsed, recent, record)


def train(
    algo_name: str,
    run: RunConfig,
    algo_config: OnPolicyConfig,
    resume: Path | None = None,
    on_update: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train `algo_name` with `algo_config` on `run.env` (or continue the run in `resume`):
    collect a batch, update, log, checkpoint, evaluate; after a KeyboardInterrupt the last
    completed update is checkpointed."""
    spu = algo_config.steps_per_update
    num_updates = math.ceil(run.total_steps / spu)
    r = _start(algo_name, run, algo_config, resume, num_updates)
    with r.lock:
        return _train(algo_name, run, algo_config, r, resume is not None, num_updates, on_update)


def _train(algo_name: str, run: RunConfig, algo_config: OnPolicyConfig, r: _Run, resumed: bool, num_updates: int,
           on_update: Callable[[dict[str, Any]], None] | None) -> TrainResult:
    """The loop of `train` over a started run. A stop signal (`run.signals`) or a non-finite
    update ends it with the last completed good update checkpointed; nothing is written from a
    non-finite state."""
    spu = algo_config.steps_per_update
    run_dir, env, algo, state = r.lock.run_dir, r.env, r.algo, r.state
    recent = deque(r.recent_returns, maxlen=100)

    def snapshot(s: TrainState) -> TrainedPolicy:
        return TrainedPolicy(algo.policy, s.algo.params, s.norm.obs, run.norm, env.spec, r.config_record)

    def checkpoint(s: TrainState, update: int, wall: float) -> None:
        meta = policy_meta(algo.policy, env.spec, s.norm.obs if run.normalize_obs else None, run.clip_obs)
        meta.update(algo=algo_name, run=dataclasses.asdict(run), algo_config=dataclasses.asdict(algo_config), num_envs=run.num_envs,
                    update=update, wall_time=wall, recent_returns=list(recent))
        save_checkpoint(run_dir / "checkpoints", update * spu, s.algo.params, meta, extra=named_arrays(s))

    collector = Collector(env, algo.policy, run.norm, algo_config.gamma)
    T = spu // run.num_envs
    ckpt_every = max(1, run.checkpoint_every // spu)
    eval_every = max(1, run.eval_every // spu) if run.eval_every else 0
    committed, last_saved = (state, r.start_update), r.start_update
    t_start = time.perf_counter() - r.elapsed
    final_eval, kl_warned = None, False
    logger = MetricsLogger(run_dir, resume_step=r.start_update * spu if resumed else None)
    times = PhaseTimes() if run.profile else NoTimes()
    with TrainProgress(f"{algo_name} {run.env}", num_updates * spu, r.start_update * spu, enabled=run.progress) as bar:
        try:
            for update in range(r.start_update + 1, num_updates + 1):
                signals.raise_if_stopped()
                t0 = time.perf_counter()
                batch, norm, key = collector.collect(state.algo.params, state.norm, state.key, T, times)
                with times("update"):
                    algo_state, metrics = algo.update(state.algo, batch)
                    metrics = jax.device_get(metrics)  # waits for the update, so steps_per_second includes it
                require_finite_update(algo_state.params, metrics, update, update * spu)
                state = TrainState(algo_state, norm, key)
                kl_warned = warn_kl(metrics, algo_config, update, kl_warned)
                finished = collector.episodes.pop()
                recent.extend(ret for ret, _ in finished)
                row = _row(update * spu, time.perf_counter() - t_start, spu / (time.perf_counter() - t0), recent, finished, metrics)
                last = update == num_updates
                if run.eval_episodes and ((eval_every and update % eval_every == 0) or last):
                    if last:  # the training bar ends here, complete; the final evaluation shows its own
                        bar.advance(row["step"], row["episode_return_mean"])
                        bar.stop()
                    with times("evaluation"):
                        final_eval = _evaluate(snapshot(state), run, seed=run.seed + 10_000 + update, show=last and run.progress)
                    row["eval_return_mean"] = final_eval["return_mean"]
                with signals.deferred():  # a signal here would leave a row whose update is not committed
                    with times("logging"):
                        logger.log(row)
                    committed = (state, update)
                if on_update is not None:
                    on_update(row)
                if update % ckpt_every == 0 or last:
                    with times("checkpoint"):
                        checkpoint(state, update, time.perf_counter() - t_start)
                    last_saved = update
                bar.advance(row["step"], row["episode_return_mean"])
                times.count(spu)
                if update == r.start_update + 1:
                    times.reset()  # the first update compiles: not the steady state
            signals.raise_if_stopped()
        except (KeyboardInterrupt, NonFiniteError):
            if committed[1] > last_saved:
                checkpoint(*committed, time.perf_counter() - t_start)
            raise
        finally:
            logger.close()
            env.close()
    wall_time = time.perf_counter() - t_start
    agent = snapshot(state)
    _finish_artifacts(run_dir, run, algo_name, agent)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "algo": algo_name, "env": run.env, "seed": run.seed,
                               "steps": num_updates * spu, "wall_time": wall_time, "steps_per_second": num_updates * spu / wall_time}
    summary.update({f"eval_{k}": v for k, v in (final_eval or {}).items()})
    if run.profile:
        summary["profile"] = times.summary()
        write_json_atomic(run_dir / "profile.json", summary["profile"])
        print(times.table(f"{algo_name} {run.env}, {run.num_envs} envs (first update left out)"), file=sys.stderr)
    write_json_atomic(run_dir / "summary.json", summary)  # last: its presence says the run finished (`policysearch sweep`)
    return TrainResult(run_dir, agent, summary)


def warn_kl(metrics: dict[str, Any], config: OnPolicyConfig, update: int, warned: bool) -> bool:
    """Warn once per run when an update moved the policy by a KL over KL_WARN_FACTOR times the
    algorithm's KL target (a step size that far off usually means a too large learning rate)."""
    target = config.kl_reference
    kl = metrics.get("kl", metrics.get("approx_kl"))
    if warned or target is None or kl is None or not float(kl) > KL_WARN_FACTOR * target:
        return warned
    warnings.warn(f"update {update} moved the policy by KL {float(kl):.3g}, over {KL_WARN_FACTOR:g} x the target {target:g}: "
                  "the learning rate is probably too large", stacklevel=2)
    return True


KL_WARN_FACTOR = 100.0


def _row(step: int, wall_time: float, steps_per_second: float, recent: deque, finished: list[tuple[float, int]],
         metrics: dict[str, Any]) -> dict[str, Any]:
    """One metrics.csv row: counters, the recent episodes' returns and lengths, the update's metrics."""
    return {
        "step": step,
        "wall_time": wall_time,
        "episode_return_mean": float(np.mean(recent)) if recent else None,
        "episode_length_mean": float(np.mean([n for _, n in finished])) if finished else None,
        "episodes": len(finished),
        "steps_per_second": steps_per_second,
        "eval_return_mean": None,
        **{k: float(v) for k, v in metrics.items()},
    }


def _evaluate(agent: TrainedPolicy, run: RunConfig, seed: int, show: bool = False) -> dict[str, float]:
    """run.eval_episodes episodes of the agent, shown as the "final evaluation" phase when `show`."""
    from policysearch.run.evaluation import evaluate

    return evaluate(agent, run.env, run.eval_episodes, seed=seed, backend=run.backend, progress="final evaluation" if show else None)


def _finish_artifacts(run_dir: Path, run: RunConfig, algo_name: str, agent: TrainedPolicy) -> None:
    from policysearch.envs.vector import ENVPOOL_MUJOCO
    from policysearch.run.viz import plot_learning_curve, record_video

    plot_learning_curve(run_dir, f"{algo_name.upper()} on {run.env}")
    if run.video and (run.env in ENVPOOL_MUJOCO or "mujoco" in str(getattr(_gym_spec(run.env), "entry_point", ""))):
        record_video(agent, run.env, run_dir / "policy.mp4", seed=run.seed, progress=run.progress)


def _gym_spec(env_id: str) -> Any:
    from policysearch.envs import check_env_id

    try:
        return check_env_id(env_id)
    except UserError:
        return None
