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


def peer() -> tuple[type, dict, object]:
    """(sb3-contrib's TRPO, its arguments beyond `common.sb3_matched_kwargs`, our TRPOConfig they match)."""
    from sb3_contrib import TRPO

    from policysearch.algos import TRPOConfig

    c = TRPOConfig()
    sb3 = dict(
        batch_size=c.critic_minibatch_size, learning_rate=c.learning_rate, n_critic_updates=c.critic_epochs,
        target_kl=c.max_kl, cg_max_steps=c.cg_iterations, cg_damping=c.cg_damping,
        line_search_shrinking_factor=c.line_search_shrink, line_search_max_iter=c.line_search_steps,
        normalize_advantage=c.normalize_advantage,
    )
    return TRPO, sb3, c


def main() -> None:
    cls, sb3, c = peer()
    common.main(__doc__, "trpo", c, cls, sb3)


if __name__ == "__main__":
    main()
