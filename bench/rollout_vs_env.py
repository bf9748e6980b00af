"""The rollout against the env stepping alone, interleaved so that the machine's drift cancels.

    python bench/rollout_vs_env.py [--env Hopper-v5] [--num-envs 8] [--steps 2048] [--rounds 15] [--jax]

Each round times, one right after the other on the same kind of EnvPool envs (same count and
threads): `--steps` steps of the env alone with uniform random actions drawn beforehand, then a
`Collector.collect` of as many steps with the default step ("fast": NumPy, the statistics merge
compiled by Numba), then one with NumPy alone ("numpy": what runs without Numba). The policy is a
fresh 64x64 actor-critic with observation normalisation and reward scaling on. Printed: the median
over rounds of each one's time and of its ratio to the env-only time of the same round. The
issue's target for the rollout is <= 1.1x. `--jax` then runs, in rounds of their own, the jitted
jax.numpy step (one JAX dispatch per vector step, as every rollout was before) against the env
alone: it is not in the same rounds because the env-only runs that follow it were slower (14,000
against 20,500 steps/s, 2026-12-03), which made the other ratios look better than they are. Run it
on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=2048, help="env steps per timed batch (default: PPO's steps per update)")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--jax", action="store_true", help="also time the jitted reference step, in rounds of its own")
    args = p.parse_args()

    import jax

    from policysearch.core.normalize import NormConfig, NormState
    from policysearch.core.policies import Policy
    from policysearch.envs import make_env
    from policysearch.envs.rollout import Collector

    print(f"# {args.env}, {args.num_envs} envs, {args.steps:,} steps per batch, {args.rounds} rounds; load average {load_average()}")
    T = args.steps // args.num_envs
    plain = make_env(args.env, args.num_envs, 0)
    plain.reset()
    low, high = plain.action_low, plain.action_high
    actions = np.random.default_rng(0).uniform(low, high, (T, args.num_envs, len(low))).astype(np.float32)
    labels = {"fast": "rollout, default step", "numpy": "rollout, NumPy alone", "jax": "rollout, jitted step"}

    def rounds(names: list[str]) -> dict[str, list[float]]:
        collectors, state = {}, {}
        for name in names:
            env = make_env(args.env, args.num_envs, 0)
            policy = Policy(env.spec.obs_dim, env.spec.action_dim, env.spec.action_kind)
            collectors[name] = Collector(env, policy, NormConfig(), 0.99, step=name)
            state[name] = (policy.init(jax.random.key(0)), NormState.create(policy.obs_dim, args.num_envs), jax.random.key(1))

        def collect(name: str) -> None:
            params, norm, key = state[name]
            batch, norm, key = collectors[name].collect(params, norm, key, T)
            jax.block_until_ready(batch)
            state[name] = (params, norm, key)

        for name in collectors:  # compile and warm up
            collect(name)
        times: dict[str, list[float]] = {"env only": [], **{name: [] for name in names}}
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for t in range(T):
                plain.step(actions[t])
            times["env only"].append(time.perf_counter() - t0)
            for name in collectors:
                t0 = time.perf_counter()
                collect(name)
                times[name].append(time.perf_counter() - t0)
        for c in collectors.values():
            c.env.close()
        return times

    def show(times: dict[str, list[float]]) -> None:
        env_only = np.asarray(times["env only"])
        print(f"{'':24}{'ms/batch':>10}{'steps/s':>10}{'x env':>8}")
        for name, ts in times.items():
            ts = np.asarray(ts)
            print(f"{labels.get(name, 'env stepping alone'):24}{1e3 * np.median(ts):10.1f}{args.steps / np.median(ts):10,.0f}"
                  f"{np.median(ts / env_only):8.2f}")

    show(rounds(["fast", "numpy"]))
    if args.jax:
        show(rounds(["jax"]))
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
