"""The env stepping alone, EnvPool against Gymnasium's synchronous vector env, through the same
`VecEnv` that training uses, interleaved so that the machine's drift cancels.

    python bench/env_backends.py [--envs Hopper-v5 HalfCheetah-v5] [--num-envs 2 8] [--steps 4096] [--rounds 7]

Each round times, for every (env, envs) pair, `--steps` env steps (all envs together) with
uniform random actions drawn beforehand, on EnvPool (one thread per env up to the cores, as
`vector.env_threads` gives) and then on Gymnasium (one thread). Printed: the median steps/s over
rounds of each backend and the ratio Gymnasium / EnvPool (above 1: Gymnasium is faster), the env's
part of choosing `--backend` (training adds the resets and the policy; docs/benchmarks.md). Run it
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


def steps_per_second(env, actions: np.ndarray) -> float:
    env.reset()
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    return len(actions) * env.num_envs / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", default=["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5"])
    p.add_argument("--num-envs", type=int, nargs="+", default=[2, 8])
    p.add_argument("--steps", type=int, default=4096, help="env steps per timed batch, all envs together")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()

    from policysearch.envs.vector import VecEnv

    print(f"load average before: {load_average()}")
    pairs = [(e, n) for e in args.envs for n in args.num_envs]
    envs = {(e, n, b): VecEnv(e, n, seed=0, backend=b) for e, n in pairs for b in ("envpool", "gymnasium")}
    rng = np.random.default_rng(0)
    actions = {}
    for e, n in pairs:  # the same actions for both backends
        low, high = envs[(e, n, "envpool")].action_low, envs[(e, n, "envpool")].action_high
        actions[(e, n)] = rng.uniform(low, high, (args.steps // n, n, len(low))).astype(np.float32)
    rates: dict[tuple, list[float]] = {k: [] for k in envs}
    for _ in range(args.rounds):
        for e, n in pairs:
            for b in ("envpool", "gymnasium"):
                rates[(e, n, b)].append(steps_per_second(envs[(e, n, b)], actions[(e, n)]))
    print("| env | envs | EnvPool steps/s | Gymnasium steps/s | Gymnasium / EnvPool |")
    print("| --- | --- | --- | --- | --- |")
    for e, n in pairs:
        pool, gym = np.median(rates[(e, n, "envpool")]), np.median(rates[(e, n, "gymnasium")])
        print(f"| {e} | {n} | {pool:,.0f} | {gym:,.0f} | {gym / pool:.2f} |")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
