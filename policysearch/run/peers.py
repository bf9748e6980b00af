"""The peers as runs: Stable-Baselines3 PPO (`sb3-ppo`) and sb3-contrib TRPO (`sb3-trpo`) trained
with the same flags as our `ppo` and `trpo` (task, seed, budget, envs, normalisation, every
hyper-parameter, `--preset`), into a run folder of the same shape, so a sweep can hold them beside
ours and `policysearch report` compares them (`bench/` times them with the same settings).

The folder: config.json (the flags, SB3's constructor arguments, the library's version),
metrics.csv (a row after each update: step, wall time, the mean return of the last 100 episodes as
SB3's `rollout/ep_rew_mean`), checkpoints/step_N/ (model.zip with the optimiser state,
vecnormalize.pkl, meta.json; written to a temporary folder and renamed) every --checkpoint-every
steps and at the end, and summary.json last. A run found with a checkpoint resumes from it: SB3
reloads the model and its VecNormalize statistics and keeps counting steps (its learning-rate
schedule included), and metrics.csv is cut back to the checkpoint's step.

The final evaluation is ours (`run.evaluation.evaluate`: the same episodes, env backend and seed
rule as our runs) on the policy's deterministic action, observations normalised by the frozen
training statistics. SB3 trains on Gymnasium's vector env (DummyVecEnv) with torch on as many
threads as OMP_NUM_THREADS says (Ray sets it to the trial's CPUs; default 1, SB3's best on small
MLPs).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from policysearch.errors import UserError

PEERS: dict[str, tuple[str, str, str, str]] = {
    "sb3-ppo": ("ppo", "stable_baselines3", "PPO", "stable-baselines3"),
    "sb3-trpo": ("trpo", "sb3_contrib", "TRPO", "sb3-contrib"),
}
"""Peer name -> (our algorithm whose flags it takes, module, class, distribution)."""

KEEP_CHECKPOINTS = 2


def ours(peer: str) -> str:
    """The algorithm whose flags a peer takes: "sb3-ppo" -> "ppo"."""
    return PEERS[peer][0]


def sb3_class(peer: str) -> type:
    import importlib

    _, module, cls, dist = PEERS[peer]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError:
        raise UserError(f"'{peer}' needs {dist}: pip install 'policysearch[bench]'") from None


def kl_dims(action_space: Any) -> int:
    """The entries sb3-contrib averages a sample's KL over: a Box action's dimensions (its Gaussian
    gives one KL per dimension), 1 for a discrete action (one KL per sample)."""
    import gymnasium as gym

    return int(np.prod(action_space.shape)) if isinstance(action_space, gym.spaces.Box) else 1


def env_kl_dims(env_id: str) -> int:
    """`kl_dims` of a Gymnasium task's action space."""
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        return kl_dims(env.action_space)
    finally:
        env.close()


def sb3_kwargs(algo: str, config: Any, num_envs: int, kl_dims: int = 1) -> dict[str, Any]:
    """SB3's constructor arguments that mirror our `config` (PPOConfig or TRPOConfig) exactly:
    rollout length per env, returns, network (shape, activation, init, log-std) and the
    algorithm's own settings. Our annealed learning rate is SB3's linear schedule. sb3-contrib
    TRPO bounds the KL averaged over `kl_dims` entries (`kl_dims` above) and damps the Fisher
    matrix of that average, so our --max-kl and --cg-damping (of the whole distribution's KL) are
    divided by kl_dims: the same step (`algos/presets.py`)."""
    import torch

    c = config
    activation = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "softplus": torch.nn.Softplus}[c.activation]
    hidden = list(c.hidden)
    common = dict(
        n_steps=c.steps_per_update // num_envs, gamma=c.gamma, gae_lambda=c.gae_lambda,
        policy_kwargs=dict(net_arch=dict(pi=hidden, vf=hidden), activation_fn=activation, ortho_init=c.ortho_init,
                           log_std_init=c.log_std_init),
        device="cpu", verbose=0,
    )
    if algo == "ppo":
        lr = c.learning_rate
        return {**common, "batch_size": c.minibatch_size, "n_epochs": c.epochs,
                "learning_rate": (lambda progress_remaining: lr * progress_remaining) if c.anneal_lr else lr,
                "clip_range": c.clip_coef, "ent_coef": c.ent_coef, "vf_coef": c.vf_coef, "max_grad_norm": c.max_grad_norm}
    return {**common, "batch_size": c.critic_minibatch_size, "learning_rate": c.learning_rate, "n_critic_updates": c.critic_epochs,
            "target_kl": c.max_kl / kl_dims, "cg_max_steps": c.cg_iterations, "cg_damping": c.cg_damping / kl_dims,
            "line_search_shrinking_factor": c.line_search_shrink, "line_search_max_iter": c.line_search_steps,
            "normalize_advantage": c.normalize_advantage}


def make_sb3_env(env_id: str, n_envs: int, seed: int, run: Any, gamma: float, vec: str = "dummy", training: bool = True) -> Any:
    """SB3's vector env of `env_id` in VecNormalize with the run's normalisation flags (reward
    scaling only while training)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    venv = make_vec_env(env_id, n_envs=n_envs, seed=seed, vec_env_cls=SubprocVecEnv if vec == "subproc" else DummyVecEnv)
    return VecNormalize(venv, training=training, norm_obs=run.normalize_obs, norm_reward=run.normalize_reward and training,
                        clip_obs=run.clip_obs, clip_reward=run.clip_reward, gamma=gamma)


class PeerPolicy:
    """A trained SB3 model as our evaluation drives a policy: act(obs, deterministic, key)."""

    def __init__(self, model: Any, vecnorm: Any) -> None:
        self.model, self.vecnorm = model, vecnorm

    def act(self, obs: np.ndarray, deterministic: bool = True, key: Any = None) -> np.ndarray:
        action, _ = self.model.predict(self.vecnorm.normalize_obs(np.asarray(obs, np.float32)), deterministic=deterministic)
        return action


def check_peer_run(peer: str, run: Any, config: Any) -> None:
    """Refuse, before anything runs, the flags a peer cannot honour."""
    if run.profile or run.eval_every:
        raise UserError(f"{peer} has no --profile or --eval-every (SB3 runs its own loop): leave them out")
    if getattr(config, "loss", "clip") != "clip":
        raise UserError(f"SB3 PPO has only the clipped loss: leave out --loss {config.loss} for {peer}")
    if config.steps_per_update % run.num_envs:
        raise UserError(f"{peer}: --steps-per-update ({config.steps_per_update}) must be a multiple of --num-envs ({run.num_envs}) for SB3")
    sb3_class(peer)


def _checkpoints(run_dir: Path) -> list[Path]:
    folder = run_dir / "checkpoints"
    found = [p for p in folder.glob("step_*") if p.is_dir() and p.name[5:].isdigit() and (p / "meta.json").exists()] if folder.exists() else []
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete peer checkpoint (None: none)."""
    found = _checkpoints(run_dir)
    return found[-1] if found else None


def _save(run_dir: Path, model: Any, vecnorm: Any, step: int, wall: float) -> None:
    final = run_dir / "checkpoints" / f"step_{step}"
    if final.exists():
        return
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    vecnorm.save(str(tmp / "vecnormalize.pkl"))
    episodes = [{"r": float(e["r"]), "l": int(e["l"])} for e in (model.ep_info_buffer or [])]
    (tmp / "meta.json").write_text(json.dumps({"step": step, "wall_time": wall, "episodes": episodes}))
    os.replace(tmp, final)
    for old in _checkpoints(run_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)


def train_peer(peer: str, run: Any, config: Any) -> dict[str, Any]:
    """Train (or resume) the peer in run.run_dir to run.total_steps; returns the summary, written
    last as summary.json."""
    from collections import deque

    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecNormalize

    from policysearch.run.checkpoint import write_json_atomic
    from policysearch.run.evaluation import evaluate
    from policysearch.run.folder import write_config
    from policysearch.run.logging import MetricsLogger

    check_peer_run(peer, run, config)
    cls = sb3_class(peer)
    algo = ours(peer)
    run_dir = Path(run.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    spu = config.steps_per_update
    total = -(-run.total_steps // spu) * spu  # whole updates, as ours
    venv = make_sb3_env(run.env, run.num_envs, run.seed, run, config.gamma)
    kwargs = sb3_kwargs(algo, config, run.num_envs, kl_dims(venv.action_space))
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        model, start, elapsed = cls("MlpPolicy", venv, seed=run.seed, **kwargs), 0, 0.0
    else:
        meta = json.loads((ckpt / "meta.json").read_text())
        vecnorm = VecNormalize.load(str(ckpt / "vecnormalize.pkl"), venv.venv)
        vecnorm.training, vecnorm.norm_reward = True, run.normalize_reward
        venv = vecnorm
        model = cls.load(ckpt / "model.zip", env=venv, device="cpu")
        model.ep_info_buffer = deque(meta["episodes"], maxlen=100)
        start, elapsed = int(meta["step"]), float(meta["wall_time"])
    import importlib.metadata

    write_config(run_dir, peer, run, config, peer={
        "library": PEERS[peer][3], "version": importlib.metadata.version(PEERS[peer][3]), "class": cls.__name__,
        "kwargs": json.loads(json.dumps(kwargs, default=repr)), "torch_threads": torch.get_num_threads()})
    logger = MetricsLogger(run_dir, resume_step=start if ckpt is not None else None)
    t_start = time.perf_counter() - elapsed

    class Record(BaseCallback):
        """A metrics row after each update (at the next rollout's start, and at the end), and the checkpoints."""

        def __init__(self) -> None:
            super().__init__()
            self.last, self.t_last = start, time.perf_counter()

        def _after_update(self) -> None:
            step = int(self.model.num_timesteps)
            if step <= self.last:
                return
            now = time.perf_counter()
            returns = [e["r"] for e in self.model.ep_info_buffer]
            logger.log({"step": step, "wall_time": now - t_start,
                        "episode_return_mean": float(np.mean(returns)) if returns else None,
                        "episode_length_mean": float(np.mean([e["l"] for e in self.model.ep_info_buffer])) if returns else None,
                        "steps_per_second": (step - self.last) / (now - self.t_last)})
            if step // run.checkpoint_every > self.last // run.checkpoint_every or step >= total:  # a multiple passed, or the end
                _save(run_dir, self.model, self.model.get_env(), step, now - t_start)
            self.last, self.t_last = step, now

        def _on_rollout_start(self) -> None:
            self._after_update()

        def _on_training_end(self) -> None:
            self._after_update()

        def _on_step(self) -> bool:
            return True

    if total > start:
        model.learn(total_timesteps=total - start, reset_num_timesteps=False, callback=Record())
    wall = time.perf_counter() - t_start
    logger.close()
    steps = int(model.num_timesteps)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "algo": peer, "env": run.env, "seed": run.seed, "steps": steps,
                               "wall_time": wall, "steps_per_second": steps / wall if wall > 0 else None}
    if run.eval_episodes:
        venv.training = False
        result = evaluate(PeerPolicy(model, venv), run.env, run.eval_episodes, seed=run.seed + 10_000 + steps // spu,
                          backend=run.backend)
        summary.update({f"eval_{k}": v for k, v in result.items()})
    venv.close()
    write_json_atomic(run_dir / "summary.json", summary)  # last: its presence says the run finished
    return summary
