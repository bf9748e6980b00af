"""One batched-environment interface for every algorithm, over EnvPool or Gymnasium.

`make_env(env_id, num_envs, seed)` returns a `VecEnv`: `reset() -> obs[N, obs_dim]` and
`step(actions) -> (obs, reward, terminated, truncated)`, float32 observations, "next-step"
auto-reset (see `policysearch.core.estimators`). EnvPool (C++ threads) serves the MuJoCo `*-v5` tasks
it implements; everything else, including a user's registered env or `module:EnvId`, runs in a
Gymnasium vector env.
"""

from __future__ import annotations

import difflib
import importlib
import os
import warnings
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np

from policysearch.errors import UserError, require

Backend = Literal["auto", "envpool", "gymnasium"]

# MuJoCo v5 tasks that EnvPool implements with Gymnasium's dynamics, rewards and time limits.
ENVPOOL_MUJOCO = frozenset(
    f"{name}-v5"
    for name in (
        "Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "InvertedDoublePendulum",
        "InvertedPendulum", "Pusher", "Reacher", "Swimmer", "Walker2d",
    )
)


@dataclass(frozen=True)
class EnvSpec:
    """What policies and checkpoints need to know of an environment."""

    env_id: str
    obs_dim: int
    action_kind: Literal["gaussian", "categorical"]
    action_dim: int
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """The Gymnasium spec of env_id (importing `module` first for `module:EnvId`), or a UserError
    naming close matches."""
    if ":" in env_id:
        module, env_id = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
                raise UserError(f"cannot import module '{module}' of --env {module}:{env_id} (no such module): install it, or run "
                                "from the folder that holds it (or add that folder to PYTHONPATH)") from exc
            raise UserError(f"importing module '{module}' of --env {module}:{env_id} failed: {exc}") from exc
        except ImportError as exc:
            raise UserError(f"importing module '{module}' of --env {module}:{env_id} failed: {exc}") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gym.spec(env_id)
    except (gym.error.Error, ImportError) as exc:
        close = difflib.get_close_matches(env_id, list(gym.envs.registry.keys()), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "see `gymnasium.pprint_registry()` for the ids"
        raise UserError(f"unknown environment '{env_id}': {hint} (a user env needs `module:EnvId` or registration)") from exc


def is_flat(space: gym.Space) -> bool:
    """Whether observations of `space` are what the policies take: one vector (a 1-D Box, or any
    space-like object of one dimension)."""
    if isinstance(space, gym.spaces.Box) or not isinstance(space, gym.Space):
        return len(getattr(space, "shape", None) or ()) == 1
    return False


def flat_observations(env: gym.Env) -> gym.Env:
    """env, its observations flattened into one vector (`gymnasium.wrappers.FlattenObservation`)
    where they are not one already: Dict, Tuple, Discrete, MultiDiscrete or image observations.
    Every env the library makes (training, evaluation, video) goes through it, so a policy sees
    the same layout everywhere."""
    if is_flat(env.observation_space):
        return env
    try:
        gym.spaces.flatten_space(env.observation_space)
    except NotImplementedError:
        return env  # not flattenable (Graph, Text, Sequence): spec_from_spaces says so
    return gym.wrappers.FlattenObservation(env)


def spec_from_spaces(env_id: str, obs_space: gym.Space, action_space: gym.Space) -> EnvSpec:
    require(is_flat(obs_space), f"{env_id}: observations of {type(obs_space).__name__} cannot be flattened into one vector "
            "(policysearch flattens Box, Dict, Tuple and Discrete ones): wrap the env in an ObservationWrapper that makes them a 1-D Box")
    if isinstance(action_space, gym.spaces.Box):
        require(len(action_space.shape) == 1, f"{env_id}: Box actions must be 1-D, got shape {action_space.shape}")
        return EnvSpec(
            env_id, int(obs_space.shape[0]), "gaussian", int(action_space.shape[0]),
            tuple(float(x) for x in action_space.low), tuple(float(x) for x in action_space.high),
        )
    if isinstance(action_space, gym.spaces.Discrete):
        return EnvSpec(env_id, int(obs_space.shape[0]), "categorical", int(action_space.n), (), ())
    raise UserError(
        f"{env_id} has action space {type(action_space).__name__}; policysearch handles Box and Discrete actions"
    )


def env_threads(env_id: str, num_envs: int, backend: Backend = "auto") -> int:
    """The threads N envs of env_id step on: EnvPool's, one per env up to the cores, where EnvPool
    serves the id (backend "auto" or "envpool"); else one (Gymnasium's vector env)."""
    use_envpool = backend == "envpool" or (backend == "auto" and env_id in ENVPOOL_MUJOCO)
    return min(num_envs, os.cpu_count() or 1) if use_envpool else 1


def env_thread_affinity(threads: int) -> int:
    """EnvPool's `thread_affinity_offset` for `threads` workers: 0 (worker i pinned to core i) where
    they are as many as the cores this process may run on and those are cores 0..n-1; else -1
    (the OS places them), and -1 where POLICYSEARCH_PIN_THREADS=0. Pinning only there, because
    runs that share a larger machine would otherwise all pile onto its first cores.

    Why: unpinned, a long-lived pool on the 2-core machine stepped some batches in ~145 ms instead
    of ~103 (2,048 Hopper steps with the policy's step; the 90th percentile of 40 batches 112-159
    ms), and pinned its 90th percentile was 106-110 ms (2026-12-04, Intel Xeon, idle)."""
    if os.environ.get("POLICYSEARCH_PIN_THREADS", "1") == "0" or not hasattr(os, "sched_getaffinity"):
        return -1
    return 0 if os.sched_getaffinity(0) == set(range(threads)) else -1


class VecEnv:
    """N copies of one environment stepped together; see the module docstring."""

    def __init__(self, env_id: str, num_envs: int, seed: int, backend: Backend = "auto") -> None:
        registered = check_env_id(env_id).id
        require(num_envs > 0, f"--num-envs must be positive, got {num_envs}")
        use_envpool = backend == "envpool" or (backend == "auto" and env_id in ENVPOOL_MUJOCO)
        if use_envpool:
            require(env_id in ENVPOOL_MUJOCO, f"EnvPool does not serve {env_id}; use --backend gymnasium")
            try:
                import envpool
            except ImportError as exc:
                raise UserError("--backend envpool needs EnvPool: pip install 'policysearch[fast]'") from exc
            threads = env_threads(env_id, num_envs, backend)
            self._env = envpool.make_gymnasium(env_id, num_envs=num_envs, seed=seed, num_threads=threads,
                                               thread_affinity_offset=env_thread_affinity(threads))
            self._seed: int | None = None
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._env = gym.make_vec(registered, num_envs=num_envs, vectorization_mode="sync", wrappers=[flat_observations])
            except gym.error.DependencyNotInstalled as exc:
                raise UserError(f"{env_id} needs a package that is not installed: {exc}") from exc
            self._seed = seed
        self.backend: str = "envpool" if use_envpool else "gymnasium"
        self.env_id = env_id
        self.num_envs = num_envs
        self.spec = spec_from_spaces(env_id, self._env.single_observation_space if not use_envpool else self._env.observation_space,
                                     self._env.single_action_space if not use_envpool else self._env.action_space)
        self.action_low = np.asarray(self.spec.action_low, np.float32)
        self.action_high = np.asarray(self.spec.action_high, np.float32)

    def reset(self) -> np.ndarray:
        if self._seed is None:
            obs, _ = self._env.reset()
        else:
            obs, _ = self._env.reset(seed=self._seed)
            self._seed = None
        return np.asarray(obs, np.float32)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self.spec.action_kind == "gaussian":  # np.clip's value, at a third of its cost on small arrays
            actions = np.minimum(np.maximum(actions, self.action_low), self.action_high)
        else:
            actions = actions.astype(np.int64)
        obs, reward, terminated, truncated, _ = self._env.step(actions)
        return (
            np.asarray(obs, np.float32),
            np.asarray(reward, np.float32),
            np.asarray(terminated, bool),
            np.asarray(truncated, bool),
        )

    def close(self) -> None:
        self._env.close()


def make_env(env_id: str, num_envs: int = 1, seed: int = 0, backend: Backend = "auto") -> VecEnv:
    """N seeded copies of env_id behind one batched interface (EnvPool where it serves the id)."""
    return VecEnv(env_id, num_envs, seed, backend)
