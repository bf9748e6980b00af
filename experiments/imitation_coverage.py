"""Why the humanoid's GPS policy falls after about 80 steps (README, "The humanoid running on
unseen terrain"): which data a network imitating the example runner needs. Behaviour cloning on
the four training terrains, then the cloned network alone, from the default start, for 500 steps
on every training and test terrain.

The data: `--episodes` runs of 250 steps per training terrain, each executed action perturbed by
Gaussian noise of standard deviation `--noise` (the visited states), labelled with the clean
action of `--labels`: the example policy itself (`example`, --example-policy), or the DDP
controller of that terrain in a GPS run (`ddp`, --gps-run; its mean at the visited state, the
guiding distribution's centre). The network (`--hidden`, tanh, standardised inputs) is fitted by
least squares with Adam; no other part of GPS enters.

    python experiments/imitation_coverage.py --labels example --noise 0 --episodes 1
    python experiments/imitation_coverage.py --labels example --noise 0.05 --episodes 5
    python experiments/imitation_coverage.py --labels ddp --gps-run runs/gps-humanoid/gps --noise 0.05 --episodes 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax

import policysearch.envs  # noqa: F401  (registers the terrain tasks)
from policysearch.control.lqg import LinearGaussianController
from policysearch.core.policies import MLP
from policysearch.envs.terrain import HUMANOID_ENV_ID, ROUGHNESS, TEST_TERRAINS, TRAIN_TERRAINS, register
from policysearch.errors import ArgumentParser, require
from policysearch.run.evaluation import run_from_default_start
from policysearch.run.snapshot import load

Label = Callable[[int, np.ndarray, np.ndarray], np.ndarray]  # (t, obs, x) -> action


def labellers(args: argparse.Namespace) -> list[Label]:
    """One labeller per training terrain."""
    if args.labels == "example":
        example = load(args.example_policy)
        return [lambda t, obs, x: example.act(obs)] * len(TRAIN_TERRAINS)
    folder = Path(args.gps_run) / "controllers"
    require(folder.is_dir(), f"--gps-run '{args.gps_run}' has no controllers/: pass the gps folder of a finished humanoid experiment")
    ctrls = [LinearGaussianController.load(folder / f"condition_{i}")[0] for i in range(len(TRAIN_TERRAINS))]
    return [lambda t, obs, x, c=c: c.act(t, x) for c in ctrls]


def collect(labels: list[Label], noise: float, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(observations, clean labels, steps of each run) on the training terrains: each run is
    `run_from_default_start` with the label plus noise as its action."""
    rng = np.random.default_rng(seed)
    obs_all: list[np.ndarray] = []
    act_all: list[np.ndarray] = []
    lengths = []
    env = gym.make(HUMANOID_ENV_ID)
    space = env.action_space
    env.close()
    for label, terrain in zip(labels, TRAIN_TERRAINS):
        for _ in range(episodes):
            def act(t: int, obs: np.ndarray, x: np.ndarray) -> np.ndarray:
                u = np.clip(label(t, obs, x), space.low, space.high)
                obs_all.append(obs)
                act_all.append(u)
                return u + noise * rng.standard_normal(u.shape)  # clipped to the box by run_from_default_start

            lengths.append(run_from_default_start(act, HUMANOID_ENV_ID, 250, terrain_seed=terrain)["steps"])
    return np.asarray(obs_all, np.float32), np.asarray(act_all, np.float32), lengths


def fit(obs: np.ndarray, actions: np.ndarray, hidden: tuple[int, ...], steps: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """Least-squares fit (full batch, Adam 1e-3) of an MLP on standardised inputs; returns obs -> action."""
    mean, std = obs.mean(0), obs.std(0) + 1e-6
    net = MLP(hidden, actions.shape[1], "tanh", 1.0)
    x, y = jnp.asarray((obs - mean) / std), jnp.asarray(actions)
    params = net.init(jax.random.PRNGKey(seed), x[:1])
    opt = optax.adam(1e-3)

    @jax.jit
    def step(carry: tuple, _: None) -> tuple:
        p, s = carry
        loss, g = jax.value_and_grad(lambda q: jnp.mean((net.apply(q, x) - y) ** 2))(p)
        u, s = opt.update(g, s)
        return (optax.apply_updates(p, u), s), loss

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    print(f"fit: mean squared error {float(losses[-1]):.3g} (the labels' variance {float(actions.var()):.3g})")
    apply = jax.jit(net.apply)
    return lambda o: np.asarray(apply(params, (np.asarray(o, np.float32) - mean) / std))


def main() -> None:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--labels", choices=["example", "ddp"], default="example")
    p.add_argument("--example-policy", default="runs/ppo-humanoid", help="the example runner (--labels example)")
    p.add_argument("--gps-run", default="runs/gps-humanoid/gps", help="a humanoid experiment's GPS folder (--labels ddp)")
    p.add_argument("--noise", type=float, default=0.05, help="std of the noise on the executed actions (torques in [-0.4, 0.4])")
    p.add_argument("--episodes", type=int, default=5, help="runs of 250 steps per training terrain")
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--fit-steps", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    require(args.noise >= 0 and args.episodes > 0, "--noise must be >= 0 and --episodes positive")
    register(ROUGHNESS)
    obs, actions, lengths = collect(labellers(args), args.noise, args.episodes, args.seed)
    print(f"data: {len(obs)} pairs; the noisy runs lasted {min(lengths)}-{max(lengths)} steps of 250")
    act = fit(obs, actions, tuple(args.hidden), args.fit_steps, args.seed)
    for name, terrains in (("training", TRAIN_TERRAINS), ("test", TEST_TERRAINS)):
        steps = [run_from_default_start(lambda t, o, x: act(o), HUMANOID_ENV_ID, 500, terrain_seed=s)["steps"] for s in terrains]
        print(f"cloned network on the {name} terrains {list(terrains)}: ran {steps} of 500 steps")


if __name__ == "__main__":
    from policysearch.cli import guarded

    sys.exit(guarded(main))
