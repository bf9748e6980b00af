"""Guided Policy Search (Levine and Koltun, ICML 2013), Algorithm 1:

 1: DDP solutions pi_G1..pi_Gn, one per training condition, from our iLQR
 2: guiding samples from each pi_Gi (so from q = (1/n) sum_i pi_Gi)
 3: theta* = argmax_theta sum_i log pi_theta(zeta_i) (maximum likelihood on the guiding samples)
 4: the sample set S: guiding samples and samples of pi_theta*
 5: for k = 1..K:
 6:   S_k = the guiding samples and the samples of the `recent_policies` newest policies
 7:   theta_k = argmax Phi_{S_k}(theta) by L-BFGS from theta*
 8:   samples of pi_theta_k join S_k and S
 9:   optionally, adaptive guiding samples: iLQR again on l(x, u) - lambda log pi_theta_k(u | x)
10:   estimate the values of pi_theta_k and pi_theta* on S_k (Phi with w_r = 0)
11-16: if theta_k is better, theta* = theta_k and w_r decreases; else w_r increases, and
      optionally pi_theta* is sampled again
19: return theta*.
q is always the mixture over every distribution that produced samples at a condition, so every
policy that sampled is kept (`Source`). `init_gps` runs lines 1-4 and `gps_iteration` one pass of
lines 6-17 over an explicit `GPSState` (gps_state.py, which checkpoints it for --resume).
Sampling goes through a `GPSProblem` (gps_problems.py); the objective is `gps_objective`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from policysearch.algos.gps_objective import SampleSet, accept_or_reject, estimated_return, log_likelihood, phi, policy_step_log_probs
from policysearch.algos.gps_problems import Act, GPSProblem, identity
from policysearch.algos.gps_state import GPSState, SampleStore, Source
from policysearch.control.lqg import LinearGaussianController
from policysearch.errors import require, require_positive
from policysearch.estimators import mixture_prefix_log_probs
from policysearch.normalize import RunningStats, normalize
from policysearch.policies import Policy, PolicyParams


@dataclass(frozen=True)
class GPSConfig:
    """GPS settings. The paper's exact sample counts and network width could not be checked
    (shared/reference/gps-notes.md); these defaults run the 2-link arm in about a minute and the
    Swimmer in about two on 2 cores."""

    iterations: int = 10
    """K, iterations of the main loop."""
    guiding_samples: int = 20
    """Guiding samples per DDP solution (per condition)."""
    policy_samples: int = 5
    """Samples of each new policy per condition."""
    recent_policies: int = 4
    """S_k keeps the samples of this many newest policies (plus all guiding samples)."""
    w_r: float = 1e-2
    """Initial weight of the w_r log Z_t regulariser."""
    w_r_factor: float = 10.0
    """w_r is divided by this on acceptance and multiplied on rejection."""
    w_r_min: float = 1e-6
    """Lower bound of w_r."""
    w_r_max: float = 1e2
    """Upper bound of w_r."""
    lbfgs_iterations: int = 50
    """L-BFGS iterations per optimisation of Phi."""
    init_iterations: int = 200
    """L-BFGS iterations of the maximum-likelihood initialisation (line 3)."""
    normalize_obs: bool = True
    """Standardise the policy's input by the mean and variance of the guiding samples'
    observations (fixed after line 2, clipped to +-10 like PPO's, saved with the policy). The
    walkers' observations mix angles (~0.1) with velocities (~10), which leaves the unscaled fit
    ill-conditioned for L-BFGS: on Walker2dTerrain the unscaled policy fell after about 140 steps,
    the standardised one ran all 250 on every terrain (README, "GPS on unseen terrain")."""
    hidden: tuple[int, ...] = (50,)
    """Hidden widths of the policy network (soft-rectifier units, as in the paper)."""
    log_std_init: float = -0.5
    """Initial log standard deviation of the Gaussian policy (then fitted by line 3)."""
    guiding_temperature: float = 0.1
    """Guiding covariance = temperature * Q_uu^-1 (then capped by guiding_max_std). Our costs weigh
    effort lightly, so Q_uu^-1 at temperature 1 is wider than the control limits."""
    guiding_gain_reg: float = 1.0
    """rho of the guiding controllers' gains K = (Q_uu + rho I)^-1 Q_uu K_DDP and covariance
    temperature * (Q_uu + rho I)^-1 (`LinearGaussianController.from_solution`): the LQR with an
    extra (rho / 2) |u - g(x)|^2. 0 gives the plain DDP gains, which on the walkers are large
    enough that the guiding samples fall."""
    guiding_max_std: float = 0.5
    """Cap on the guiding standard deviation, as a fraction of the half control range."""
    guiding_min_std: float = 0.001
    """Floor of the guiding standard deviation, as a fraction of the half control range."""
    ilqr_iterations: int = 200
    """iLQR iteration cap for every DDP solution."""
    adaptive_guiding: bool = False
    """Line 9: re-optimise the guiding controllers toward the current policy each iteration."""
    adaptive_weight: float = 1.0
    """lambda of the adaptive cost l(x, u) - lambda log pi_theta(u | x)."""
    resample_best: bool = True
    """Line 16: on rejection, draw new samples of pi_theta*."""

    def __post_init__(self) -> None:
        for name in ("iterations", "guiding_samples", "policy_samples", "recent_policies", "lbfgs_iterations",
                     "init_iterations", "guiding_temperature", "guiding_max_std", "guiding_min_std", "ilqr_iterations"):
            require_positive(name, getattr(self, name))
        require(self.w_r_factor > 1, f"--w-r-factor must be > 1, got {self.w_r_factor}")
        require(0 < self.w_r_min <= self.w_r <= self.w_r_max, "--w-r must lie in [--w-r-min, --w-r-max], both positive")
        require(self.guiding_gain_reg >= 0, f"--guiding-gain-reg must be >= 0, got {self.guiding_gain_reg}")
        require(self.guiding_min_std < self.guiding_max_std, "--guiding-min-std must be below --guiding-max-std")
        require(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), f"--hidden needs positive widths, got {self.hidden}")


def controller_act(ctrl: LinearGaussianController, t: jax.Array, x: jax.Array, key: jax.Array) -> jax.Array:
    """u ~ pi_G(u | x_t) = N(g(x_t), Sigma_t)."""
    return ctrl.sample(key, t, x)


@lru_cache(maxsize=None)
def policy_act(policy: Policy, features: Callable[[jax.Array], jax.Array], deterministic: bool = False) -> Act:
    """u ~ pi_theta(u | features(x)) (or its mean), one function per policy so sampling compiles once."""
    def act(params: PolicyParams, t: jax.Array, x: jax.Array, key: jax.Array) -> jax.Array:
        dist = policy.dist(params, features(x))
        return dist.mode() if deterministic else dist.sample(key)

    return act


@lru_cache(maxsize=None)
def adaptive_cost(policy: Policy, features: Callable[[jax.Array], jax.Array]) -> Callable:
    """Line 9 (paper sec. 4): the extra cost -lambda log pi_theta(u | x) that pulls the guiding
    controller toward what the policy can reproduce; args = (params, lambda)."""
    def cost(args: tuple[PolicyParams, jax.Array], x: jax.Array, u: jax.Array) -> jax.Array:
        params, weight = args
        return -weight * policy.dist(params, features(x)).log_prob(u)

    return cost


def step_log_probs(policy: Policy, source: Source, states: jax.Array, obs: jax.Array, actions: jax.Array) -> jax.Array:
    """log q_j(u_t | x_t) of samples [m, T] under one source (controllers see states, policies obs)."""
    if source.controller is not None:
        return jax.vmap(source.controller.trajectory_log_probs)(states, actions)
    return policy_step_log_probs(policy, source.params, obs, actions)


def capacity_for(count: int, bucket: int = 32) -> int:
    """Samples per condition rounded up to a multiple of `bucket`: the padded size of S_k, so the
    jitted optimiser recompiles only when S_k outgrows a bucket."""
    return bucket * max(1, math.ceil(count / bucket))


def build_sample_set(
    policy: Policy, store: SampleStore, sources: list[Source], chosen: set[int], conditions: int,
    features: Callable[[jax.Array], jax.Array] = identity,
) -> SampleSet:
    """S_k: per condition, the samples drawn by the chosen sources, with log q of every prefix under
    the mixture of the sources that sampled at that condition, padded to a common size. Controllers
    score raw states; the policy (and SampleSet.states) sees features(state)."""
    per_condition = [store.select(c, chosen) for c in range(conditions)]
    cap = capacity_for(max(len(idx) for idx in per_condition))
    T, n, m = store.states[0].shape[0], store.states[0].shape[1], store.actions[0].shape[1]
    n = int(features(jnp.zeros((n,), jnp.float32)).shape[-1])
    states, actions = np.zeros((conditions, cap, T, n), np.float32), np.zeros((conditions, cap, T, m), np.float32)
    rewards, log_q, mask = np.zeros((conditions, cap, T), np.float32), np.zeros((conditions, cap, T), np.float32), np.zeros((conditions, cap), np.float32)
    for c, idx in enumerate(per_condition):
        s = np.stack([store.states[i] for i in idx])
        f = np.asarray(features(jnp.asarray(s)))
        a = np.stack([store.actions[i] for i in idx])
        used = sorted({store.source[i] for i in idx})
        counts = jnp.asarray([sum(1 for i in idx if store.source[i] == j) for j in used], jnp.float32)
        per_source = jnp.stack([step_log_probs(policy, sources[j], jnp.asarray(s), jnp.asarray(f), jnp.asarray(a)) for j in used])
        k = len(idx)
        states[c, :k], actions[c, :k], mask[c, :k] = f, a, 1.0
        rewards[c, :k] = np.stack([store.rewards[i] for i in idx])
        log_q[c, :k] = np.asarray(mixture_prefix_log_probs(per_source, counts))
    return SampleSet(*(jnp.asarray(a) for a in (states, actions, rewards, log_q, mask)))


def lbfgs_maximise(objective: Callable[[PolicyParams], jax.Array], params: PolicyParams, iterations: int) -> PolicyParams:
    """argmax of objective over the actor and log-std (the critic is not part of GPS), by L-BFGS
    with a zoom line search (optax), from params; a step to non-finite values is not taken."""
    def loss(p: tuple[dict, jax.Array]) -> jax.Array:
        return -objective(params._replace(actor=p[0], log_std=p[1]))

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry: tuple, _: None) -> tuple:
        p, state = carry
        value, grad = value_and_grad(p, state=state)
        updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=loss)
        p_new = optax.apply_updates(p, updates)
        ok = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(p_new)]))
        return (jax.tree.map(lambda a, b: jnp.where(ok, a, b), p_new, p), state), value

    p0 = (params.actor, params.log_std)
    (p, _), _ = jax.lax.scan(step, (p0, opt.init(p0)), None, length=iterations)
    return params._replace(actor=p[0], log_std=p[1])


class GPSResult(NamedTuple):
    params: PolicyParams
    policy: Policy
    controllers: list[LinearGaussianController]
    ddp_costs: list[float]
    history: list[dict]
    samples: int
    obs_stats: RunningStats | None
    """The fixed input standardisation (None: the policy sees the raw observation)."""
    features: Callable[[jax.Array], jax.Array]
    """The policy's input for a problem state: problem.features, standardised by obs_stats."""


OBS_CLIP = 10.0


def observation_stats(features: Callable[[jax.Array], jax.Array], states: list[np.ndarray]) -> RunningStats:
    """Mean and variance of features(x) over every time step of the given trajectories."""
    f = np.asarray(features(jnp.asarray(np.concatenate(states))), np.float64)
    return RunningStats(jnp.asarray(f.mean(0), jnp.float32), jnp.asarray(f.var(0), jnp.float32), jnp.asarray(len(f), jnp.float32))


def standardized(features: Callable[[jax.Array], jax.Array], stats: RunningStats | None,
                 clip: float = OBS_CLIP) -> Callable[[jax.Array], jax.Array]:
    """x -> clip((features(x) - mean) / sqrt(var + eps), +-clip), the same map `snapshot.load`
    applies to a raw observation; features itself when stats is None."""
    if stats is None:
        return features
    return lambda x: normalize(stats, features(x), clip)


def make_policy(problem: GPSProblem, config: GPSConfig) -> Policy:
    """The paper's policy: a soft-rectifier MLP with a Gaussian output of learned log-std."""
    return Policy(problem.obs_dim, problem.control_dim, "gaussian", tuple(config.hidden), "softplus", config.log_std_init)


def policy_cost(problem: GPSProblem, policy: Policy, params: PolicyParams, c: int,
                features: Callable[[jax.Array], jax.Array] | None = None) -> float:
    """Cost of the policy's mean actions from condition c (one deterministic rollout); the policy
    sees features(x) (default problem.features)."""
    act = policy_act(policy, problem.features if features is None else features, True)
    return -float(jnp.sum(problem.sample(c, act, params, jax.random.PRNGKey(0), 1)[2]))


def guiding_controller(problem: GPSProblem, config: GPSConfig, c: int, extra: Any = None) -> tuple[LinearGaussianController, float]:
    """Line 1 (and 9): the DDP controller of condition c with its covariance capped."""
    ctrl, cost = problem.guiding(c, config.guiding_temperature, config.ilqr_iterations, extra, config.guiding_gain_reg)
    half_range = 0.5 * float(np.min(np.asarray(problem.u_high) - np.asarray(problem.u_low)))
    return ctrl.with_std_bounds(config.guiding_min_std * half_range, config.guiding_max_std * half_range), cost


def add_samples(problem: GPSProblem, state: GPSState, source: Source, act: Act, args: Any, conditions: list[int], count: int,
                key: jax.Array) -> int:
    """Draw `count` samples of a new source at each condition into S; the source's index."""
    state.sources.append(source)
    for c in conditions:
        key, sub = jax.random.split(key)
        state.store.add(problem.sample(c, act, args, sub, count), c, len(state.sources) - 1)
    return len(state.sources) - 1


def add_policy_samples(problem: GPSProblem, config: GPSConfig, policy: Policy, features: Callable, state: GPSState,
                       params: PolicyParams, key: jax.Array) -> int:
    conditions = list(range(len(problem.conditions)))
    return add_samples(problem, state, Source(None, params), policy_act(policy, features), params, conditions, config.policy_samples, key)


@lru_cache(maxsize=None)
def _optimisers(policy: Policy, lbfgs_iterations: int, init_iterations: int) -> tuple[Callable, Callable, Callable]:
    """(fit by maximum likelihood, maximise Phi, estimated value), jitted once per policy and budget."""
    fit = jax.jit(lambda p, s: lbfgs_maximise(lambda q: log_likelihood(q, policy, s), p, init_iterations))
    optimise = jax.jit(lambda p, s, w: lbfgs_maximise(lambda q: phi(q, policy, s, w), p, lbfgs_iterations))
    value = jax.jit(lambda p, s: estimated_return(p, policy, s))
    return fit, optimise, value


def init_gps(problem: GPSProblem, config: GPSConfig, policy: Policy, seed: int) -> GPSState:
    """Lines 1-4: DDP solutions and their guiding samples, the input standardisation, theta* by
    maximum likelihood, and the first samples of pi_theta*."""
    key = jax.random.PRNGKey(seed)
    C = len(problem.conditions)
    state = GPSState(iteration=0, key=key, w_r=config.w_r, best=None, best_costs=[], initial_cost=0.0, store=SampleStore(), sources=[],
                     guiding=set(), policy_sources=[], ddp_sources=[], ddp_costs=[], obs_stats=None, warm_starts=problem.warm_starts)
    for c in range(C):  # lines 1-2
        ctrl, cost = guiding_controller(problem, config, c)
        state.ddp_costs.append(cost)
        key, sub = jax.random.split(key)
        j = add_samples(problem, state, Source(ctrl, None), controller_act, ctrl, [c], config.guiding_samples, sub)
        state.guiding.add(j)
        state.ddp_sources.append(j)
    state.obs_stats = observation_stats(problem.features, state.store.states) if config.normalize_obs else None
    state.features = features = standardized(problem.features, state.obs_stats)
    fit, _, _ = _optimisers(policy, config.lbfgs_iterations, config.init_iterations)
    key, k_init = jax.random.split(key)  # line 3
    state.best = fit(policy.init(k_init), build_sample_set(policy, state.store, state.sources, state.guiding, C, features))
    key, sub = jax.random.split(key)  # line 4
    state.policy_sources.append(add_policy_samples(problem, config, policy, features, state, state.best, sub))
    state.best_costs = [policy_cost(problem, policy, state.best, c, features) for c in range(C)]
    state.initial_cost = float(np.mean(state.best_costs))
    state.key = key
    return state


def gps_iteration(problem: GPSProblem, config: GPSConfig, policy: Policy, state: GPSState) -> dict:
    """Lines 6-17, once: theta_k from Phi on S_k, its samples, optionally adaptive guiding
    samples, and the importance-sampled accept/reject of theta_k against theta*. Updates state
    and returns the iteration's row."""
    C, key, k, features = len(problem.conditions), state.key, state.iteration + 1, state.features
    _, optimise, value = _optimisers(policy, config.lbfgs_iterations, config.init_iterations)
    w_r = jnp.asarray(state.w_r, jnp.float32)
    chosen = state.guiding | set(state.policy_sources[-config.recent_policies:])  # line 6
    theta_k = optimise(state.best, build_sample_set(policy, state.store, state.sources, chosen, C, features), w_r)  # line 7
    key, sub = jax.random.split(key)
    state.policy_sources.append(add_policy_samples(problem, config, policy, features, state, theta_k, sub))  # line 8
    chosen.add(state.policy_sources[-1])
    if config.adaptive_guiding:  # line 9
        for c in range(C):
            extra = (adaptive_cost(policy, features), (theta_k, jnp.asarray(config.adaptive_weight)))
            ctrl, _ = guiding_controller(problem, config, c, extra)
            key, sub = jax.random.split(key)
            j = add_samples(problem, state, Source(ctrl, None), controller_act, ctrl, [c], config.guiding_samples, sub)
            state.guiding.add(j)
            chosen.add(j)
    s_k = build_sample_set(policy, state.store, state.sources, chosen, C, features)
    v_new, v_best = float(value(theta_k, s_k)), float(value(state.best, s_k))  # line 10
    accepted, w_r = accept_or_reject(w_r, jnp.asarray(v_new), jnp.asarray(v_best), config.w_r_factor, config.w_r_min, config.w_r_max)
    if bool(accepted):  # lines 11-13
        state.best = theta_k
        state.best_costs = [policy_cost(problem, policy, state.best, c, features) for c in range(C)]
    elif config.resample_best:  # line 16
        key, sub = jax.random.split(key)
        state.policy_sources.append(add_policy_samples(problem, config, policy, features, state, state.best, sub))
    row = {
        "iteration": k, "accepted": bool(accepted), "w_r": float(w_r), "value_new": v_new, "value_best": v_best,
        "policy_cost_mean": float(np.mean(state.best_costs)), "ddp_cost_mean": float(np.mean(state.ddp_costs)),
        "samples": len(state.store), "policy_cost_initial": state.initial_cost,
    }
    state.iteration, state.key, state.w_r = k, key, float(w_r)
    state.history.append(row)
    return row


def run_gps(
    problem: GPSProblem, config: GPSConfig, seed: int = 0,
    on_iteration: Callable[[dict, GPSState], None] | None = None, state: GPSState | None = None,
) -> GPSResult:
    """Algorithm 1 over the training conditions of `problem`, from lines 1-4 or from a saved
    `state` (its problem's warm starts restored); on_iteration(row, state) after each iteration."""
    policy = make_policy(problem, config)
    if state is None:
        state = init_gps(problem, config, policy, seed)
    else:
        problem.warm_starts.update(state.warm_starts)
        state.warm_starts = problem.warm_starts
        state.features = standardized(problem.features, state.obs_stats)
    while state.iteration < config.iterations:
        row = gps_iteration(problem, config, policy, state)
        if on_iteration is not None:
            on_iteration(row, state)
    controllers = [state.sources[j].controller for j in state.ddp_sources]
    return GPSResult(state.best, policy, controllers, state.ddp_costs, state.history, len(state.store), state.obs_stats, state.features)


__all__ = ["GPSConfig", "GPSResult", "GPSState", "SampleStore", "Source", "build_sample_set", "lbfgs_maximise", "run_gps"]
