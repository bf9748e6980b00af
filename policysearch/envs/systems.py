"""Small differentiable systems in JAX for trajectory optimisation and Guided Policy Search:
pendulum and cart-pole swing-up, and a planar 2-link arm reaching a point. Each `Task` bundles
the discrete dynamics x' = f(x, u) (RK4 over `dt`), its running and terminal costs, the start
state, the horizon and the control limits.

Costs (documented terms, all quadratic except where the geometry says otherwise):
- pendulum swing-up: sum_t [ w_u u^2 ] + w_T [ (theta - pi)^2 + 0.1 theta_dot^2 ] (angle 0 hangs down);
- cart-pole swing-up: sum_t [ w_u u^2 + w_x p^2 ] + w_T [ p^2 + (theta - pi)^2 + 0.1 (p_dot^2 + theta_dot^2) ];
- arm reach: sum_t [ w_u |u|^2 ] + w_T [ |tip(q) - target|^2 + 0.1 |q_dot|^2 ];
- arm reach, dense (the GPS task, like Gymnasium's Reacher): sum_t [ w_p |tip(q) - target|^2
  + w_v |q_dot|^2 + w_u |u|^2 ] + w_T [ |tip(q) - target|^2 + 0.1 |q_dot|^2 ]. A cost at every
  step is what a stationary policy can follow; with only a terminal cost the optimum depends on
  the time left, which a policy of the state alone cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

G = 9.81


def rk4(ode: Callable[[jax.Array, jax.Array], jax.Array], dt: float) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Classical Runge-Kutta step of x_dot = ode(x, u) with u held over dt."""

    def step(x: jax.Array, u: jax.Array) -> jax.Array:
        k1 = ode(x, u)
        k2 = ode(x + 0.5 * dt * k1, u)
        k3 = ode(x + 0.5 * dt * k2, u)
        k4 = ode(x + dt * k3, u)
        return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)

    return step


@dataclass(frozen=True)
class Task:
    """A trajectory-optimisation problem over a differentiable system."""

    name: str
    dynamics: Callable[[jax.Array, jax.Array], jax.Array]
    running_cost: Callable[[jax.Array, jax.Array], jax.Array]
    terminal_cost: Callable[[jax.Array], jax.Array]
    x0: tuple[float, ...]
    horizon: int
    u_low: tuple[float, ...]
    u_high: tuple[float, ...]
    dt: float

    @property
    def state_dim(self) -> int:
        return len(self.x0)

    @property
    def control_dim(self) -> int:
        return len(self.u_low)

    def initial_state(self, dtype: np.dtype = np.float32) -> jax.Array:
        return jnp.asarray(self.x0, dtype)


def pendulum_ode(x: jax.Array, u: jax.Array, mass: float = 1.0, length: float = 1.0, damping: float = 0.1) -> jax.Array:
    """theta_ddot = (u - b theta_dot - m g l sin theta) / (m l^2), theta = 0 hanging down."""
    theta, theta_dot = x[0], x[1]
    theta_ddot = (u[0] - damping * theta_dot - mass * G * length * jnp.sin(theta)) / (mass * length**2)
    return jnp.stack([theta_dot, theta_ddot])


def cartpole_ode(x: jax.Array, u: jax.Array, m_cart: float = 1.0, m_pole: float = 0.1, length: float = 0.5) -> jax.Array:
    """Cart-pole (Barto et al. 1983 equations, pole angle 0 hanging down): x = (p, theta, p_dot,
    theta_dot), force u on the cart; `length` is the pole's half-length."""
    _, theta, p_dot, theta_dot = x
    total = m_cart + m_pole
    # with theta measured from the downward vertical, gravity acts with sin(theta) flipped in sign
    s, c = jnp.sin(theta), jnp.cos(theta)
    temp = (u[0] + m_pole * length * theta_dot**2 * s) / total
    theta_ddot = (-G * s - c * temp) / (length * (4.0 / 3.0 - m_pole * c**2 / total))
    p_ddot = temp - m_pole * length * theta_ddot * c / total
    return jnp.stack([p_dot, theta_dot, p_ddot, theta_ddot])


def arm_ode(x: jax.Array, u: jax.Array, m: tuple[float, float] = (1.0, 1.0), lengths: tuple[float, float] = (1.0, 1.0), damping: float = 0.1) -> jax.Array:
    """Planar 2-link arm in a horizontal plane (no gravity), point masses at the link ends:
    M(q) q_ddot + C(q, q_dot) q_dot + b q_dot = u."""
    q1, q2, dq1, dq2 = x
    (m1, m2), (l1, l2) = m, lengths
    c2, s2 = jnp.cos(q2), jnp.sin(q2)
    M = jnp.array([
        [m1 * l1**2 + m2 * (l1**2 + 2 * l1 * l2 * c2 + l2**2), m2 * (l1 * l2 * c2 + l2**2)],
        [m2 * (l1 * l2 * c2 + l2**2), m2 * l2**2],
    ])
    h = m2 * l1 * l2 * s2
    coriolis = jnp.array([-h * (2 * dq1 * dq2 + dq2**2), h * dq1**2])
    q_ddot = jnp.linalg.solve(M, u - coriolis - damping * jnp.stack([dq1, dq2]))
    return jnp.stack([dq1, dq2, q_ddot[0], q_ddot[1]])


def arm_tip(q: jax.Array, lengths: tuple[float, float] = (1.0, 1.0)) -> jax.Array:
    l1, l2 = lengths
    return jnp.stack([l1 * jnp.cos(q[0]) + l2 * jnp.cos(q[0] + q[1]), l1 * jnp.sin(q[0]) + l2 * jnp.sin(q[0] + q[1])])


@cache
def pendulum_swingup(horizon: int = 100, dt: float = 0.05, max_torque: float = 5.0, w_u: float = 0.01, w_T: float = 1000.0) -> Task:
    return Task(
        "pendulum-swingup", rk4(pendulum_ode, dt),
        lambda x, u: w_u * jnp.sum(u**2),
        lambda x: w_T * ((x[0] - jnp.pi) ** 2 + 0.1 * x[1] ** 2),
        (0.0, 0.0), horizon, (-max_torque,), (max_torque,), dt,
    )


@cache
def cartpole_swingup(horizon: int = 100, dt: float = 0.05, max_force: float = 10.0, w_u: float = 0.01, w_x: float = 0.1, w_T: float = 1000.0) -> Task:
    return Task(
        "cartpole-swingup", rk4(cartpole_ode, dt),
        lambda x, u: w_u * jnp.sum(u**2) + w_x * x[0] ** 2,
        lambda x: w_T * (x[0] ** 2 + (x[1] - jnp.pi) ** 2 + 0.1 * (x[2] ** 2 + x[3] ** 2)),
        (0.0, 0.0, 0.0, 0.0), horizon, (-max_force,), (max_force,), dt,
    )


@cache
def arm_reach(target: tuple[float, float] = (0.5, 1.2), horizon: int = 100, dt: float = 0.02, max_torque: float = 5.0, w_u: float = 0.01, w_T: float = 1000.0) -> Task:
    goal = jnp.asarray(target)
    return Task(
        "arm-reach", rk4(arm_ode, dt),
        lambda x, u: w_u * jnp.sum(u**2),
        lambda x: w_T * (jnp.sum((arm_tip(x[:2]) - goal) ** 2) + 0.1 * jnp.sum(x[2:] ** 2)),
        (0.3, 0.3, 0.0, 0.0), horizon, (-max_torque, -max_torque), (max_torque, max_torque), dt,
    )


@cache
def arm_reach_dense(target: tuple[float, float] = (0.5, 1.2), horizon: int = 100, dt: float = 0.02, max_torque: float = 5.0,
                    w_p: float = 1.0, w_v: float = 0.01, w_u: float = 0.01, w_T: float = 10.0) -> Task:
    goal = jnp.asarray(target)
    return Task(
        "arm-reach-dense", rk4(arm_ode, dt),
        lambda x, u: w_p * jnp.sum((arm_tip(x[:2]) - goal) ** 2) + w_v * jnp.sum(x[2:] ** 2) + w_u * jnp.sum(u**2),
        lambda x: w_T * (jnp.sum((arm_tip(x[:2]) - goal) ** 2) + 0.1 * jnp.sum(x[2:] ** 2)),
        (0.3, 0.3, 0.0, 0.0), horizon, (-max_torque, -max_torque), (max_torque, max_torque), dt,
    )


# Each task is built once per settings (`cache`): the jitted solves and rollouts of `envs.problems`
# take it as a static argument, keyed on its closures, so a second task of the same settings would
# compile them again (4-5 s per GPS run on arm-reach-dense, measured 2026-12-03)
TASKS: dict[str, Callable[..., Task]] = {
    "pendulum-swingup": pendulum_swingup,
    "cartpole-swingup": cartpole_swingup,
    "arm-reach": arm_reach,
    "arm-reach-dense": arm_reach_dense,
}
