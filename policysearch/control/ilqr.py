"""Iterative LQR / DDP (Li and Todorov 2004; Tassa, Erez and Todorov, IROS 2012), minimising

    J = sum_{t<T} l(x_t, u_t, t) + l_T(x_T),   x_{t+1} = f(x_t, u_t).

The core (`backward_pass`, `expected_reduction`) knows nothing of where derivatives come from:
it takes f_x, f_u and the cost expansion along a nominal trajectory. One solver loop,
`solve_model`, drives it for any `Model` (rollouts and Jacobians as traceable calls): `solve`
for differentiable JAX dynamics (derivatives by autodiff), `policysearch.control.mujoco_ilqr` for
MuJoCo models (finite differences, reached through host callbacks). The whole solve is one
jitted while-loop either way.

Backward pass (with costs; Tassa 2012 eq. 5 and 10, regularisation on V_xx):
    Q_x = l_x + f_x^T V_x           Q_u = l_u + f_u^T V_x
    Q_xx = l_xx + f_x^T V_xx f_x    Q_uu = l_uu + f_u^T V_xx f_u     Q_ux = l_ux + f_u^T V_xx f_x
    k = argmin_{u_lo <= u_bar + k <= u_hi} 0.5 k^T Q~_uu k + k^T Q_u   (box QP), K = -Q~_uu,ff^-1 Q~_ux,f
      with Q~ the same expansion over V_xx + mu I (the regulariser shapes the step only)
    V_x = Q_x + K^T Q_uu k + K^T Q_u + Q_ux^T k,  V_xx = Q_xx + K^T Q_uu K + K^T Q_ux + Q_ux^T K
  Without control limits (None or infinite, known at trace time) the box QP is skipped:
  (k, K) = -Q~_uu^-1 (Q_u, Q~_ux).
Forward pass: u_t = u_bar_t + alpha k_t + K_t (x_t - x_bar_t), accepted when the actual reduction
over the expected one, alpha sum k^T Q_u + alpha^2/2 sum k^T Q_uu k, exceeds `accept_ratio`; the
largest accepted alpha is taken (tried largest first, stopping at the first accepted).

Speed on XLA:CPU: each step of a lax.scan runs its kernels one at a time through XLA's runtime
(tens of ns each), so the per-step work is written to lower to few fused kernels: the small matrix
products and the Q_uu solve as multiplies, reductions and elementwise ops (`boxqp.matmul`,
`boxqp.spd_solve`), no dot or LAPACK call inside the recursion.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.control.boxqp import box_qp, matmul, spd_solve
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
    """Step sizes alpha = 10^linspace(0, -3, steps), tried largest first until one is accepted."""
    accept_ratio: float = 0.0
    """Accept alpha when actual / expected reduction exceeds this (Tassa: 0)."""
    gradient_tolerance: float = 0.0
    """Also stop when sum_t |Q_u,t|^2 of the backward pass at the current nominal falls below this
    (Crocoddyl's stopping criterion, its th_stop; 0: off). It ends the solve without the line search
    that would find no lower cost, where `tolerance` needs an accepted step to stop."""

    def __post_init__(self) -> None:
        require_positive("max_iterations", self.max_iterations)
        require_positive("tolerance", self.tolerance)
        require(self.mu_init >= 0, f"--mu-init must be >= 0, got {self.mu_init}")
        require(self.mu_factor > 1, f"--mu-factor must be > 1, got {self.mu_factor}")
        require_positive("line_search_steps", self.line_search_steps)
        require(self.gradient_tolerance >= 0, f"gradient_tolerance must be >= 0, got {self.gradient_tolerance}")


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
    Q_u_sq: jax.Array  # sum_t |Q_u,t|^2, Crocoddyl's stopping measure


def unbounded(u_low: jax.Array | None, u_high: jax.Array | None) -> bool:
    """Whether the limits are known, at trace time, to be absent or all infinite (then the backward
    pass solves for the gains by Cholesky instead of a box QP per step). Traced limits count as
    bounded."""
    if u_low is None and u_high is None:
        return True
    try:
        lo = np.asarray(-np.inf if u_low is None else u_low)
        hi = np.asarray(np.inf if u_high is None else u_high)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False
    return bool(np.all(np.isneginf(lo)) and np.all(np.isposinf(hi)))


def backward_pass(d: Derivatives, mu: jax.Array, u_bar: jax.Array, u_low: jax.Array, u_high: jax.Array, k_warm: jax.Array) -> BackwardResult:
    """The Riccati-like recursion above, as a reverse lax.scan over t. Limits known to be infinite
    at trace time (see `unbounded`) skip the box QP: (k, K) = -Q~_uu^-1 (Q_u, Q~_ux), solved
    directly (`boxqp.spd_solve`; ok is False where Q~_uu is not positive definite)."""
    return _backward(d, mu, u_bar, u_low, u_high, k_warm, bounded=not unbounded(u_low, u_high), values=True)


def _backward(
    d: Derivatives, mu: jax.Array, u_bar: jax.Array, u_low: jax.Array, u_high: jax.Array, k_warm: jax.Array,
    bounded: bool, values: bool,
) -> BackwardResult:
    """`backward_pass` with the choice of step rule made by the caller. values=False leaves V_x and
    V_xx out of the scan's outputs, and without limits also Q_uu_inv (zeros of the right shape in
    the result), as the solver's loop never reads them. Small operands use the fused `matmul` /
    `spd_solve` forms (see boxqp)."""
    T, n, m = d.f_u.shape
    dtype = d.f_x.dtype
    mu = jnp.asarray(mu, dtype)
    # per step, over z = (x, u): F = [f_x f_u], the cost's Hessian and gradient, and f_u^T F, which
    # times mu is the regulariser's share of Q~_uz (Tassa's V_xx + mu I)
    F = jnp.concatenate([d.f_x, d.f_u], axis=-1)  # [T, n, n + m]
    L = jnp.concatenate([
        jnp.concatenate([d.l_xx[:-1], jnp.swapaxes(d.l_ux, -1, -2)], axis=-1),
        jnp.concatenate([d.l_ux, d.l_uu], axis=-1),
    ], axis=-2)  # [T, n + m, n + m]
    l = jnp.concatenate([d.l_x[:-1], d.l_u], axis=-1)  # [T, n + m]
    R = jnp.einsum("tiu,tiz->tuz", d.f_u, F)  # [T, m, n + m]

    def step(carry: tuple, xs: tuple) -> tuple:
        V_x, V_xx, dv = carry
        F_t, L_t, l_t, R_t, u, k0 = xs
        P = matmul(F_t.T, jnp.concatenate([V_xx, V_x[:, None]], axis=1))  # [n + m, n + 1]: F^T (V_xx, V_x)
        Q = L_t + matmul(P[:, :n], F_t)  # [n + m, n + m]
        q = l_t + P[:, n]  # [n + m]
        Q_x, Q_u, Q_xx, Q_ux, Q_uu = q[:n], q[n:], Q[:n, :n], Q[n:, :n], Q[n:, n:]
        Q_uu_reg = Q_uu + mu * R_t[:, n:]
        Q_uu_reg = 0.5 * (Q_uu_reg + Q_uu_reg.T)
        Q_ux_reg = Q_ux + mu * R_t[:, :n]
        if bounded:
            qp = box_qp(Q_uu_reg, Q_u, u_low - u, u_high - u, k0)
            G = jnp.concatenate([qp.x[:, None], -matmul(qp.H_free_inv, Q_ux_reg)], axis=1)
            extra = (qp.H_free_inv, qp.ok)
        else:
            G = -spd_solve(Q_uu_reg, jnp.concatenate([Q_u[:, None], Q_ux_reg], axis=1))
            extra = ()
        # G = (k, K) and Q_a = (Q_u, Q_ux), both [m, 1 + n]: W = G^T Q_uu G + G^T Q_a + Q_a^T G holds
        # K^T Q_uu k + K^T Q_u + Q_ux^T k in W[1:, 0] and K^T Q_uu K + K^T Q_ux + Q_ux^T K in W[1:, 1:]
        Q_a = jnp.concatenate([Q_u[:, None], Q_ux], axis=1)
        H = matmul(Q_uu, G) + Q_a  # [m, 1 + n]
        W = matmul(G.T, H) + matmul(Q_a.T, G)
        V_x = Q_x + W[1:, 0]
        V_xx = Q_xx + W[1:, 1:]
        V_xx = 0.5 * (V_xx + V_xx.T)
        k = G[:, 0]
        dv = dv + jnp.stack([jnp.sum(k * Q_u), 0.5 * jnp.sum(k * (H[:, 0] - Q_u)), jnp.sum(Q_u * Q_u)])
        out = (jnp.concatenate([G, Q_uu_reg], axis=1), *extra) + ((V_x, V_xx) if values else ())
        return (V_x, V_xx, dv), out

    init = (d.l_x[-1], d.l_xx[-1], jnp.zeros((3,), dtype))
    xs = (F, L, l, R, u_bar, k_warm)
    (_, _, dV), out = jax.lax.scan(step, init, xs, reverse=True)
    k, K, Q_uu = out[0][:, :, 0], out[0][:, :, 1 : 1 + n], out[0][:, :, 1 + n :]
    if bounded:
        Q_uu_inv, qp_ok = out[1:3]
        ok = jnp.all(qp_ok) & jnp.all(jnp.isfinite(k))
    else:
        Q_uu_inv = _batched_inverse(Q_uu) if values else jnp.zeros_like(Q_uu)
        ok = jnp.all(jnp.isfinite(out[0][:, :, : 1 + n]))
    if values:
        V_x = jnp.concatenate([out[-2], d.l_x[-1:]], axis=0)
        V_xx = jnp.concatenate([out[-1], d.l_xx[-1:]], axis=0)
    else:
        V_x, V_xx = jnp.zeros_like(d.l_x), jnp.zeros_like(d.l_xx)
    return BackwardResult(k, K, Q_uu, Q_uu_inv, dV[:2], V_x, V_xx, ok, dV[2])


def _batched_inverse(H: jax.Array) -> jax.Array:
    eye = jnp.eye(H.shape[-1], dtype=H.dtype)
    return jax.vmap(lambda h: spd_solve(h, eye))(H)


def expected_reduction(dV: jax.Array, alpha: jax.Array) -> jax.Array:
    """-(alpha sum k^T Q_u + alpha^2 sum 0.5 k^T Q_uu k): the cost decrease the quadratic model predicts."""
    return -(alpha * dV[0] + alpha**2 * dV[1])


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
# The solver loop, one for every source of dynamics (a `Model`): JAX functions differentiated by
# autodiff (`JaxModel`) or a MuJoCo model differentiated by finite differences
# (`policysearch.control.mujoco_ilqr`).

Dynamics = Callable[[jax.Array, jax.Array], jax.Array]
RunningCost = Callable[[jax.Array, jax.Array], jax.Array]
TerminalCost = Callable[[jax.Array], jax.Array]
Valid = Callable[[jax.Array], jax.Array]
"""x -> bool: whether a state is one the task allows (a walker's healthy range); see `valid_prefix`."""


class Model(Protocol):
    """What the solver loop asks of the dynamics, as calls it can trace: open-loop and closed-loop
    rollouts and the Jacobians along a trajectory. The loop is the same for every model; only
    where these come from differs."""

    step_sizes_per_pass: int
    """How many line-search step sizes one `closed_loop` call tries (1: one at a time, largest
    first; all of them: one batched pass)."""

    def rollout(self, x0: jax.Array, u: jax.Array) -> jax.Array:
        """x[0..T] under the open-loop controls u[T, m]."""
        ...

    def closed_loop(self, x_bar: jax.Array, u_bar: jax.Array, k: jax.Array, K: jax.Array, alphas: jax.Array,
                    u_low: jax.Array | None, u_high: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        """(x[B, T+1, n], u[B, T, m]) of the forward pass u_t = clip(u_bar_t + alpha k_t +
        K_t (x_t - x_bar_t)) from x_bar_0, for each of the B step sizes alphas[B]."""
        ...

    def jacobians(self, x: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(f_x[T, n, n], f_u[T, n, m]) along x[T+1, n], u[T, m]."""
        ...


@dataclass(frozen=True)
class JaxModel:
    """Differentiable JAX dynamics x' = f(x, u): rollouts as lax.scan, Jacobians by forward-mode
    autodiff, one step size per forward pass (alpha = 1 is accepted most of the time, and each
    pass is one scan)."""

    dynamics: Dynamics
    step_sizes_per_pass: int = 1

    def rollout(self, x0: jax.Array, u: jax.Array) -> jax.Array:
        return rollout(self.dynamics, x0, u)

    def closed_loop(self, x_bar: jax.Array, u_bar: jax.Array, k: jax.Array, K: jax.Array, alphas: jax.Array,
                    u_low: jax.Array | None, u_high: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        return jax.vmap(lambda a: closed_loop_rollout(self.dynamics, x_bar, u_bar, k, K, a, u_low, u_high))(alphas)

    def jacobians(self, x: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.vmap(jax.jacfwd(self.dynamics, argnums=(0, 1)))(x[:-1], u)


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
    stop: jax.Array  # int: why the solve ended, an index into STOP_REASONS
    valid_steps: jax.Array  # int: how many states of x, from the first, are valid (T+1: all)


STOP_REASONS = ("converged", "stationary", "iteration cap", "mu cap")
"""Why iLQR stopped: an accepted step lowered the cost by less than `tolerance`; sum |Q_u|^2 fell
below `gradient_tolerance`; `max_iterations` were run; or the regulariser passed `mu_max` (no
step lowers the cost, or Q_uu is not positive definite even at mu_max)."""


def stop_reason(converged: jax.Array, stationary: jax.Array, gave_up: jax.Array) -> jax.Array:
    """The index into STOP_REASONS after an iteration (2, the iteration cap, when the solve goes on)."""
    return jnp.where(converged, 0, jnp.where(stationary, 1, jnp.where(gave_up, 3, 2)))


def valid_prefix(valid: Valid | None, x: jax.Array) -> jax.Array:
    """How many states of x[T+1, n], from the first, are valid (T+1 when all are, or when there
    is no predicate). The line search never accepts a step that shortens it: a walker's plan
    never trades a fall for a lower cost, and a plan that is valid throughout stays so."""
    if valid is None:
        return jnp.asarray(x.shape[0])
    ok = jax.vmap(valid)(x)
    return jnp.where(jnp.all(ok), x.shape[0], jnp.argmin(ok))


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
    u_low: jax.Array | None, u_high: jax.Array | None,
) -> tuple[jax.Array, jax.Array]:
    """Forward pass u_t = clip(u_bar_t + alpha k_t + K_t (x_t - x_bar_t)) from x_bar_0 (no clip
    when both limits are None)."""

    def step(x: jax.Array, xs: tuple) -> tuple:
        xb, ub, k_t, K_t = xs
        u = ub + alpha * k_t + matmul(K_t, x - xb)
        if u_low is not None or u_high is not None:
            u = jnp.clip(u, u_low, u_high)
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
    return Derivatives(*JaxModel(dynamics).jacobians(x, u), *cost_expansion(running, terminal, x, u))


Report = Callable[[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array], None]
"""(iteration, cost, mu, accepted step size, accepted) after each iteration, on the host."""


def solve(
    dynamics: Dynamics, running: RunningCost, terminal: TerminalCost, x0: jax.Array, u_init: jax.Array,
    u_low: jax.Array | None = None, u_high: jax.Array | None = None, config: ILQRConfig = ILQRConfig(),
    valid: Valid | None = None,
) -> Solution:
    """iLQR on differentiable JAX dynamics (`JaxModel`): `solve_model`; jit-compatible (wrap the
    call in jax.jit)."""
    return solve_model(JaxModel(dynamics), running, terminal, x0, u_init, u_low, u_high, config, valid)


def solve_batch(
    dynamics: Dynamics, running: RunningCost, terminal: TerminalCost, x0s: jax.Array, u_inits: jax.Array,
    u_low: jax.Array | None = None, u_high: jax.Array | None = None, config: ILQRConfig = ILQRConfig(),
    valid: Valid | None = None, lanes: bool | None = None,
) -> Solution:
    """`solve` for many problems that differ in their start: x0s[B, n], u_inits[B, T, m] -> a
    Solution whose every field has the leading axis B (GPS's conditions, a sweep of starts).

    lanes=False solves them one after another inside the one compiled call (`lax.map`): each stops
    at its own iteration count, and each problem's loops stay on XLA:CPU's whole-loop kernels (see
    `policysearch.xla_cpu`). lanes=True is `vmap`: one loop for all, every lane running as many
    iterations as the slowest (on the unicycle batch of `bench/ilqr_vs_crocoddyl.py`: 39 against a
    median of 8) with B-wide operands, which a GPU runs in parallel and XLA:CPU kernel by kernel
    (measured there: 97.7 ms for 32 problems against 14.0 ms one after another). None: lanes on an
    accelerator, one after another on the CPU."""
    if lanes is None:
        lanes = jax.default_backend() != "cpu"

    def one(x0: jax.Array, u_init: jax.Array) -> Solution:
        return solve(dynamics, running, terminal, x0, u_init, u_low, u_high, config, valid)

    if lanes:
        return jax.vmap(one)(x0s, u_inits)
    return jax.lax.map(lambda args: one(*args), (x0s, u_inits))


def solve_model(
    model: Model, running: RunningCost, terminal: TerminalCost, x0: jax.Array, u_init: jax.Array,
    u_low: jax.Array | None = None, u_high: jax.Array | None = None, config: ILQRConfig = ILQRConfig(),
    valid: Valid | None = None, report: Report | None = None,
) -> Solution:
    """iLQR from the open-loop controls u_init[T, m], as one lax.while_loop over iterations.

    Each pass of the loop: the line search along the gains of the current backward pass (step
    sizes tried largest first, `model.step_sizes_per_pass` per forward pass, stopping at the
    first pass with an accepted one), then the backward pass at the resulting nominal
    (derivatives recomputed only when the step was accepted; a rejected step keeps the nominal,
    so the retry with a larger mu reuses them). A step is accepted when its actual / expected
    reduction exceeds accept_ratio, its cost is lower and finite, and it keeps at least as many
    valid states from the start (`valid_prefix`).

    The gains returned (k, K, Q_uu) are those of a backward pass at the final nominal with mu = 0
    when Q_uu is positive definite there: the regulariser of Tassa's V_xx + mu I only shaped the
    steps, and it inflates the gains (Walker2d: |K| 11,000 at the last mu against 700 at 0).
    Limits that are None or infinite at trace time skip the box QP and the clipping (see
    `unbounded`). `report`, if given, is called on the host after each iteration."""
    m = u_init.shape[-1]
    dtype = u_init.dtype
    bounded = not unbounded(u_low, u_high)
    if bounded:
        u_low = jnp.full((m,), -jnp.inf, dtype) if u_low is None else jnp.asarray(u_low, dtype)
        u_high = jnp.full((m,), jnp.inf, dtype) if u_high is None else jnp.asarray(u_high, dtype)
        u0 = jnp.clip(u_init, u_low, u_high)
        lo, hi = u_low, u_high
    else:
        u0 = u_init
        lo = hi = None
        u_low, u_high = jnp.full((m,), -jnp.inf, dtype), jnp.full((m,), jnp.inf, dtype)
    x = model.rollout(x0, u0)
    cost = trajectory_cost(running, terminal, x, u0)
    alphas = line_search_alphas(config.line_search_steps).astype(dtype)
    A = alphas.shape[0]
    B = min(max(model.step_sizes_per_pass, 1), A)
    passes = -(-A // B)
    step_sizes = jnp.concatenate([alphas, jnp.full((passes * B - A,), alphas[-1], dtype)]).reshape(passes, B)
    N = config.max_iterations + 1
    nan = jnp.full((N,), jnp.nan, dtype)
    batch_cost = jax.vmap(partial(trajectory_cost, running, terminal))

    def derivatives_at(x: jax.Array, u: jax.Array) -> Derivatives:
        return Derivatives(*model.jacobians(x, u), *cost_expansion(running, terminal, x, u))

    def backward_with_retries(d: Derivatives, u: jax.Array, mu: jax.Array, delta: jax.Array, k_warm: jax.Array):
        """Increase mu until Q_uu is positive definite everywhere (or mu passes mu_max)."""
        backward = lambda mu: _backward(d, mu, u, u_low, u_high, k_warm, bounded, values=False)  # noqa: E731

        def cond(c: tuple) -> jax.Array:
            mu, _, bw = c
            return ~bw.ok & (mu <= config.mu_max)

        def body(c: tuple) -> tuple:
            mu, delta, _ = c
            mu, delta = update_mu(mu, delta, jnp.asarray(False), config)
            return mu, delta, backward(mu)

        return jax.lax.while_loop(cond, body, (mu, delta, backward(mu)))

    def line_search(c: _Carry):
        """The largest accepted alpha (see above), one forward pass of B step sizes at a time.
        Returns (success, x, u, cost, valid prefix, alpha) of the accepted step."""

        def cond(s: tuple) -> jax.Array:
            j, found = s[:2]
            return (j < passes) & ~found

        def body(s: tuple) -> tuple:
            j = s[0]
            a = step_sizes[j]
            xs, us = model.closed_loop(c.x, c.u, c.bw.k, c.bw.K, a, lo, hi)
            costs = batch_cost(xs, us)
            prefixes = jax.vmap(partial(valid_prefix, valid))(xs)
            expected = expected_reduction(c.bw.dV, a)
            ratio = (c.cost - costs) / jnp.where(expected > 0, expected, jnp.inf)
            good = (ratio > config.accept_ratio) & (costs < c.cost) & jnp.isfinite(costs) & (prefixes >= c.valid)
            b = jnp.argmax(good)
            return j + 1, good[b], xs[b], us[b], costs[b], prefixes[b], a[b]

        init = (jnp.where(c.bw.ok, 0, passes), jnp.asarray(False), c.x, c.u, c.cost, c.valid, jnp.zeros((), dtype))
        _, found, xs, us, c_new, v_new, alpha = jax.lax.while_loop(cond, body, init)
        return found, xs, us, c_new, v_new, jnp.where(found, alpha, 0.0)

    def stationary(bw: BackwardResult) -> jax.Array:
        if config.gradient_tolerance <= 0:
            return jnp.asarray(False)
        return bw.ok & (bw.Q_u_sq < config.gradient_tolerance)

    def iteration(c: _Carry) -> _Carry:
        success, xs, us, c_new, v_new, alpha = line_search(c)
        x_new = jnp.where(success, xs, c.x)
        u_new = jnp.where(success, us, c.u)
        cost_new = jnp.where(success, c_new, c.cost)
        valid_new = jnp.where(success, v_new, c.valid)
        converged = success & ((c.cost - cost_new) / (jnp.abs(c.cost) + 1e-12) < config.tolerance)
        mu, delta = update_mu(c.mu, c.delta, success, config)
        gave_up = (mu > config.mu_max) | ~c.bw.ok
        d = jax.lax.cond(success, lambda: derivatives_at(x_new, u_new), lambda: c.d)
        # the backward pass at the (new) nominal: the next pass's gains, or the returned ones
        mu_log = mu
        mu, delta, bw = backward_with_retries(d, u_new, mu, delta, c.bw.k)
        reason = stop_reason(converged, stationary(bw), gave_up)
        i = c.i + 1
        if report is not None:
            jax.debug.callback(report, i, cost_new, mu_log, alpha, success)
        return _Carry(i, x_new, u_new, cost_new, valid_new, mu, delta, d, bw, reason != 2, reason,
                      c.costs.at[i].set(cost_new), c.mus.at[i].set(mu_log), c.alphas.at[i].set(alpha))

    mu0, delta0 = jnp.asarray(config.mu_init, dtype), jnp.asarray(1.0, dtype)
    d = derivatives_at(x, u0)
    mu, delta, bw = backward_with_retries(d, u0, mu0, delta0, jnp.zeros_like(u0))
    at_start = stationary(bw)
    init = _Carry(jnp.asarray(0), x, u0, cost, valid_prefix(valid, x), mu, delta, d, bw, at_start,
                  jnp.where(at_start, 1, 2), nan.at[0].set(cost), nan.at[0].set(config.mu_init), jnp.zeros((N,), dtype))
    c = jax.lax.while_loop(lambda c: (c.i < config.max_iterations) & ~c.done, iteration, init)

    def unregularised() -> BackwardResult:
        plain = _backward(c.d, jnp.zeros((), dtype), c.u, u_low, u_high, c.bw.k, bounded, values=False)
        return jax.tree.map(lambda a, b: jnp.where(plain.ok, a, b), plain, c.bw)

    bw = jax.lax.cond(c.mu > 0, unregularised, lambda: c.bw)
    Q_uu_inv = bw.Q_uu_inv if bounded else _batched_inverse(bw.Q_uu)
    return Solution(c.x, c.u, bw.k, bw.K, bw.Q_uu, Q_uu_inv, c.cost, c.costs, c.mus, c.alphas, c.i, c.reason, c.valid)


class _Carry(NamedTuple):
    """The state of `solve_model`'s loop after i iterations."""

    i: jax.Array
    x: jax.Array
    u: jax.Array
    cost: jax.Array
    valid: jax.Array
    mu: jax.Array
    delta: jax.Array
    d: Derivatives
    bw: BackwardResult
    done: jax.Array
    reason: jax.Array
    costs: jax.Array
    mus: jax.Array
    alphas: jax.Array
