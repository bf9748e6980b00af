"""Where an on-policy update's wall time goes, for PPO, TRPO and PG with their defaults, next to
the machine's limit: the env stepping alone (EnvPool, the same envs and threads, random actions,
no policy).

    python bench/profile_onpolicy.py [--steps 65536] [--env Hopper-v5] [--num-envs 8] [--peers]

For each algorithm one run of `--steps` steps with `--profile` (`policysearch.run.timing`: the
first update, which compiles, is left out), each followed by one more env-only run; then one
table: ms per update of each phase (env stepping, policy forward pass with the copy of its
outputs, the rest of the rollout's per-step work, the batch's transfer to the device, the update,
logging, checkpoints), the steps/s of the run and its ratio to the env-only rate (the best
env-only run, and the mean of the two just before and after the run: this host's env-only rate
moves by a third between runs a few seconds apart), and the rollout's time (env stepping, policy, the rest of
the per-step work) against the env-only time of the same steps.

A MuJoCo step costs more or less with what the robot does (contacts, resets): on Hopper-v5 random
uniform actions stepped at 23,200-23,700 steps/s, clipped N(0, 1) actions at 24,200-24,400 and
zero actions at 20,200-20,800 (a probe, 2026-12-04). So each run also records the actions it sent
(`common.RecordingEnv`) and, right after it, the same envs replay them alone (`common.replay_rate`:
made with the same seed, so the same trajectories, which the rewards confirm step by step): the
env stepping alone on the run's own workload, the exact limit for that run. `x env replay` and
`rollout x replay` are the ratios against it. With `--peers` (Hopper-v5 and 8
envs only; `pip install -e '.[bench]'`), Stable-Baselines3's PPO and sb3-contrib's TRPO then train
`--peer-steps` steps each with the arguments `ppo_vs_sb3.py` and `trpo_vs_sb3.py` match to our
defaults, on one torch thread (their fastest here), timed as those benchmarks time them (env
creation, model construction and `learn`), and the ratios of our rates to theirs are printed.
Benchmarks measure; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RecordingEnv, env_only_rate, load_average, replay_rate  # noqa: E402


def profile(algo: str, env_id: str, num_envs: int, steps: int, seed: int, run_dir: Path) -> tuple[dict, float, bool]:
    """One profiled run, then its own actions replayed on the env alone; returns (the run's
    profile, the replay's steps/s, whether the replay's rewards equal the run's)."""
    from unittest import mock

    import policysearch.run.train as train_module
    from policysearch.algos import ALGORITHMS
    from policysearch.run.config import RunConfig

    made: list[RecordingEnv] = []

    def recording(*args: object, **kwargs: object) -> RecordingEnv:
        made.append(RecordingEnv(make_env(*args, **kwargs)))
        return made[-1]

    make_env, config = train_module.make_env, ALGORITHMS[algo].config()
    run = RunConfig(env=env_id, total_steps=steps, num_envs=num_envs, seed=seed, run_dir=str(run_dir), progress=False, eval_episodes=0,
                    video=False, overwrite=True, profile=True, checkpoint_every=10**9)
    with mock.patch.object(train_module, "make_env", recording):
        summary = train_module.train(algo, run, config).summary["profile"]
    (env,) = made
    rate, same = replay_rate(env_id, num_envs, seed, env.actions, env.rewards, skip=config.steps_per_update // num_envs)
    return summary, rate, same


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=65_536)
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--algos", nargs="+", default=["ppo", "trpo", "pg"])
    p.add_argument("--peers", action="store_true", help="also time SB3 PPO and sb3-contrib TRPO and print the ratios")
    p.add_argument("--peer-steps", type=int, default=32_768)
    args = p.parse_args()
    if args.peers and (args.env, args.num_envs) != ("Hopper-v5", 8):
        p.error("--peers compares on the peers' benchmark task: Hopper-v5 with 8 envs")
    print(f"# {args.env}, {args.num_envs} envs, {args.steps:,} steps per run; {os.cpu_count()} cores; load average {load_average()}")
    rates = [env_only_rate(args.env, args.num_envs, args.steps, args.seed) for _ in range(3)]
    results, beside, replay = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for algo in args.algos:
            results[algo], *replay[algo] = profile(algo, args.env, args.num_envs, args.steps, args.seed, Path(tmp) / algo)
            rates.append(env_only_rate(args.env, args.num_envs, args.steps, args.seed))
            beside[algo] = (rates[-2] + rates[-1]) / 2  # the env-only runs just before and just after this one
    limit = max(rates)  # the machine's limit: the best env-only run (a run beside a busy neighbour is slower, not faster)
    phases = [k for k in next(iter(results.values())) if k not in ("total", "updates", "steps", "steps_per_second", "env_steps_per_second")]
    print(f"env stepping alone (EnvPool, random actions): {limit:,.0f} steps/s, the best of {len(rates)} runs: three first, "
          f"then one after each algorithm ({', '.join(f'{r:,.0f}' for r in rates)})")
    print(f"{'ms per update':<16}" + "".join(f"{a:>10}" for a in results))
    for phase in phases:
        print(f"{phase:<16}" + "".join(f"{1000 * r.get(phase, 0.0) / max(1, r['updates']):>10.1f}" for r in results.values()))
    print(f"{'total':<16}" + "".join(f"{1000 * r['total'] / max(1, r['updates']):>10.1f}" for r in results.values()))
    print(f"{'steps/s':<16}" + "".join(f"{r['steps_per_second']:>10,.0f}" for r in results.values()))
    print(f"{'x env-only':<16}" + "".join(f"{r['steps_per_second'] / limit:>10.2f}" for r in results.values())
          + "  (against the best env-only run)")
    print(f"{'x env beside':<16}" + "".join(f"{r['steps_per_second'] / beside[a]:>10.2f}" for a, r in results.items())
          + "  (against the mean of the env-only runs just before and after this algorithm's)")
    print(f"{'env in the run':<16}" + "".join(f"{r['env_steps_per_second']:>10,.0f}" for r in results.values()) + "  (steps/s over the env phase)")
    rollout = {a: sum(r.get(k, 0.0) for k in ("env", "policy", "rollout other")) / max(1, r["updates"]) for a, r in results.items()}
    print(f"{'rollout x env':<16}" + "".join(f"{rollout[a] * limit / r['steps'] * r['updates']:>10.2f}" for a, r in results.items())
          + "  (env + policy + rest of the rollout, against the env-only time of as many steps)")
    print(f"{'env replay':<16}" + "".join(f"{replay[a][0]:>10,.0f}" for a in results)
          + "  (steps/s: the env alone on the run's own actions, replayed after it; rewards equal the run's: "
          + ", ".join(f"{a} {'yes' if replay[a][1] else 'NO'}" for a in results) + ")")
    print(f"{'x env replay':<16}" + "".join(f"{r['steps_per_second'] / replay[a][0]:>10.2f}" for a, r in results.items())
          + "  (the run against its own actions' env-only rate)")
    print(f"{'rollout x replay':<16}" + "".join(f"{rollout[a] * replay[a][0] / r['steps'] * r['updates']:>10.2f}" for a, r in results.items())
          + "  (env + policy + rest of the rollout, against the replay's time of as many steps)")
    if args.peers:
        peers(results, args)


def peers(results: dict, args: argparse.Namespace) -> None:
    """Train SB3 PPO and sb3-contrib TRPO as the side-by-side benchmarks do; print our ratios."""
    import torch

    import common

    from policysearch.algos import ALGORITHMS
    from policysearch.run.peers import env_kl_dims, sb3_class, sb3_kwargs

    torch.set_num_threads(1)
    for algo in ("ppo", "trpo"):
        if algo not in results:
            continue
        cls = sb3_class(f"sb3-{algo}")
        kwargs = sb3_kwargs(algo, ALGORITHMS[algo].config(), common.NUM_ENVS, env_kl_dims(common.ENV_ID))
        run = common.run_sb3(cls, kwargs, args.peer_steps, args.seed, "dummy")
        ours = results[algo]["steps_per_second"]
        print(f"{cls.__module__.split('.')[0]} {cls.__name__}: {run['steps_per_s']:,.0f} steps/s over {run['steps']:,} steps "
              f"(1 torch thread); ours {ours:,.0f}: {ours / run['steps_per_s']:.1f}x")


if __name__ == "__main__":
    main()
