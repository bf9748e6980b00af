"""Learning tests (slow; CI runs them, `make test-fast` skips them). Thresholds are far above
what the random policy gets: about 22 on CartPole-v1 and about 8 on InvertedPendulum-v5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policysearch.algos import ALGORITHMS
from policysearch.run.evaluation import evaluate
from policysearch.run.snapshot import TrainedPolicy
from policysearch.run.train import RunConfig, train


def _random_return(env: str, policy: TrainedPolicy) -> float:
    """Mean return of uniformly random actions, for the record of how far above it we are."""
    import gymnasium as gym

    rng = np.random.default_rng(0)
    e = gym.make(env)
    returns = []
    for ep in range(10):
        e.reset(seed=ep)
        e.action_space.seed(int(rng.integers(1 << 30)))
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, _ = e.step(e.action_space.sample())
            total += float(r)
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algo", "env", "threshold", "options"),
    [
        ("ppo", "InvertedPendulum-v5", 1000.0, {}),
        ("ppo", "CartPole-v1", 475.0, {}),
        ("ppo", "CartPole-v1", 475.0, {"loss": "kl_penalty"}),
        ("trpo", "InvertedPendulum-v5", 1000.0, {}),
        ("trpo", "CartPole-v1", 475.0, {}),
        ("pg", "CartPole-v1", 475.0, {"estimator": "trajectory"}),
    ],
)
def test_learns_within_100k_steps(tmp_path: Path, algo: str, env: str, threshold: float, options: dict) -> None:
    run = RunConfig(env=env, total_steps=100_000, seed=0, num_envs=8, run_dir=str(tmp_path / "r"), progress=False, eval_episodes=0, video=False)
    config_cls = ALGORITHMS[algo].config
    result = train(algo, run, config_cls(**options))
    score = evaluate(result.agent, env, episodes=10, seed=123)
    assert _random_return(env, result.agent) < threshold / 10
    assert score["return_mean"] >= threshold, score
