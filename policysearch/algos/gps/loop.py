"""Guided Policy Search (Levine and Koltun, ICML 2013), Algorithm 1:

 1: DDP solutions pi_G1..pi_Gn, one per training condition, from our iLQR
 2: guiding samples from each pi_Gi (so from q = (1/n) sum_i pi_Gi); optionally also from the
    example policy with Gaussian noise (`gps.example`), a guiding distribution of known density
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

The shape is every algorithm's (Optax's init/update pair): `make_gps(config, problem)` binds
Algorithm 1 to a problem, `init(seed) -> state` runs lines 1-4 and `iteration(state) -> (state,
row)` one pass of lines 6-17, over a frozen `GPSState`. q is always the mixture over every
distribution that produced samples at a condition, so every source that sampled stays in the
state. Sampling and DDP go through the problem (`envs.problems`); the objective is
`gps.objective`; the jitted optimisers take the policy as a static argument, so they compile once
per network and budget with no cache of our own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from policysearch.algos.gps.config import GPSConfig
from policysearch.algos.gps.example import ExampleGuide
from policysearch.algos.gps.objective import accept_or_reject, estimated_return, log_likelihood, log_weights, phi
from policysearch.algos.gps.inputs import PolicyInput
from policysearch.algos.gps.samples import SampleSet, SampleStore, Source, build_sample_set, observation_stats
from policysearch.algos.gps.state import GPSState
from policysearch.control.lqg import LinearGaussianController
from policysearch.core.estimators import effective_sample_size
from policysearch.core.normalize import RunningStats
from policysearch.core.policies import Policy, PolicyParams
from policysearch.envs.problems import Act, GPSProblem, Report
from policysearch.errors import require

InitProgress = Callable[[str, int, "int | None", str], None]
"""on_progress(phase, done, total, detail) of `init_gps` as it goes: the phase's title, how many of
its `total` steps are done (total None: one opaque call, reported with done 0 before it and done 1
after it) and what it is doing now. The run layer shows it; the algorithm prints nothing."""


def controller_act(ctrl: LinearGaussianController, t: jax.Array, x: jax.Array, key: jax.Array) -> jax.Array:
    """u ~ pi_G(u | x_t) = N(g(x_t), Sigma_t)."""
    return ctrl.sample(key, t, x)


@dataclass(frozen=True)
class PolicyAct:
    """u ~ pi_theta(u | inp(stats, x)) (or its mean), args = (params, stats); hashable by value,
    so sampling compiles once per policy and input map."""

    policy: Policy
    inp: PolicyInput
    deterministic: bool = False

    def __call__(self, args: tuple[PolicyParams, RunningStats | None], t: jax.Array, x: jax.Array, key: jax.Array) -> jax.Array:
        params, stats = args
        dist = self.policy.dist(params, self.inp(stats, x))
        return dist.mode() if self.deterministic else dist.sample(key)


@dataclass(frozen=True)
class AdaptiveCost:
    """Line 9 (paper sec. 4): the extra cost -lambda log pi_theta(u | x) that pulls the guiding
    controller toward what the policy can reproduce; args = (params, stats, lambda)."""

    policy: Policy
    inp: PolicyInput

    def __call__(self, args: tuple[PolicyParams, RunningStats | None, jax.Array], x: jax.Array, u: jax.Array) -> jax.Array:
        params, stats, weight = args
        return -weight * self.policy.dist(params, self.inp(stats, x)).log_prob(u)


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


@partial(jax.jit, static_argnames=("policy", "iterations"))
def fit_max_likelihood(params: PolicyParams, samples: SampleSet, policy: Policy, iterations: int) -> PolicyParams:
    """Line 3: theta* = argmax sum_i log pi_theta(zeta_i) over the guiding samples."""
    return lbfgs_maximise(lambda q: log_likelihood(q, policy, samples), params, iterations)


@partial(jax.jit, static_argnames=("policy", "iterations"))
def maximise_phi(params: PolicyParams, samples: SampleSet, w_r: jax.Array, policy: Policy, iterations: int) -> PolicyParams:
    """Line 7: theta_k = argmax Phi_{S_k}(theta) from theta*."""
    return lbfgs_maximise(lambda q: phi(q, policy, samples, w_r), params, iterations)


@partial(jax.jit, static_argnames=("policy",))
def estimated_value(params: PolicyParams, samples: SampleSet, policy: Policy) -> jax.Array:
    """Line 10: Phi with w_r = 0, the self-normalised importance-sampled return."""
    return estimated_return(params, policy, samples)


@partial(jax.jit, static_argnames=("policy",))
def final_step_ess(params: PolicyParams, samples: SampleSet, policy: Policy) -> jax.Array:
    """The effective sample size (sum w)^2 / sum w^2 of the whole-trajectory weights under
    pi_params, per condition: [C]. Near 1, line 10's estimate rests on one sample."""
    return effective_sample_size(jnp.swapaxes(log_weights(policy, params, samples)[..., -1], 0, 1))


def make_policy(problem: GPSProblem, config: GPSConfig) -> Policy:
    """The paper's policy: an MLP (soft rectifiers by default) with a Gaussian output of learned log-std."""
    return Policy(problem.obs_dim, problem.control_dim, "gaussian", tuple(config.hidden), config.activation, config.log_std_init)


def policy_cost(problem: GPSProblem, policy: Policy, params: PolicyParams, stats: RunningStats | None, c: int) -> float:
    """Cost of the policy's mean actions from condition c (one deterministic rollout); the policy
    sees problem.features_for(c)(x), standardised by stats when given."""
    act = PolicyAct(policy, PolicyInput(problem.features_for(c)), True)
    return -float(jnp.sum(problem.sample(c, act, (params, stats), jax.random.PRNGKey(0), 1)[2]))


class GPS(NamedTuple):
    """Algorithm 1 bound to a problem: `init(seed) -> state` (lines 1-4) and
    `iteration(state) -> (state, row)` (lines 6-17)."""

    config: GPSConfig
    problem: GPSProblem
    policy: Policy
    init: Callable[..., GPSState]
    """init(seed, on_progress=None): `init_gps` (with the example guide make_gps was given)."""
    iteration: Callable[..., tuple[GPSState, dict[str, Any]]]
    """iteration(state, on_progress=None): `gps_iteration`."""


def make_gps(config: GPSConfig, problem: GPSProblem, example: ExampleGuide | None = None) -> GPS:
    """Algorithm 1 bound to `problem`; `example` (needed when config.example_samples > 0) is the
    example policy whose noisy runs join the guiding samples."""
    if config.example_samples:
        require(example is not None, "--example-samples needs an example policy: pass --example-policy RUN_DIR, or leave --example-samples 0")
        require(example.policy.obs_dim == problem.obs_dim and example.policy.action_dim == problem.control_dim,
                f"the example policy acts on {example.policy.obs_dim} observations with {example.policy.action_dim} actions, "
                f"{problem.name} has {problem.obs_dim} and {problem.control_dim}: pass an example trained with this task's observation")
    policy = make_policy(problem, config)
    return GPS(config, problem, policy, partial(init_gps, problem, config, policy, example=example), partial(gps_iteration, problem, config, policy))


def _guiding(problem: GPSProblem, config: GPSConfig, state: GPSState, c: int, extra: Any = None,
             on_iteration: Report | None = None) -> tuple[LinearGaussianController, float, GPSState]:
    """Line 1 (and 9): the DDP controller of condition c with its covariance bounded, its true
    cost, and the state with the solution's controls as c's next warm start."""
    g = problem.guiding(c, config.guiding_temperature, config.ilqr_iterations, extra, config.guiding_gain_reg, state.warm_starts,
                        on_iteration=on_iteration)
    half_range = 0.5 * float(np.min(np.asarray(problem.u_high) - np.asarray(problem.u_low)))
    ctrl = g.controller.with_std_bounds(config.guiding_min_std * half_range, config.guiding_max_std * half_range)
    warm = tuple(g.controls if i == c else u for i, u in enumerate(state.warm_starts))
    return ctrl, g.cost, dataclasses.replace(state, warm_starts=warm)


def _draw(problem: GPSProblem, state: GPSState, source: Source, act: Callable[[int], Act], args: Any, conditions: list[int],
          count: int) -> tuple[GPSState, int]:
    """Draw `count` samples of a new source at each condition c, by act(c), into S: (state, the
    source's index)."""
    key, store = state.key, state.store
    j = len(state.sources)
    for c in conditions:
        key, sub = jax.random.split(key)
        store = store.add(problem.sample(c, act(c), args, sub, count), c, j)
    return dataclasses.replace(state, key=key, store=store, sources=state.sources + (source,)), j


def _draw_policy(problem: GPSProblem, config: GPSConfig, policy: Policy, state: GPSState, params: PolicyParams) -> GPSState:
    """Samples of pi_params at every condition (lines 4, 8 and 16)."""
    def act(c: int) -> Act:
        return PolicyAct(policy, PolicyInput(problem.features_for(c)))

    state, j = _draw(problem, state, Source(None, params), act, (params, state.obs_stats), list(range(len(problem.conditions))), config.policy_samples)
    return dataclasses.replace(state, policy_sources=state.policy_sources + (j,))


def _draw_example(problem: GPSProblem, config: GPSConfig, state: GPSState, example: ExampleGuide) -> GPSState:
    """Guiding samples of the noisy example at every condition (line 2's second kind)."""
    state, j = _draw(problem, state, Source(None, None, example), lambda c: example.act(problem.features_for(c)), example.args,
                     list(range(len(problem.conditions))), config.example_samples)
    return dataclasses.replace(state, guiding=state.guiding | {j})


def _draw_guiding(problem: GPSProblem, config: GPSConfig, state: GPSState, c: int, ctrl: LinearGaussianController) -> tuple[GPSState, int]:
    """Guiding samples of pi_G at condition c (lines 2 and 9)."""
    state, j = _draw(problem, state, Source(ctrl, None), lambda c: controller_act, ctrl, [c], config.guiding_samples)
    return dataclasses.replace(state, guiding=state.guiding | {j}), j


def _sample_set(problem: GPSProblem, policy: Policy, state: GPSState, chosen: frozenset[int]) -> SampleSet:
    return build_sample_set(policy, state.store, state.sources, chosen, _inputs(problem), state.obs_stats)


def _inputs(problem: GPSProblem) -> list[PolicyInput]:
    """The policy's input map at each condition."""
    return [PolicyInput(problem.features_for(c)) for c in range(len(problem.conditions))]


def _costs(problem: GPSProblem, policy: Policy, params: PolicyParams, stats: RunningStats | None) -> tuple[float, ...]:
    return tuple(policy_cost(problem, policy, params, stats, c) for c in range(len(problem.conditions)))


def _no_progress(phase: str, done: int, total: int | None, detail: str) -> None:
    pass


def _solve_progress(on_progress: InitProgress, phase: str, c: int, C: int, iterations: int) -> Report:
    """The guiding solve's reports at condition c as on_progress details."""
    def on_iteration(r: dict) -> None:
        where = f"window from step {r['start']}" if "start" in r else f"iteration {r['iteration']}/{iterations}"
        on_progress(phase, c, C, f"condition {c + 1}: {r.get('stage', 'iLQR')} {where}, cost {r['cost']:.4g}")
    return on_iteration


def init_gps(problem: GPSProblem, config: GPSConfig, policy: Policy, seed: int, on_progress: InitProgress | None = None,
             example: ExampleGuide | None = None) -> GPSState:
    """Lines 1-4: DDP solutions and their guiding samples (and, with config.example_samples, the
    noisy example's), the input standardisation, theta* by maximum likelihood, and the first
    samples of pi_theta*; on_progress (`InitProgress`) hears each phase as it goes."""
    report = on_progress or _no_progress
    C = len(problem.conditions)
    state = GPSState(iteration=0, key=jax.random.PRNGKey(seed), w_r=config.w_r, best=policy.init(jax.random.PRNGKey(seed)), best_costs=(),
                     initial_cost=0.0, store=SampleStore(), sources=(), guiding=frozenset(), policy_sources=(), ddp_sources=(),
                     ddp_costs=(), obs_stats=None, warm_starts=(None,) * C)
    ddp = "DDP solutions and guiding samples"
    for c in range(C):  # lines 1-2
        report(ddp, c, C, f"condition {c + 1}: DDP solve")
        solve_progress = None if on_progress is None else _solve_progress(on_progress, ddp, c, C, config.ilqr_iterations)
        ctrl, cost, state = _guiding(problem, config, state, c, on_iteration=solve_progress)
        report(ddp, c, C, f"condition {c + 1}: {config.guiding_samples} guiding samples, DDP cost {cost:.4g}")
        key, sub = jax.random.split(state.key)
        state, j = _draw_guiding(problem, config, dataclasses.replace(state, key=sub), c, ctrl)
        state = dataclasses.replace(state, key=key, ddp_sources=state.ddp_sources + (j,), ddp_costs=state.ddp_costs + (cost,))
        report(ddp, c + 1, C, f"condition {c + 1}: DDP cost {cost:.4g}")
    if config.example_samples and example is not None:
        noisy = f"{config.example_samples} noisy runs of the example policy at each of {C} conditions"
        report(noisy, 0, None, "")
        state = _draw_example(problem, config, state, example)
        report(noisy, 1, None, "")
    stats = observation_stats(_inputs(problem), state.store) if config.normalize_obs else None
    state = dataclasses.replace(state, obs_stats=stats)
    key, k_init = jax.random.split(state.key)  # line 3
    fit = f"maximum-likelihood fit of the policy ({config.init_iterations} L-BFGS iterations)"
    report(fit, 0, None, "")
    best = jax.block_until_ready(fit_max_likelihood(policy.init(k_init), _sample_set(problem, policy, state, state.guiding), policy,
                                                    config.init_iterations))
    report(fit, 1, None, "")
    first = "first policy: samples and true costs"
    report(first, 0, 2, f"{config.policy_samples} samples at each of {C} conditions")
    key, sub = jax.random.split(key)  # line 4
    state = _draw_policy(problem, config, policy, dataclasses.replace(state, key=sub), best)
    report(first, 1, 2, f"true cost from each of {C} conditions")
    costs = _costs(problem, policy, best, stats)
    report(first, 2, 2, f"cost {float(np.mean(costs)):.4g}")
    return dataclasses.replace(state, key=key, best=best, best_costs=costs, initial_cost=float(np.mean(costs)))


def gps_iteration(problem: GPSProblem, config: GPSConfig, policy: Policy, state: GPSState,
                  on_progress: InitProgress | None = None) -> tuple[GPSState, dict[str, Any]]:
    """Lines 6-17, once: theta_k from Phi on S_k, its samples, optionally adaptive guiding
    samples, and the importance-sampled accept/reject of theta_k against theta*. Returns the new
    state and the iteration's row; on_progress hears its phases as `init_gps`'s."""
    report = on_progress or _no_progress
    C, k = len(problem.conditions), state.iteration + 1
    chosen = state.guiding | set(state.policy_sources[-config.recent_policies:])  # line 6
    lbfgs = f"iteration {k}: maximising Phi ({config.lbfgs_iterations} L-BFGS iterations)"
    report(lbfgs, 0, None, "")
    theta_k = jax.block_until_ready(maximise_phi(state.best, _sample_set(problem, policy, state, chosen), jnp.asarray(state.w_r, jnp.float32),
                                                 policy, config.lbfgs_iterations))  # line 7
    report(lbfgs, 1, None, "")
    drawn = f"iteration {k}: samples of the new policy"
    report(drawn, 0, None, "")
    key, sub = jax.random.split(state.key)
    state = _draw_policy(problem, config, policy, dataclasses.replace(state, key=sub), theta_k)  # line 8
    report(drawn, 1, None, "")
    chosen = chosen | {state.policy_sources[-1]}
    if config.adaptive_guiding:  # line 9
        args = (theta_k, state.obs_stats, jnp.asarray(config.adaptive_weight))
        ddp = f"iteration {k}: adaptive DDP solutions and guiding samples"
        for c in range(C):
            report(ddp, c, C, f"condition {c + 1}: DDP solve")
            solve_progress = None if on_progress is None else _solve_progress(on_progress, ddp, c, C, config.ilqr_iterations)
            ctrl, _, state = _guiding(problem, config, state, c, (AdaptiveCost(policy, PolicyInput(problem.features_for(c))), args),
                                      on_iteration=solve_progress)
            report(ddp, c, C, f"condition {c + 1}: {config.guiding_samples} guiding samples")
            key, sub = jax.random.split(key)
            state, j = _draw_guiding(problem, config, dataclasses.replace(state, key=sub), c, ctrl)
            chosen = chosen | {j}
            report(ddp, c + 1, C, "")
    values = f"iteration {k}: importance-sampled values and true costs"
    report(values, 0, None, "")
    s_k = _sample_set(problem, policy, state, chosen)
    v_new = float(estimated_value(theta_k, s_k, policy))  # line 10
    v_best = float(estimated_value(state.best, s_k, policy))
    new_costs = _costs(problem, policy, theta_k, state.obs_stats)  # theta_k's true cost (a diagnostic, unless accept_on)
    compared = (v_new, v_best) if config.accept_on == "estimate" else (-float(np.mean(new_costs)), -float(np.mean(state.best_costs)))
    accepted, w_r = accept_or_reject(jnp.asarray(state.w_r, jnp.float32), jnp.asarray(compared[0]), jnp.asarray(compared[1]),
                                     config.w_r_factor, config.w_r_min, config.w_r_max)
    ess = np.asarray(final_step_ess(theta_k, s_k, policy))  # a diagnostic: how many samples the estimate rests on
    report(values, 1, None, "")
    if bool(accepted):  # lines 11-13
        state = dataclasses.replace(state, best=theta_k, best_costs=new_costs)
    elif config.resample_best:  # line 16
        key, sub = jax.random.split(key)
        state = _draw_policy(problem, config, policy, dataclasses.replace(state, key=sub), state.best)
    row = {
        "iteration": k, "accepted": bool(accepted), "w_r": float(w_r), "value_new": v_new, "value_best": v_best,
        "policy_cost_mean": float(np.mean(state.best_costs)), "ddp_cost_mean": float(np.mean(state.ddp_costs)),
        "samples": len(state.store), "policy_cost_initial": state.initial_cost,
        "policy_cost_new": float(np.mean(new_costs)), "ess_new_min": float(ess.min()),
    }
    return dataclasses.replace(state, iteration=k, key=key, w_r=float(w_r), history=state.history + (row,)), row


def run_gps(problem: GPSProblem, config: GPSConfig, seed: int = 0, on_iteration: Callable[[GPSState, dict[str, Any]], None] | None = None,
            state: GPSState | None = None, example: ExampleGuide | None = None) -> tuple[GPS, GPSState]:
    """Algorithm 1 over the training conditions of `problem`, from lines 1-4 or from a saved
    `state`, until config.iterations; on_iteration(state, row) after each iteration; `example`
    as `make_gps`'s."""
    gps = make_gps(config, problem, example)
    state = gps.init(seed) if state is None else state
    while state.iteration < config.iterations:
        state, row = gps.iteration(state)
        if on_iteration is not None:
            on_iteration(state, row)
    return gps, state


__all__ = ["GPS", "GPSConfig", "GPSState", "PolicyAct", "controller_act", "init_gps", "gps_iteration", "make_gps", "policy_cost", "run_gps"]
