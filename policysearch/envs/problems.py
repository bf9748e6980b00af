"""Where Guided Policy Search meets a model of the dynamics: a `GPSProblem` gives the training
conditions, a DDP/iLQR guiding controller per condition, sampled rollouts of any stochastic
controller u ~ act(args, t, x, key) from a condition, and the policy's input `features(x)`. A
problem holds no state of the algorithm: the iLQR warm starts come in and the solution's controls
go out, so GPS's frozen state carries them.
`JaxTaskProblem` serves the differentiable systems of `envs.systems` (rollouts by `lax.scan`,
iLQR by autodiff, the policy sees the state); `MujocoProblem` serves the Gymnasium MuJoCo robots
(rollouts by batched MuJoCo steps, iLQR on finite-difference Jacobians, the policy sees the
env's own observation, so the trained policy runs on the real env).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, NamedTuple, Protocol, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.control.costs import height_above_ground, robot_name
from policysearch.control.ilqr import ILQRConfig, solve, trajectory_cost
from policysearch.control.lqg import LinearGaussianController
from policysearch.envs.systems import Task
from policysearch.errors import require

Act = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]
"""u_t = act(args, t, x_t, key_t) for one state; args is a pytree (controller or parameters), act
a fixed function so that sampling compiles once per kind of controller."""
ExtraCost = tuple[Callable[[Any, jax.Array, jax.Array], jax.Array], Any]
"""(fn, args): a cost term fn(args, x, u) added to the running cost (line 9's -lambda log pi_theta)."""
Rollouts = tuple[jax.Array, jax.Array, jax.Array]
"""states [c, T, n] (x_0..x_{T-1}), actions [c, T, m] as sampled, rewards [c, T]."""
WarmStarts = Sequence["np.ndarray | None"]
"""Per condition, the controls of its last iLQR solution, or None."""
Report = Callable[[dict], None]
"""on_iteration(report) of a guiding solve, as it goes: {"stage": "iLQR", "iteration", "cost", ...}
per iLQR iteration, or {"stage": "receding-horizon start" / "repair of the start", "start", "cost", ...}
per window of the start of a robot that can fall (a solve that is one compiled call reports nothing)."""


class Guiding(NamedTuple):
    """A DDP solution as GPS uses it: the guiding controller, its true cost and its controls
    (the warm start of the next solve at that condition)."""

    controller: LinearGaussianController
    cost: float
    controls: np.ndarray


class GPSProblem(Protocol):
    name: str
    state_dim: int
    control_dim: int
    obs_dim: int
    horizon: int
    conditions: list[np.ndarray]
    u_low: np.ndarray
    u_high: np.ndarray

    def features_for(self, c: int) -> Callable[[jax.Array], jax.Array]:
        """The policy's input for a state of condition c: a fixed, hashable JAX function (the
        identity, or the env observation as an `ObservationMap`, which on a terrain depends on
        the condition's ground)."""
        ...

    def guiding(self, c: int, temperature: float, iterations: int, extra_cost: ExtraCost | None = None,
                gain_reg: float = 0.0, warm_starts: WarmStarts = (), on_iteration: Report | None = None) -> Guiding:
        """iLQR from condition c on l(x, u) (+ extra_cost), started from warm_starts where the
        problem uses them: the controller (mean clipped to the control box, gains regularised
        by gain_reg), its true cost and its controls; on_iteration hears how the solve goes."""
        ...

    def sample(self, c: int, act: Act, args: Any, key: jax.Array, count: int) -> Rollouts:
        """count rollouts of act(args, ...) from condition c."""
        ...


def identity(x: jax.Array) -> jax.Array:
    """The features of a JAX task: its state."""
    return x


class JaxTaskProblem:
    """A `Task` of `envs.systems` with several initial states as the training conditions. Rewards
    are -cost: the running cost of the clipped control, the terminal cost charged at the last step."""

    def __init__(self, task: Task, conditions: list[np.ndarray]) -> None:
        self.task, self.name = task, task.name
        self.state_dim, self.control_dim, self.horizon = task.state_dim, task.control_dim, task.horizon
        self.obs_dim = task.state_dim
        self.u_low, self.u_high = np.asarray(task.u_low), np.asarray(task.u_high)
        self.conditions = [np.asarray(c, np.float32) for c in conditions]

    def features_for(self, c: int) -> Callable[[jax.Array], jax.Array]:
        return identity

    def guiding(self, c: int, temperature: float, iterations: int, extra_cost: ExtraCost | None = None,
                gain_reg: float = 0.0, warm_starts: WarmStarts = (), on_iteration: Report | None = None) -> Guiding:
        """iLQR by autodiff from zero controls (a JAX task needs no warm start); one compiled call,
        so on_iteration hears nothing."""
        fn, args = extra_cost if extra_cost is not None else (_no_cost, None)
        sol, true_cost = _guiding_solve(self.task, fn, iterations, jnp.asarray(self.conditions[c]), args)
        ctrl = LinearGaussianController.from_solution(sol, temperature, gain_reg, self.u_low, self.u_high)
        return Guiding(ctrl, float(true_cost), np.asarray(sol.u))

    def sample(self, c: int, act: Act, args: Any, key: jax.Array, count: int) -> Rollouts:
        return _jax_rollouts(self.task, act, count, args, jnp.asarray(self.conditions[c]), key)


def _no_cost(args: Any, x: jax.Array, u: jax.Array) -> jax.Array:
    return jnp.zeros((), x.dtype)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _guiding_solve(task: Task, extra: Callable, iterations: int, x0: jax.Array, args: Any) -> tuple:
    """iLQR on l(x, u) + extra(args, x, u) from x0, compiled once per (task, extra, iterations)."""
    sol = solve(task.dynamics, lambda x, u: task.running_cost(x, u) + extra(args, x, u), task.terminal_cost, x0,
                jnp.zeros((task.horizon, task.control_dim), x0.dtype), jnp.asarray(task.u_low), jnp.asarray(task.u_high),
                ILQRConfig(max_iterations=iterations))
    return sol, trajectory_cost(task.running_cost, task.terminal_cost, sol.x, sol.u)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _jax_rollouts(task: Task, act: Act, count: int, args: Any, x0: jax.Array, key: jax.Array) -> Rollouts:
    lo, hi = jnp.asarray(task.u_low), jnp.asarray(task.u_high)

    def one(key: jax.Array) -> Rollouts:
        def step(x: jax.Array, xs: tuple[jax.Array, jax.Array]):
            t, k = xs
            u = act(args, t, x, k)
            uc = jnp.clip(u, lo, hi)
            return task.dynamics(x, uc), (x, u, -task.running_cost(x, uc))

        x_last, (xs, us, rs) = jax.lax.scan(step, x0, (jnp.arange(task.horizon), jax.random.split(key, task.horizon)))
        return xs, us, rs.at[-1].add(-task.terminal_cost(x_last))

    return jax.vmap(one)(jax.random.split(key, count))


def arm_reach_conditions() -> list[np.ndarray]:
    """Four training initial states of the 2-link arm (joint angles, zero velocity)."""
    return [np.array(q + (0.0, 0.0), np.float32) for q in [(0.3, 0.3), (0.0, 0.8), (-0.3, 1.2), (0.6, 0.2)]]


Profile = tuple[tuple[float, ...], tuple[float, ...]]
"""A ground profile (x grid, heights h(x)), as `terrain.terrain_profile` gives it, in tuples."""


@dataclass(frozen=True)
class ObservationMap:
    """The Gymnasium v5 observation of a planar robot as a JAX function of x = (qpos, qvel):
    qpos without its first `skip` entries, then qvel, clipped to +-clip (None: not clipped). With
    a `ground` profile (a walker on a terrain), the root's height (qpos[1], the observation's
    first entry) is measured above the ground beneath the root, h(qpos[0]) interpolated, as the
    terrain env observes it and as its health test measures it. Hashable by value, so functions
    jitted over it compile once per robot and ground."""

    nq: int
    skip: int
    clip: float | None
    ground: Profile | None = None

    def __call__(self, x: jax.Array) -> jax.Array:
        qpos, qvel = x[..., self.skip:self.nq], x[..., self.nq:]
        if self.ground is not None:  # the first entry kept is the root's z
            qpos = qpos.at[..., 0].set(height_above_ground(x[..., 0], x[..., self.skip], self.ground))
        return jnp.concatenate([qpos, qvel if self.clip is None else jnp.clip(qvel, -self.clip, self.clip)], axis=-1)


def mujoco_features(env_id: str, nq: int, ground: Profile | None = None) -> ObservationMap:
    """The observation map of a robot: the Swimmer leaves out the root's x and y, the walkers the
    root's x and clip qvel to [-10, 10], the humanoid (HumanoidTerrain's 45-entry state) the root's
    x and y (on a terrain, the root's height above `ground`)."""
    name = robot_name(env_id)
    if name == "Swimmer" or name.startswith("Humanoid"):
        return ObservationMap(nq, 2, None, ground)
    return ObservationMap(nq, 1, 10.0, ground)


def root_size(env_id: str) -> int:
    """Where the joint angles that perturbed starts move begin in qpos: after the Swimmer's x and y
    (its heading moves with the joints), the walkers' x, z and pitch, the humanoid's position and
    quaternion."""
    name = robot_name(env_id)
    return 2 if name == "Swimmer" else 7 if name.startswith("Humanoid") else 3


class MujocoProblem:
    """A Gymnasium MuJoCo robot with its locomotion cost (`control.costs`). Conditions: the
    default start and `conditions - 1` starts whose joint angles (not the root) are perturbed
    uniformly by +-`spread` rad (seeded); or, for policysearch/Walker2dTerrain-v0, one condition
    per terrain seed in `terrains` (each its own model and ground-aware cost), from the default
    start. Rewards are -cost; the policy is scored on the env's own reward by evaluation.

    `example` (obs -> action, e.g. a trained policy's `act`) gives the example motion iLQR starts
    from at every condition: its deterministic rollout's controls; `example_u` gives them as
    controls [horizon, m] per condition (e.g. an earlier run's DDP solutions; on terrains with
    segments, [segments * horizon, m] per terrain). `example_x0` gives, with `example_u` per
    condition, the state each of those controls starts from (an earlier run's DDP solutions of
    the same conditions, `x_bar[0]`): they are iLQR's start as they are, not repaired, since they
    are what iLQR made from there; with segments, the conditions start at those states, without
    the example's rollout and its repair (the costly part of building a humanoid's conditions).

    `segments` > 1 (terrains, with an example): each terrain's example motion over segments *
    horizon steps (repaired where it falls, `repair_start`) is cut into `segments` conditions of
    `horizon` steps, each starting at the motion's state there. A time-indexed LQR controller of a
    walker tolerates no noise for long: its samples fall after about 150-250 steps whatever the
    gains (README, GPS on unseen terrain), so a long walk is covered by short guiding
    trajectories along it."""

    def __init__(self, env_id: str, horizon: int, conditions: int = 1, spread: float = 0.1, seed: int = 0,
                 v_target: float = 1.0, fd_eps: float = 1e-3, terrains: tuple[int, ...] = (),
                 example: Callable[[np.ndarray], np.ndarray] | None = None, example_u: Sequence[np.ndarray] = (),
                 segments: int = 1, example_x0: Sequence[np.ndarray] = ()) -> None:
        from policysearch.control.costs import locomotion_cost
        from policysearch.envs.mujoco_model import MujocoModel

        if terrains:
            self.models = [m for m in (MujocoModel(env_id, terrain_seed=s) for s in terrains) for _ in range(segments)]
            grounds: list[Profile | None] = [m.ground for m in self.models]
            self.costs = [locomotion_cost(env_id, m.nq, v_target, g, m.healthy_ranges) for m, g in zip(self.models, grounds)]
        else:
            model = MujocoModel(env_id)
            self.models, grounds = [model] * conditions, [None] * conditions
            self.costs = [locomotion_cost(env_id, model.nq, v_target, healthy=model.healthy_ranges)] * conditions
        model = self.models[0]
        self.name, self.horizon, self.fd_eps, self.terrains = env_id, horizon, fd_eps, tuple(terrains)
        self.state_dim, self.control_dim = model.state_dim, model.control_dim
        self.u_low, self.u_high = model.u_low, model.u_high
        self._features = [mujoco_features(env_id, model.nq, g) for g in grounds]
        self.obs_dim = int(self._features[0](jnp.zeros(self.state_dim)).shape[-1])
        x0 = model.initial_state()
        rng = np.random.default_rng(seed)
        root = root_size(env_id)
        self.conditions = [x0]
        for _ in range(len(self.models) - 1):
            x = x0.copy()
            if not terrains:
                x[root : model.nq] += rng.uniform(-spread, spread, model.nq - root)
            self.conditions.append(x)
        self._running = [jax.jit(jax.vmap(c.running)) for c in self.costs]
        self._terminal = [jax.jit(jax.vmap(c.terminal)) for c in self.costs]
        self.segments = segments
        self._own: set[int] = set()  # conditions whose example_u is iLQR's own solution from there (example_x0)
        require(not len(example_x0) or len(example_x0) == len(example_u) == len(self.conditions),
                f"{len(example_x0)} start states for {len(example_u)} controls and {len(self.conditions)} conditions: give one of each per condition")
        require(not len(example_x0) or all(len(u) == horizon for u in example_u),
                f"saved controls of {sorted({len(u) for u in example_u})} steps for --horizon {horizon}: give {horizon} per condition")
        if segments > 1:
            self._segment(example, example_u, example_x0)
            return
        self._example_u = {c: self.example_controls(c, example) for c in range(len(self.conditions))} if example else {}
        self._example_u.update({c: np.asarray(u, np.float64) for c, u in enumerate(example_u)})
        # a saved solution is this condition's own where it starts at this condition's state (float32 as saved)
        self._own = {c for c, x in enumerate(example_x0) if np.allclose(x, self.conditions[c], rtol=0, atol=1e-5)}

    def _segment(self, example: Callable[[np.ndarray], np.ndarray] | None, example_u: Sequence[np.ndarray],
                 example_x0: Sequence[np.ndarray]) -> None:
        """Conditions i * segments + j: terrain i's example motion (repaired) from step j * horizon;
        or, given `example_x0`, condition c from example_x0[c] with its solution example_u[c]."""
        from policysearch.control.mujoco_ilqr import repair_start

        require(bool(self.terrains) and (example is not None or len(example_u) > 0),
                "--segments needs terrains and an example motion (--example-policy or --example-controls)")
        length, self._example_u = self.segments * self.horizon, {}
        if len(example_x0):
            for c, (x, u) in enumerate(zip(example_x0, example_u)):
                self.conditions[c], self._example_u[c] = np.asarray(x, np.float64), np.asarray(u, np.float64)
            self._own = set(range(len(self.conditions)))
            return
        for i in range(len(self.terrains)):
            c0 = i * self.segments
            cost, model, x0 = self.costs[c0], self.models[c0], np.asarray(self.conditions[c0], np.float64)
            u = np.asarray(example_u[i], np.float64) if len(example_u) else self.example_controls(c0, example, length)
            require(len(u) == length, f"the example controls of terrain {self.terrains[i]} have {len(u)} steps, not segments x horizon = {length}")
            with jax.enable_x64(True):
                u = repair_start(model, cost.running, cost.terminal, x0, u, cost.health_test, fd_eps=self.fd_eps)
            xs = model.rollout(x0, u)
            for j in range(self.segments):
                self.conditions[c0 + j] = np.array(xs[j * self.horizon])
                self._example_u[c0 + j] = u[j * self.horizon : (j + 1) * self.horizon]

    def features_for(self, c: int) -> Callable[[jax.Array], jax.Array]:
        return self._features[c]

    def guiding(self, c: int, temperature: float, iterations: int, extra_cost: ExtraCost | None = None,
                gain_reg: float = 0.0, warm_starts: WarmStarts = (), on_iteration: Report | None = None) -> Guiding:
        from policysearch.control.costs import initial_controls
        from policysearch.control.mujoco_ilqr import receding_start, repair_start, solve_mujoco

        cost, model, valid = self.costs[c], self.models[c], self.costs[c].health_test
        # iLQR starts from this condition's last solution (line 9 re-optimises it), else from the
        # example motion, else on a terrain from the first terrain's solution, else from
        # `initial_controls` (built window by window for robots that can fall); a start borrowed
        # from the example or another terrain that falls part way is repaired window by window
        # from before its fall (`repair_start`); this condition's own solutions (of this run, or
        # saved by an earlier one: example_x0) are not: what iLQR could not lift stays as it was
        warm = dict(enumerate(warm_starts))
        u_init, borrowed = warm.get(c), False
        if u_init is None:
            u_init = self._example_u.get(c, warm.get(0) if self.terrains else None)
            borrowed = u_init is not None and c not in self._own
        u_init = None if u_init is None else np.array(u_init)

        def stage(name: str) -> Report | None:
            return None if on_iteration is None else lambda report: on_iteration(dict(report, stage=name))

        with jax.enable_x64(True):
            if u_init is None:
                u_init = initial_controls(self.name, self.horizon, self.control_dim)
                if valid is not None:  # robots that can fall
                    u_init = receding_start(model, cost.running, cost.terminal, self.conditions[c], u_init, valid,
                                            fd_eps=self.fd_eps, extra=extra_cost, on_window=stage("receding-horizon start"))
            elif valid is not None and borrowed:
                u_init = repair_start(model, cost.running, cost.terminal, self.conditions[c], u_init, valid, fd_eps=self.fd_eps, extra=extra_cost,
                                      on_window=stage("repair of the start"))
            sol = solve_mujoco(model, cost.running, cost.terminal, self.conditions[c], u_init, ILQRConfig(max_iterations=iterations),
                               fd_eps=self.fd_eps, valid=valid, extra=extra_cost, on_iteration=stage("iLQR"))
            true_cost = float(trajectory_cost(cost.running, cost.terminal, sol.x, sol.u))
            ctrl = LinearGaussianController.from_solution(sol, temperature, gain_reg, self.u_low, self.u_high)
        return Guiding(LinearGaussianController(*(jnp.asarray(np.asarray(a), jnp.float32) for a in ctrl)), true_cost, np.asarray(sol.u))

    def example_controls(self, c: int, act: Callable[[np.ndarray], np.ndarray], length: int = 0) -> np.ndarray:
        """The controls of act's rollout from condition c over `length` steps (default: the
        horizon), clipped to the box."""
        model, x, us = self.models[c], np.asarray(self.conditions[c], np.float64)[None], []
        for _ in range(length or self.horizon):
            u = np.clip(np.asarray(act(np.asarray(self._features[c](jnp.asarray(x, jnp.float32))))), self.u_low, self.u_high)
            us.append(u[0])
            x = model.step_batch(x, u.astype(np.float64))
        return np.stack(us)

    def sample(self, c: int, act: Act, args: Any, key: jax.Array, count: int) -> Rollouts:
        model = self.models[c]
        x = np.repeat(self.conditions[c][None], count, axis=0)
        states, actions, rewards = [], [], []
        for t, k in enumerate(jax.random.split(key, self.horizon)):
            u = np.asarray(_batch_act(act, args, jnp.asarray(t), jnp.asarray(x, jnp.float32), jax.random.split(k, count)), np.float64)
            uc = np.clip(u, self.u_low, self.u_high)
            states.append(x)
            actions.append(u)
            rewards.append(-np.asarray(self._running[c](x, uc)))
            x = model.step_batch(x, uc)
        rewards[-1] = rewards[-1] - np.asarray(self._terminal[c](x))
        return tuple(np.stack(a, axis=1).astype(np.float32) for a in (states, actions, rewards))


@partial(jax.jit, static_argnums=0)
def _batch_act(act: Act, args: Any, t: jax.Array, xs: jax.Array, keys: jax.Array) -> jax.Array:
    return jax.vmap(lambda x, k: act(args, t, x, k))(xs, keys)
