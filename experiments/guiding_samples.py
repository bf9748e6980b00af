"""How long the guiding samples of one DDP solution stay healthy on a training terrain, for each
gain regulariser rho and guiding temperature (README, "Training at the test's 500 steps").

iLQR is solved from the nominal controls of an earlier GPS run's controller of that terrain
(repaired where it falls), then for every (rho, temperature) the controller's mean and `--samples`
sampled rollouts run on the real env from the default start; the table gives the largest gain,
the mean standard deviation and the steps each rollout lasted.

    python experiments/gps_terrain.py --example-policy EX --skip-rl --horizon 500 --out OUT
    python experiments/guiding_samples.py --gps-run OUT/gps --terrain 0
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import policysearch.envs  # noqa: F401  (registers the terrain tasks)
from policysearch.control.ilqr import ILQRConfig
from policysearch.control.lqg import LinearGaussianController
from policysearch.control.mujoco_ilqr import repair_start, solve_mujoco
from policysearch.envs.problems import MujocoProblem
from policysearch.envs.terrain import ENV_ID, ROUGHNESS, TRAIN_TERRAINS, register
from policysearch.errors import ArgumentParser
from policysearch.run.evaluation import run_from_default_start


def main() -> None:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gps-run", required=True, help="a gps_terrain.py GPS run (OUT/gps) whose controllers/condition_I start iLQR")
    p.add_argument("--terrain", type=int, default=0, help="index of the training terrain (condition I)")
    p.add_argument("--samples", type=int, default=6)
    p.add_argument("--target-velocity", type=float, default=2.5)
    p.add_argument("--ilqr-iterations", type=int, default=50)
    args = p.parse_args()
    register(ROUGHNESS)
    seed = TRAIN_TERRAINS[args.terrain]
    u0 = np.asarray(LinearGaussianController.load(f"{args.gps_run}/controllers/condition_{args.terrain}")[0].u_bar, np.float64)
    problem = MujocoProblem(ENV_ID, len(u0), terrains=(seed,), v_target=args.target_velocity)
    cost, model, x0 = problem.costs[0], problem.models[0], problem.conditions[0]
    with jax.enable_x64(True):
        u = repair_start(model, cost.running, cost.terminal, x0, u0, cost.health_test, fd_eps=problem.fd_eps)
        sol = solve_mujoco(model, cost.running, cost.terminal, x0, u, ILQRConfig(max_iterations=args.ilqr_iterations), fd_eps=problem.fd_eps,
                           valid=cost.health_test)
    horizon = len(u0)
    print(f"terrain {seed}: iLQR plan valid for {int(sol.valid_steps)} of {horizon + 1} states")
    for rho in (0.0, 1.0, 10.0, 100.0):
        for temperature in (1e-4, 1e-2, 1.0):
            with jax.enable_x64(True):
                c = LinearGaussianController.from_solution(sol, temperature, rho, problem.u_low, problem.u_high)
            c = LinearGaussianController(*(jnp.asarray(np.asarray(a), jnp.float32) for a in c)).with_std_bounds(0.001, 0.5)
            mean = run_from_default_start(lambda t, obs, x: c.act(t, x), ENV_ID, horizon, terrain_seed=seed)["steps"]
            sampled = [run_from_default_start(lambda t, obs, x, k=k: c.act(t, x, jax.random.fold_in(jax.random.PRNGKey(k), t)), ENV_ID, horizon,
                                              terrain_seed=seed)["steps"] for k in range(args.samples)]
            std = float(np.sqrt(np.asarray(jnp.diagonal(c.cov, axis1=-2, axis2=-1))).mean())
            print(f"rho {rho:6g}  temperature {temperature:6g}  largest gain {float(np.abs(np.asarray(c.K)).max()):8.3g}  std {std:.3g}  "
                  f"mean ran {mean}  samples ran {sampled}", flush=True)


if __name__ == "__main__":
    import sys

    from policysearch.cli import guarded

    sys.exit(guarded(main))
