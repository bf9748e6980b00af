"""Benchmark policysearch PPO against Stable-Baselines3 PPO on Hopper-v5, in one process.

Both run PPOConfig's defaults: 2048 steps per update over 8 envs, 10 epochs of minibatches of 64,
Adam 3e-4 annealed linearly to 0, gamma 0.99, GAE lambda 0.95, clip 0.2, no entropy bonus,
vf_coef 0.5, grad-norm clip 0.5. The shared setup (networks, normalisation, env backends) and what
each printed figure includes are described in bench/common.py.

Run (from the repository root, with `pip install -e '.[bench]'`):
    python bench/ppo_vs_sb3.py                    # short: 100k steps each
    python bench/ppo_vs_sb3.py --steps 50000 --sb3-vec subproc --json bench.json
    python bench/ppo_vs_sb3.py --long --json long.json
"""

from __future__ import annotations

import common


def main() -> None:
    from policysearch.algos import PPOConfig

    common.main(__doc__, "ppo", PPOConfig())


if __name__ == "__main__":
    main()
