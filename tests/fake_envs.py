"""Tiny registered environments for tests of spaces the library must refuse or accept."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class MultiDiscreteEnv(gym.Env):
    """Flat Box observations, MultiDiscrete actions: not supported by the Gaussian/categorical policies."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.MultiDiscrete([2, 3])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, False, False, {}


gym.register("PolicysearchTest/MultiDiscrete-v0", entry_point=MultiDiscreteEnv, max_episode_steps=10)


class GoesNonFiniteEnv(gym.Env):
    """A 1-D point whose observations become NaN after `healthy_steps` steps of this instance
    (episodes included): the training run on it must stop at the first non-finite update."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    healthy_steps = 300

    def __init__(self) -> None:
        self.count = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.full(2, np.nan if self.count > self.healthy_steps else 0.1 * (self.count % 7), np.float32)

    def step(self, action):
        self.count += 1
        return self._obs(), float(-np.square(action).sum()), False, False, {}


gym.register("PolicysearchTest/GoesNonFinite-v0", entry_point=GoesNonFiniteEnv, max_episode_steps=50)
