"""Benchmark policysearch TRPO against sb3-contrib TRPO on Hopper-v5, in one process.

Both run TRPOConfig's defaults (sb3-contrib's): 2048 steps per update over 8 envs, mean-KL bound
0.01, 15 conjugate-gradient iterations with damping 0.1, a backtracking line search of 10 steps
shrinking by 0.8, normalised advantages, gamma 0.99, GAE lambda 0.95, and a critic fitted by Adam
1e-3 for 10 epochs of minibatches of 128. The shared setup (networks, normalisation, env
backends) and what each printed figure includes are described in bench/common.py.

Run (from the repository root, with `pip install -e '.[bench]'`):
    python bench/trpo_vs_sb3.py                   # short: 100k steps each
    python bench/trpo_vs_sb3.py --steps 50000 --json trpo.json
    python bench/trpo_vs_sb3.py --long --json trpo-long.json
"""

from __future__ import annotations

import common


def main() -> None:
    from policysearch.algos import TRPOConfig

    common.main(__doc__, "trpo", TRPOConfig())


if __name__ == "__main__":
    main()
