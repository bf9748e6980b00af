"""The algorithm registry: every algorithm, GPS included, by name, with its config dataclass and
its builder. On-policy algorithms are built as `make(config, policy, num_updates) -> Algorithm`
(`init(key) -> state`, jitted `update(state, batch) -> (state, metrics)`); Guided Policy Search as
`make(config, problem) -> GPS` (`init(seed) -> state`, `iteration(state) -> (state, row)`). `kind`
says which trainer of the run layer drives it."""

from __future__ import annotations

from typing import Any, Callable, Literal, NamedTuple

from policysearch.algos.base import Algorithm, Batch, OnPolicyConfig
from policysearch.algos.gps import GPSConfig, make_gps
from policysearch.algos.pg import PGConfig, make_pg
from policysearch.algos.ppo import PPOConfig, make_ppo
from policysearch.algos.trpo import TRPOConfig, make_trpo
from policysearch.core.policies import Policy


class AlgorithmEntry(NamedTuple):
    config: type
    """The algorithm's frozen config dataclass (its fields are the CLI's flags)."""
    make: Callable[..., Any]
    kind: Literal["on-policy", "guided"]
    """"on-policy": trained from env rollouts by `run.train`; "guided": from a dynamics model's
    DDP solutions by `run.train_gps`."""
    summary: str
    """One line for `policysearch --help`."""


ALGORITHMS: dict[str, AlgorithmEntry] = {
    "ppo": AlgorithmEntry(PPOConfig, make_ppo, "on-policy", "Proximal Policy Optimization (clipped or KL-penalty surrogate)"),
    "trpo": AlgorithmEntry(TRPOConfig, make_trpo, "on-policy", "Trust Region Policy Optimization (CG + line search on the KL)"),
    "pg": AlgorithmEntry(PGConfig, make_pg, "on-policy", "policy gradient with a baseline (whole-trajectory, reward-to-go or GAE)"),
    "gps": AlgorithmEntry(GPSConfig, make_gps, "guided", "Guided Policy Search on a task with a dynamics model (DDP-guided samples)"),
}

__all__ = ["ALGORITHMS", "Algorithm", "AlgorithmEntry", "Batch", "GPSConfig", "OnPolicyConfig", "PGConfig", "PPOConfig", "Policy",
           "TRPOConfig", "make_gps", "make_pg", "make_ppo", "make_trpo"]
