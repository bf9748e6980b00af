"""Exact tabular policy evaluation and the KL-penalised policy iteration behind TRPO (costs minimised).

On a finite MDP every quantity in the lecture can be computed exactly with linear solves, so the
theory can be checked to machine precision rather than up to sampling noise:

    eta(pi)      = E[sum_t gamma^t c(s_t)],  s_0 ~ rho_0
    V_pi(s)      = c(s) + gamma sum_s' P_pi(s'|s) V_pi(s')             =>  V_pi = (I - gamma P_pi)^{-1} c
    Q_pi(s, a)   = c(s) + gamma sum_s' P(s'|s, a) V_pi(s'),   A_pi = Q_pi - V_pi
    rho_pi(s)    = sum_t gamma^t P(s_t = s)                             =>  rho_pi^T = rho_0^T (I - gamma P_pi)^{-1}
    L_old(pi)    = eta(pi_old) + sum_s rho_old(s) sum_a pi(a|s) A_old(s, a)
    D_KL^max(p, q) = max_s KL(p(.|s) || q(.|s))

Algorithm 1 of the lecture (TRPO paper, Schulman et al. 2015) iterates

    pi_{i+1} = argmin_pi  M_i(pi) = L_{pi_i}(pi) + C D_KL^max(pi_i, pi),   C = 2 eps gamma / (1 - gamma)^2,
    eps = max_{s,a} |A_{pi_i}(s, a)|,

and since eta(pi) <= M_i(pi) for every pi and M_i(pi_i) = eta(pi_i), the costs are non-increasing.
Everything here is float64 NumPy; it is a verification tool, not a training path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax


@dataclass(frozen=True)
class TabularMDP:
    """A finite discounted MDP with per-state cost.

    P[s, a, s'] = P(s' | s, a) (rows sum to 1), c[s] the cost of being in s, rho0[s] the start
    distribution, gamma in [0, 1) the discount.
    """

    P: np.ndarray
    c: np.ndarray
    rho0: np.ndarray
    gamma: float

    @property
    def num_states(self) -> int:
        return self.P.shape[0]

    @property
    def num_actions(self) -> int:
        return self.P.shape[1]


@dataclass(frozen=True)
class Evaluation:
    """Exact quantities of one policy: V[S], Q[S, A], A[S, A] = Q - V, rho[S] (discounted visitation), eta."""

    V: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    rho: np.ndarray
    eta: float

    def __iter__(self):  # allows `V, Q, A, rho, eta = evaluate(mdp, pi)`
        return iter((self.V, self.Q, self.A, self.rho, self.eta))


def random_mdp(num_states: int, num_actions: int, gamma: float, seed: int) -> TabularMDP:
    """Random MDP: Dirichlet(1) transitions and start distribution, costs c(s) ~ U[0, 1)."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
    return TabularMDP(P=P, c=rng.random(num_states), rho0=rng.dirichlet(np.ones(num_states)), gamma=float(gamma))


def random_policy(num_states: int, num_actions: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """pi[s, a] = softmax(scale * z_s)_a with z ~ N(0, I): a strictly positive random stochastic policy."""
    return softmax(scale * np.random.default_rng(seed).standard_normal((num_states, num_actions)), axis=1)


def evaluate(mdp: TabularMDP, pi: np.ndarray) -> Evaluation:
    """Exact V, Q, A, rho, eta of pi[S, A] by two linear solves with (I - gamma P_pi)."""
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)  # P_pi(s'|s) = sum_a pi(a|s) P(s'|s, a)
    M = np.eye(mdp.num_states) - mdp.gamma * P_pi
    V = np.linalg.solve(M, mdp.c)
    Q = mdp.c[:, None] + mdp.gamma * mdp.P @ V
    rho = np.linalg.solve(M.T, mdp.rho0)
    return Evaluation(V=V, Q=Q, A=Q - V[:, None], rho=rho, eta=float(mdp.rho0 @ V))


def surrogate(mdp: TabularMDP, pi_old: np.ndarray, pi: np.ndarray, ev_old: Evaluation | None = None) -> float:
    """L_{pi_old}(pi) = eta(pi_old) + sum_s rho_old(s) sum_a pi(a|s) A_old(s, a) (old visitation, new actions)."""
    ev = evaluate(mdp, pi_old) if ev_old is None else ev_old
    return float(ev.eta + ev.rho @ np.sum(pi * ev.A, axis=1))


def kl_per_state(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p(.|s) || q(.|s)) for every s, with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return terms.sum(axis=1)


def kl_max(p: np.ndarray, q: np.ndarray) -> float:
    """D_KL^max(p, q) = max_s KL(p(.|s) || q(.|s))."""
    return float(np.max(kl_per_state(p, q)))


def penalty_coefficient(mdp: TabularMDP, ev_old: Evaluation) -> float:
    """C = 2 eps gamma / (1 - gamma)^2 with eps = max_{s,a} |A_old(s, a)|.

    The TRPO paper's Theorem 1 (rewards; here with the sign flipped for costs) states
    eta(pi_new) <= L_old(pi_new) + 4 eps gamma / (1 - gamma)^2 * (D_TV^max(pi_old, pi_new))^2, with
    D_TV(p, q) = 1/2 sum_a |p_a - q_a|. Pinsker's inequality D_TV^2 <= D_KL / 2 turns this into
    eta(pi_new) <= L_old(pi_new) + C D_KL^max(pi_old, pi_new) with C = 2 eps gamma / (1 - gamma)^2.
    """
    eps = float(np.max(np.abs(ev_old.A)))
    return 2.0 * eps * mdp.gamma / (1.0 - mdp.gamma) ** 2


def penalised_objective(mdp: TabularMDP, pi_old: np.ndarray, pi: np.ndarray, ev_old: Evaluation | None = None) -> float:
    """M_old(pi) = L_old(pi) + C D_KL^max(pi_old, pi): an upper bound on eta(pi), equal to eta(pi_old) at pi_old."""
    ev = evaluate(mdp, pi_old) if ev_old is None else ev_old
    return surrogate(mdp, pi_old, pi, ev) + penalty_coefficient(mdp, ev) * kl_max(pi_old, pi)


def kl_regularised_step(mdp: TabularMDP, pi_old: np.ndarray, maxiter: int = 500) -> np.ndarray:
    """One step of Algorithm 1: pi_new = argmin_pi L_old(pi) + C D_KL^max(pi_old, pi).

    The max over states is non-smooth, so we solve the equivalent smooth epigraph problem over
    softmax logits theta[S, A] and a slack t with SLSQP (analytic gradients):

        minimise  L_old(softmax(theta)) + C t   subject to   KL(pi_old(.|s) || softmax(theta_s)) <= t  for all s,

    started at theta = log pi_old, t = 0 (feasible, objective eta(pi_old)). The returned policy is
    re-scored with the exact M_old and accepted only if M_old(pi_new) <= M_old(pi_old) = eta(pi_old);
    otherwise (optimiser failure) pi_old is returned. That check is what makes the theorem's chain
    eta(pi_new) <= M_old(pi_new) <= M_old(pi_old) = eta(pi_old) hold for the returned policy.
    Requires pi_old > 0 everywhere (the KL to it must be finite for the logits to start at it).
    """
    if not np.all(pi_old > 0):
        raise ValueError("pi_old must be strictly positive (softmax-parametrised)")
    ev = evaluate(mdp, pi_old)
    C = penalty_coefficient(mdp, ev)
    S, A = pi_old.shape
    log_old = np.log(pi_old)

    def unpack(x: np.ndarray) -> tuple[np.ndarray, float]:
        return x[:-1].reshape(S, A), x[-1]

    def objective(x: np.ndarray) -> float:
        theta, t = unpack(x)
        return float(ev.rho @ np.sum(softmax(theta, axis=1) * ev.A, axis=1)) + C * t  # L minus the constant eta_old

    def objective_grad(x: np.ndarray) -> np.ndarray:
        theta, _ = unpack(x)
        pi = softmax(theta, axis=1)  # dL/dtheta_sb = rho(s) pi(b|s) (A(s,b) - sum_a pi(a|s) A(s,a))
        g = ev.rho[:, None] * pi * (ev.A - np.sum(pi * ev.A, axis=1, keepdims=True))
        return np.append(g.ravel(), C)

    def slack(x: np.ndarray) -> np.ndarray:  # t - KL_s >= 0
        theta, t = unpack(x)
        return t - np.sum(pi_old * (log_old - log_softmax(theta, axis=1)), axis=1)

    def slack_jac(x: np.ndarray) -> np.ndarray:  # dKL_s/dtheta_sb = pi(b|s) - pi_old(b|s)
        theta, _ = unpack(x)
        J = np.zeros((S, S * A + 1))
        d = pi_old - softmax(theta, axis=1)
        for s in range(S):
            J[s, s * A:(s + 1) * A] = d[s]
        J[:, -1] = 1.0
        return J

    x0 = np.append(log_old.ravel(), 0.0)
    res = minimize(objective, x0, jac=objective_grad, method="SLSQP",
                   bounds=[(None, None)] * (S * A) + [(0.0, None)],
                   constraints=[{"type": "ineq", "fun": slack, "jac": slack_jac}],
                   options={"maxiter": maxiter, "ftol": 1e-14})
    pi_new = softmax(unpack(res.x)[0], axis=1)
    if not (np.all(np.isfinite(pi_new)) and np.all(pi_new > 0)):
        return pi_old
    # Accept only a genuine (exactly re-scored) improvement of the penalised objective M_old.
    if penalised_objective(mdp, pi_old, pi_new, ev) <= ev.eta:
        return pi_new
    return pi_old


def run_algorithm1(mdp: TabularMDP, pi0: np.ndarray, iterations: int) -> list[np.ndarray]:
    """Policies pi_0, pi_1, ..., pi_iterations of Algorithm 1 started from pi0."""
    policies = [pi0]
    for _ in range(iterations):
        policies.append(kl_regularised_step(mdp, policies[-1]))
    return policies
