"""How far the on-policy updates are from the floor of their arithmetic on this machine.

    python bench/update_floor.py [--obs-dim 11] [--action-dim 3] [--repeats 30]

On one batch of Hopper-v5's shapes (2,048 samples as 256 steps x 8 envs, random numbers), with
every algorithm's defaults (64x64 tanh MLPs; PPO: 10 epochs x 32 minibatches of 64), it times
the `update` training calls for PPO, TRPO and PG (median of --repeats calls, each ended by
block_until_ready; PPO's and PG's one compiled call, TRPO's two compiled halves on two threads,
`algos.common.two_halves`), then two floors for PPO's 320 minibatch steps:

- `dense fwd+bwd`: a scan over the same 320 minibatches of [64, obs] rows doing only the forward
  and backward passes of the actor and critic MLPs (the sum of their outputs as the loss) and a
  plain gradient step: no distribution, no clipping, no Adam, no shuffling.
- `+ Adam`: the same with optax's Adam in place of the plain step, over the parameters as one
  flat vector, as `algos.common.sgd_epochs` keeps them (`+ Adam per array` keeps the arrays
  apart: a few kernels per array per step).

and the machine's peak for this arithmetic: float32 GFLOP/s of one large matmul (1024^3) and of
the MLP layers' own shapes at batch 64 in a scan. The FLOP count of a minibatch step is
3 x (forward FLOPs) (forward, then the backward's two products per layer), forward =
2 x 64 x (sum of in x out over both MLPs' layers). Benchmarks measure; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average  # noqa: E402


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    import jax

    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--obs-dim", type=int, default=11)
    parser.add_argument("--action-dim", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import optax
    from jax.flatten_util import ravel_pytree

    from policysearch.algos import ALGORITHMS
    from policysearch.algos.base import Batch
    from policysearch.core.forward import mlp
    from policysearch.core.policies import Policy

    print(f"load average at start: {load_average()}")
    T, N, d, a = 256, 8, args.obs_dim, args.action_dim
    policy = Policy(d, a, "gaussian")
    rng = np.random.default_rng(0)
    f32 = lambda *shape: jnp.asarray(rng.normal(size=shape).astype(np.float32))  # noqa: E731
    batch = Batch(f32(T, N, d), f32(T, N, a), f32(T, N) - 3.0, f32(T, N), f32(T, N), jnp.zeros((T, N)), jnp.zeros((T, N)),
                  jnp.ones((T, N)), f32(N))

    rows: list[tuple[str, float, float | None]] = []
    for name in ("ppo", "trpo", "pg"):
        entry = ALGORITHMS[name]
        algo = entry.make(entry.config(), policy, 100)
        state = algo.init(jax.random.key(0))
        rows.append((f"{name} update", median_ms(lambda: algo.update(state, batch), args.repeats), None))

    config = ALGORITHMS["ppo"].config()
    mb, steps = config.minibatch_size, config.epochs * (config.steps_per_update // config.minibatch_size)
    params = policy.init(jax.random.key(1))
    data = f32(steps, mb, d)

    def loss(p, obs):
        return jnp.sum(mlp(p.actor, obs, "tanh", jnp)) + jnp.sum(mlp(p.critic, obs, "tanh", jnp))

    grad = jax.grad(loss)

    @jax.jit
    def dense_floor(p, xs):
        def step(p, obs):
            return jax.tree.map(lambda w, g: w - 1e-6 * g, p, grad(p, obs)), None
        return jax.lax.scan(step, p, xs)[0]

    adam = optax.adam(3e-4)

    def adam_floor(grad_of: Callable) -> Callable:
        """The scan of Adam steps over the minibatches, the parameters in whatever form grad_of
        takes and returns."""

        @jax.jit
        def run(p, s, xs):
            def step(carry, obs):
                p, s = carry
                u, s = adam.update(grad_of(p, obs), s, p)
                return (optax.apply_updates(p, u), s), None
            return jax.lax.scan(step, (p, s), xs)[0]

        return run

    flat, unravel = ravel_pytree(params)
    flat_adam = adam_floor(lambda f, obs: ravel_pytree(grad(unravel(f), obs))[0])
    array_adam = adam_floor(grad)

    layer_macs = sum(layer["kernel"].size for tree in (params.actor, params.critic) for layer in tree["params"].values())
    flops = 3 * 2 * mb * layer_macs * steps
    flat_state, opt_state = adam.init(flat), adam.init(params)
    floor = median_ms(lambda: dense_floor(params, data), args.repeats)
    rows.append(("dense fwd+bwd floor", floor, flops))
    rows.append(("+ Adam", median_ms(lambda: flat_adam(flat, flat_state, data), args.repeats), flops))
    rows.append(("+ Adam per array", median_ms(lambda: array_adam(params, opt_state, data), args.repeats), flops))

    big = f32(1024, 1024)
    peak = 2 * 1024**3 / (median_ms(lambda: big @ big, max(5, args.repeats // 3)) / 1e3) / 1e9

    print(f"Hopper shapes: obs {d}, action {a}, 64x64 tanh; PPO {steps} minibatch steps of {mb} per update; "
          f"{flops / 1e6:.0f} MFLOP of dense arithmetic per update")
    print(f"{'':24}{'ms/update':>10}{'GFLOP/s':>10}{'x floor':>9}")
    for name, ms, fl in rows:
        gf = f"{fl / ms / 1e6:10.1f}" if fl else f"{'':>10}"
        print(f"{name:24}{ms:10.1f}{gf}{ms / floor:9.2f}")
    print(f"machine: one 1024^3 float32 matmul {peak:.0f} GFLOP/s (XLA, every core)")


if __name__ == "__main__":
    main()
