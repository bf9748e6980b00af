"""iLQR on a MuJoCo model: the same backward pass and step rule as `ilqr.solve`, driven from
Python because the dynamics are MuJoCo's. Jacobians are finite differences of the env step in
one parallel batch, computed only when the nominal trajectory changes (a rejected step keeps the
nominal, so the retry with a larger mu reuses them); the line search runs the closed-loop forward
pass for all step sizes at once, one batched env step per time step. The jitted pieces (cost,
its expansion, the backward pass) are built once per cost function and reused across calls."""

from __future__ import annotations

import time
from functools import lru_cache, partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.control.ilqr import (
    BackwardResult, Derivatives, ILQRConfig, Solution, backward_pass, cost_expansion, line_search_alphas, select_step,
    stop_reason, trajectory_cost, update_mu,
)
from policysearch.envs.mujoco_model import MujocoModel

_backward = jax.jit(backward_pass)


def _build_cost_functions(running: Callable, terminal: Callable):
    total = jax.jit(partial(trajectory_cost, running, terminal))
    return total, jax.jit(jax.vmap(partial(trajectory_cost, running, terminal))), jax.jit(partial(cost_expansion, running, terminal))


_cached_cost_functions = lru_cache(maxsize=8)(_build_cost_functions)


def _cost_functions(running: Callable, terminal: Callable):
    """Jitted trajectory cost (single and batched over step sizes) and its expansion; the same
    objects for the same (running, terminal), so that a second solve does not trace and compile
    them again."""
    try:
        return _cached_cost_functions(running, terminal)
    except TypeError:  # unhashable cost functions
        return _build_cost_functions(running, terminal)


def solve_mujoco(
    model: MujocoModel, running: Callable, terminal: Callable, x0: np.ndarray, u_init: np.ndarray,
    config: ILQRConfig = ILQRConfig(), on_iteration: Callable[[dict], None] | None = None, fd_eps: float = 1e-3,
) -> Solution:
    """iLQR from open-loop controls u_init[T, m] on the MuJoCo model; float64 throughout.

    fd_eps is the finite-difference step of the Jacobians. 1e-3 rather than the ~1e-6 that is
    most accurate on smooth dynamics: the wider step averages over contact and joint-limit
    switches, where 1e-6 gives spurious derivatives and the line search stalls (measured: Walker2d
    at horizon 150 stalled at cost 669 with 1e-6 and 1e-4, and reached 64 with 1e-3).

    The returned gains (K, Q_uu) are those of a backward pass at the final nominal with mu = 0
    when Q_uu is positive definite there, not at the solver's last mu, which only shaped the steps.

    on_iteration gets, per iteration, the iteration number, cost, mu, accepted step size (0:
    rejected), seconds (line search, derivatives when the step was accepted, and the backward
    pass at the resulting nominal) and whether the derivatives were recomputed.
    """
    with jax.enable_x64(True):
        return _solve(model, running, terminal, x0, u_init, config, on_iteration, fd_eps)


def _solve(
    model: MujocoModel, running: Callable, terminal: Callable, x0: np.ndarray, u_init: np.ndarray,
    config: ILQRConfig, on_iteration: Callable[[dict], None] | None, fd_eps: float,
) -> Solution:
    total, total_batch, expand = _cost_functions(running, terminal)
    lo, hi = model.u_low, model.u_high
    u = np.clip(np.asarray(u_init, np.float64), lo, hi)
    x = model.rollout(np.asarray(x0, np.float64), u)
    cost = float(total(x, u))
    alphas = np.asarray(line_search_alphas(config.line_search_steps), np.float64)
    mu, delta = config.mu_init, 1.0
    costs, mus, accepted = [cost], [mu], [0.0]
    k_prev = np.zeros_like(u)

    def derivatives(x: np.ndarray, u: np.ndarray) -> Derivatives:
        f_x, f_u = model.linearize(x, u, eps=fd_eps)
        return Derivatives(f_x, f_u, *expand(x, u))

    def backward(d: Derivatives, u: np.ndarray, mu: float, delta: float) -> tuple[BackwardResult, float, float]:
        """Increase mu until Q_uu is positive definite everywhere (or mu passes mu_max)."""
        while True:
            bw = _backward(d, mu, u, lo, hi, k_prev)
            if bool(bw.ok) or mu > config.mu_max:
                return bw, mu, delta
            mu, delta = (float(v) for v in update_mu(mu, delta, False, config))

    def stationary(bw: BackwardResult) -> bool:
        return config.gradient_tolerance > 0 and bool(bw.ok) and float(bw.Q_u_sq) < config.gradient_tolerance

    d = derivatives(x, u)
    bw, mu, delta = backward(d, u, mu, delta)
    done, it = stationary(bw), 0
    reason = 1 if done else (3 if not bool(bw.ok) else 2)
    done = reason != 2
    while not done and it < config.max_iterations:
        it += 1
        t0 = time.perf_counter()
        k, K = np.asarray(bw.k), np.asarray(bw.K)
        xs = np.repeat(x[:1], len(alphas), axis=0)
        traj_x, traj_u = [xs], []
        for t in range(len(u)):
            ut = np.clip(u[t] + alphas[:, None] * k[t] + (xs - x[t]) @ K[t].T, lo, hi)
            xs = model.step_batch(xs, ut)
            traj_x.append(xs)
            traj_u.append(ut)
        X, U = np.stack(traj_x, axis=1), np.stack(traj_u, axis=1)  # [A, T+1, n], [A, T, m]
        new_costs = np.asarray(total_batch(X, U))
        ok, idx = select_step(cost, new_costs, bw.dV, alphas, bw.ok, config.accept_ratio)
        success, j = bool(ok), int(idx)
        old = cost
        if success:
            x, u, cost = X[j], U[j], float(new_costs[j])
            k_prev = k
        mu, delta = (float(v) for v in update_mu(mu, delta, success, config))
        costs.append(cost)
        mus.append(mu)
        accepted.append(float(alphas[j]) if success else 0.0)
        gave_up = mu > config.mu_max
        if success:  # a new nominal: new derivatives; after a rejection the old ones still hold
            d = derivatives(x, u)
        bw, mu, delta = backward(d, u, mu, delta)  # the next iteration's gains, or the returned ones
        if on_iteration is not None:
            on_iteration({"iteration": it, "cost": cost, "mu": mus[-1], "alpha": accepted[-1],
                          "seconds": time.perf_counter() - t0, "derivatives": success})
        converged = success and (old - cost) / (abs(old) + 1e-12) < config.tolerance
        reason = int(stop_reason(converged, stationary(bw), gave_up or not bool(bw.ok)))
        done = reason != 2
    if mu > 0:  # the returned gains: Tassa's V_xx + mu I inflates K (Walker2d: |K| 11,000 against 700 at mu = 0)
        plain = _backward(d, 0.0, u, lo, hi, k_prev)
        bw = plain if bool(plain.ok) else bw
    pad = lambda a: np.asarray(a + [np.nan] * (config.max_iterations + 1 - len(a)))  # noqa: E731
    return Solution(
        jnp.asarray(x), jnp.asarray(u), bw.k, bw.K, bw.Q_uu, bw.Q_uu_inv, jnp.asarray(cost),
        jnp.asarray(pad(costs)), jnp.asarray(pad(mus)), jnp.asarray(pad(accepted)), jnp.asarray(it), jnp.asarray(reason),
    )
