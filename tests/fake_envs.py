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


class DictObsEnv(gym.Env):
    """Dict observations (a Box and a Discrete) and Discrete actions: flattened into one vector of
    2 + 3 (one-hot) by every env the library makes. Reward 1 for action 1 when the Discrete part
    is 2, so a policy that reads the flattened one-hot can beat chance."""

    observation_space = gym.spaces.Dict({"pos": gym.spaces.Box(-1.0, 1.0, (2,), np.float32), "mode": gym.spaces.Discrete(3)})
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> dict:
        self.mode = int(self.np_random.integers(3))
        return {"pos": self.np_random.uniform(-1, 1, 2).astype(np.float32), "mode": self.mode}

    def step(self, action):
        reward = float(int(action) == int(self.mode == 2))
        self.t += 1
        return self._obs(), reward, False, False, {}


gym.register("PolicysearchTest/DictObs-v0", entry_point=DictObsEnv, max_episode_steps=20)
