"""A trained policy as it is saved and loaded: the network, its parameters and the frozen
observation statistics, with `act` for users and evaluation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.algos import ALGORITHMS, OnPolicyConfig
from policysearch.checkpoint import find_checkpoint, load_arrays, read_meta
from policysearch.envs import EnvSpec
from policysearch.errors import UserError
from policysearch.normalize import NormState, RunningStats
from policysearch.policies import Policy
from policysearch.rollout import NormConfig, act

FORMAT_VERSION = 1


class TrainState(NamedTuple):
    """Everything a checkpoint holds as arrays."""

    algo: Any
    norm: NormState
    key: jax.Array


def make_policy(spec: EnvSpec, config: OnPolicyConfig) -> Policy:
    return Policy(spec.obs_dim, spec.action_dim, spec.action_kind, tuple(config.hidden), config.activation, config.log_std_init)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a frozen config dataclass from its JSON form (tuples come back as lists)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise UserError(f"config has unknown fields {sorted(unknown)}: written by another policysearch version")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass
class TrainedPolicy:
    """pi_theta with frozen normalisation, ready to act on raw observations."""

    policy: Policy
    params: Any
    obs_stats: Any
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


def load_checkpoint(path: Path) -> tuple[TrainState, dict[str, Any], Policy, Any]:
    """Read the newest checkpoint under `path`: (state, meta, policy, algo config)."""
    ckpt = find_checkpoint(Path(path))
    meta = read_meta(ckpt)
    try:
        if meta.get("format") != FORMAT_VERSION:
            raise KeyError("format")
        algo_name = meta["algo"]
        config_cls, build = ALGORITHMS[algo_name]
        algo_cfg = config_from_dict(config_cls, meta["algo_config"])
        spec = EnvSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["env_spec"].items()})
    except (KeyError, TypeError) as exc:
        raise UserError(f"checkpoint '{ckpt}' has an unreadable meta.json (missing {exc}); it was not written by this policysearch") from exc
    policy = make_policy(spec, algo_cfg)
    algo = build(algo_cfg, policy, 1)
    template = TrainState(algo.init(jax.random.PRNGKey(0)), NormState.create(spec.obs_dim, meta["num_envs"]), jax.random.PRNGKey(0))
    state = load_arrays(ckpt, template)
    return state, dict(meta, checkpoint=str(ckpt)), policy, algo_cfg


def load_gps(ckpt: Path, meta: dict[str, Any]) -> TrainedPolicy:
    """A Guided Policy Search policy, with the fixed input standardisation it was trained with
    (meta "obs_norm": mean, var, clip; absent or null: raw observations)."""
    try:
        spec = EnvSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["env_spec"].items()})
        algo = meta["algo_config"]
        policy = Policy(spec.obs_dim, spec.action_dim, "gaussian", tuple(algo["hidden"]), "softplus", algo["log_std_init"])
        obs_norm = meta.get("obs_norm")
        stats = RunningStats.create((spec.obs_dim,))
        norm = NormConfig(obs=False, reward=False)
        if obs_norm is not None:
            mean, var = (np.asarray(obs_norm[k], np.float32) for k in ("mean", "var"))
            if mean.shape != (spec.obs_dim,) or var.shape != (spec.obs_dim,):
                raise TypeError(f"obs_norm of size {mean.shape} for obs_dim {spec.obs_dim}")
            stats = RunningStats(jnp.asarray(mean), jnp.asarray(var), jnp.asarray(1.0, jnp.float32))
            norm = NormConfig(obs=True, reward=False, clip_obs=float(obs_norm["clip"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"checkpoint '{ckpt}' has an unreadable meta.json ({exc}); it was not written by this policysearch") from exc
    params = load_arrays(ckpt, policy.init(jax.random.PRNGKey(0)))
    return TrainedPolicy(policy, params, stats, norm, spec, dict(meta, checkpoint=str(ckpt)))


def load(path: str | Path) -> TrainedPolicy:
    """The trained policy of a run directory (or checkpoint directory)."""
    ckpt = find_checkpoint(Path(path))
    meta = read_meta(ckpt)
    if meta.get("algo") == "gps":
        return load_gps(ckpt, meta)
    state, meta, policy, _ = load_checkpoint(Path(path))
    spec = EnvSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["env_spec"].items()})
    norm = NormConfig(**meta["norm"])
    return TrainedPolicy(policy, state.algo.params, state.norm.obs, norm, spec, meta)
