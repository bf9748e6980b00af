"""The time-varying linear-Gaussian controller that iLQR/DDP returns (the lecture's guiding
distribution):

    pi_G(u_t | x_t) = N(u_t; clip(u_bar_t + k_t + K_t (x_t - x_bar_t), u_low, u_high), Sigma_t),
    Sigma_t = T * Q_uu,t^-1

(with costs Q_uu is positive definite; T is a temperature). It is the maximum-entropy solution of
the linear-quadratic problem: wide where the cost does not care, narrow where it does. The mean
is clipped to the control box (infinite by default), the controls the robot can apply.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.control.ilqr import Solution
from policysearch.run.checkpoint import find_checkpoint, load_arrays, read_meta, save_checkpoint


class LinearGaussianController(NamedTuple):
    x_bar: jax.Array  # [T+1, n]
    u_bar: jax.Array  # [T, m]
    k: jax.Array  # [T, m]
    K: jax.Array  # [T, m, n]
    cov: jax.Array  # [T, m, m]
    u_low: jax.Array  # [m], the mean is clipped to [u_low, u_high] (-inf / inf: no limits)
    u_high: jax.Array  # [m]

    @property
    def horizon(self) -> int:
        return int(self.u_bar.shape[0])

    @staticmethod
    def from_solution(
        sol: Solution, temperature: float = 1.0, gain_reg: float = 0.0, u_low: jax.Array | None = None, u_high: jax.Array | None = None,
    ) -> "LinearGaussianController":
        """The controller around iLQR's final nominal (x_bar, u_bar): feedback gains K of a
        backward pass there, covariance temperature * Q_uu^-1 (regularised Q_uu, positive
        definite even where a control limit is active), and k = 0 because u_bar already holds
        every accepted feedforward step (the backward pass's own k is the next, untried step).

        gain_reg = rho > 0 solves the LQR with the extra cost (rho / 2) |u - g(x)|^2 around the
        nominal instead: Q_uu' = Q_uu + rho I and Q_ux unchanged, so K' = Q_uu'^-1 Q_uu K and
        Sigma = temperature * Q_uu'^-1. On contact-rich robots with light effort costs, the plain
        K of finite-difference linearisations reaches hundreds of N·m per unit of state error
        (Walker2d: |K| up to 550 for torques in [-1, 1]) and the closed loop amplifies small
        deviations. rho leaves the nominal as it is; on the walker on terrain, rho = 100 kept
        more of the noisy samples healthy than rho = 1 (README, GPS on unseen terrain)."""
        m = sol.u.shape[-1]
        Q_uu = sol.Q_uu + gain_reg * jnp.eye(m, dtype=sol.Q_uu.dtype)
        K = jnp.linalg.solve(Q_uu, sol.Q_uu @ sol.K) if gain_reg > 0 else sol.K
        cov = temperature * jnp.linalg.inv(Q_uu)
        lo = jnp.full((m,), -jnp.inf, sol.u.dtype) if u_low is None else jnp.asarray(u_low, sol.u.dtype)
        hi = jnp.full((m,), jnp.inf, sol.u.dtype) if u_high is None else jnp.asarray(u_high, sol.u.dtype)
        return LinearGaussianController(sol.x, sol.u, jnp.zeros_like(sol.k), K, 0.5 * (cov + jnp.swapaxes(cov, -1, -2)), lo, hi)

    def with_std_bounds(self, min_std: float, max_std: float) -> "LinearGaussianController":
        """The same controller with every covariance's eigenvalues clipped to [min_std^2,
        max_std^2]. Where Q_uu is nearly singular (the cost does not see the control, as at the
        last steps), temperature * Q_uu^-1 can be far wider than the control limits, and samples
        from it are clipped into something the density no longer describes; where iLQR stopped
        with a large regulariser mu, Q_uu + mu I makes it nearly deterministic, and its
        log-densities swamp every importance weight."""
        vals, vecs = jnp.linalg.eigh(self.cov)
        vals = jnp.clip(vals, min_std**2, max_std**2)
        cov = jnp.einsum("tij,tj,tkj->tik", vecs, vals, vecs)
        return self._replace(cov=0.5 * (cov + jnp.swapaxes(cov, -1, -2)))

    def mean(self, t: jax.Array, x: jax.Array) -> jax.Array:
        """g(x_t) = clip(u_bar_t + k_t + K_t (x_t - x_bar_t), u_low, u_high)."""
        return jnp.clip(self.u_bar[t] + self.k[t] + self.K[t] @ (x - self.x_bar[t]), self.u_low, self.u_high)

    def sample(self, key: jax.Array, t: jax.Array, x: jax.Array) -> jax.Array:
        chol = jnp.linalg.cholesky(self.cov[t])
        return self.mean(t, x) + chol @ jax.random.normal(key, (self.u_bar.shape[-1],), self.u_bar.dtype)

    def log_prob(self, t: jax.Array, x: jax.Array, u: jax.Array) -> jax.Array:
        """log N(u; g(x_t), Sigma_t)."""
        chol = jnp.linalg.cholesky(self.cov[t])
        z = jax.scipy.linalg.solve_triangular(chol, u - self.mean(t, x), lower=True)
        m = u.shape[-1]
        return -0.5 * z @ z - jnp.sum(jnp.log(jnp.diagonal(chol))) - 0.5 * m * math.log(2 * math.pi)

    def trajectory_log_probs(self, x: jax.Array, u: jax.Array) -> jax.Array:
        """log pi_G(u_t | x_t) for every step of x[T(+1), n], u[T, m]: shape [T]."""
        return jax.vmap(self.log_prob)(jnp.arange(u.shape[0]), x[: u.shape[0]], u)

    def act(self, t: int, x: np.ndarray, key: jax.Array | None = None) -> np.ndarray:
        """The control at step t (the mean; a sample when key is given); past the horizon the
        last step's gains are reused."""
        t = min(t, self.horizon - 1)
        x = jnp.asarray(x, self.x_bar.dtype)
        u = self.mean(t, x) if key is None else self.sample(key, t, x)
        return np.asarray(u)

    @staticmethod
    def concatenate(parts: "list[LinearGaussianController]") -> "LinearGaussianController":
        """One controller over consecutive pieces (each piece's last state is the next one's first):
        steps of every piece in order, the last piece's final state."""
        x_bar = jnp.concatenate([p.x_bar[:-1] for p in parts] + [parts[-1].x_bar[-1:]])
        cat = [jnp.concatenate([getattr(p, f) for p in parts]) for f in ("u_bar", "k", "K", "cov")]
        return LinearGaussianController(x_bar, *cat, parts[0].u_low, parts[0].u_high)

    def save(self, run_dir: Path, meta: dict) -> Path:
        """Write as a checkpoint (safetensors + JSON) under run_dir/controller."""
        shape = {"state_dim": int(self.x_bar.shape[-1]), "control_dim": int(self.u_bar.shape[-1]), "horizon": self.horizon}
        return save_checkpoint(Path(run_dir) / "controller", 0, self, dict(meta, **shape), keep=1)

    @staticmethod
    def load(run_dir: Path) -> tuple["LinearGaussianController", dict]:
        ckpt = find_checkpoint(Path(run_dir) / "controller")
        meta = read_meta(ckpt)
        n, m, T = meta["state_dim"], meta["control_dim"], meta["horizon"]
        z = np.zeros
        template = LinearGaussianController(z((T + 1, n), np.float32), z((T, m), np.float32), z((T, m), np.float32), z((T, m, n), np.float32),
                                            z((T, m, m), np.float32), z((m,), np.float32), z((m,), np.float32))
        return load_arrays(ckpt, template, finite=False), meta  # unbounded controls are +-inf


__all__ = ["LinearGaussianController"]
