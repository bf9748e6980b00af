"""The input of a policy that acts on a problem's state x: its features, standardised. GPS's
policy and an example policy used as a guiding distribution (`gps.example`) both read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax

from policysearch.core.normalize import RunningStats, normalize
from policysearch.envs.problems import identity

OBS_CLIP = 10.0
"""Standardised policy inputs are clipped to +-OBS_CLIP, as PPO's."""


@dataclass(frozen=True)
class PolicyInput:
    """The policy's input for a problem state x: features(x), standardised as
    clip((features(x) - mean) / sqrt(var + eps), +-clip) when statistics are given (the map
    `snapshot.load` applies to a raw observation). Hashable by value (features is a module-level
    function or a frozen dataclass), so every jitted function that takes it compiles once per
    problem, with no cache of our own."""

    features: Callable[[jax.Array], jax.Array] = identity
    clip: float = OBS_CLIP

    def __call__(self, stats: RunningStats | None, x: jax.Array) -> jax.Array:
        f = self.features(x)
        return f if stats is None else normalize(stats, f, self.clip)
