"""Algorithm registry: name -> (config dataclass, builder(config, policy, num_updates))."""

from __future__ import annotations

from typing import Callable

from policysearch.algos.base import Algorithm, OnPolicyConfig
from policysearch.algos.ppo import PPOConfig, make_ppo
from policysearch.policies import Policy

ALGORITHMS: dict[str, tuple[type[OnPolicyConfig], Callable[..., Algorithm]]] = {
    "ppo": (PPOConfig, make_ppo),
}

__all__ = ["ALGORITHMS", "Algorithm", "OnPolicyConfig", "PPOConfig", "make_ppo", "Policy"]
