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
from policysearch.envs.rollout import host_arrays, host_params, policy_step
from policysearch.errors import UserError, require
from policysearch.run.checkpoint import find_checkpoint, load_arrays, read_policy_meta
from policysearch.run.folder import FORMAT_VERSION
from policysearch.run.schema import from_dict


@dataclass
class TrainedPolicy:
    """pi_theta with frozen input standardisation, ready to act on raw observations."""

    policy: Policy
    params: PolicyParams
    obs_stats: RunningStats
    norm: NormConfig
    spec: EnvSpec
    meta: dict[str, Any]
    key: jax.Array = dataclasses.field(default_factory=lambda: jax.random.PRNGKey(0))
    """The sampling key of stochastic actions asked for without one (split at each such call)."""

    def __post_init__(self) -> None:
        self._host_params, self._host_stats = host_params(self.params), host_arrays(self.obs_stats)

    def act(self, obs: np.ndarray, deterministic: bool = True, key: jax.Array | None = None) -> np.ndarray:
        """Action(s) for raw obs[obs_dim] or obs[B, obs_dim]; the mean (mode) when deterministic,
        else a sample drawn with `key` (default: the policy's own key, advanced at every call).
        The arithmetic runs in NumPy (`rollout.policy_step`): no JAX dispatch per call."""
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        if obs.shape[-1] != self.spec.obs_dim:
            raise UserError(f"observation has size {obs.shape[-1]}, the policy expects {self.spec.obs_dim} ({self.spec.env_id})")
        if key is None and not deterministic:
            self.key, key = jax.random.split(self.key)
        batch = np.atleast_2d(obs)
        if deterministic:
            noise = np.zeros((batch.shape[0], self.policy.action_dim), np.float32)
        else:
            noise = np.asarray(self.policy.noise(key, batch.shape[:1]))
        clip = self.norm.clip_obs if self.norm.obs else None
        _, action, _ = policy_step(self.policy, self._host_params, self._host_stats, batch, noise, False, clip)
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


@dataclass(frozen=True)
class ObsNorm:
    """meta.json's "obs_norm": the frozen input standardisation of a saved policy."""

    mean: tuple[float, ...]
    var: tuple[float, ...]
    clip: float


def load(path: str | Path) -> TrainedPolicy:
    """The trained policy of a run directory (or checkpoint directory), of any algorithm; its
    meta.json is checked against the records' schema (`run.schema`) and its arrays against their
    checksum, shapes and finiteness."""
    ckpt = find_checkpoint(Path(path))
    meta = read_policy_meta(ckpt)
    where = f"the meta.json of '{ckpt}'"
    if meta["format"] != FORMAT_VERSION:
        raise UserError(f"checkpoint '{ckpt}' has format {meta['format']}, this policysearch version reads {FORMAT_VERSION}: "
                        "train it again with this version")
    spec = from_dict(EnvSpec, meta["env_spec"], f"{where} (env_spec)")
    policy = from_dict(Policy, meta["network"], f"{where} (network)")
    bounds_fit = spec.action_kind == "categorical" or len(spec.action_low) == len(spec.action_high) == spec.action_dim
    require(spec.obs_dim > 0 and spec.action_dim > 0 and bounds_fit and all(h > 0 for h in policy.hidden)
            and (policy.obs_dim, policy.action_dim, policy.kind) == (spec.obs_dim, spec.action_dim, spec.action_kind),
            f"{where} has an env_spec and network that do not fit each other (obs {spec.obs_dim}/{policy.obs_dim}, actions "
            f"{spec.action_dim}/{policy.action_dim}): the file was edited or damaged")
    stats, clip = None, 0.0
    if meta.get("obs_norm") is not None:
        norm = from_dict(ObsNorm, meta["obs_norm"], f"{where} (obs_norm)")
        require(len(norm.mean) == len(norm.var) == spec.obs_dim and min(norm.var, default=0.0) >= 0 and norm.clip > 0,
                f"{where} has an obs_norm that does not fit obs_dim {spec.obs_dim}: the file was edited or damaged")
        stats = RunningStats(jnp.asarray(norm.mean, jnp.float32), jnp.asarray(norm.var, jnp.float32), jnp.asarray(1.0, jnp.float32))
        clip = norm.clip
    params = load_arrays(ckpt, policy.init(jax.random.PRNGKey(0)))
    return frozen_policy(policy, params, stats, clip, spec, dict(meta, checkpoint=str(ckpt)))
