"""Task costs for trajectory optimisation on the Gymnasium MuJoCo robots, written in JAX over
the model state x = (qpos, qvel) and the control u (derivatives by autodiff).

Locomotion (Swimmer, Hopper, Walker2d; planar robots whose qpos starts with the root's x, and for
the walkers z and pitch angle):

    l(x, u) = w_v (x_vel - v_target)^2 + w_z (z - z_target)^2 + w_a angle^2 + w_u |u|^2 + w_q |q_dot_joints|^2
    l_T(x)  = terminal_weight * [ w_v (x_vel - v_target)^2 + w_z (z - z_target)^2 + w_a angle^2 ]

The height and angle terms keep the walkers in their healthy range (Hopper: z > 0.7, |angle| <
0.2; Walker2d: 0.8 < z < 2, |angle| < 1); the Swimmer has neither (w_z = w_a = 0). On terrain
(policysearch/Walker2dTerrain-v0) z is measured above the ground under the root, h(x) linearly
interpolated from the terrain profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class LocomotionCost:
    nq: int
    v_target: float = 1.0
    w_v: float = 1.0
    z_target: float = 1.25
    w_z: float = 10.0
    w_a: float = 10.0
    w_u: float = 1e-3
    w_qdot: float = 1e-3
    terminal_weight: float = 10.0
    first_joint: int = 3
    """Index in qvel of the first actuated joint (after the root's x, z, angle)."""
    ground: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """Terrain profile (x, h(x)): z is then the height above the ground under the root."""

    def _state_terms(self, x: jax.Array) -> jax.Array:
        qpos, qvel = x[: self.nq], x[self.nq :]
        z = qpos[1] if self.ground is None else qpos[1] - jnp.interp(qpos[0], jnp.asarray(self.ground[0]), jnp.asarray(self.ground[1]))
        return self.w_v * (qvel[0] - self.v_target) ** 2 + self.w_z * (z - self.z_target) ** 2 + self.w_a * qpos[2] ** 2

    def running(self, x: jax.Array, u: jax.Array) -> jax.Array:
        qvel = x[self.nq :]
        return self._state_terms(x) + self.w_u * jnp.sum(u**2) + self.w_qdot * jnp.sum(qvel[self.first_joint :] ** 2)

    def terminal(self, x: jax.Array) -> jax.Array:
        return self.terminal_weight * self._state_terms(x)


def robot_name(env_id: str) -> str:
    """The robot of a Gymnasium id, without namespace or version: 'policysearch/Walker2dTerrain-v0'
    -> 'Walker2dTerrain', 'Swimmer-v5' -> 'Swimmer'."""
    return env_id.split("-")[0].split("/")[-1]


def locomotion_cost(env_id: str, nq: int, v_target: float = 1.0, ground: tuple | None = None) -> LocomotionCost:
    """The documented cost of a supported robot (Swimmer, Hopper, Walker2d, any version; the
    Walker2d on terrain with its ground profile)."""
    name = robot_name(env_id)
    if name == "Walker2dTerrain":
        return LocomotionCost(nq, v_target=v_target, z_target=1.25, w_a=5.0, ground=ground)
    if name == "Swimmer":
        return LocomotionCost(nq, v_target=v_target, w_z=0.0, w_a=0.0, w_u=1e-4, w_qdot=0.0)
    if name == "Hopper":
        return LocomotionCost(nq, v_target=v_target, z_target=1.25)
    if name == "Walker2d":
        return LocomotionCost(nq, v_target=v_target, z_target=1.25, w_a=5.0)
    raise KeyError(name)


CostFns = tuple[Callable[[jax.Array, jax.Array], jax.Array], Callable[[jax.Array], jax.Array]]


def initial_controls(env_id: str, horizon: int, control_dim: int) -> "np.ndarray":
    """iLQR's starting controls: zeros for the walkers; for the Swimmer a travelling wave
    0.5 (sin, cos)(2 pi t / 25), because from a straight body at rest no torque changes the
    forward speed to first order (a saddle iLQR cannot leave)."""
    import numpy as np

    if robot_name(env_id) == "Swimmer":
        phase = 2 * np.pi * np.arange(horizon)[:, None] / 25.0 + np.arange(control_dim)[None, :] * np.pi / 2
        return 0.5 * np.sin(phase)
    return np.zeros((horizon, control_dim))
