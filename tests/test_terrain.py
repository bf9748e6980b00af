"""policysearch/Walker2dTerrain-v0 (and HumanoidTerrain-v0): the height field MuJoCo collides with is the documented
profile, terrains are reproducible and the train/test sets disjoint, health is measured above
the ground, and the terrain-set env draws every training terrain."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np

import policysearch.envs  # noqa: F401
from policysearch.envs import make_env
from policysearch.envs.terrain import ENV_ID, SET_ENV_ID, TEST_TERRAINS, TRAIN_TERRAINS, ground_height, terrain_profile


def test_height_field_is_the_profile() -> None:
    for seed in (TRAIN_TERRAINS[0], TEST_TERRAINS[-1]):
        env = gym.make(ENV_ID, terrain_seed=seed)
        env.reset(seed=0)
        model, data = env.unwrapped.model, env.unwrapped.data
        profile = terrain_profile(seed)
        geom = np.zeros(1, np.int32)
        for x in np.linspace(1.0, 30.0, 60):  # ahead of the robot, so the ray meets the ground
            dist = mujoco.mj_ray(model, data, np.array([x, 0.0, 5.0]), np.array([0.0, 0.0, -1.0]), None, 1, -1, geom)
            assert abs((5.0 - dist) - ground_height(profile, x)) < 1e-4
        env.close()


def test_terrains_reproducible_distinct_and_flat_at_the_start() -> None:
    assert not set(TRAIN_TERRAINS) & set(TEST_TERRAINS)
    x, h = terrain_profile(1)
    np.testing.assert_array_equal(h, terrain_profile(1)[1])
    assert np.all(h[x < 0.5] == 0.0)
    assert np.abs(h - terrain_profile(2)[1]).max() > 0.05
    assert np.abs(h).max() > 0.05  # not flat


def test_health_is_height_above_the_ground() -> None:
    env = gym.make(ENV_ID, terrain_seed=0)
    env.reset(seed=0)
    inner = env.unwrapped
    x, h = inner.profile
    i = int(np.argmin(h))  # the lowest point of the terrain
    qpos = inner.init_qpos.copy()
    qpos[0], qpos[1] = x[i], h[i] + 0.9
    inner.set_state(qpos, inner.init_qvel)
    assert h[i] < -0.1 and inner.is_healthy  # absolute z = h + 0.9 < 0.8, yet healthy
    qpos[1] = h[i] + 0.7
    inner.set_state(qpos, inner.init_qvel)
    assert not inner.is_healthy
    env.close()


def test_terrain_set_env_draws_every_training_terrain() -> None:
    env = gym.make(SET_ENV_ID)
    seen = set()
    for seed in range(40):
        env.reset(seed=seed)
        seen.add(env.unwrapped.envs[env.unwrapped.current].terrain_seed)
    assert seen == set(TRAIN_TERRAINS)
    env.close()
    vec = make_env(SET_ENV_ID, 2, 0)
    assert vec.spec.obs_dim == 17 and vec.spec.action_dim == 6
    vec.close()


def test_observation_carries_the_height_above_the_ground_and_gps_sees_the_same() -> None:
    """In a dip the observed torso height is the height above the ground beneath it (not the
    absolute z), and the GPS problem's input map for that terrain's condition gives the env's
    observation from the state."""
    import jax.numpy as jnp

    from policysearch.envs.problems import MujocoProblem

    env = gym.make(ENV_ID, terrain_seed=TRAIN_TERRAINS[0])
    env.reset(seed=0)
    inner = env.unwrapped
    x, h = inner.profile
    i = int(np.argmin(h))
    qpos, qvel = inner.init_qpos.copy(), np.random.default_rng(0).uniform(-1, 1, inner.model.nv)
    qpos[0], qpos[1] = x[i], h[i] + 1.2
    inner.set_state(qpos, qvel)
    obs = inner._get_obs()
    assert h[i] < -0.1 and abs(obs[0] - 1.2) < 1e-9  # absolute z is h + 1.2 < 1.1
    problem = MujocoProblem(ENV_ID, horizon=5, terrains=TRAIN_TERRAINS[:2])
    state = jnp.asarray(np.concatenate([qpos, qvel]), jnp.float32)
    np.testing.assert_allclose(np.asarray(problem.features_for(0)(state)), obs, rtol=1e-5, atol=1e-5)
    # the other terrain's map measures against its own ground
    assert abs(float(problem.features_for(1)(state)[0]) - (qpos[1] - ground_height(terrain_profile(TRAIN_TERRAINS[1]), x[i]))) < 1e-5
    env.close()


def test_segments_cut_each_terrain_walk_into_conditions_along_it() -> None:
    """--segments 2 with a 2 x 6-step example per terrain: conditions i*2 + j start at the state
    the example reaches at step 6j on terrain i, and each starts iLQR from its slice of controls."""
    from policysearch.envs.problems import MujocoProblem

    rng = np.random.default_rng(0)
    example = [rng.uniform(-0.3, 0.3, (12, 6)) for _ in range(2)]
    problem = MujocoProblem(ENV_ID, horizon=6, terrains=TRAIN_TERRAINS[:2], example_u=example, segments=2)
    assert len(problem.conditions) == 4
    for i in range(2):
        xs = problem.models[2 * i].rollout(problem.models[2 * i].initial_state(), example[i])
        for j in range(2):
            np.testing.assert_allclose(problem.conditions[2 * i + j], xs[6 * j], atol=1e-9)
            np.testing.assert_array_equal(problem._example_u[2 * i + j], example[i][6 * j : 6 * j + 6])
    assert problem.models[0] is problem.models[1] and problem.models[1] is not problem.models[2]


def test_saved_ddp_solutions_are_reused_as_they_are(tmp_path, monkeypatch) -> None:
    """--example-controls of a run with the same conditions: each condition starts at its saved
    controller's x_bar[0] and iLQR starts from its u_bar without the example's rollout or a repair
    (seeds of one experiment share the DDP work); a run cut into other segments concatenates them."""
    from policysearch.control import mujoco_ilqr
    from policysearch.control.lqg import LinearGaussianController
    from policysearch.envs.problems import MujocoProblem
    from policysearch.run.config import GPSRunConfig
    from policysearch.run.train_gps import make_problem, saved_controls

    rng = np.random.default_rng(2)
    first = MujocoProblem(ENV_ID, horizon=6, terrains=TRAIN_TERRAINS[:2], example_u=[rng.uniform(-0.3, 0.3, (12, 6)) for _ in range(2)], segments=2)
    for c, x0 in enumerate(first.conditions):
        u = first._example_u[c]
        xs = first.models[c].rollout(x0, u)
        z = np.zeros
        LinearGaussianController(xs.astype(np.float32), u.astype(np.float32), z((6, 6), np.float32), z((6, 6, 18), np.float32),
                                 np.tile(np.eye(6, dtype=np.float32), (6, 1, 1)), -np.ones(6, np.float32),
                                 np.ones(6, np.float32)).save(tmp_path / "controllers" / f"condition_{c}", {})

    def refused(*args, **kwargs):
        raise AssertionError("a saved solution was repaired")

    monkeypatch.setattr(mujoco_ilqr, "repair_start", refused)
    run = GPSRunConfig(env=ENV_ID, terrains=TRAIN_TERRAINS[:2], horizon=6, segments=2, example_controls=str(tmp_path))
    starts, controls = saved_controls(run)
    assert len(starts) == len(controls) == 4
    problem = make_problem(run)
    for c in range(4):
        np.testing.assert_allclose(problem.conditions[c], first.conditions[c], atol=1e-5)
        np.testing.assert_allclose(problem._example_u[c], first._example_u[c], atol=1e-6)
    guiding = problem.guiding(1, temperature=1e-4, iterations=1)
    np.testing.assert_allclose(np.asarray(guiding.controller.x_bar[0]), problem.conditions[1], atol=1e-6)
    # without segments a saved solution is a condition's own only where it starts at that condition
    one = MujocoProblem(ENV_ID, horizon=6, terrains=TRAIN_TERRAINS[:2], example_u=[first._example_u[0], first._example_u[1]],
                        example_x0=[first.conditions[0].astype(np.float32), first.conditions[1]])
    assert one._own == {0}
    # one 12-step condition per terrain from 2 x 6-step pieces: the pieces end to end, no starts
    starts, controls = saved_controls(GPSRunConfig(env=ENV_ID, terrains=TRAIN_TERRAINS[:2], horizon=12, example_controls=str(tmp_path)))
    assert starts == [] and [len(u) for u in controls] == [12, 12]
    np.testing.assert_allclose(controls[1][6:], first._example_u[3], atol=1e-6)


def test_controllers_of_consecutive_pieces_concatenate() -> None:
    from policysearch.control.lqg import LinearGaussianController

    rng = np.random.default_rng(1)

    def piece(T: int) -> LinearGaussianController:
        return LinearGaussianController(*(rng.normal(size=s).astype(np.float32) for s in ((T + 1, 3), (T, 2), (T, 2), (T, 2, 3), (T, 2, 2))),
                                        -np.ones(2, np.float32), np.ones(2, np.float32))

    a, b = piece(4), piece(3)
    whole = LinearGaussianController.concatenate([a, b])
    assert whole.horizon == 7 and whole.x_bar.shape == (8, 3)
    x = rng.normal(size=3).astype(np.float32)
    for t in range(7):
        np.testing.assert_allclose(whole.act(t, x), (a.act(t, x) if t < 4 else b.act(t - 4, x)), rtol=1e-6)


def test_humanoid_terrain_height_field_health_and_observation() -> None:
    """policysearch/HumanoidTerrain-v0: the same ground under the 3D humanoid, across its width;
    in the lowest dip, health and the observed torso height are measured above the ground there
    (Humanoid-v5's healthy range 1.0-2.0); the observation is the 45-entry state."""
    from policysearch.envs.terrain import HUMANOID_ENV_ID, HUMANOID_SET_ENV_ID

    env = gym.make(HUMANOID_ENV_ID, terrain_seed=TEST_TERRAINS[0])
    env.reset(seed=0)
    inner = env.unwrapped
    profile = inner.profile
    geom = np.zeros(1, np.int32)
    for x, y in zip(np.linspace(2.0, 30.0, 30), np.linspace(-8.0, 8.0, 30)):
        dist = mujoco.mj_ray(inner.model, inner.data, np.array([x, y, 5.0]), np.array([0.0, 0.0, -1.0]), None, 1, -1, geom)
        assert abs((5.0 - dist) - ground_height(profile, x)) < 1e-4
    xs, h = profile
    i = int(np.argmin(h))
    qpos, qvel = inner.init_qpos.copy(), np.random.default_rng(0).uniform(-1, 1, inner.model.nv)
    qpos[0], qpos[2] = xs[i], h[i] + 1.1
    inner.set_state(qpos, qvel)
    obs = inner._get_obs()
    assert h[i] < -0.1 and inner.is_healthy  # absolute z = h + 1.1 < 1.0, Humanoid-v5's lower bound, yet healthy
    assert obs.shape == (inner.model.nq - 2 + inner.model.nv,) == (45,) and abs(obs[0] - 1.1) < 1e-9
    np.testing.assert_allclose(obs[1:], np.concatenate([qpos[3:], qvel]))
    import jax.numpy as jnp

    from policysearch.envs.problems import MujocoProblem

    problem = MujocoProblem(HUMANOID_ENV_ID, horizon=5, terrains=(TEST_TERRAINS[0],))  # GPS's input map sees the same
    np.testing.assert_allclose(np.asarray(problem.features_for(0)(jnp.asarray(np.concatenate([qpos, qvel]), jnp.float32))), obs,
                               rtol=1e-5, atol=1e-5)
    qpos[2] = h[i] + 0.9
    inner.set_state(qpos, qvel)
    assert not inner.is_healthy
    env.close()
    vec = make_env(HUMANOID_SET_ENV_ID, 2, 0)
    assert vec.spec.obs_dim == 45 and vec.spec.action_dim == 17
    vec.close()


def test_the_shipped_humanoid_runner_runs_on_a_test_terrain() -> None:
    """examples/humanoid-runner (the README's example runner, made by its command): a policysearch
    run folder that `load` reads, acting on the terrain task's 45-entry observation, and running
    300 steps on unseen test terrain 101 from the default start (it ran all 500 there)."""
    from pathlib import Path

    from policysearch.envs.terrain import HUMANOID_ENV_ID, HUMANOID_FLAT_ENV_ID
    from policysearch.run.evaluation import run_from_default_start
    from policysearch.run.snapshot import load

    runner = load(Path(__file__).resolve().parents[1] / "examples" / "humanoid-runner")
    assert runner.spec.env_id == HUMANOID_FLAT_ENV_ID and runner.spec.obs_dim == 45
    result = run_from_default_start(lambda t, obs, x: runner.act(obs), HUMANOID_ENV_ID, 300, terrain_seed=101)
    assert result["steps"] == 300 and not result["terminated"] and result["x_travelled"] > 2.0, result
