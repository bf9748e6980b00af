"""The two env backends are the same task: EnvPool's and Gymnasium's MuJoCo v5 envs, through the
`VecEnv` training uses, step alike from the same state over whole episodes, end them at the same
step, and give the reset row (reward 0) at the same place. Each episode's first state is copied
from EnvPool into Gymnasium's model (their reset noise comes from different generators)."""

from __future__ import annotations

import numpy as np
import pytest

from policysearch.envs import make_env


def _copy_state(obs: np.ndarray, gym_env: object) -> None:
    """Set the Gymnasium env's MuJoCo state to the one EnvPool's observation shows (the
    observation leaves out the root's x, which no dynamics or reward term depends on)."""
    model = gym_env.unwrapped.model
    qpos = np.concatenate([[0.0], obs[: model.nq - 1]]).astype(np.float64)
    gym_env.unwrapped.set_state(qpos, obs[model.nq - 1: model.nq - 1 + model.nv].astype(np.float64))


@pytest.mark.parametrize("env_id,steps", [("HalfCheetah-v5", 2_100), ("Hopper-v5", 600)])
def test_envpool_and_gymnasium_step_the_same_episodes(env_id: str, steps: int) -> None:
    pool, gym_vec = make_env(env_id, 1, 3, backend="envpool"), make_env(env_id, 1, 3, backend="gymnasium")
    gym_env = gym_vec._env.envs[0]
    obs = pool.reset()
    gym_vec.reset()
    _copy_state(obs[0], gym_env)
    rng = np.random.default_rng(0)
    actions = np.clip(np.cumsum(rng.normal(0, 0.3, (steps, 1, pool.spec.action_dim)), axis=0) * 0.3, -1, 1).astype(np.float32)
    ends, fresh = 0, False
    for t in range(steps):
        a_obs, a_rew, a_term, a_trunc = pool.step(actions[t])
        b_obs, b_rew, b_term, b_trunc = gym_vec.step(actions[t])
        assert (a_term[0], a_trunc[0]) == (b_term[0], b_trunc[0]), t
        if fresh:  # the reset row: reward 0 on both; the new episode starts from EnvPool's state
            assert a_rew[0] == b_rew[0] == 0.0, t
            _copy_state(a_obs[0], gym_env)
        else:
            np.testing.assert_allclose(b_obs, a_obs, atol=1e-4, err_msg=f"step {t}")
            np.testing.assert_allclose(b_rew, a_rew, rtol=1e-5, atol=1e-5, err_msg=f"step {t}")
        fresh = bool(a_term[0] or a_trunc[0])
        ends += fresh
    pool.close()
    gym_vec.close()
    assert ends >= 2  # HalfCheetah truncates twice; Hopper, falling under these actions, ends early


def test_envpool_threads_are_pinned_only_where_they_fill_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker i on core i where the workers are as many as the cores the process may use and those
    are cores 0..n-1; else the OS places them (runs sharing a bigger machine must not pile onto its
    first cores), and POLICYSEARCH_PIN_THREADS=0 turns pinning off. A pinned pool steps the same
    episodes as an unpinned one."""
    from policysearch.envs import vector

    monkeypatch.setattr(vector.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert vector.env_thread_affinity(2) == 0
    assert vector.env_thread_affinity(1) == -1  # fewer workers than cores
    monkeypatch.setattr(vector.os, "sched_getaffinity", lambda pid: {2, 3}, raising=False)  # taskset -c 2,3
    assert vector.env_thread_affinity(2) == -1
    monkeypatch.setattr(vector.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setenv("POLICYSEARCH_PIN_THREADS", "0")
    assert vector.env_thread_affinity(2) == -1

    out = []
    for pin in ("1", "0"):
        monkeypatch.setenv("POLICYSEARCH_PIN_THREADS", pin)
        monkeypatch.setattr(vector.os, "sched_getaffinity", lambda pid: set(range(2)), raising=False)
        env = make_env("Hopper-v5", 2, 5, backend="envpool")
        first, rng, steps = env.reset(), np.random.default_rng(1), []
        for _ in range(200):
            steps.append(env.step(rng.uniform(-1, 1, (2, 3)).astype(np.float32)))
        env.close()
        out.append(np.concatenate([first.ravel()] + [np.concatenate([o.ravel(), r.ravel()]) for o, r, _, _ in steps]))
    np.testing.assert_array_equal(out[0], out[1])
