"""A Gymnasium MuJoCo task as a dynamics model for trajectory optimisation.

The state is x = (qpos, qvel) of the whole model (the root's x position included, which the
policy's observation leaves out); one model step is one env step, `frame_skip` MuJoCo steps with
the control held. Swimmer, Hopper and Walker2d integrate with RK4, which `mjd_transitionFD`
refuses, so the Jacobians are finite differences of the true env step: every time step's n + m
perturbed starts go through one multi-threaded `mujoco.rollout` call.

A step is a function of (x, u) alone: the constraint solver's warm start, which MuJoCo keeps in
MjData between steps, is zero at every step's start. Otherwise the result depends on which state
a pooled MjData stepped before (differences of 1e-14 that the solver's accept/reject decisions
grow into different plans from one run to the next).
"""

from __future__ import annotations

import os
import warnings

import gymnasium as gym
import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from policysearch.envs.vector import check_env_id
from policysearch.errors import UserError


class MujocoModel:
    def __init__(self, env_id: str, threads: int | None = None, **env_kwargs: object) -> None:
        spec = check_env_id(env_id)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make(env_id, **env_kwargs)
        inner = env.unwrapped
        if not isinstance(inner, gym.envs.mujoco.MujocoEnv):
            raise UserError(f"{env_id} is not a MuJoCo environment: trajectory optimisation needs a model of the dynamics")
        self.env_id, self.env = spec.id, env
        self.model, self.frame_skip = inner.model, int(inner.frame_skip)
        self.nq, self.nv, self.nu = self.model.nq, self.model.nv, self.model.nu
        self.state_dim, self.control_dim = self.nq + self.nv, self.nu
        self.u_low = self.model.actuator_ctrlrange[:, 0].copy()
        self.u_high = self.model.actuator_ctrlrange[:, 1].copy()
        self.dt = float(inner.dt)
        self.init_qpos, self.init_qvel = inner.init_qpos.copy(), inner.init_qvel.copy()
        self._spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self._nstate = mujoco.mj_stateSize(self.model, self._spec)
        threads = threads or os.cpu_count() or 1
        self._datas = [mujoco.MjData(self.model) for _ in range(threads)]
        self._template = self._full_state(np.concatenate([self.init_qpos, self.init_qvel]))

    @property
    def healthy_ranges(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The env's healthy (root height, pitch angle) ranges, where it has them (the walkers; the
        humanoid has a height range only, its angle range is unbounded)."""
        inner = self.env.unwrapped
        z, angle = getattr(inner, "_healthy_z_range", None), getattr(inner, "_healthy_angle_range", (-np.inf, np.inf))
        return None if z is None else (tuple(map(float, z)), tuple(map(float, angle)))

    @property
    def ground(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """The terrain profile (x, h(x)) of a terrain task (`envs.terrain`), None on flat ground."""
        profile = getattr(self.env.unwrapped, "profile", None)
        return None if profile is None else tuple(tuple(a.tolist()) for a in profile)

    def initial_state(self) -> np.ndarray:
        """The default start (qpos, qvel) of the task, without reset noise."""
        return np.concatenate([self.init_qpos, self.init_qvel])

    def _full_state(self, x: np.ndarray) -> np.ndarray:
        data = self._datas[0]
        mujoco.mj_resetData(self.model, data)
        data.qpos[:], data.qvel[:] = x[: self.nq], x[self.nq :]
        mujoco.mj_forward(self.model, data)
        full = np.empty(self._nstate)
        mujoco.mj_getState(self.model, data, full, self._spec)
        return full

    def _to_full(self, xs: np.ndarray) -> np.ndarray:
        full = np.repeat(self._template[None], len(xs), axis=0)
        full[:, 1 : 1 + self.nq] = xs[:, : self.nq]
        full[:, 1 + self.nq : 1 + self.nq + self.nv] = xs[:, self.nq :]
        return full

    def step_batch(self, xs: np.ndarray, us: np.ndarray) -> np.ndarray:
        """x' = f(x, u) for xs[B, n], us[B, m]: one env step each, in parallel threads."""
        if len(xs) == 1:
            return self.step(xs[0], us[0])[None]
        controls = np.repeat(us[:, None, :], self.frame_skip, axis=1)
        states, _ = mj_rollout.rollout(
            self.model, self._datas, self._to_full(xs), controls, nstep=self.frame_skip, persistent_pool=True,
            initial_warmstart=np.zeros((len(xs), self.nv)),
        )
        last = states[:, -1, :]
        return np.concatenate([last[:, 1 : 1 + self.nq], last[:, 1 + self.nq : 1 + self.nq + self.nv]], axis=1)

    def step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """x' = f(x, u) for one state, stepped in place (no thread pool)."""
        data = self._datas[0]
        mujoco.mj_setState(self.model, data, self._to_full(x[None])[0], self._spec)
        data.qacc_warmstart[:] = 0.0
        data.ctrl[:] = u
        for _ in range(self.frame_skip):
            mujoco.mj_step(self.model, data)
        return np.concatenate([data.qpos, data.qvel])

    def rollout(self, x0: np.ndarray, us: np.ndarray) -> np.ndarray:
        """x[0..T] under open-loop controls us[T, m]."""
        xs = [x0]
        for u in us:
            xs.append(self.step(xs[-1], u))
        return np.stack(xs)

    def linearize(self, xs: np.ndarray, us: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
        """Forward-difference Jacobians f_x[T, n, n], f_u[T, n, m] of the env step along
        xs[T(+1), n], us[T, m], all T (1 + n + m) perturbed steps in one parallel batch."""
        T, n, m = len(us), self.state_dim, self.control_dim
        pert = np.concatenate([np.zeros((1, n + m)), eps * np.eye(n + m)])  # [1 + n + m, n + m]
        base = np.concatenate([xs[:T], us], axis=1)  # [T, n + m]
        batch = (base[:, None, :] + pert[None]).reshape(-1, n + m)
        nxt = self.step_batch(batch[:, :n], batch[:, n:]).reshape(T, 1 + n + m, n)
        jac = (nxt[:, 1:, :] - nxt[:, :1, :]) / eps  # [T, n + m, n]
        jac = np.swapaxes(jac, 1, 2)
        return jac[:, :, :n], jac[:, :, n:]

    def close(self) -> None:
        self.env.close()
