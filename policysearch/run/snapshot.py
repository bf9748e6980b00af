"""A trained policy as every algorithm saves and loads it: the network's settings and the input
standardisation in meta.json, its parameters in arrays.safetensors, with `act` for users and
evaluation. Loading reads only those, so it has no per-algorithm branch (Brax keeps the network
config beside the parameters in the same way); the algorithm's training state, for --resume, is
in the checkpoint's state.safetensors and read by that algorithm's trainer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.core.normalize import NormConfig, RunningStats
from policysearch.core.policies import Policy, PolicyParams
from policysearch.envs import EnvSpec
from policysearch.envs.rollout import act
from policysearch.errors import UserError
from policysearch.run.checkpoint import find_checkpoint, load_arrays, read_meta
from policysearch.run.folder import FORMAT_VERSION


@dataclass
class TrainedPolicy:
    """pi_theta with frozen input standardisation, ready to act on raw observations."""

    policy: Policy
    params: PolicyParams
    obs_stats: RunningStats
    norm: NormConfig
    spec: EnvSpec
    meta: dict[str, Any]

    def act(self, obs: np.ndarray, deterministic: bool = True, key: jax.Array | None = None) -> np.ndarray:
        """Action(s) for raw obs[obs_dim] or obs[B, obs_dim]; the mean (mode) when deterministic."""
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        if obs.shape[-1] != self.spec.obs_dim:
            raise UserError(f"observation has size {obs.shape[-1]}, the policy expects {self.spec.obs_dim} ({self.spec.env_id})")
        key = jax.random.PRNGKey(0) if key is None else key
        clip = self.norm.clip_obs if self.norm.obs else None
        _, action, *_ = act(self.policy, self.params, self.obs_stats, jnp.atleast_2d(obs), key, False, clip, deterministic)
        action = np.asarray(action)
        if self.spec.action_kind == "gaussian":
            action = np.clip(action, self.spec.action_low, self.spec.action_high)
        return action[0] if single else action


@dataclass
class TrainResult:
    """What every trainer returns: the run folder, the trained policy and the run's summary
    (what `policysearch train` prints)."""

    run_dir: Path
    agent: TrainedPolicy
    summary: dict[str, Any]


def frozen_policy(policy: Policy, params: PolicyParams, obs_stats: RunningStats | None, clip_obs: float, spec: EnvSpec,
                  meta: dict[str, Any]) -> TrainedPolicy:
    """A TrainedPolicy whose input is standardised by obs_stats, clipped to +-clip_obs (None: raw
    observations), the form `policy_meta` saves and `load` reads back."""
    if obs_stats is None:
        return TrainedPolicy(policy, params, RunningStats.create((spec.obs_dim,)), NormConfig(obs=False, reward=False), spec, meta)
    return TrainedPolicy(policy, params, obs_stats, NormConfig(obs=True, reward=False, clip_obs=clip_obs), spec, meta)


def policy_meta(policy: Policy, spec: EnvSpec, obs_stats: RunningStats | None, clip_obs: float) -> dict[str, Any]:
    """What `load` needs besides the parameters, for every algorithm: the checkpoint format, the
    network's settings, the env's spec and the input standardisation (null: raw observations)."""
    norm = None if obs_stats is None else {"mean": np.asarray(obs_stats.mean).tolist(), "var": np.asarray(obs_stats.var).tolist(), "clip": clip_obs}
    return {"format": FORMAT_VERSION, "network": dataclasses.asdict(policy), "env_spec": dataclasses.asdict(spec), "obs_norm": norm}


def load(path: str | Path) -> TrainedPolicy:
    """The trained policy of a run directory (or checkpoint directory), of any algorithm."""
    ckpt = find_checkpoint(Path(path))
    meta = read_meta(ckpt)
    try:
        if meta.get("format") != FORMAT_VERSION:
            raise KeyError(f"format {FORMAT_VERSION}")
        spec = EnvSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["env_spec"].items()})
        policy = Policy(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["network"].items()})
        obs_norm, stats, clip = meta["obs_norm"], None, 0.0
        if obs_norm is not None:
            mean, var = (np.asarray(obs_norm[k], np.float32) for k in ("mean", "var"))
            if mean.shape != (spec.obs_dim,) or var.shape != (spec.obs_dim,):
                raise TypeError(f"obs_norm of size {mean.shape} for obs_dim {spec.obs_dim}")
            stats = RunningStats(jnp.asarray(mean), jnp.asarray(var), jnp.asarray(1.0, jnp.float32))
            clip = float(obs_norm["clip"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"checkpoint '{ckpt}' has an unreadable meta.json (missing or wrong {exc}); it was not written by this "
                        "policysearch version") from exc
    params = load_arrays(ckpt, policy.init(jax.random.PRNGKey(0)))
    return frozen_policy(policy, params, stats, clip, spec, dict(meta, checkpoint=str(ckpt)))
