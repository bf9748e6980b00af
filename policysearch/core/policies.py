"""The actor-critic every algorithm shares: a Gaussian MLP (state-independent log-std) for Box
actions, a categorical MLP for Discrete ones, and an MLP value function.

`Policy` is a static, hashable description (sizes, activation, action kind); the arrays live in
`PolicyParams`, a pytree that algorithms carry in their state. Orthogonal initialisation with
gains sqrt(2) (hidden), 0.01 (policy head) and 1 (value head), as in the PPO implementations
studied by Engstrom et al. (2020) and Andrychowicz et al. (2021); or, with `ortho_init=False`,
PyTorch's default for `nn.Linear` (weights U(-1/sqrt(fan_in), 1/sqrt(fan_in))), which is what
Stable-Baselines3's `ortho_init=False` leaves and some RL Zoo settings use (`algos/presets.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from policysearch.algos.configs import Activation  # the settings' module, which imports no JAX
from policysearch.core.distributions import Categorical, DiagGaussian, Distribution
from policysearch.core.forward import ACTIVATIONS, mlp


TORCH_DEFAULT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
"""PyTorch's `nn.Linear` weight init: U(-b, b) with b = sqrt(3 * (1/3) / fan_in) = 1/sqrt(fan_in)."""


class MLP(nn.Module):
    """Dense layers with `activation` between them, orthogonally initialised (or as PyTorch
    does, `ortho=False`). Flax makes the parameters (`init`); the forward pass is `forward.mlp`,
    shared with the NumPy rollout step."""

    hidden: Sequence[int]
    out_dim: int
    activation: str
    out_gain: float
    ortho: bool = True

    def _init(self, gain: float) -> nn.initializers.Initializer:
        return nn.initializers.orthogonal(gain) if self.ortho else TORCH_DEFAULT

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden:
            x = ACTIVATIONS[self.activation](nn.Dense(width, kernel_init=self._init(math.sqrt(2.0)))(x), jnp)
        return nn.Dense(self.out_dim, kernel_init=self._init(self.out_gain))(x)


class PolicyParams(NamedTuple):
    """Arrays of an actor-critic: actor MLP, critic MLP, and the Gaussian log-std (empty for
    categorical policies)."""

    actor: dict
    critic: dict
    log_std: jax.Array


class Step(NamedTuple):
    """One batched action step: what the rollout stores."""

    action: jax.Array
    log_prob: jax.Array
    value: jax.Array


@dataclass(frozen=True)
class Policy:
    """Static description of an actor-critic over flat observations of size `obs_dim`.

    kind: "gaussian" (Box actions of size `action_dim`) or "categorical" (`action_dim` choices).
    """

    obs_dim: int
    action_dim: int
    kind: Literal["gaussian", "categorical"]
    hidden: tuple[int, ...] = (64, 64)
    activation: Activation = "tanh"
    log_std_init: float = 0.0
    ortho_init: bool = True

    @property
    def _actor(self) -> MLP:
        return MLP(self.hidden, self.action_dim, self.activation, out_gain=0.01, ortho=self.ortho_init)

    @property
    def _critic(self) -> MLP:
        return MLP(self.hidden, 1, self.activation, out_gain=1.0, ortho=self.ortho_init)

    def init(self, key: jax.Array) -> PolicyParams:
        k_actor, k_critic = jax.random.split(key)
        dummy = jnp.zeros((1, self.obs_dim), jnp.float32)
        log_std = (
            jnp.full((self.action_dim,), self.log_std_init, jnp.float32)
            if self.kind == "gaussian"
            else jnp.zeros((0,), jnp.float32)
        )
        return PolicyParams(
            actor=self._actor.init(k_actor, dummy),
            critic=self._critic.init(k_critic, dummy),
            log_std=log_std,
        )

    def dist(self, params: PolicyParams, obs: jax.Array) -> Distribution:
        """pi_theta(. | obs) for obs[..., obs_dim]."""
        out = mlp(params.actor, obs, self.activation, jnp)
        if self.kind == "gaussian":
            return DiagGaussian(out, jnp.broadcast_to(params.log_std, out.shape))
        return Categorical(out)

    def value(self, params: PolicyParams, obs: jax.Array) -> jax.Array:
        """V(obs) for obs[..., obs_dim], shape [...]."""
        return mlp(params.critic, obs, self.activation, jnp)[..., 0]

    def noise(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """The sampling noise of `shape` actions: N(0, I)[*shape, action_dim] (Gaussian) or
        Gumbel(0, 1)[*shape, action_dim] (categorical); `Distribution.sample_from` turns it into
        actions."""
        draw = jax.random.normal if self.kind == "gaussian" else jax.random.gumbel
        return draw(key, shape + (self.action_dim,), jnp.float32)

    def step(self, params: PolicyParams, obs: jax.Array, key: jax.Array) -> Step:
        """Sample a ~ pi(.|obs) and return it with its log-prob and V(obs)."""
        dist = self.dist(params, obs)
        action = dist.sample(key)
        return Step(action, dist.log_prob(action), self.value(params, obs))
