"""Algorithm 1 of the TRPO lecture on a random tabular MDP, with exact policy evaluation.

Each row is one step pi_i -> pi_{i+1} = argmin_pi L_{pi_i}(pi) + C D_KL^max(pi_i, pi). It shows that
eta(pi_{i+1}) <= bound = L_{pi_i}(pi_{i+1}) + C D_KL^max(pi_i, pi_{i+1}) <= eta(pi_i), and the error of the identity
eta(pi_{i+1}) = eta(pi_i) + sum_s rho_{i+1}(s) sum_a pi_{i+1}(a|s) A_{pi_i}(s, a).

    python examples/trpo_theory.py [--states 5] [--actions 3] [--gamma 0.9] [--iters 10] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from policysearch.core.tabular import (
    evaluate,
    kl_max,
    kl_regularised_step,
    penalty_coefficient,
    random_mdp,
    random_policy,
    surrogate,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=5)
    parser.add_argument("--actions", type=int, default=3)
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    mdp = random_mdp(args.states, args.actions, args.gamma, args.seed)
    pi = random_policy(args.states, args.actions, seed=1000 + args.seed)
    eta0 = evaluate(mdp, pi).eta
    print(f"random MDP: {args.states} states, {args.actions} actions, gamma = {args.gamma}, seed = {args.seed}")
    header = f"{'i':>3} {'eta(pi_i)':>16} {'bound L+C*KLmax':>16} {'eta(pi_i+1)':>16} {'bound-eta_new':>13} " \
             f"{'KLmax':>10} {'C':>9} {'identity err':>12}"
    print(header)
    print("-" * len(header))
    for i in range(args.iters):
        old = evaluate(mdp, pi)
        pi_new = kl_regularised_step(mdp, pi)
        new = evaluate(mdp, pi_new)
        C, kl = penalty_coefficient(mdp, old), kl_max(pi, pi_new)
        bound = surrogate(mdp, pi, pi_new, old) + C * kl
        identity_err = abs(new.eta - old.eta - new.rho @ np.sum(pi_new * old.A, axis=1))
        print(f"{i:>3} {old.eta:>16.12f} {bound:>16.12f} {new.eta:>16.12f} {bound - new.eta:>13.3e} "
              f"{kl:>10.3e} {C:>9.2f} {identity_err:>12.1e}")
        pi = pi_new
    print(f"eta(pi_0) = {eta0:.12f} -> eta(pi_{args.iters}) = {evaluate(mdp, pi).eta:.12f}")


if __name__ == "__main__":
    main()
