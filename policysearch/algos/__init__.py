"""Algorithm registry: name -> (config dataclass, builder(config, policy, num_updates))."""

from __future__ import annotations

from typing import Callable

from policysearch.algos.base import Algorithm, OnPolicyConfig
from policysearch.algos.pg import PGConfig, make_pg
from policysearch.algos.ppo import PPOConfig, make_ppo
from policysearch.algos.trpo import TRPOConfig, make_trpo
from policysearch.policies import Policy

ALGORITHMS: dict[str, tuple[type[OnPolicyConfig], Callable[..., Algorithm]]] = {
    "ppo": (PPOConfig, make_ppo),
    "pg": (PGConfig, make_pg),
    "trpo": (TRPOConfig, make_trpo),
}

__all__ = ["ALGORITHMS", "Algorithm", "OnPolicyConfig", "PGConfig", "PPOConfig", "Policy", "TRPOConfig", "make_pg", "make_ppo", "make_trpo"]
