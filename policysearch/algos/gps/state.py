"""Everything Guided Policy Search carries from one iteration of Algorithm 1 to the next: the
sample set S (every trajectory with its condition and the source that drew it), every source that
ever sampled (q is the mixture over all of them, so none may be lost), the indices of the guiding
and policy sources, theta* with its costs, w_r, the PRNG key, the input standardisation, the
history rows and the iLQR warm starts (line 9 re-solves from them). `run.gps_checkpoint` writes it
out for --resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from policysearch.algos.gps.samples import SampleStore, Source
from policysearch.core.normalize import RunningStats
from policysearch.core.policies import PolicyParams


@dataclass(frozen=True)
class GPSState:
    """The state of Algorithm 1 after `iteration` completed iterations (0: after lines 1-4).
    Frozen: an iteration returns a new state (`dataclasses.replace`)."""

    iteration: int
    key: jax.Array
    w_r: float
    best: PolicyParams
    """theta*."""
    best_costs: tuple[float, ...]
    initial_cost: float
    store: SampleStore
    sources: tuple[Source, ...]
    """Every distribution that sampled, in order; q at a condition is the mixture of those that sampled there."""
    guiding: frozenset[int]
    policy_sources: tuple[int, ...]
    ddp_sources: tuple[int, ...]
    """The line-1 guiding controller of each condition, as an index into sources."""
    ddp_costs: tuple[float, ...]
    obs_stats: RunningStats | None
    """The fixed standardisation of the policy's input (None: raw features)."""
    warm_starts: tuple[np.ndarray | None, ...]
    """Per condition, the controls of its last iLQR solution (None: not solved yet); line 9
    re-solves from them, so a resumed run re-solves from the same place."""
    history: tuple[dict, ...] = ()
