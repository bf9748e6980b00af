"""Action distributions as pytrees: diagonal Gaussian (Box) and categorical (Discrete).

Both expose the same methods, so algorithms never branch on the action space:
`sample`, `sample_from(noise)`, `mode`, `log_prob`, `entropy` and `kl(other)` = KL(self || other).
Leading batch dimensions broadcast; the event dimension is the last one (Gaussian) or
implicit in the logits (categorical).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from policysearch.core.forward import categorical_action, gaussian_action

_LOG_2PI = math.log(2.0 * math.pi)


class DiagGaussian(NamedTuple):
    """N(mean, diag(exp(log_std)^2)); mean and log_std have shape [..., action_dim]."""

    mean: jax.Array
    log_std: jax.Array

    def sample(self, key: jax.Array) -> jax.Array:
        return self.sample_from(jax.random.normal(key, self.mean.shape))

    def sample_from(self, noise: jax.Array) -> jax.Array:
        """The sample for standard normal noise[..., action_dim]: mu + exp(log_std) * eps."""
        return gaussian_action(self.mean, jnp.exp(self.log_std), noise)

    def mode(self) -> jax.Array:
        return self.mean

    def log_prob(self, x: jax.Array) -> jax.Array:
        """log N(x) = -sum_j [ (x_j - mu_j)^2 / (2 s_j^2) + log s_j + log(2 pi) / 2 ]."""
        z = (x - self.mean) * jnp.exp(-self.log_std)
        return -jnp.sum(0.5 * z**2 + self.log_std + 0.5 * _LOG_2PI, axis=-1)

    def entropy(self) -> jax.Array:
        """H = sum_j [ log s_j + (1 + log 2 pi) / 2 ]."""
        log_std = jnp.broadcast_to(self.log_std, self.mean.shape)
        return jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)

    def kl(self, other: "DiagGaussian") -> jax.Array:
        """KL(p || q) = sum_j [ log(s_q/s_p) + (s_p^2 + (mu_p - mu_q)^2) / (2 s_q^2) - 1/2 ]."""
        var_ratio = jnp.exp(2.0 * (self.log_std - other.log_std))
        mean_term = ((self.mean - other.mean) * jnp.exp(-other.log_std)) ** 2
        return jnp.sum(other.log_std - self.log_std + 0.5 * (var_ratio + mean_term) - 0.5, axis=-1)


class Categorical(NamedTuple):
    """Categorical over n actions from unnormalised logits of shape [..., n]."""

    logits: jax.Array

    def _log_p(self) -> jax.Array:
        return jax.nn.log_softmax(self.logits, axis=-1)

    def sample(self, key: jax.Array) -> jax.Array:
        return self.sample_from(jax.random.gumbel(key, self.logits.shape))

    def sample_from(self, noise: jax.Array) -> jax.Array:
        """The sample for Gumbel(0, 1) noise[..., n]: argmax(logits + g) (the Gumbel-max trick)."""
        return categorical_action(self.logits, noise, jnp)

    def mode(self) -> jax.Array:
        return jnp.argmax(self.logits, axis=-1)

    def log_prob(self, x: jax.Array) -> jax.Array:
        idx = x.astype(jnp.int32)[..., None]
        return jnp.take_along_axis(self._log_p(), idx, axis=-1)[..., 0]

    def entropy(self) -> jax.Array:
        log_p = self._log_p()
        return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)

    def kl(self, other: "Categorical") -> jax.Array:
        log_p, log_q = self._log_p(), other._log_p()
        return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


Distribution = DiagGaussian | Categorical
