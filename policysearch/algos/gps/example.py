"""A trained example policy with Gaussian noise as a guiding distribution of GPS:

    q_E(u_t | x_t) = N(u_t; clip(mu_E(x_t), u_low, u_high), diag(sigma^2)),

mu_E the example's mean action on its own standardised input, clipped to the control box: the
action the example applies (`snapshot.TrainedPolicy.act`; a PPO runner's raw means often lie far
outside the humanoid's +-0.4, and unclipped they would contradict the DDP samples' clipped actions
at the same states). sigma = example_noise * the half control range. Its density is known at
every step, so its samples join S and the mixture q like the DDP controllers' (lecture:
importance sampling over trajectory prefixes needs only the density of whatever drew the samples).

Why a second kind: the DDP controllers are time-indexed linear laws around one nominal run. On the
humanoid their samples fall even at the narrowest noise (79 of 80 before step 250 at temperature
1e-4), and a policy fitted to them falls with them (at about 80 steps). The noisy example's runs
leave the nominal and its actions lead back to the gait, the states and actions the policy needs
(experiments/imitation_coverage.py; README, "The humanoid running on unseen terrain").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.algos.gps.inputs import PolicyInput
from policysearch.core.distributions import DiagGaussian
from policysearch.core.normalize import RunningStats
from policysearch.core.policies import Policy, PolicyParams

ExampleArgs = tuple[PolicyParams, "RunningStats | None", jax.Array, jax.Array, jax.Array]
"""(params, stats, sigma, u_low, u_high): what sampling and scoring the example take as a pytree."""


class ExampleGuide(NamedTuple):
    """The example policy (its network, input clip, parameters and input statistics; stats None:
    raw input), the noise sigma [m] of its guiding distribution and the control box [m]."""

    policy: Policy
    clip: float
    params: PolicyParams
    stats: RunningStats | None
    std: jax.Array
    u_low: jax.Array
    u_high: jax.Array

    @property
    def args(self) -> ExampleArgs:
        return self.params, self.stats, self.std, self.u_low, self.u_high

    def act(self, features: Callable[[jax.Array], jax.Array]) -> "ExampleAct":
        """Its sampler at a condition whose policy input is features(x)."""
        return ExampleAct(self.policy, PolicyInput(features, self.clip))

    def log_probs(self, features: Callable[[jax.Array], jax.Array], states: jax.Array, actions: jax.Array) -> jax.Array:
        """log q_E(u_t | x_t) of samples states [m, T, n], actions [m, T, k]: [m, T]."""
        return _log_probs(self.act(features), self.args, states, actions)


def example_guide(policy: Policy, params: PolicyParams, stats: RunningStats | None, clip: float, noise: float,
                  u_low: np.ndarray, u_high: np.ndarray) -> ExampleGuide:
    """The guide of an example policy with sigma = noise * (u_high - u_low) / 2."""
    lo, hi = (jnp.asarray(np.asarray(b, np.float32)) for b in (u_low, u_high))
    return ExampleGuide(policy, float(clip), params, stats, noise * 0.5 * (hi - lo), lo, hi)


@dataclass(frozen=True)
class ExampleAct:
    """u ~ N(clip(mu_E(x)), diag(sigma^2)), args = `ExampleArgs`; hashable by value, so sampling
    compiles once per example and input map."""

    policy: Policy
    inp: PolicyInput

    def mean(self, args: ExampleArgs, x: jax.Array) -> jax.Array:
        params, stats, _, lo, hi = args
        return jnp.clip(self.policy.dist(params, self.inp(stats, x)).mode(), lo, hi)

    def dist(self, args: ExampleArgs, x: jax.Array) -> DiagGaussian:
        """q_E(. | x) for states x[..., n]."""
        return DiagGaussian(self.mean(args, x), jnp.log(args[2]))

    def __call__(self, args: ExampleArgs, t: jax.Array, x: jax.Array, key: jax.Array) -> jax.Array:
        return self.dist(args, x).sample(key)


@partial(jax.jit, static_argnums=0)
def _log_probs(act: ExampleAct, args: ExampleArgs, states: jax.Array, actions: jax.Array) -> jax.Array:
    return act.dist(args, states).log_prob(actions)
