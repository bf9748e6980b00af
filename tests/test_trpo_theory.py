"""TRPO's theory checked exactly on small tabular MDPs (policysearch.core.tabular, float64, no sampling).

(1) Algorithm 1 (pi_{i+1} = argmin L_{pi_i}(pi) + C D_KL^max(pi_i, pi)) gives non-increasing costs eta;
(2) the bound eta(pi_new) <= L_old(pi_new) + C D_KL^max(pi_old, pi_new) holds at every step;
(3) the identity eta(pi_new) = eta(pi_old) + sum_s rho_new(s) sum_a pi_new(a|s) A_old(s, a) holds to 1e-10.
Exact evaluation itself is checked against value iteration and power-series visitation counts.
"""

from __future__ import annotations

import numpy as np
import pytest

from policysearch.core.tabular import (
    evaluate,
    kl_max,
    kl_regularised_step,
    penalised_objective,
    penalty_coefficient,
    random_mdp,
    random_policy,
    run_algorithm1,
    surrogate,
)

SEEDS = [0, 1, 2]
S, A, GAMMA, ITERS = 5, 3, 0.9, 10


def _identity_error(mdp, pi_old, pi_new) -> float:
    """|eta(pi_new) - eta(pi_old) - sum_s rho_new(s) sum_a pi_new(a|s) A_old(s, a)|."""
    old, new = evaluate(mdp, pi_old), evaluate(mdp, pi_new)
    return abs(new.eta - old.eta - new.rho @ np.sum(pi_new * old.A, axis=1))


@pytest.fixture(scope="module", params=SEEDS)
def run(request):
    seed = request.param
    mdp = random_mdp(S, A, GAMMA, seed)
    return mdp, run_algorithm1(mdp, random_policy(S, A, seed=1000 + seed), ITERS)


def test_exact_evaluation_matches_value_iteration(run):
    mdp, policies = run
    for pi in (policies[0], policies[-1]):
        V, Q, Adv, rho, eta = evaluate(mdp, pi)
        P_pi = np.einsum("sa,sat->st", pi, mdp.P)
        v, d, occ = np.zeros(S), mdp.rho0.copy(), np.zeros(S)
        for _ in range(2000):  # gamma^2000 ~ 1e-92: both fixed-point iterations converge to machine precision
            v = mdp.c + mdp.gamma * P_pi @ v  # Bellman backup V <- c + gamma P_pi V
            occ += d  # rho = sum_t gamma^t P(s_t = .)
            d = mdp.gamma * P_pi.T @ d
        np.testing.assert_allclose(V, v, rtol=0, atol=1e-10)
        np.testing.assert_allclose(Q, mdp.c[:, None] + mdp.gamma * mdp.P @ v, rtol=0, atol=1e-10)
        np.testing.assert_allclose(rho, occ, rtol=0, atol=1e-10)
        np.testing.assert_allclose(np.sum(pi * Adv, axis=1), 0.0, atol=1e-10)  # E_{a~pi} A_pi(s, a) = 0
        assert eta == pytest.approx(mdp.rho0 @ v, abs=1e-10)
        assert eta == pytest.approx(rho @ mdp.c, abs=1e-10)  # eta = sum_s rho(s) c(s)
        assert surrogate(mdp, pi, pi) == pytest.approx(eta, abs=1e-12)  # L_pi(pi) = eta(pi)


def test_costs_are_monotone(run):
    mdp, policies = run
    etas = np.array([evaluate(mdp, pi).eta for pi in policies])
    assert np.all(np.diff(etas) <= 1e-12), etas
    assert etas[-1] < etas[0] - 1e-6, etas  # the algorithm actually made progress
    assert sum(pi_new is not pi_old for pi_old, pi_new in zip(policies, policies[1:])) == ITERS  # no fallbacks


def test_bound_holds_at_every_step(run):
    mdp, policies = run
    for pi_old, pi_new in zip(policies, policies[1:]):
        ev_old = evaluate(mdp, pi_old)
        bound = surrogate(mdp, pi_old, pi_new, ev_old) + penalty_coefficient(mdp, ev_old) * kl_max(pi_old, pi_new)
        eta_new = evaluate(mdp, pi_new).eta
        assert eta_new <= bound + 1e-12
        assert bound <= ev_old.eta + 1e-12  # M_old(pi_new) <= M_old(pi_old) = eta(pi_old): the theorem's chain


def test_identity_for_algorithm_policies(run):
    mdp, policies = run
    for pi_old, pi_new in zip(policies, policies[1:]):
        assert _identity_error(mdp, pi_old, pi_new) < 1e-10


@pytest.mark.parametrize("seed", SEEDS)
def test_identity_and_bound_for_random_policy_pairs(seed):
    mdp = random_mdp(S, A, GAMMA, seed)
    for k in range(20):
        pi_old = random_policy(S, A, seed=10 * k + 1, scale=2.0)
        pi_new = random_policy(S, A, seed=10 * k + 2, scale=2.0)
        assert _identity_error(mdp, pi_old, pi_new) < 1e-10
        assert evaluate(mdp, pi_new).eta <= penalised_objective(mdp, pi_old, pi_new) + 1e-12  # bound: any pair


@pytest.mark.parametrize("seed", SEEDS)
def test_step_is_a_minimiser(seed):
    """L + C D_KL^max(pi_old, .) is convex in pi, so no feasible direction in the simplex may decrease it."""
    mdp = random_mdp(S, A, GAMMA, seed)
    pi_old = random_policy(S, A, seed=1000 + seed)
    pi_new = kl_regularised_step(mdp, pi_old)
    m_new = penalised_objective(mdp, pi_old, pi_new)
    assert m_new < evaluate(mdp, pi_old).eta  # strict improvement of the penalised objective
    rng = np.random.default_rng(seed)
    for _ in range(200):
        q = random_policy(S, A, seed=int(rng.integers(1 << 30)), scale=3.0)
        for h in (1e-2, 1e-3):
            assert penalised_objective(mdp, pi_old, pi_new + h * (q - pi_new)) >= m_new - 1e-9
