"""Evaluate a trained policy on fresh episodes of its environment."""

from __future__ import annotations

import numpy as np

from policysearch.envs import Backend, make_env
from policysearch.snapshot import TrainedPolicy


def evaluate(
    agent: TrainedPolicy, env_id: str, episodes: int = 10, seed: int = 10_000, deterministic: bool = True,
    backend: Backend = "auto", max_envs: int = 8,
) -> dict[str, float]:
    """Run `episodes` episodes (spread evenly over up to max_envs envs) and summarise them:
    return_mean, return_std, length_mean, episodes."""
    num_envs = min(episodes, max_envs)
    quota = np.array([episodes // num_envs + (i < episodes % num_envs) for i in range(num_envs)])
    env = make_env(env_id, num_envs, seed, backend)
    obs = env.reset()
    returns, lengths = [], []
    ep_ret, ep_len = np.zeros(num_envs), np.zeros(num_envs, int)
    done_count = np.zeros(num_envs, int)
    prev_done = np.zeros(num_envs, bool)
    while (done_count < quota).any():
        obs, reward, terminated, truncated = env.step(agent.act(obs, deterministic))
        valid = ~prev_done
        ep_ret += reward * valid
        ep_len += valid
        done = terminated | truncated
        for i in np.flatnonzero(done & valid):
            if done_count[i] < quota[i]:
                returns.append(ep_ret[i])
                lengths.append(ep_len[i])
                done_count[i] += 1
            ep_ret[i], ep_len[i] = 0.0, 0
        prev_done = done
    env.close()
    return {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "episodes": len(returns),
        "length_mean": float(np.mean(lengths)),
    }
