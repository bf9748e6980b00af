"""iLQR on a MuJoCo model: the solver loop of `ilqr.solve_model`, with the dynamics reached
through host callbacks (`jax.pure_callback`) because they are MuJoCo's. The Jacobians are finite
differences of the env step in one parallel batch (`MujocoModel.linearize`), computed only when
the nominal trajectory changes; the line search runs the closed-loop forward pass for all step
sizes at once, one batched env step per time step. The jitted solve is built once per (model,
cost, settings) and reused across calls."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.control.ilqr import ILQRConfig, Solution, Valid, line_search_alphas, solve_model, valid_prefix
from policysearch.control.receding import RecedingConfig, receding_horizon_controls
from policysearch.envs.mujoco_model import MujocoModel


def _host(fn: Callable[..., tuple[np.ndarray, ...]], shapes: tuple[tuple[int, ...], ...], *args: jax.Array) -> tuple[jax.Array, ...]:
    """fn(*float64 arrays) -> float64 arrays, run on the host from traced code. The arrays cross
    as uint32 words (a bit cast, exact): a host callback runs on XLA's thread, where the caller's
    `jax.enable_x64` context does not hold, and JAX would otherwise round them to float32."""
    words = tuple(jax.ShapeDtypeStruct((*shape, 2), jnp.uint32) for shape in shapes)

    def call(*ws: np.ndarray) -> tuple[np.ndarray, ...]:
        out = fn(*(np.ascontiguousarray(w).view(np.float64)[..., 0] for w in ws))
        return tuple(np.ascontiguousarray(o, np.float64)[..., None].view(np.uint32) for o in out)

    out = jax.pure_callback(call, words, *(jax.lax.bitcast_convert_type(jnp.asarray(a, jnp.float64), jnp.uint32) for a in args))
    return tuple(jax.lax.bitcast_convert_type(o, jnp.float64) for o in out)


@dataclass(frozen=True)
class MujocoDynamics:
    """A MuJoCo model as the solver loop's `Model` (float64; equal only to itself, by the model's
    identity, so that the jitted solve is reused for the same model)."""

    model: MujocoModel
    fd_eps: float = 1e-3
    step_sizes_per_pass: int = 11

    def rollout(self, x0: jax.Array, u: jax.Array) -> jax.Array:
        T, n = u.shape[0], self.model.state_dim
        return _host(lambda x0, u: (self.model.rollout(x0, u),), ((T + 1, n),), x0, u)[0]

    def closed_loop(self, x_bar: jax.Array, u_bar: jax.Array, k: jax.Array, K: jax.Array, alphas: jax.Array,
                    u_low: jax.Array | None, u_high: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        (T, m), n, A = u_bar.shape, self.model.state_dim, alphas.shape[0]
        lo = self.model.u_low if u_low is None else u_low
        hi = self.model.u_high if u_high is None else u_high
        return _host(self._closed_loop, ((A, T + 1, n), (A, T, m)), x_bar, u_bar, k, K, alphas, lo, hi)

    def _closed_loop(self, x_bar: np.ndarray, u_bar: np.ndarray, k: np.ndarray, K: np.ndarray, alphas: np.ndarray,
                     lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs = np.repeat(x_bar[:1], len(alphas), axis=0)
        traj_x, traj_u = [xs], []
        for t in range(len(u_bar)):
            ut = np.clip(u_bar[t] + alphas[:, None] * k[t] + (xs - x_bar[t]) @ K[t].T, lo, hi)
            xs = self.model.step_batch(xs, ut)
            traj_x.append(xs)
            traj_u.append(ut)
        return np.stack(traj_x, axis=1), np.stack(traj_u, axis=1)

    def jacobians(self, x: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        (T, m), n = u.shape, self.model.state_dim
        return _host(lambda x, u: self.model.linearize(x, u, eps=self.fd_eps), ((T, n, n), (T, n, m)), x, u)


_listeners: list[Callable[..., None]] = []


def _report(i: jax.Array, cost: jax.Array, mu: jax.Array, alpha: jax.Array, success: jax.Array) -> None:
    for listener in _listeners:
        listener(i, cost, mu, alpha, success)


@contextmanager
def _listening(on_iteration: Callable[[dict], None] | None) -> Iterator[None]:
    """Send the solve's per-iteration reports to on_iteration as dicts, with the seconds since the
    previous report (one compiled solve serves every listener)."""
    if on_iteration is None:
        yield
        return
    last = [time.perf_counter()]

    def listener(i: jax.Array, cost: jax.Array, mu: jax.Array, alpha: jax.Array, success: jax.Array) -> None:
        now = time.perf_counter()
        on_iteration({"iteration": int(i), "cost": float(cost), "mu": float(mu), "alpha": float(alpha),
                      "seconds": now - last[0], "derivatives": bool(success)})
        last[0] = now

    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


@dataclass(frozen=True)
class _Running:
    """l(x, u) + extra(args, x, u), with args an argument of the compiled solve (a GPS iteration's
    new policy parameters reuse it)."""

    base: Callable
    extra: Callable | None

    def __call__(self, args: Any, x: jax.Array, u: jax.Array) -> jax.Array:
        value = self.base(x, u)
        return value if self.extra is None else value + self.extra(args, x, u)


@lru_cache(maxsize=16)
def _compiled(dynamics: MujocoDynamics, running: _Running, terminal: Callable, config: ILQRConfig, valid: Valid | None):
    def solve(x0: jax.Array, u: jax.Array, lo: jax.Array, hi: jax.Array, args: Any) -> Solution:
        return solve_model(dynamics, partial(running, args), terminal, x0, u, lo, hi, config, valid, _report)

    return jax.jit(solve)


def solve_mujoco(
    model: MujocoModel, running: Callable, terminal: Callable, x0: np.ndarray, u_init: np.ndarray,
    config: ILQRConfig = ILQRConfig(), on_iteration: Callable[[dict], None] | None = None, fd_eps: float = 1e-3,
    valid: Valid | None = None, extra: tuple[Callable, Any] | None = None,
) -> Solution:
    """iLQR from open-loop controls u_init[T, m] on the MuJoCo model; float64 throughout.

    fd_eps is the finite-difference step of the Jacobians. 1e-3 rather than the ~1e-6 that is
    most accurate on smooth dynamics: the wider step averages over contact and joint-limit
    switches, where 1e-6 gives spurious derivatives and the line search stalls (measured: Walker2d
    at horizon 150 stalled at cost 669 with 1e-6 and 1e-4, and reached 64 with 1e-3).

    valid (a state predicate, e.g. `LocomotionCost.healthy`) keeps the line search from accepting
    a step that leaves the valid set sooner (see `ilqr.valid_prefix`).

    extra = (fn, args) adds fn(args, x, u) to the running cost (GPS's policy term); a new args
    reuses the compiled solve.

    on_iteration gets, per iteration, the iteration number, cost, mu, accepted step size (0:
    rejected), seconds since the previous iteration and whether the derivatives were recomputed.
    """
    dynamics = MujocoDynamics(model, fd_eps, len(line_search_alphas(config.line_search_steps)))
    fn_args = (None, ()) if extra is None else extra
    key = (dynamics, _Running(running, fn_args[0]), terminal, config, valid)
    with jax.enable_x64(True):
        try:
            fn = _compiled(*key)
        except TypeError:  # unhashable cost functions
            fn = _compiled.__wrapped__(*key)
        with _listening(on_iteration):
            return fn(jnp.asarray(x0, jnp.float64), jnp.asarray(u_init, jnp.float64), model.u_low, model.u_high, fn_args[1])


def receding_start(
    model: MujocoModel, running: Callable, terminal: Callable, x0: np.ndarray, u_init: np.ndarray, valid: Valid | None,
    config: RecedingConfig = RecedingConfig(), fd_eps: float = 1e-3, extra: tuple[Callable, Any] | None = None,
    on_window: Callable[[dict], None] | None = None, start: int = 0,
) -> np.ndarray:
    """`receding.receding_horizon_controls` with each window solved by `solve_mujoco` (valid in its
    line search): the controls a walker's full-horizon solve starts from. With `start`, u_init's
    first `start` controls are kept and the windows begin at the state they reach from x0."""

    def window(x: np.ndarray, u: np.ndarray, iterations: int) -> Solution:
        return solve_mujoco(model, running, terminal, x, u, ILQRConfig(max_iterations=iterations), fd_eps=fd_eps, valid=valid, extra=extra)

    x_start = model.rollout(np.asarray(x0, np.float64), np.asarray(u_init[:start], np.float64))[-1]
    return receding_horizon_controls(window, x_start, u_init, config, on_window, start)


def repair_start(
    model: MujocoModel, running: Callable, terminal: Callable, x0: np.ndarray, u_init: np.ndarray, valid: Valid,
    config: RecedingConfig = RecedingConfig(), fd_eps: float = 1e-3, extra: tuple[Callable, Any] | None = None,
    on_window: Callable[[dict], None] | None = None,
) -> np.ndarray:
    """u_init if its open-loop rollout from x0 stays valid over the whole horizon; else u_init
    repaired by receding-horizon windows from one window before the first invalid state (an
    example motion that falls part way: iLQR over the whole horizon cannot lift a fallen plan,
    README "iLQR that holds on contact-rich robots"); on_window as in `receding_start`."""
    ok = int(valid_prefix(valid, jnp.asarray(model.rollout(np.asarray(x0, np.float64), np.asarray(u_init, np.float64)))))
    if ok > len(u_init):
        return np.asarray(u_init, np.float64)
    return receding_start(model, running, terminal, x0, u_init, valid, config, fd_eps, extra, on_window, start=max(0, ok - config.window))
