"""Task costs for trajectory optimisation on the Gymnasium MuJoCo robots, written in JAX over
the model state x = (qpos, qvel) and the control u (derivatives by autodiff).

Locomotion (Swimmer, Hopper, Walker2d; planar robots whose qpos starts with the root's x, and for
the walkers z and pitch angle):

    s(x)    = w_v (x_vel - v_target)^2 + w_z (z - z_target)^2 + w_a angle^2 + w_p |q_joints|^2 + b(x)
    l(x, u) = s(x) + w_u |u|^2 + w_q |q_dot_joints|^2,   l_T(x) = terminal_weight * s(x)
    b(x)    = w_h [ relu(z_lo + m_z - z)^2 + relu(z - z_hi + m_z)^2 + relu(a_lo + m_a - angle)^2 + relu(angle - a_hi + m_a)^2 ]

The height and angle terms ask for an upright gait; the barrier b prices the unhealthy region,
where the real env ends the episode (Hopper: z > 0.7, |angle| < 0.2; Walker2d: 0.8 < z < 2,
|angle| < 1), from a margin inside it: without it the quadratic terms let a cheaper plan crouch
or lean out of the range (measured: Hopper at horizon 300 sank below z = 0.7 at step 212 while
its cost kept falling). The posture term w_p (0.2 on the walkers) keeps the legs near the standing
pose: without it each short plan of a receding horizon (`control.receding`) left the Hopper's leg
a little further swept back, the next plan caught the forward fall a little faster, and by step
200 it ran at 2.4 m/s against the 1 m/s asked and fell before step 300 (with 0.2: 500 steps,
5.6 m). `healthy` is the env's own test, for the line search. The Swimmer has no height, angle,
posture or health terms (w_z = w_a = w_p = 0, no range). On terrain
(policysearch/Walker2dTerrain-v0) z is measured above the ground under the root, h(x) linearly
interpolated from the terrain profile.

The humanoid (Humanoid-v5, policysearch/HumanoidTerrain-v0) has a free root: qpos = (x, y, z,
quaternion w, x, y, z, 17 joints), qvel = (linear velocity, angular velocity, 17 joint
velocities). Its angle term is the torso's tilt from upright, angle^2 = 4 (q_x^2 + q_y^2) (=
2 (1 - up_z), up_z the z-component of the torso's vertical axis; the heading q_z is free), a
lateral term w_lat y_vel^2 keeps it running along x, and health is Humanoid-v5's: 1 < z < 2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def height_above_ground(root_x: jax.Array, root_z: jax.Array, ground: tuple[tuple[float, ...], tuple[float, ...]] | None) -> jax.Array:
    """The root's height above the ground beneath it: z - h(x), h the terrain profile (x grid,
    heights) interpolated linearly; z itself without a profile (flat ground at 0)."""
    if ground is None:
        return root_z
    return root_z - jnp.interp(root_x, jnp.asarray(ground[0], root_z.dtype), jnp.asarray(ground[1], root_z.dtype))


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
    """Index in qpos and qvel of the first actuated joint (after the root's x, z, angle)."""
    w_posture: float = 0.0
    """Weight of |q_joints|^2, the joint angles away from the standing pose."""
    ground: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """Terrain profile (x, h(x)): z is then the height above the ground under the root. The cost
    is a pytree with the profile as its leaves (arrays, once rebuilt inside a trace)."""
    z_range: tuple[float, float] | None = None
    """The env's healthy range of the root's height (None: no health terms)."""
    angle_range: tuple[float, float] = (-float("inf"), float("inf"))
    """The env's healthy range of the root's pitch angle."""
    w_health: float = 1000.0
    """Weight of the barrier b(x)."""
    margin: float = 0.25
    """Where the barrier starts, as a fraction of each range's half-width inside it (at most 0.1
    m of height)."""
    free_root: bool = False
    """A 3D robot whose root is a free joint (the humanoid): z is qpos[2], the angle the torso's tilt."""
    w_lateral: float = 0.0
    """Weight of the sideways velocity y_vel^2 (free root)."""

    def _height(self, x: jax.Array) -> jax.Array:
        return height_above_ground(x[0], x[2] if self.free_root else x[1], self.ground)

    def _angle_sq(self, x: jax.Array) -> jax.Array:
        """angle^2: the pitch squared, or for a free root the tilt 4 (q_x^2 + q_y^2)."""
        return 4.0 * (x[4] ** 2 + x[5] ** 2) if self.free_root else x[2] ** 2

    @property
    def _first_joint_vel(self) -> int:
        return self.first_joint - 1 if self.free_root else self.first_joint  # a quaternion has 4 entries, its velocity 3

    def _state_terms(self, x: jax.Array) -> jax.Array:
        qpos, qvel = x[: self.nq], x[self.nq :]
        z = self._height(x)
        return (self.w_v * (qvel[0] - self.v_target) ** 2 + self.w_z * (z - self.z_target) ** 2 + self.w_a * self._angle_sq(x)
                + self.w_lateral * qvel[1] ** 2 + self.w_posture * jnp.sum(qpos[self.first_joint :] ** 2) + self.barrier(x))

    def _inner(self, lo: float, hi: float, cap: float) -> tuple[float, float]:
        """The range shrunk by the margin (a fraction of its half-width, capped for an open end)."""
        m = min(self.margin * (hi - lo) / 2, cap)
        return lo + m, hi - m

    def barrier(self, x: jax.Array) -> jax.Array:
        """b(x): zero inside the margin, quadratic beyond it."""
        if self.z_range is None:
            return jnp.zeros((), x.dtype)
        z_lo, z_hi = self._inner(*self.z_range, cap=0.1)
        z = self._height(x)
        relu = lambda v: jnp.maximum(v, 0.0)  # noqa: E731
        b = relu(z_lo - z) ** 2 + relu(z - z_hi) ** 2
        if np.isfinite(self.angle_range).all():  # the walkers' pitch range (the humanoid has none)
            a_lo, a_hi = self._inner(*self.angle_range, cap=float("inf"))
            b = b + relu(a_lo - x[2]) ** 2 + relu(x[2] - a_hi) ** 2
        return self.w_health * b

    @property
    def health_test(self) -> Callable[[jax.Array], jax.Array] | None:
        """`healthy` for a robot that can fall (the line search's validity test), else None."""
        return None if self.z_range is None else self.healthy

    def healthy(self, x: jax.Array) -> jax.Array:
        """Whether the env would call x healthy (always, without a range)."""
        if self.z_range is None:
            return jnp.asarray(True)
        (z_lo, z_hi), (a_lo, a_hi) = self.z_range, self.angle_range
        z = self._height(x)
        if self.free_root:
            return (z > z_lo) & (z < z_hi)
        return (z > z_lo) & (z < z_hi) & (x[2] > a_lo) & (x[2] < a_hi)

    def running(self, x: jax.Array, u: jax.Array) -> jax.Array:
        qvel = x[self.nq :]
        return self._state_terms(x) + self.w_u * jnp.sum(u**2) + self.w_qdot * jnp.sum(qvel[self._first_joint_vel :] ** 2)

    def terminal(self, x: jax.Array) -> jax.Array:
        return self.terminal_weight * self._state_terms(x)


def _flatten_cost(cost: LocomotionCost) -> tuple[tuple[np.ndarray, ...], LocomotionCost]:
    """A LocomotionCost as a pytree: the ground profile's (x, h) arrays are its leaves (none on
    flat ground), the rest is static. A solve jitted over the cost (`mujoco_ilqr.solve_mujoco`)
    then takes the profile as an argument and compiles once for every terrain of a robot."""
    leaves = () if cost.ground is None else tuple(np.asarray(a, np.float64) for a in cost.ground)
    return leaves, dataclasses.replace(cost, ground=None)


def _unflatten_cost(static: LocomotionCost, leaves: tuple) -> LocomotionCost:
    return dataclasses.replace(static, ground=tuple(leaves)) if leaves else static


jax.tree_util.register_pytree_node(LocomotionCost, _flatten_cost, _unflatten_cost)


def robot_name(env_id: str) -> str:
    """The robot of a Gymnasium id, without namespace or version: 'policysearch/Walker2dTerrain-v0'
    -> 'Walker2dTerrain', 'Swimmer-v5' -> 'Swimmer'."""
    return env_id.split("-")[0].split("/")[-1]


HEALTHY_RANGES = {"Hopper": ((0.7, float("inf")), (-0.2, 0.2)), "Walker2d": ((0.8, 2.0), (-1.0, 1.0)),
                  "Humanoid": ((1.0, 2.0), (-float("inf"), float("inf")))}
"""Gymnasium's default healthy ranges (root height, pitch angle) of the walkers and the humanoid."""


def locomotion_cost(env_id: str, nq: int, v_target: float = 1.0, ground: tuple | None = None,
                    healthy: tuple[tuple[float, float], tuple[float, float]] | None = None) -> LocomotionCost:
    """The documented cost of a supported robot (Swimmer, Hopper, Walker2d, Humanoid, any version;
    the Walker2d and the humanoid on terrain with its ground profile). healthy: the env's (z range, angle range)
    (`MujocoModel.healthy_ranges`), else Gymnasium's defaults."""
    name = robot_name(env_id)
    walker = name.removesuffix("Terrain")
    if walker in HEALTHY_RANGES:
        z_range, angle_range = healthy or HEALTHY_RANGES[walker]
        health = {"z_range": tuple(z_range), "angle_range": tuple(angle_range)}
    if name == "Walker2dTerrain":
        return LocomotionCost(nq, v_target=v_target, z_target=1.25, w_a=5.0, ground=ground, w_posture=0.2, **health)
    if name == "Swimmer":
        return LocomotionCost(nq, v_target=v_target, w_z=0.0, w_a=0.0, w_u=1e-4, w_qdot=0.0)
    if name == "Hopper":
        return LocomotionCost(nq, v_target=v_target, z_target=1.25, w_posture=0.2, **health)
    if name == "Walker2d":
        return LocomotionCost(nq, v_target=v_target, z_target=1.25, w_a=5.0, w_posture=0.2, **health)
    if walker == "Humanoid":
        return LocomotionCost(nq, v_target=v_target, z_target=1.3, w_a=5.0, w_u=1e-2, first_joint=7, w_posture=0.2, free_root=True,
                              w_lateral=1.0, ground=ground if name == "HumanoidTerrain" else None, **health)
    raise KeyError(name)


CostFns = tuple[Callable[[jax.Array, jax.Array], jax.Array], Callable[[jax.Array], jax.Array]]


def initial_controls(env_id: str, horizon: int, control_dim: int) -> np.ndarray:
    """iLQR's starting controls: zeros for the walkers; for the Swimmer a travelling wave
    0.5 (sin, cos)(2 pi t / 25), because from a straight body at rest no torque changes the
    forward speed to first order (a saddle iLQR cannot leave)."""
    if robot_name(env_id) == "Swimmer":
        phase = 2 * np.pi * np.arange(horizon)[:, None] / 25.0 + np.arange(control_dim)[None, :] * np.pi / 2
        return 0.5 * np.sin(phase)
    return np.zeros((horizon, control_dim))
