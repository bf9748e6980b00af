"""The checkpoint form of Guided Policy Search's state (`algos.gps.state.GPSState`): arrays for
safetensors, the rest for JSON, no pickle, so that `--resume` continues a run exactly where its
last completed iteration left it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.algos.gps.example import ExampleGuide
from policysearch.algos.gps.samples import SampleStore, Source
from policysearch.algos.gps.state import GPSState
from policysearch.control.lqg import LinearGaussianController
from policysearch.core.normalize import RunningStats
from policysearch.core.policies import Policy, PolicyParams
from policysearch.errors import UserError
from policysearch.run.checkpoint import fill_tree, named_arrays


def state_to_checkpoint(state: GPSState) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, JSON) of the state."""
    arrays = {"key": np.asarray(state.key)}
    if len(state.store):
        arrays.update({f"store.{k}": np.stack(getattr(state.store, k)) for k in ("states", "actions", "rewards")})
    arrays.update(named_arrays(state.best, "best"))
    kinds, examples = [], {}
    for j, source in enumerate(state.sources):
        if source.controller is not None:
            kinds.append("controller")
            arrays.update({f"source.{j}.{name}": np.asarray(a) for name, a in source.controller._asdict().items()})
        elif source.example is not None:
            kinds.append("example")
            ex = source.example
            arrays.update(named_arrays(ex.params, f"source.{j}.params"))
            arrays.update({f"source.{j}.{k}": np.asarray(getattr(ex, k)) for k in ("std", "u_low", "u_high")})
            arrays.update(_stats_arrays(ex.stats, f"source.{j}.stats"))
            examples[str(j)] = {"network": dataclasses.asdict(ex.policy), "clip": ex.clip}
        else:
            kinds.append("policy")
            arrays.update(named_arrays(source.params, f"source.{j}.params"))
    arrays.update(_stats_arrays(state.obs_stats, "obs_stats"))
    warm = [c for c, u in enumerate(state.warm_starts) if u is not None]
    arrays.update({f"warm.{c}": np.asarray(state.warm_starts[c]) for c in warm})
    meta = {
        "iteration": state.iteration, "w_r": float(state.w_r), "best_costs": list(state.best_costs), "initial_cost": state.initial_cost,
        "condition": list(state.store.condition), "source": list(state.store.source), "source_kinds": kinds, "examples": examples,
        "guiding": sorted(state.guiding), "policy_sources": list(state.policy_sources), "ddp_sources": list(state.ddp_sources),
        "ddp_costs": list(state.ddp_costs), "history": list(state.history), "warm": warm, "conditions": len(state.warm_starts),
    }
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}, meta


def state_from_checkpoint(arrays: dict[str, np.ndarray], meta: dict[str, Any], template: PolicyParams, ckpt: Path) -> GPSState:
    """The state written by `state_to_checkpoint` into checkpoint `ckpt`; template: the policy's
    parameters (for names and shapes). Anything missing or misshapen is a UserError."""
    try:
        store = SampleStore()
        if meta["source"]:
            store = SampleStore(*(tuple(arrays[f"store.{k}"]) for k in ("states", "actions", "rewards")),
                                tuple(meta["condition"]), tuple(meta["source"]))
            if not len(store.states) == len(store.source) == len(store.condition):
                raise UserError(f"the GPS state holds {len(store.states)} trajectories but {len(store.source)} source labels")
        sources = []
        for j, kind in enumerate(meta["source_kinds"]):
            if kind == "controller":
                sources.append(Source(LinearGaussianController(**{f: jnp.asarray(arrays[f"source.{j}.{f}"]) for f in LinearGaussianController._fields}), None))
            elif kind == "example":
                sources.append(Source(None, None, _example_from_checkpoint(arrays, meta["examples"][str(j)], j, ckpt)))
            else:
                sources.append(Source(None, fill_tree(template, arrays, ckpt, f"source.{j}.params")))
        stats = _stats_from(arrays, "obs_stats")
        warm = [None] * int(meta["conditions"])
        for c in meta["warm"]:
            warm[int(c)] = np.asarray(arrays[f"warm.{c}"])
        return GPSState(
            iteration=int(meta["iteration"]), key=jnp.asarray(arrays["key"]), w_r=float(meta["w_r"]), best=fill_tree(template, arrays, ckpt, "best"),
            best_costs=tuple(meta["best_costs"]), initial_cost=float(meta["initial_cost"]), store=store, sources=tuple(sources),
            guiding=frozenset(meta["guiding"]), policy_sources=tuple(meta["policy_sources"]), ddp_sources=tuple(meta["ddp_sources"]),
            ddp_costs=tuple(meta["ddp_costs"]), obs_stats=stats, warm_starts=tuple(warm), history=tuple(meta["history"]),
        )
    except KeyError as exc:
        raise UserError(f"the GPS state lacks {exc}: it is incomplete or was written by another policysearch version; start a new run") from exc


def _example_from_checkpoint(arrays: dict[str, np.ndarray], record: dict[str, Any], j: int, ckpt: Path) -> ExampleGuide:
    """The noisy example policy saved as source j (its network from the JSON record)."""
    from policysearch.run.schema import from_dict

    policy = from_dict(Policy, record["network"], f"the GPS state of '{ckpt}' (example network)")
    params = fill_tree(policy.init(jax.random.PRNGKey(0)), arrays, ckpt, f"source.{j}.params")
    return ExampleGuide(policy, float(record["clip"]), params, _stats_from(arrays, f"source.{j}.stats"),
                        *(jnp.asarray(arrays[f"source.{j}.{k}"]) for k in ("std", "u_low", "u_high")))


def _stats_arrays(stats: RunningStats | None, prefix: str) -> dict[str, np.ndarray]:
    """Input statistics as arrays PREFIX.mean, .var, .count (none for None: raw input)."""
    return {} if stats is None else {f"{prefix}.{k}": np.asarray(v) for k, v in stats._asdict().items()}


def _stats_from(arrays: dict[str, np.ndarray], prefix: str) -> RunningStats | None:
    """The statistics `_stats_arrays` wrote under prefix, or None."""
    if f"{prefix}.mean" not in arrays:
        return None
    return RunningStats(*(jnp.asarray(arrays[f"{prefix}.{k}"]) for k in RunningStats._fields))
