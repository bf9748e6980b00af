"""The rollout against the env stepping alone, interleaved so that the machine's drift cancels.

    python bench/rollout_vs_env.py [--env Hopper-v5] [--num-envs 8] [--steps 2048] [--rounds 15] [--jax]

Each round times, one right after the other on the same kind of EnvPool envs (same count and
threads), each on envs of its own made for it and closed after it, so that no other envs' threads
are alive during a timed span, in an order that turns each round: `--steps` steps of the env alone
with uniform random actions drawn beforehand (`common.env_only_rate`, after 50 warm-up steps), a
`Collector.collect` of as many steps with the default step ("fast": NumPy, the statistics merge
compiled by Numba), and one with NumPy alone ("numpy": what runs without Numba), each after one
warm-up batch. The policy is a fresh 64x64 actor-critic with observation normalisation and
reward scaling on. Printed: the median over rounds of each one's time and of its ratio to the env-only time of the same round. The
issue's target for the rollout is <= 1.1x. Random actions are not the policy's workload, though (a
MuJoCo step's cost depends on what the robot does: `profile_onpolicy.py`), so each rollout's two
batches are also replayed right after it on the env alone, from the same seed
(`common.RecordingEnv`, `common.replay_rate`: the rewards are compared step by step), and the
median ratio of the timed batch to its replay is printed as `x replay`. `--jax` then runs, in rounds of their own, the jitted
jax.numpy step (one JAX dispatch per vector step, as every rollout was before) against the env
alone: it is not in the same rounds because the env-only runs that follow it were slower (14,000
against 20,500 steps/s, 2026-12-03), which made the other ratios look better than they are. Run it
on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RecordingEnv, env_only_rate, load_average, replay_rate  # noqa: E402


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
    probe = make_env(args.env, 1, 0)
    spec = probe.spec
    probe.close()
    policy = Policy(spec.obs_dim, spec.action_dim, spec.action_kind)
    params = policy.init(jax.random.key(0))
    labels = {"env only": "env stepping alone", "fast": "rollout, default step", "numpy": "rollout, NumPy alone",
              "jax": "rollout, jitted step"}

    def env_only() -> float:
        return T * args.num_envs / env_only_rate(args.env, args.num_envs, args.steps)

    replays: dict[str, list[tuple[float, bool]]] = {}

    def rollout(step: str) -> float:
        env = RecordingEnv(make_env(args.env, args.num_envs, 0))
        collector = Collector(env, policy, NormConfig(), 0.99, step=step)  # type: ignore[arg-type]
        norm, key = NormState.create(policy.obs_dim, args.num_envs), jax.random.key(1)
        batch, norm, key = collector.collect(params, norm, key, T)  # warm-up (the first one compiles)
        jax.block_until_ready(batch)
        t0 = time.perf_counter()
        jax.block_until_ready(collector.collect(params, norm, key, T)[0])
        seconds = time.perf_counter() - t0
        env.close()
        rate, same = replay_rate(args.env, args.num_envs, 0, env.actions, env.rewards, skip=T)
        replays.setdefault(step, []).append((seconds * rate / (T * args.num_envs), same))
        return seconds

    def rounds(names: list[str]) -> dict[str, list[float]]:
        """Each timed span has the only EnvPool envs alive; the order turns each round."""
        runs = {"env only": env_only, **{name: partial(rollout, name) for name in names}}
        times: dict[str, list[float]] = {name: [] for name in runs}
        order = list(runs)
        for r in range(args.rounds):
            for name in order[r % len(order):] + order[:r % len(order)]:
                times[name].append(runs[name]())
        return times

    def show(times: dict[str, list[float]]) -> None:
        env_only_times = np.asarray(times["env only"])
        print(f"{'':24}{'ms/batch':>10}{'steps/s':>10}{'x env':>8}{'x replay':>10}")
        for name, ts in times.items():
            ts = np.asarray(ts)
            replay = ""
            if name in replays:
                ratios, same = zip(*replays[name])
                replay = f"{np.median(ratios):10.2f}" + ("" if all(same) else "  (a replay's rewards differed from its rollout's)")
            print(f"{labels[name]:24}{1e3 * np.median(ts):10.1f}{args.steps / np.median(ts):10,.0f}{np.median(ts / env_only_times):8.2f}{replay}")

    show(rounds(["fast", "numpy"]))
    if args.jax:
        show(rounds(["jax"]))
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
