"""Everything Guided Policy Search carries from one iteration of Algorithm 1 to the next, and its
checkpoint form (arrays for safetensors, the rest for JSON; no pickle), so that `--resume`
continues a run exactly where its last completed iteration left it.

The state is the sample set S (every trajectory with its condition and the source that drew
it), every source that ever sampled (q is the mixture over all of them, so none may be lost),
the indices of the guiding and policy sources, theta* with its costs, w_r, the PRNG key, the
input standardisation, the history rows and the problem's iLQR warm starts (line 9 re-solves
from them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.checkpoint import fill_tree, named_arrays
from policysearch.control.lqg import LinearGaussianController
from policysearch.errors import UserError
from policysearch.normalize import RunningStats
from policysearch.policies import PolicyParams


class Source(NamedTuple):
    """A distribution that produced samples: a guiding controller or a policy."""

    controller: LinearGaussianController | None
    params: PolicyParams | None


@dataclass
class SampleStore:
    """S: every trajectory with its condition and the index of the source that drew it."""

    states: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[np.ndarray] = field(default_factory=list)
    condition: list[int] = field(default_factory=list)
    source: list[int] = field(default_factory=list)

    def add(self, rollouts: tuple[Any, Any, Any], condition: int, source: int) -> None:
        states, actions, rewards = (np.asarray(a) for a in rollouts)
        for i in range(states.shape[0]):
            self.states.append(states[i])
            self.actions.append(actions[i])
            self.rewards.append(rewards[i])
            self.condition.append(condition)
            self.source.append(source)

    def select(self, condition: int, sources: set[int]) -> list[int]:
        return [i for i, (c, s) in enumerate(zip(self.condition, self.source)) if c == condition and s in sources]

    def __len__(self) -> int:
        return len(self.source)


@dataclass
class GPSState:
    """The state of Algorithm 1 after `iteration` completed iterations (0: after lines 1-4)."""

    iteration: int
    key: jax.Array
    w_r: float
    best: PolicyParams
    best_costs: list[float]
    initial_cost: float
    store: SampleStore
    sources: list[Source]
    guiding: set[int]
    policy_sources: list[int]
    ddp_sources: list[int]
    """The line-1 guiding controller of each condition, as an index into sources."""
    ddp_costs: list[float]
    obs_stats: RunningStats | None
    warm_starts: dict[int, np.ndarray]
    history: list[dict] = field(default_factory=list)
    features: Callable[[jax.Array], jax.Array] | None = None
    """The policy's input map, problem.features standardised by obs_stats: built once per run
    (sampling compiles once per map), not saved (rebuilt from obs_stats on resume)."""


def state_to_checkpoint(state: GPSState) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, JSON) of the state."""
    arrays = {"key": np.asarray(state.key)}
    if len(state.store):
        arrays.update({f"store.{k}": np.stack(getattr(state.store, k)) for k in ("states", "actions", "rewards")})
    arrays.update(named_arrays(state.best, "best"))
    kinds = []
    for j, source in enumerate(state.sources):
        if source.controller is not None:
            kinds.append("controller")
            arrays.update({f"source.{j}.{name}": np.asarray(a) for name, a in source.controller._asdict().items()})
        else:
            kinds.append("policy")
            arrays.update(named_arrays(source.params, f"source.{j}.params"))
    if state.obs_stats is not None:
        arrays.update({f"obs_stats.{k}": np.asarray(v) for k, v in state.obs_stats._asdict().items()})
    arrays.update({f"warm.{c}": np.asarray(u) for c, u in state.warm_starts.items()})
    meta = {
        "iteration": state.iteration, "w_r": float(state.w_r), "best_costs": state.best_costs, "initial_cost": state.initial_cost,
        "condition": state.store.condition, "source": state.store.source, "source_kinds": kinds, "guiding": sorted(state.guiding),
        "policy_sources": state.policy_sources, "ddp_sources": state.ddp_sources, "ddp_costs": state.ddp_costs,
        "history": state.history, "warm": sorted(state.warm_starts),
    }
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}, meta


def state_from_checkpoint(arrays: dict[str, np.ndarray], meta: dict[str, Any], template: PolicyParams, ckpt: Path) -> GPSState:
    """The state written by `state_to_checkpoint` into checkpoint `ckpt`; template: the policy's
    parameters (for names and shapes). Anything missing or misshapen is a UserError."""
    try:
        store = SampleStore()
        if meta["source"]:
            for k in ("states", "actions", "rewards"):
                setattr(store, k, list(arrays[f"store.{k}"]))
            store.condition, store.source = list(meta["condition"]), list(meta["source"])
            if not len(store.states) == len(store.source) == len(store.condition):
                raise UserError(f"the GPS state holds {len(store.states)} trajectories but {len(store.source)} source labels")
        sources = []
        for j, kind in enumerate(meta["source_kinds"]):
            if kind == "controller":
                sources.append(Source(LinearGaussianController(**{f: jnp.asarray(arrays[f"source.{j}.{f}"]) for f in LinearGaussianController._fields}), None))
            else:
                sources.append(Source(None, fill_tree(template, arrays, ckpt, f"source.{j}.params")))
        stats = None
        if "obs_stats.mean" in arrays:
            stats = RunningStats(*(jnp.asarray(arrays[f"obs_stats.{k}"]) for k in RunningStats._fields))
        return GPSState(
            iteration=int(meta["iteration"]), key=jnp.asarray(arrays["key"]), w_r=float(meta["w_r"]), best=fill_tree(template, arrays, ckpt, "best"),
            best_costs=list(meta["best_costs"]), initial_cost=float(meta["initial_cost"]), store=store, sources=sources,
            guiding=set(meta["guiding"]), policy_sources=list(meta["policy_sources"]), ddp_sources=list(meta["ddp_sources"]),
            ddp_costs=list(meta["ddp_costs"]), obs_stats=stats, warm_starts={int(c): np.asarray(arrays[f"warm.{c}"]) for c in meta["warm"]},
            history=list(meta["history"]),
        )
    except KeyError as exc:
        raise UserError(f"the GPS state lacks {exc}: it is incomplete or was written by another policysearch version; start a new run") from exc
