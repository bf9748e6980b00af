"""The algorithm registry: every algorithm, GPS included, by name, with its config dataclass and
its builder. On-policy algorithms are built as `make(config, policy, num_updates) -> Algorithm`
(`init(key) -> state`, `update(state, batch) -> (state, metrics)`: compiled, TRPO's as two halves
on two threads); Guided Policy Search as `make(config, problem) -> GPS` (`init(seed) -> state`,
`iteration(state) -> (state, row)`). `kind` says which trainer of the run layer drives it.

The configs are imported here (they import no JAX); the builders, and the JAX code behind them,
only when first used (`policysearch.lazy`), so the command line starts fast."""

from __future__ import annotations

from typing import Any, Callable, Literal, NamedTuple

from policysearch.algos.configs import OnPolicyConfig, PGConfig, PPOConfig, TRPOConfig
from policysearch.algos.gps.config import GPSConfig
from policysearch.lazy import lazy_callable, lazy_exports


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
    "ppo": AlgorithmEntry(PPOConfig, lazy_callable("policysearch.algos.ppo", "make_ppo"), "on-policy",
                          "Proximal Policy Optimization (clipped or KL-penalty surrogate)"),
    "trpo": AlgorithmEntry(TRPOConfig, lazy_callable("policysearch.algos.trpo", "make_trpo"), "on-policy",
                           "Trust Region Policy Optimization (CG + line search on the KL)"),
    "pg": AlgorithmEntry(PGConfig, lazy_callable("policysearch.algos.pg", "make_pg"), "on-policy",
                         "policy gradient with a baseline (whole-trajectory, reward-to-go or GAE)"),
    "gps": AlgorithmEntry(GPSConfig, lazy_callable("policysearch.algos.gps.loop", "make_gps"), "guided",
                          "Guided Policy Search on a task with a dynamics model (DDP-guided samples)"),
}

__getattr__ = lazy_exports(__name__, {
    "Algorithm": "policysearch.algos.base", "Batch": "policysearch.algos.base", "Policy": "policysearch.core.policies",
    "make_gps": "policysearch.algos.gps.loop", "make_pg": "policysearch.algos.pg", "make_ppo": "policysearch.algos.ppo",
    "make_trpo": "policysearch.algos.trpo",
})

__all__ = ["ALGORITHMS", "Algorithm", "AlgorithmEntry", "Batch", "GPSConfig", "OnPolicyConfig", "PGConfig", "PPOConfig", "Policy",
           "TRPOConfig", "make_gps", "make_pg", "make_ppo", "make_trpo"]
