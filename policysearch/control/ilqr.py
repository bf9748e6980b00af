"""Iterative LQR / DDP (Li and Todorov 2004; Tassa, Erez and Todorov, IROS 2012), minimising

    J = sum_{t<T} l(x_t, u_t, t) + l_T(x_T),   x_{t+1} = f(x_t, u_t).

The core (`backward_pass`, `expected_reduction`) knows nothing of where derivatives come from:
it takes f_x, f_u and the cost expansion along a nominal trajectory. `solve` drives it for
differentiable JAX dynamics (derivatives by autodiff, the whole solve one jitted while-loop);
`policysearch.control.mujoco_ilqr` drives it for MuJoCo models with finite-difference derivatives.

Backward pass (with costs; Tassa 2012 eq. 5 and 10, regularisation on V_xx):
    Q_x = l_x + f_x^T V_x           Q_u = l_u + f_u^T V_x
    Q_xx = l_xx + f_x^T V_xx f_x    Q_uu = l_uu + f_u^T V_xx f_u     Q_ux = l_ux + f_u^T V_xx f_x
    k = argmin_{u_lo <= u_bar + k <= u_hi} 0.5 k^T Q~_uu k + k^T Q_u   (box QP), K = -Q~_uu,ff^-1 Q~_ux,f
      with Q~ the same expansion over V_xx + mu I (the regulariser shapes the step only)
    V_x = Q_x + K^T Q_uu k + K^T Q_u + Q_ux^T k,  V_xx = Q_xx + K^T Q_uu K + K^T Q_ux + Q_ux^T K
Forward pass: u_t = u_bar_t + alpha k_t + K_t (x_t - x_bar_t), accepted when the actual reduction
over the expected one, alpha sum k^T Q_u + alpha^2/2 sum k^T Q_uu k, exceeds `accept_ratio`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from policysearch.control.boxqp import box_qp
from policysearch.errors import require, require_positive


@dataclass(frozen=True)
class ILQRConfig:
    """Solver settings; the regularisation schedule is Tassa's (2012, sec. II-F)."""

    max_iterations: int = 100
    """Iteration cap."""
    tolerance: float = 1e-6
    """Stop when an accepted step lowers the cost by less than this fraction."""
    mu_init: float = 1.0
    """Initial Levenberg-Marquardt regulariser on V_xx (0: none until a backward pass fails)."""
    mu_min: float = 1e-6
    """Below this mu is set to 0."""
    mu_max: float = 1e10
    """Give up when mu exceeds this."""
    mu_factor: float = 1.6
    """Delta_0 of Tassa's schedule."""
    line_search_steps: int = 11
    """Step sizes alpha = 10^linspace(0, -3, steps), tried together."""
    accept_ratio: float = 0.0
    """Accept alpha when actual / expected reduction exceeds this (Tassa: 0)."""

    def __post_init__(self) -> None:
        require_positive("max_iterations", self.max_iterations)
        require_positive("tolerance", self.tolerance)
        require(self.mu_init >= 0, f"--mu-init must be >= 0, got {self.mu_init}")
        require(self.mu_factor > 1, f"--mu-factor must be > 1, got {self.mu_factor}")
        require_positive("line_search_steps", self.line_search_steps)


class Derivatives(NamedTuple):
    """Dynamics and cost expansion along a nominal trajectory of T steps (terminal at index T)."""

    f_x: jax.Array  # [T, n, n]
    f_u: jax.Array  # [T, n, m]
    l_x: jax.Array  # [T+1, n]
    l_u: jax.Array  # [T, m]
    l_xx: jax.Array  # [T+1, n, n]
    l_uu: jax.Array  # [T, m, m]
    l_ux: jax.Array  # [T, m, n]


class BackwardResult(NamedTuple):
    k: jax.Array  # [T, m]
    K: jax.Array  # [T, m, n]
    Q_uu: jax.Array  # [T, m, m], regularised
    Q_uu_inv: jax.Array  # [T, m, m], on the free set
    dV: jax.Array  # [2]: sum k^T Q_u, sum 0.5 k^T Q_uu k
    V_x: jax.Array  # [T+1, n]
    V_xx: jax.Array  # [T+1, n, n]
    ok: jax.Array  # bool: Q_uu positive definite at every step


def backward_pass(d: Derivatives, mu: jax.Array, u_bar: jax.Array, u_low: jax.Array, u_high: jax.Array, k_warm: jax.Array) -> BackwardResult:
    """The Riccati-like recursion above, as a reverse lax.scan over t."""
    n = d.f_x.shape[-1]
    eye = jnp.eye(n, dtype=d.f_x.dtype)

    def step(carry: tuple, xs: tuple) -> tuple:
        V_x, V_xx, ok = carry
        f_x, f_u, l_x, l_u, l_xx, l_uu, l_ux, u, k0 = xs
        Vreg = V_xx + mu * eye
        Q_x = l_x + f_x.T @ V_x
        Q_u = l_u + f_u.T @ V_x
        Q_xx = l_xx + f_x.T @ V_xx @ f_x
        Q_uu = l_uu + f_u.T @ V_xx @ f_u
        Q_ux = l_ux + f_u.T @ V_xx @ f_x
        Q_uu_reg = l_uu + f_u.T @ Vreg @ f_u
        Q_uu_reg = 0.5 * (Q_uu_reg + Q_uu_reg.T)
        qp = box_qp(Q_uu_reg, Q_u, u_low - u, u_high - u, k0)
        k = qp.x
        K = -qp.H_free_inv @ (l_ux + f_u.T @ Vreg @ f_x)
        V_x = Q_x + K.T @ Q_uu @ k + K.T @ Q_u + Q_ux.T @ k
        V_xx = Q_xx + K.T @ Q_uu @ K + K.T @ Q_ux + Q_ux.T @ K
        V_xx = 0.5 * (V_xx + V_xx.T)
        dv = jnp.stack([k @ Q_u, 0.5 * k @ Q_uu @ k])
        return (V_x, V_xx, ok & qp.ok), (k, K, Q_uu_reg, qp.H_free_inv, dv, V_x, V_xx)

    init = (d.l_x[-1], d.l_xx[-1], jnp.asarray(True))
    xs = (d.f_x, d.f_u, d.l_x[:-1], d.l_u, d.l_xx[:-1], d.l_uu, d.l_ux, u_bar, k_warm)
    (_, _, ok), (k, K, Q_uu, Q_uu_inv, dv, V_x, V_xx) = jax.lax.scan(step, init, xs, reverse=True)
    V_x = jnp.concatenate([V_x, d.l_x[-1:]], axis=0)
    V_xx = jnp.concatenate([V_xx, d.l_xx[-1:]], axis=0)
    return BackwardResult(k, K, Q_uu, Q_uu_inv, jnp.sum(dv, axis=0), V_x, V_xx, ok & jnp.all(jnp.isfinite(k)))


def expected_reduction(dV: jax.Array, alpha: jax.Array) -> jax.Array:
    """-(alpha sum k^T Q_u + alpha^2 sum 0.5 k^T Q_uu k): the cost decrease the quadratic model predicts."""
    return -(alpha * dV[0] + alpha**2 * dV[1])


def select_step(
    cost: jax.Array, new_costs: jax.Array, dV: jax.Array, alphas: jax.Array, ok: jax.Array, accept_ratio: float
) -> tuple[jax.Array, jax.Array]:
    """The largest step size whose actual / expected reduction exceeds accept_ratio and whose cost
    is lower and finite. Returns (success, index into alphas)."""
    expected = expected_reduction(dV, alphas)
    ratio = (cost - new_costs) / jnp.where(expected > 0, expected, jnp.inf)
    good = (ratio > accept_ratio) & (new_costs < cost) & jnp.isfinite(new_costs) & ok
    j = jnp.argmax(good)
    return good[j], j


def line_search_alphas(steps: int) -> jax.Array:
    return 10.0 ** jnp.linspace(0.0, -3.0, steps)


def update_mu(mu: jax.Array, delta: jax.Array, success: jax.Array, config: ILQRConfig) -> tuple[jax.Array, jax.Array]:
    """Tassa's schedule: on success delta = min(delta / d0, 1 / d0), mu = mu * delta (0 below
    mu_min); on failure delta = max(d0, delta * d0), mu = max(mu_min, mu * delta)."""
    d0 = config.mu_factor
    delta_dn = jnp.minimum(delta / d0, 1.0 / d0)
    mu_dn = jnp.where(mu * delta_dn > config.mu_min, mu * delta_dn, 0.0)
    delta_up = jnp.maximum(d0, delta * d0)
    mu_up = jnp.maximum(config.mu_min, mu * delta_up)
    return jnp.where(success, mu_dn, mu_up), jnp.where(success, delta_dn, delta_up)


# ----------------------------------------------------------------------------------------------
# Differentiable (JAX) dynamics: derivatives by autodiff, the whole solve jitted.

Dynamics = Callable[[jax.Array, jax.Array], jax.Array]
RunningCost = Callable[[jax.Array, jax.Array], jax.Array]
TerminalCost = Callable[[jax.Array], jax.Array]


class Solution(NamedTuple):
    """iLQR result: the nominal trajectory, the gains of a backward pass at it, and the log."""

    x: jax.Array  # [T+1, n]
    u: jax.Array  # [T, m]
    k: jax.Array  # [T, m]
    K: jax.Array  # [T, m, n]
    Q_uu: jax.Array  # [T, m, m]
    Q_uu_inv: jax.Array  # [T, m, m]
    cost: jax.Array  # scalar, final
    costs: jax.Array  # [max_iterations + 1], cost after each iteration (nan after the last)
    mus: jax.Array  # [max_iterations + 1]
    alphas: jax.Array  # [max_iterations + 1], accepted step (0 when rejected)
    iterations: jax.Array  # int


def rollout(dynamics: Dynamics, x0: jax.Array, u: jax.Array) -> jax.Array:
    """x[0..T] of the open-loop controls u[0..T-1]."""

    def step(x: jax.Array, u_t: jax.Array) -> tuple[jax.Array, jax.Array]:
        x_next = dynamics(x, u_t)
        return x_next, x_next

    return jnp.concatenate([x0[None], jax.lax.scan(step, x0, u)[1]], axis=0)


def trajectory_cost(running: RunningCost, terminal: TerminalCost, x: jax.Array, u: jax.Array) -> jax.Array:
    return jnp.sum(jax.vmap(running)(x[:-1], u)) + terminal(x[-1])


def closed_loop_rollout(
    dynamics: Dynamics, x_bar: jax.Array, u_bar: jax.Array, k: jax.Array, K: jax.Array, alpha: jax.Array,
    u_low: jax.Array, u_high: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Forward pass u_t = clip(u_bar_t + alpha k_t + K_t (x_t - x_bar_t)) from x_bar_0."""

    def step(x: jax.Array, xs: tuple) -> tuple:
        xb, ub, k_t, K_t = xs
        u = jnp.clip(ub + alpha * k_t + K_t @ (x - xb), u_low, u_high)
        x_next = dynamics(x, u)
        return x_next, (x_next, u)

    _, (xs, us) = jax.lax.scan(step, x_bar[0], (x_bar[:-1], u_bar, k, K))
    return jnp.concatenate([x_bar[:1], xs], axis=0), us


def cost_expansion(running: RunningCost, terminal: TerminalCost, x: jax.Array, u: jax.Array) -> tuple[jax.Array, ...]:
    """(l_x[T+1], l_u[T], l_xx[T+1], l_uu[T], l_ux[T]) of the trajectory cost by autodiff,
    the terminal cost's terms at index T."""
    l_x, l_u = jax.vmap(jax.grad(running, argnums=(0, 1)))(x[:-1], u)
    (l_xx, l_xu), (_, l_uu) = jax.vmap(jax.hessian(running, argnums=(0, 1)))(x[:-1], u)
    return (
        jnp.concatenate([l_x, jax.grad(terminal)(x[-1])[None]]), l_u,
        jnp.concatenate([l_xx, jax.hessian(terminal)(x[-1])[None]]), l_uu, jnp.swapaxes(l_xu, -1, -2),
    )


def derivatives(dynamics: Dynamics, running: RunningCost, terminal: TerminalCost, x: jax.Array, u: jax.Array) -> Derivatives:
    """Autodiff expansion of dynamics and cost along (x, u)."""
    f_x, f_u = jax.vmap(jax.jacfwd(dynamics, argnums=(0, 1)))(x[:-1], u)
    return Derivatives(f_x, f_u, *cost_expansion(running, terminal, x, u))


def solve(
    dynamics: Dynamics, running: RunningCost, terminal: TerminalCost, x0: jax.Array, u_init: jax.Array,
    u_low: jax.Array | None = None, u_high: jax.Array | None = None, config: ILQRConfig = ILQRConfig(),
) -> Solution:
    """iLQR from the open-loop controls u_init[T, m]; jit-compatible (dynamics and costs are
    closed over: wrap the call in jax.jit or use `make_solver`)."""
    m = u_init.shape[-1]
    dtype = u_init.dtype
    u_low = jnp.full((m,), -jnp.inf, dtype) if u_low is None else jnp.asarray(u_low, dtype)
    u_high = jnp.full((m,), jnp.inf, dtype) if u_high is None else jnp.asarray(u_high, dtype)
    u0 = jnp.clip(u_init, u_low, u_high)
    x = rollout(dynamics, x0, u0)
    cost = trajectory_cost(running, terminal, x, u0)
    alphas = line_search_alphas(config.line_search_steps).astype(dtype)
    N = config.max_iterations + 1
    nan = jnp.full((N,), jnp.nan, dtype)

    def backward_with_retries(d: Derivatives, u: jax.Array, mu: jax.Array, delta: jax.Array, k_warm: jax.Array):
        """Increase mu until Q_uu is positive definite everywhere (or mu passes mu_max)."""

        def cond(c: tuple) -> jax.Array:
            mu, _, bw = c
            return ~bw.ok & (mu <= config.mu_max)

        def body(c: tuple) -> tuple:
            mu, delta, _ = c
            mu, delta = update_mu(mu, delta, jnp.asarray(False), config)
            return mu, delta, backward_pass(d, mu, u, u_low, u_high, k_warm)

        return jax.lax.while_loop(cond, body, (mu, delta, backward_pass(d, mu, u, u_low, u_high, k_warm)))

    def iteration(c: tuple) -> tuple:
        i, x, u, cost, mu, delta, k_prev, done, costs, mus, accepted_alphas = c
        d = derivatives(dynamics, running, terminal, x, u)
        mu, delta, bw = backward_with_retries(d, u, mu, delta, k_prev)
        xs, us = jax.vmap(lambda a: closed_loop_rollout(dynamics, x, u, bw.k, bw.K, a, u_low, u_high))(alphas)
        new_costs = jax.vmap(lambda xx, uu: trajectory_cost(running, terminal, xx, uu))(xs, us)
        success, j = select_step(cost, new_costs, bw.dV, alphas, bw.ok, config.accept_ratio)
        x_new = jnp.where(success, xs[j], x)
        u_new = jnp.where(success, us[j], u)
        cost_new = jnp.where(success, new_costs[j], cost)
        converged = success & ((cost - cost_new) / (jnp.abs(cost) + 1e-12) < config.tolerance)
        mu, delta = update_mu(mu, delta, success, config)
        gave_up = (mu > config.mu_max) | ~bw.ok
        costs, mus = costs.at[i + 1].set(cost_new), mus.at[i + 1].set(mu)
        accepted_alphas = accepted_alphas.at[i + 1].set(jnp.where(success, alphas[j], 0.0))
        return i + 1, x_new, u_new, cost_new, mu, delta, bw.k, converged | gave_up, costs, mus, accepted_alphas

    init = (
        0, x, u0, cost, jnp.asarray(config.mu_init, dtype), jnp.asarray(1.0, dtype), jnp.zeros_like(u0),
        jnp.asarray(False), nan.at[0].set(cost), nan.at[0].set(config.mu_init), jnp.zeros((N,), dtype),
    )
    i, x, u, cost, mu, delta, k_prev, _, costs, mus, acc = jax.lax.while_loop(
        lambda c: (c[0] < config.max_iterations) & ~c[7], iteration, init
    )
    d = derivatives(dynamics, running, terminal, x, u)
    _, _, bw = backward_with_retries(d, u, jnp.maximum(mu, 0.0), jnp.asarray(1.0, dtype), k_prev)
    return Solution(x, u, bw.k, bw.K, bw.Q_uu, bw.Q_uu_inv, cost, costs, mus, acc, i)
