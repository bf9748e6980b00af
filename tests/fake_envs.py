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
