"""The sample set S of Algorithm 1 and what reads it: every trajectory with the condition and the
source that drew it, and S_k as the padded arrays `gps.objective` takes,
with log q of every prefix under the mixture of the sources that sampled at each condition
(lecture: importance sampling over trajectory prefixes with a mixture proposal)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.algos.gps.example import ExampleGuide
from policysearch.algos.gps.inputs import PolicyInput
from policysearch.algos.gps.objective import SampleSet, policy_step_log_probs
from policysearch.control.lqg import LinearGaussianController
from policysearch.core.estimators import mixture_prefix_log_probs
from policysearch.core.normalize import RunningStats
from policysearch.core.policies import Policy, PolicyParams
from policysearch.envs.problems import identity


class Source(NamedTuple):
    """A distribution that produced samples: a guiding controller, a policy (GPS's own, params),
    or the noisy example policy (`gps.example`); exactly one is set."""

    controller: LinearGaussianController | None
    params: PolicyParams | None
    example: ExampleGuide | None = None


@dataclass(frozen=True)
class SampleStore:
    """S: every trajectory with its condition and the index of the source that drew it. Adding
    returns a new store."""

    states: tuple[np.ndarray, ...] = ()
    actions: tuple[np.ndarray, ...] = ()
    rewards: tuple[np.ndarray, ...] = ()
    condition: tuple[int, ...] = ()
    source: tuple[int, ...] = ()

    def add(self, rollouts: tuple[Any, Any, Any], condition: int, source: int) -> "SampleStore":
        """The store with the rollouts (states [m, T, n], actions [m, T, k], rewards [m, T]) added."""
        states, actions, rewards = (np.asarray(a) for a in rollouts)
        m = states.shape[0]
        return SampleStore(self.states + tuple(states), self.actions + tuple(actions), self.rewards + tuple(rewards),
                           self.condition + (condition,) * m, self.source + (source,) * m)

    def select(self, condition: int, sources: set[int] | frozenset[int]) -> list[int]:
        return [i for i, (c, s) in enumerate(zip(self.condition, self.source)) if c == condition and s in sources]

    def __len__(self) -> int:
        return len(self.source)


def observation_stats(inputs: Sequence[PolicyInput], store: SampleStore) -> RunningStats:
    """Mean and variance of the raw policy input, inputs[c].features(x) at condition c, over every
    time step of every trajectory in the store."""
    every = set(store.source)
    per_condition = [(c, store.select(c, every)) for c in range(len(inputs))]
    f = np.concatenate([np.asarray(inputs[c].features(jnp.asarray(np.concatenate([store.states[i] for i in idx]))), np.float64)
                        for c, idx in per_condition if idx])
    return RunningStats(jnp.asarray(f.mean(0), jnp.float32), jnp.asarray(f.var(0), jnp.float32), jnp.asarray(len(f), jnp.float32))


def step_log_probs(policy: Policy, source: Source, states: jax.Array, obs: jax.Array, actions: jax.Array,
                   features: Callable[[jax.Array], jax.Array] = identity) -> jax.Array:
    """log q_j(u_t | x_t) of samples [m, T] under one source: controllers see the states, GPS's
    policy its input obs, the example features(states) on its own standardisation."""
    if source.controller is not None:
        return jax.vmap(source.controller.trajectory_log_probs)(states, actions)
    if source.example is not None:
        return source.example.log_probs(features, states, actions)
    return policy_step_log_probs(policy, source.params, obs, actions)


def capacity_for(count: int, bucket: int = 32) -> int:
    """Samples per condition rounded up to a multiple of `bucket`: the padded size of S_k, so the
    jitted optimiser recompiles only when S_k outgrows a bucket."""
    return bucket * max(1, math.ceil(count / bucket))


def build_sample_set(
    policy: Policy, store: SampleStore, sources: tuple[Source, ...] | list[Source], chosen: set[int] | frozenset[int],
    inputs: Sequence[PolicyInput], stats: RunningStats | None = None,
) -> SampleSet:
    """S_k: per condition c (one input map inputs[c] each), the samples drawn by the chosen
    sources, with log q of every prefix under the mixture of the sources that sampled at that
    condition, padded to a common size. Controllers score raw states; the policy (and
    SampleSet.states) sees inputs[c](stats, state), the example inputs[c].features on its own
    standardisation."""
    conditions = len(inputs)
    per_condition = [store.select(c, chosen) for c in range(conditions)]
    cap = capacity_for(max(len(idx) for idx in per_condition))
    T, n, m = store.states[0].shape[0], store.states[0].shape[1], store.actions[0].shape[1]
    n = int(inputs[0](stats, jnp.zeros((n,), jnp.float32)).shape[-1])
    states, actions = np.zeros((conditions, cap, T, n), np.float32), np.zeros((conditions, cap, T, m), np.float32)
    rewards, log_q, mask = np.zeros((conditions, cap, T), np.float32), np.zeros((conditions, cap, T), np.float32), np.zeros((conditions, cap), np.float32)
    for c, idx in enumerate(per_condition):
        s = np.stack([store.states[i] for i in idx])
        f = np.asarray(inputs[c](stats, jnp.asarray(s)))
        a = np.stack([store.actions[i] for i in idx])
        used = sorted({store.source[i] for i in idx})
        counts = jnp.asarray([sum(1 for i in idx if store.source[i] == j) for j in used], jnp.float32)
        per_source = jnp.stack([step_log_probs(policy, sources[j], jnp.asarray(s), jnp.asarray(f), jnp.asarray(a), inputs[c].features)
                                  for j in used])
        k = len(idx)
        states[c, :k], actions[c, :k], mask[c, :k] = f, a, 1.0
        rewards[c, :k] = np.stack([store.rewards[i] for i in idx])
        log_q[c, :k] = np.asarray(mixture_prefix_log_probs(per_source, counts))
    return SampleSet(*(jnp.asarray(a) for a in (states, actions, rewards, log_q, mask)))
