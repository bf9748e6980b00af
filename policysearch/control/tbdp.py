"""Trajectory-based dynamic programming (Atkeson and Morimoto, NIPS 2002), the nonparametric
baseline of Guided Policy Search's Figure 4: a policy made of every time step of a set of DDP
solutions (the training terrains' controllers), without a network.

The library holds, for every step i of every trajectory, the nominal state and control and the
feedback (x_bar_i, u_bar_i, k_i, K_i). At a state x the policy takes the stored step nearest by
standardised distance and applies its local controller:

    i*(x) = argmin_i  sum_j ((x_j - x_bar_i,j) / s_j)^2,    u(x) = clip(u_bar_i* + k_i* + K_i* (x - x_bar_i*), u_low, u_high),

with s_j the standard deviation of coordinate j over the stored states (floored at `min_scale`, so
that a coordinate that never varies does not dominate). The time step plays no part: the library
is a policy over states, which is what lets it act off the trajectories it was built from.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.control.lqg import LinearGaussianController


class TrajectoryLibrary(NamedTuple):
    x_bar: jax.Array  # [N, n], every stored step of every trajectory
    u_bar: jax.Array  # [N, m]
    k: jax.Array  # [N, m]
    K: jax.Array  # [N, m, n]
    scale: jax.Array  # [n], the standardisation s
    u_low: jax.Array  # [m]
    u_high: jax.Array  # [m]

    @staticmethod
    def from_controllers(controllers: Sequence[LinearGaussianController], min_scale: float = 1e-3) -> "TrajectoryLibrary":
        """Every step t < T of every controller (the terminal state has no control)."""
        if not controllers:
            raise ValueError("TBDP needs at least one trajectory")
        cat = lambda f: jnp.concatenate([f(c) for c in controllers])  # noqa: E731
        x_bar = cat(lambda c: c.x_bar[: c.horizon])
        scale = jnp.maximum(jnp.std(x_bar, axis=0), min_scale)
        first = controllers[0]
        return TrajectoryLibrary(x_bar, cat(lambda c: c.u_bar), cat(lambda c: c.k), cat(lambda c: c.K), scale, first.u_low, first.u_high)

    def nearest(self, x: jax.Array) -> jax.Array:
        """i*(x): the index of the stored step nearest to x by standardised distance."""
        return jnp.argmin(jnp.sum(((x - self.x_bar) / self.scale) ** 2, axis=-1))

    def mean(self, x: jax.Array) -> jax.Array:
        """u(x) = clip(u_bar_i* + k_i* + K_i* (x - x_bar_i*), u_low, u_high)."""
        i = self.nearest(x)
        return jnp.clip(self.u_bar[i] + self.k[i] + self.K[i] @ (x - self.x_bar[i]), self.u_low, self.u_high)

    def act(self, t: int, x: np.ndarray) -> np.ndarray:
        """The control at state x (t is ignored: the library is a policy over states)."""
        return np.asarray(_mean(self, jnp.asarray(x, self.x_bar.dtype)))


@jax.jit
def _mean(lib: TrajectoryLibrary, x: jax.Array) -> jax.Array:
    return lib.mean(x)


__all__ = ["TrajectoryLibrary"]
