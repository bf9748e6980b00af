"""policysearch/Walker2dTerrain-v0: the height field MuJoCo collides with is the documented
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
