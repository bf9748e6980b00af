"""iLQR on a MuJoCo model: the same backward pass and step rule as `ilqr.solve`, driven from
Python because the dynamics are MuJoCo's. Jacobians are finite differences of the env step in
one parallel batch per iteration; the line search runs the closed-loop forward pass for all step
sizes at once, one batched env step per time step."""

from __future__ import annotations

import time
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.control.ilqr import (
    Derivatives, ILQRConfig, Solution, backward_pass, cost_expansion, line_search_alphas, select_step, trajectory_cost,
    update_mu,
)
from policysearch.envs.mujoco_model import MujocoModel


def _cost_functions(running: Callable, terminal: Callable):
    """Jitted trajectory cost (single and batched over step sizes) and its expansion."""
    total = jax.jit(partial(trajectory_cost, running, terminal))
    return total, jax.vmap(total), jax.jit(partial(cost_expansion, running, terminal))


def solve_mujoco(
    model: MujocoModel, running: Callable, terminal: Callable, x0: np.ndarray, u_init: np.ndarray,
    config: ILQRConfig = ILQRConfig(), on_iteration: Callable[[dict], None] | None = None, fd_eps: float = 1e-3,
) -> Solution:
    """iLQR from open-loop controls u_init[T, m] on the MuJoCo model; float64 throughout.

    fd_eps is the finite-difference step of the Jacobians. 1e-3 rather than the ~1e-6 that is
    most accurate on smooth dynamics: the wider step averages over contact and joint-limit
    switches, where 1e-6 gives spurious derivatives and the line search stalls (measured: Walker2d
    at horizon 150 stalled at cost 669 with 1e-6 and 1e-4, and reached 64 with 1e-3).
    """
    with jax.enable_x64(True):
        return _solve(model, running, terminal, x0, u_init, config, on_iteration, fd_eps)


def _solve(
    model: MujocoModel, running: Callable, terminal: Callable, x0: np.ndarray, u_init: np.ndarray,
    config: ILQRConfig, on_iteration: Callable[[dict], None] | None, fd_eps: float,
) -> Solution:
    total, total_batch, expand = _cost_functions(running, terminal)
    bw_jit = jax.jit(backward_pass)
    lo, hi = model.u_low, model.u_high
    u = np.clip(np.asarray(u_init, np.float64), lo, hi)
    x = model.rollout(np.asarray(x0, np.float64), u)
    cost = float(total(x, u))
    alphas = np.asarray(line_search_alphas(config.line_search_steps), np.float64)
    mu, delta = config.mu_init, 1.0
    costs, mus, accepted = [cost], [mu], [0.0]
    k_prev = np.zeros_like(u)

    def backward(x: np.ndarray, u: np.ndarray, mu: float, delta: float):
        f_x, f_u = model.linearize(x, u, eps=fd_eps)
        d = Derivatives(f_x, f_u, *expand(x, u))
        while True:
            bw = bw_jit(d, mu, u, lo, hi, k_prev)
            if bool(bw.ok) or mu > config.mu_max:
                return bw, mu, delta
            mu, delta = (float(v) for v in update_mu(mu, delta, False, config))

    it = 0
    for it in range(1, config.max_iterations + 1):
        t0 = time.perf_counter()
        bw, mu, delta = backward(x, u, mu, delta)
        if not bool(bw.ok):
            break
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
        if on_iteration is not None:
            on_iteration({"iteration": it, "cost": cost, "mu": mu, "alpha": accepted[-1], "seconds": time.perf_counter() - t0})
        if (success and (old - cost) / (abs(old) + 1e-12) < config.tolerance) or mu > config.mu_max:
            break
    bw, _, _ = backward(x, u, max(mu, 0.0), 1.0)
    pad = lambda a: np.asarray(a + [np.nan] * (config.max_iterations + 1 - len(a)))  # noqa: E731
    return Solution(
        jnp.asarray(x), jnp.asarray(u), bw.k, bw.K, bw.Q_uu, bw.Q_uu_inv, jnp.asarray(cost),
        jnp.asarray(pad(costs)), jnp.asarray(pad(mus)), jnp.asarray(pad(accepted)), jnp.asarray(it),
    )
