"""Inference latency of an exported policy, one observation at a time (batch 1), as a robot's
control loop calls it: onnxruntime on the ONNX export, the NumPy-only loader on the .npz export,
and our own policy (`TrainedPolicy.act`, NumPy; and the jitted JAX step it is tested against).
A 1 kHz loop has 1,000 us per step for everything; the policy should take a small part of it.

Run (from the repository root):
    python bench/export_latency.py                          # trains a 64x64 PPO policy on Hopper-v5 for 4,096 steps first
    python bench/export_latency.py --run-dir runs/hopper    # any run folder with a policy
Each figure: the median and the 99th percentile over --calls calls after --warmup calls, on
observations from the env, one thread for onnxruntime.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def timings(fn, observations: np.ndarray, warmup: int, calls: int) -> np.ndarray:
    """Seconds per call of fn(obs[i]) over `calls` calls, cycling through the observations."""
    for i in range(warmup):
        fn(observations[i % len(observations)])
    out = np.empty(calls)
    for i in range(calls):
        obs = observations[i % len(observations)]
        t0 = time.perf_counter()
        fn(obs)
        out[i] = time.perf_counter() - t0
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", type=Path, help="a run folder with a policy (default: train PPO on Hopper-v5 for 4,096 steps)")
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--warmup", type=int, default=1_000)
    args = p.parse_args()

    import jax
    import jax.numpy as jnp
    import onnxruntime as ort

    from policysearch.algos import PPOConfig
    from policysearch.deploy import loader
    from policysearch.deploy.export import export
    from policysearch.envs import make_env
    from policysearch.envs.rollout import jax_policy_step
    from policysearch.run.snapshot import load
    from policysearch.run.train import RunConfig, train

    tmp = Path(tempfile.mkdtemp())
    run_dir = args.run_dir
    if run_dir is None:
        run_dir = tmp / "ppo-hopper"
        train("ppo", RunConfig(env="Hopper-v5", total_steps=4096, run_dir=str(run_dir), progress=False, eval_episodes=0, video=False),
              PPOConfig())
    agent = load(run_dir)
    env = make_env(agent.spec.env_id, 8, 0)
    obs, seen = env.reset(), []
    for _ in range(64):
        seen.append(obs)
        obs, *_ = env.step(agent.act(obs))
    env.close()
    observations = np.concatenate(seen).astype(np.float32)

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(export(run_dir, "onnx", tmp / "policy.onnx")), options, providers=["CPUExecutionProvider"])
    npz = loader.load(str(export(run_dir, "numpy", tmp / "policy.npz")))

    host = jax.device_put
    params, stats = host(agent.params), host(agent.obs_stats)
    zeros = jnp.zeros((1, agent.policy.action_dim), jnp.float32)
    clip = agent.norm.clip_obs if agent.norm.obs else None

    def jax_step(o: np.ndarray) -> None:
        jax_policy_step(agent.policy, params, stats, o[None], zeros, False, clip)[1].block_until_ready()

    cases = {
        "onnxruntime (1 thread)": lambda o: session.run(None, {"obs": o[None]}),
        "NumPy loader (.npz)": npz.act,
        "policysearch TrainedPolicy.act": agent.act,
        "JAX jitted policy step": jax_step,
    }
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}; "
          f"{agent.spec.env_id}, obs {agent.spec.obs_dim}, hidden {agent.policy.hidden}, onnxruntime {ort.__version__}, jax {jax.__version__}")
    print(f"{'batch-1 action':<32} {'median us':>10} {'p99 us':>8} {'share of a 1 kHz step':>22}")
    for name, fn in cases.items():
        t = timings(fn, observations, args.warmup, args.calls) * 1e6
        print(f"{name:<32} {np.median(t):>10.1f} {np.percentile(t, 99):>8.1f} {np.median(t) / 1000:>21.1%}")


if __name__ == "__main__":
    main()
