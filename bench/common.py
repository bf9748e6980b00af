"""What the policysearch-vs-Stable-Baselines3 benchmarks share (`ppo_vs_sb3.py`, `trpo_vs_sb3.py`).

Both sides train on Hopper-v5 with 8 envs, separate 64x64 tanh actor and critic MLPs (orthogonal
init, log-std 0), observation normalisation and reward scaling (clip 10), in one process. The SB3
side takes every setting from our config through `policysearch.run.peers.sb3_kwargs` (the same
mapping a sweep's sb3-ppo / sb3-trpo trials use), so the two cannot drift apart. SB3 runs on CPU over `make_vec_env(..., vec_env_cls=DummyVecEnv)` (SubprocVecEnv with
`--sb3-vec subproc`) wrapped in VecNormalize; ours uses its default backend (EnvPool for Hopper-v5
where installed; `--our-backend gymnasium` for Gymnasium's sync vector env).

Short mode (default) measures end-to-end training throughput, wall time around the whole
`train(...)` call for ours and around env creation + model construction + `learn(...)` for SB3:
  * ours warm:       after a warm-up in the same process: a 4096-step run with its learning-curve
                     plot. It pays for imports, the env-step/normalisation jits, matplotlib and the
                     compile of the algorithm's update, which is cached per process for each
                     (config, policy) whatever the run's length (PPO's annealing horizon is an
                     ordinary argument), so the timed run compiles nothing.
  * ours incl. warm-up: warm-up and timed run together: steps of both / time of both.
  * ours steady:     from the timed run's metrics.csv, excluding the first update.
  * SB3:             no warm-up (PyTorch has no compile step).
`--long` trains both for 1M steps and evaluates each trained policy deterministically for 10
episodes on fresh envs (SB3 with its VecNormalize statistics frozen).
Run it on an otherwise idle machine: with torch set to every core, SB3 slows down several-fold
when another process takes a core, and the printed load average cannot tell (it lags a minute).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

ENV_ID = "Hopper-v5"
NUM_ENVS = 8
WARMUP_STEPS = 4096
LONG_STEPS = 1_000_000
EVAL_EPISODES = 10
EVAL_SEED = 10_000


def _our_run(steps: int, seed: int, run_dir: Path, backend: str):
    from policysearch.run.train import RunConfig

    return RunConfig(env=ENV_ID, total_steps=steps, num_envs=NUM_ENVS, seed=seed, run_dir=str(run_dir), backend=backend,
                     progress=False, eval_episodes=0, video=False, overwrite=True)


def warm_up(algo: str, config: Any, seed: int, run_dir: Path, backend: str) -> tuple[int, float]:
    """Train WARMUP_STEPS (imports, jits, the update's compile, the plot); (steps done, wall s)."""
    from policysearch.run.train import train

    t0 = time.perf_counter()
    train(algo, _our_run(WARMUP_STEPS, seed, run_dir, backend), config)
    return WARMUP_STEPS, time.perf_counter() - t0


def steady_steps_per_s(rows: list[dict]) -> float | None:
    """Steps/s between the ends of the first and the last update, from metrics.csv rows."""
    if len(rows) < 2:
        return None
    return (int(rows[-1]["step"]) - int(rows[0]["step"])) / (float(rows[-1]["wall_time"]) - float(rows[0]["wall_time"]))


def run_ours(algo: str, config: Any, steps: int, seed: int, run_dir: Path, backend: str) -> dict:
    """Warm up, then time `train(algo, RunConfig(...), config)` for `steps` steps."""
    from policysearch.run.train import train

    warm_done, warm_wall = warm_up(algo, config, seed, run_dir / "ours-warmup", backend)
    t0 = time.perf_counter()
    res = train(algo, _our_run(steps, seed, run_dir / "ours", backend), config)
    wall = time.perf_counter() - t0
    with open(res.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    done = int(rows[-1]["step"])  # train() rounds up to whole updates
    train_ret = rows[-1]["episode_return_mean"]
    return {
        "agent": res.agent,
        "backend": json.loads((res.run_dir / "config.json").read_text())["backend"],
        "steps": done, "wall_s": wall, "steps_per_s": done / wall,
        "warmup_steps": warm_done, "warmup_wall_s": warm_wall,
        "steps_per_s_incl_warmup": (done + warm_done) / (wall + warm_wall),
        "steps_per_s_steady": steady_steps_per_s(rows),
        "first_update_s": float(rows[0]["wall_time"]),
        "train_return_last100": float(train_ret) if train_ret else None,
    }


def make_sb3_env(n_envs: int, seed: int, vec: str, gamma: float, training: bool = True):
    """SB3 vec env of ENV_ID in VecNormalize with our default normalisation (`run.peers.make_sb3_env`)."""
    from policysearch.run.config import RunConfig
    from policysearch.run.peers import make_sb3_env as make

    return make(ENV_ID, n_envs, seed, RunConfig(env=ENV_ID), gamma, vec, training)


def run_sb3(model_cls: type, kwargs: dict, steps: int, seed: int, vec: str) -> dict:
    """Time env creation + `model_cls("MlpPolicy", env, seed=seed, **kwargs)` + `learn(steps)`."""
    import numpy as np

    t0 = time.perf_counter()
    env = make_sb3_env(NUM_ENVS, seed, vec, kwargs["gamma"])
    model = model_cls("MlpPolicy", env, seed=seed, **kwargs)
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t0
    rets = [ep["r"] for ep in model.ep_info_buffer]
    return {
        "model": model, "env": env, "vec": vec,
        "steps": int(model.num_timesteps), "wall_s": wall, "steps_per_s": model.num_timesteps / wall,
        "train_return_last100": float(np.mean(rets)) if rets else None,
    }


def evaluate_sb3(model: Any, train_env: Any) -> dict:
    """EVAL_EPISODES deterministic episodes on a fresh env with the training obs statistics frozen."""
    import numpy as np
    from stable_baselines3.common.evaluation import evaluate_policy

    eval_env = make_sb3_env(1, EVAL_SEED, "dummy", train_env.gamma, training=False)
    eval_env.obs_rms = train_env.obs_rms.copy()
    returns, lengths = evaluate_policy(model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True,
                                       return_episode_rewards=True)
    eval_env.close()
    return {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
            "length_mean": float(np.mean(lengths)), "episodes": len(returns)}


def parse_args(doc: str) -> argparse.Namespace:
    """The flags every benchmark takes; `doc`'s first paragraph is the description."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog="See bench/common.py for what each figure includes.")
    p.add_argument("--steps", type=int, default=100_000, help="training steps of each in short mode (default 100000)")
    p.add_argument("--long", action="store_true", help=f"train {LONG_STEPS:,} steps each, then evaluate {EVAL_EPISODES} episodes")
    p.add_argument("--sb3-vec", choices=("dummy", "subproc"), default="dummy", help="SB3 vector env class (default dummy)")
    p.add_argument("--our-backend", choices=("auto", "envpool", "gymnasium"), default="auto", help="our env backend (default auto)")
    p.add_argument("--seed", type=int, nargs="+", default=[0],
                   help="seed(s); several run one after another and, with --long, end with the mean over seeds")
    p.add_argument("--torch-threads", type=int, help="torch threads for SB3 (default: every core)")
    p.add_argument("--run-dir", type=Path, help="where our runs are written (default: a temporary directory)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    return p.parse_args()


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def env_only_rate(env_id: str, num_envs: int, steps: int, seed: int = 0) -> float:
    """Steps/s of the env stepping alone: EnvPool with the training run's envs and threads,
    uniform random actions drawn beforehand (so the loop is the step call alone), on envs made
    for this call and closed after it (`profile_onpolicy.py`, `rollout_vs_env.py`)."""
    import numpy as np

    from policysearch.envs import make_env

    env = make_env(env_id, num_envs, seed)
    env.reset()
    rng = np.random.default_rng(seed)
    low, high = env.action_low, env.action_high
    n = steps // num_envs
    actions = rng.uniform(low, high, (min(n, 256), num_envs, len(low))).astype(np.float32)
    for t in range(50):  # warm-up
        env.step(actions[t % len(actions)])
    t0 = time.perf_counter()
    for t in range(n):
        env.step(actions[t % len(actions)])
    seconds = time.perf_counter() - t0
    env.close()
    return n * num_envs / seconds


class RecordingEnv:
    """A VecEnv that keeps what a training run sent it and got back: every step's actions (the
    rollout's own array, which it allocates anew for each batch) and a copy of its rewards, so
    that `replay_rate` can step the same envs through the same trajectories without the run."""

    def __init__(self, env: Any) -> None:
        self.env, self.actions, self.rewards = env, [], []

    def step(self, actions: Any) -> Any:
        out = self.env.step(actions)
        self.actions.append(actions)
        self.rewards.append(out[1].copy())
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


def replay_rate(env_id: str, num_envs: int, seed: int, actions: list, rewards: list, skip: int) -> tuple[float, bool]:
    """Steps/s of the env stepping alone on a recorded run's own actions (`RecordingEnv`): envs
    made and reset as the run made them (the same id, count and seed), stepped through every
    recorded action, timed after the first `skip` steps (the run's first update, which its
    profile leaves out); each step's rewards copied, as the recording did. Returns (rate, whether
    every step's rewards equal the run's, which says the replay stepped the same trajectories)."""
    import numpy as np

    from policysearch.envs import make_env

    env = make_env(env_id, num_envs, seed)
    env.reset()
    got = []
    for a in actions[:skip]:
        got.append(env.step(a)[1].copy())
    t0 = time.perf_counter()
    for a in actions[skip:]:
        got.append(env.step(a)[1].copy())
    seconds = time.perf_counter() - t0
    env.close()
    same = len(got) == len(rewards) and all(np.array_equal(g, r) for g, r in zip(got, rewards))
    return (len(actions) - skip) * num_envs / seconds, same


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)"


def print_table(ours: dict, sb3: dict, long: bool) -> None:
    rows = [
        (f"ours warm ({ours['backend']})", ours["steps"], ours["wall_s"], ours["steps_per_s"], ours),
        ("ours incl. warm-up", ours["steps"] + ours["warmup_steps"], ours["wall_s"] + ours["warmup_wall_s"],
         ours["steps_per_s_incl_warmup"], None),
        ("ours steady (no update 1)", None, None, ours["steps_per_s_steady"], None),
        (f"SB3 ({sb3['vec']})", sb3["steps"], sb3["wall_s"], sb3["steps_per_s"], sb3),
    ]
    head = f"{'run':<27} {'steps':>9} {'wall s':>8} {'steps/s':>8} {'train ret':>9}"
    if long:
        head += f" {'eval return':>16}"
    print("\n" + head + "\n" + "-" * len(head))
    for name, n, wall, sps, r in rows:
        line = f"{name:<27} {fmt(n, ',d'):>9} {fmt(wall, '.1f'):>8} {fmt(sps, '.0f'):>8} "
        line += f"{fmt(r and r['train_return_last100'], '.0f'):>9}"
        if long:
            e = r.get("eval") if r else None
            ev = f"{e['return_mean']:.0f} +- {e['return_std']:.0f}" if e else "-"
            line += f" {ev:>16}"
        print(line)
    base = sb3["steps_per_s"]
    steady = ours["steps_per_s_steady"]
    print(f"\nratio ours/SB3 steps/s: {ours['steps_per_s'] / base:.2f} (warm), "
          f"{ours['steps_per_s_incl_warmup'] / base:.2f} (incl. warm-up), {fmt(steady and steady / base, '.2f')} (steady)")
    print(f"ours, first timed update (rollout + update): {ours['first_update_s']:.2f} s")


def run_pair(algo: str, config: Any, sb3_cls: type, kwargs: dict, steps: int, seed: int, args: argparse.Namespace) -> tuple[dict, dict]:
    """Ours then SB3 for `steps` steps from `seed`; with --long, each evaluated afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = (args.run_dir / f"seed{seed}") if args.run_dir else Path(tmp)
        ours = run_ours(algo, config, steps, seed, run_dir, args.our_backend)
        print(f"ours done: {ours['steps']:,} steps in {ours['wall_s']:.1f} s", flush=True)
        sb3 = run_sb3(sb3_cls, kwargs, steps, seed, args.sb3_vec)
        print(f"SB3 done: {sb3['steps']:,} steps in {sb3['wall_s']:.1f} s", flush=True)
        if args.long:
            from policysearch.run.evaluation import evaluate

            ours["eval"] = evaluate(ours["agent"], ENV_ID, episodes=EVAL_EPISODES, seed=EVAL_SEED)
            sb3["eval"] = evaluate_sb3(sb3["model"], sb3["env"])
        sb3["env"].close()
    return ours, sb3


def print_seed_summary(results: list[tuple[int, dict, dict]]) -> dict:
    """Per-seed evaluation returns of both and their mean and std over seeds; returns the figures."""
    import numpy as np

    print(f"\n{'seed':>5} {'ours eval':>16} {'SB3 eval':>16}")
    for seed, ours, sb3 in results:
        print(f"{seed:>5} {ours['eval']['return_mean']:>10.0f} +- {ours['eval']['return_std']:<3.0f}"
              f" {sb3['eval']['return_mean']:>10.0f} +- {sb3['eval']['return_std']:<3.0f}")
    summary = {}
    for name, i in (("ours", 1), ("sb3", 2)):
        means = np.array([r[i]["eval"]["return_mean"] for r in results])
        summary[name] = {"seed_means": means.tolist(), "mean": float(means.mean()), "std": float(means.std())}
    print(f"{'mean':>5} {summary['ours']['mean']:>10.0f} +- {summary['ours']['std']:<3.0f}"
          f" {summary['sb3']['mean']:>10.0f} +- {summary['sb3']['std']:<3.0f}   (mean and std over seeds of the 10-episode means)")
    return summary


def main(doc: str, algo: str, config: Any) -> None:
    """Parse the common flags, run ours (`train(algo, ..., config)`) and its peer (`run.peers`:
    SB3's class with the arguments that mirror `config`) for each seed, print the tables and
    write the JSON."""
    from policysearch.run.peers import env_kl_dims, sb3_class, sb3_kwargs

    args = parse_args(doc)
    steps = LONG_STEPS if args.long else args.steps
    sb3_cls = sb3_class(f"sb3-{algo}")
    kwargs = sb3_kwargs(algo, config, NUM_ENVS, env_kl_dims(ENV_ID))  # run_sb3 adds each run's seed

    import jax
    import torch

    cores = os.cpu_count() or 1
    torch.set_num_threads(args.torch_threads or cores)
    print(f"{platform.processor() or platform.machine()}, {cores} cores; torch {torch.__version__} "
          f"num_threads={torch.get_num_threads()}; jax {jax.__version__} on {jax.default_backend()}")
    print(f"{algo.upper()} vs SB3 {sb3_cls.__name__}: {ENV_ID}, {NUM_ENVS} envs, {steps:,} steps each"
          f"{' (long)' if args.long else ''}, seed(s) {' '.join(map(str, args.seed))}")
    print(f"load average at the start: {load_average()}; other processes skew the timings", flush=True)

    results = []
    for seed in args.seed:
        ours, sb3 = run_pair(algo, config, sb3_cls, kwargs, steps, seed, args)
        print(f"\nseed {seed}; load average at the end: {load_average()}")
        print_table(ours, sb3, args.long)
        results.append((seed, ours, sb3))
    summary = print_seed_summary(results) if args.long and len(results) > 1 else None

    if args.json:
        drop = {"agent", "model", "env"}
        out = {
            "algo": algo, "env": ENV_ID, "num_envs": NUM_ENVS, "steps": steps, "long": args.long, "seeds": args.seed,
            "cores": cores, "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "jax": jax.__version__,
            "our_config": dataclasses.asdict(config), "sb3_class": sb3_cls.__name__,
            "sb3_kwargs": json.loads(json.dumps(kwargs, default=repr)),
            "runs": [
                {"seed": seed, "ours": {k: v for k, v in o.items() if k not in drop},
                 "sb3": {k: v for k, v in b.items() if k not in drop},
                 "ratio_ours_over_sb3": o["steps_per_s"] / b["steps_per_s"]}
                for seed, o, b in results
            ],
            "eval_over_seeds": summary,
        }
        args.json.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
