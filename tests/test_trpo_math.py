"""TRPO's numerical pieces: conjugate gradient, the Fisher-vector product, the scaled natural
step of `trpo_update`, and the trust region as the trainer reports it.

The KL Hessian at theta_old equals the Fisher information exactly (the first-order term of the
KL vanishes there and the second-order term of the network output is multiplied by a zero
expectation), so both are compared with float32 tolerances relative to the largest entry.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from policysearch.algos.base import Batch
from policysearch.algos.common import flatten_with_gae
from policysearch.algos.trpo import TRPOConfig, conjugate_gradient, fisher_vector_product, make_trpo, trpo_update
from policysearch.core.estimators import masked_mean, normalize_advantages
from policysearch.core.policies import Policy
from policysearch.run.train import RunConfig, train

# Conjugate gradient ----------------------------------------------------------------------------


def _spd(n: int, cond: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random SPD matrix with eigenvalues log-spaced in [1, cond], and a random right side."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = (q * np.logspace(0, np.log10(cond), n)) @ q.T
    return (a + a.T) / 2, rng.normal(size=n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cg_matches_solve_float32(seed: int) -> None:
    """n = 10, condition 100, n + 5 iterations in float32: 1e-4 relative error (CG converges in
    n steps in exact arithmetic; the extra 5 absorb float32 loss of conjugacy)."""
    a, b = _spd(10, 100.0, seed)
    a32 = jnp.asarray(a, jnp.float32)
    x = np.asarray(conjugate_gradient(lambda v: a32 @ v, jnp.asarray(b, jnp.float32), 15, tol=0.0))
    ref = np.linalg.solve(a, b)
    assert np.linalg.norm(x - ref) / np.linalg.norm(ref) < 1e-4
    # Also compiled, with the default tolerance (squared residual 1e-10 ~ 1e-5 relative residual).
    xj = np.asarray(jax.jit(lambda bb: conjugate_gradient(lambda v: a32 @ v, bb, 15))(jnp.asarray(b, jnp.float32)))
    assert np.linalg.norm(xj - ref) / np.linalg.norm(ref) < 1e-3


def test_cg_matches_solve_float64() -> None:
    """In float64, n + 5 = 15 iterations on condition 1e3 reach 1e-11 relative error (about
    1e-14 is observed; after exactly n iterations rounding leaves ~1e-6, as a float64 NumPy CG
    does too: finite termination is lost to rounding)."""
    a, b = _spd(10, 1e3, 3)
    with jax.enable_x64(True):
        a64 = jnp.asarray(a, jnp.float64)
        x = conjugate_gradient(lambda v: a64 @ v, jnp.asarray(b, jnp.float64), 15, tol=1e-30)
        assert x.dtype == jnp.float64
        x = np.asarray(x)
    ref = np.linalg.solve(a, b)
    assert np.linalg.norm(x - ref) / np.linalg.norm(ref) < 1e-11


def test_cg_first_iterate_and_zero_rhs() -> None:
    """One iteration is the exact line minimiser along b: x = (b.b / b.A b) b (1e-6 relative);
    b = 0 returns 0 without dividing by zero."""
    a, b = _spd(6, 10.0, 4)
    a32 = jnp.asarray(a, jnp.float32)
    x1 = np.asarray(conjugate_gradient(lambda v: a32 @ v, jnp.asarray(b, jnp.float32), 1))
    np.testing.assert_allclose(x1, (b @ b) / (b @ a @ b) * b, rtol=1e-5, atol=1e-6)
    x0 = np.asarray(conjugate_gradient(lambda v: a32 @ v, jnp.zeros(6, jnp.float32), 10))
    assert np.all(x0 == 0.0)


# Fisher-vector products ------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _kl_setup(kind: str, seed: int = 0):
    """(Cached per kind.) A tiny policy, its flattened (actor, log_std), a batch of observations and mean_kl(flat)
    = mean_s KL(pi_old(.|s) || pi_flat(.|s)), written as trpo_update writes it."""
    policy = Policy(obs_dim=3, action_dim=2 if kind == "gaussian" else 3, kind=kind, hidden=(4,))
    params = jax.jit(policy.init)(jax.random.PRNGKey(seed))  # one compile, not op-by-op
    # Output weights 30x the 0.01-gain initialisation: outputs far from uniform / zero-mean, so
    # every block of the Fisher matters (not just the log-std one).
    params = params._replace(actor=jax.tree.map(lambda x: x * 30.0 if x.ndim == 2 and x.shape[-1] == policy.action_dim else x, params.actor))
    if kind == "gaussian":
        params = params._replace(log_std=jnp.array([-0.3, 0.4], jnp.float32))
    obs = jax.random.normal(jax.random.PRNGKey(seed + 100), (64, 3))
    flat0, unravel = ravel_pytree((params.actor, params.log_std))
    old = policy.dist(params, obs)

    def dist_of(flat: jax.Array):
        actor, log_std = unravel(flat)
        return policy.dist(params._replace(actor=actor, log_std=log_std), obs)

    def mean_kl(flat: jax.Array) -> jax.Array:
        return jnp.mean(old.kl(dist_of(flat)))

    return policy, params, obs, flat0, dist_of, mean_kl


@functools.lru_cache(maxsize=None)
def _kl_hessian(kind: str) -> np.ndarray:
    """The explicit Hessian of mean_kl at theta_old, float64 copy (cached per kind)."""
    _, _, _, flat0, _, mean_kl = _kl_setup(kind)
    return np.asarray(jax.jit(jax.hessian(mean_kl))(flat0), np.float64)


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_fisher_vector_product_matches_explicit_hessian(kind: str) -> None:
    """`trpo.fisher_vector_product` (J^T H_d J v, what trpo_update computes, with damping 0) and
    forward-over-reverse jvp(grad KL) v both equal H v with H the explicit Hessian, for random v
    (1e-5 of |H| |v|); the Hessian is symmetric PSD and the KL and its gradient vanish at
    theta_old."""
    _, _, _, flat0, dist_of, mean_kl = _kl_setup(kind)
    h = _kl_hessian(kind)
    scale = np.abs(h).max()
    assert scale > 1e-2
    np.testing.assert_allclose(h, h.T, atol=1e-5 * scale)
    assert np.linalg.eigvalsh((h + h.T) / 2).min() > -1e-5 * scale
    assert abs(float(mean_kl(flat0))) < 1e-6
    assert np.abs(np.asarray(jax.grad(mean_kl)(flat0))).max() < 1e-5
    kl_grad = jax.grad(mean_kl)
    old = dist_of(flat0)
    kl_from_old = lambda d: jnp.mean(old.kl(d))  # noqa: E731 - mean_kl's KL, of the distribution
    products = {
        "gauss-newton": jax.jit(lambda v: fisher_vector_product(dist_of, flat0, kl_from_old, 0.0)(v)),
        "forward-over-reverse": jax.jit(lambda v: jax.jvp(kl_grad, (flat0,), (v,))[1]),
    }
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = rng.normal(size=flat0.shape).astype(np.float32)
        for fvp_fn in products.values():
            fvp = np.asarray(fvp_fn(jnp.asarray(v)), np.float64)
            np.testing.assert_allclose(fvp, h @ v, atol=1e-5 * scale * np.linalg.norm(v))
    damped = fisher_vector_product(dist_of, flat0, kl_from_old, 0.1)(jnp.asarray(v))
    np.testing.assert_allclose(np.asarray(damped, np.float64), h @ v + 0.1 * v, atol=1e-5 * scale * np.linalg.norm(v))


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_kl_hessian_is_the_fisher_information(kind: str) -> None:
    """H = E_s E_{a~pi_old}[grad log pi grad log pi^T]. Categorical: the inner expectation by
    enumerating the 3 actions. Gaussian: through the distribution's parameters,
    F = E_s[J_mu^T diag(1/s^2) J_mu + 2 J_logstd^T J_logstd] (the Fisher of N(mu, s^2) in
    (mu, log s)), with J the Jacobians from flat parameters. 1e-4 of the largest entry."""
    _, _, obs, flat0, dist_of, _ = _kl_setup(kind)
    h = _kl_hessian(kind)
    if kind == "categorical":
        probs = np.asarray(jax.nn.softmax(dist_of(flat0).logits), np.float64)  # [S, 3]
        fisher = np.zeros_like(h)
        for a in range(3):
            scores = np.asarray(jax.jit(jax.jacobian(lambda f: dist_of(f).log_prob(jnp.full((obs.shape[0],), a))))(flat0), np.float64)  # [S, P]
            fisher += np.einsum("s,sp,sq->pq", probs[:, a], scores, scores)
        fisher /= obs.shape[0]
    else:
        j_mu = np.asarray(jax.jit(jax.jacobian(lambda f: dist_of(f).mean))(flat0), np.float64)  # [S, A, P]
        j_ls = np.asarray(jax.jit(jax.jacobian(lambda f: jnp.broadcast_to(dist_of(f).log_std, (obs.shape[0], 2))))(flat0), np.float64)
        inv_var = np.exp(-2.0 * np.asarray(dist_of(flat0).log_std, np.float64))  # [S, A]
        fisher = (np.einsum("sa,sap,saq->pq", inv_var, j_mu, j_mu) + 2.0 * np.einsum("sap,saq->pq", j_ls, j_ls)) / obs.shape[0]
    np.testing.assert_allclose(h, fisher, atol=1e-4 * np.abs(h).max())


# One trpo_update on a synthetic batch ---------------------------------------------------------

T_ROWS, N_ENVS = 128, 8  # the shapes of the trainer runs below, so the compiled update is shared
CONFIG = TRPOConfig(steps_per_update=1024)


def _policy_for(env: str) -> Policy:
    """The policy the trainer builds for `env` with CONFIG (make_policy from the env spec)."""
    if env == "CartPole-v1":
        return Policy(4, 2, "categorical", CONFIG.hidden, CONFIG.activation, CONFIG.log_std_init)
    return Policy(3, 1, "gaussian", CONFIG.hidden, CONFIG.activation, CONFIG.log_std_init)


def _synthetic_batch(policy: Policy, params, seed: int) -> Batch:
    """On-policy actions and log-probs; rewards that favour a fixed direction of action, so
    the gradient is not noise; episode ends with auto-reset rows after them."""
    rng = np.random.default_rng(seed)
    obs = jnp.asarray(rng.normal(size=(T_ROWS, N_ENVS, policy.obs_dim)), jnp.float32)
    dist = policy.dist(params, obs)
    actions = dist.sample(jax.random.PRNGKey(seed))
    if policy.kind == "gaussian":
        rewards = np.asarray(actions[..., 0] * obs[..., 0])
    else:
        rewards = np.where(np.asarray(actions) == (np.asarray(obs[..., 1]) > 0), 1.0, 0.0)
    done = rng.random((T_ROWS, N_ENVS)) < 0.03
    valid = np.ones((T_ROWS, N_ENVS), np.float32)
    valid[1:][done[:-1]] = 0.0
    done &= valid > 0
    term = done & (rng.random((T_ROWS, N_ENVS)) < 0.5)
    return Batch(
        obs=obs, actions=actions, log_probs=dist.log_prob(actions), values=policy.value(params, obs),
        rewards=jnp.asarray(rewards * valid, jnp.float32), terminated=jnp.asarray(term, jnp.float32),
        truncated=jnp.asarray(done & ~term, jnp.float32), valid=jnp.asarray(valid),
        last_value=jnp.asarray(rng.normal(size=N_ENVS), jnp.float32),
    )


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_trpo_update_takes_the_scaled_natural_step(env: str) -> None:
    """After one trpo_update, independently of its metrics:
    - KL(pi_old || pi_new) over valid rows equals the reported kl and is <= max_kl;
    - the surrogate gain equals the reported one and is > 0;
    - the step D solves (F + damping I) D ~ g up to scale: the sine of the angle between
      (F + lambda I) D and g is < 1e-3 (~8e-6 observed: CG stops at a squared residual of
      1e-10; float32 products), with F v by reverse-over-reverse autodiff (a different route
      from the library's forward-over-reverse). A plain-gradient step gives > 0.02 (0.05-0.11
      here) and 15 steepest-descent iterations in place of CG give ~4e-3, so both would fail;
    - D is the boundary step shrunk k times: 0.5 D^T (F + lambda I) D = shrink^(2k) max_kl for
      an integer k in [0, line_search_steps) (k within 0.05 of an integer, ~2% in the quadratic
      form; ~1e-7 observed, as both sides use the same damped product up to float32 rounding).
    """
    policy = _policy_for(env)
    algo = make_trpo(CONFIG, policy, 1)
    state = algo.init(jax.random.PRNGKey(0))
    params = state.params
    batch = _synthetic_batch(policy, params, seed=1)
    new_state, metrics = trpo_update(state, batch, config=CONFIG, policy=policy)
    assert float(metrics["step_accepted"]) == 1.0


    @jax.jit
    def analyse(params, new_params, batch: Batch) -> dict[str, jax.Array]:  # one compile for it all
        fb = flatten_with_gae(batch, CONFIG.gamma, CONFIG.gae_lambda)
        adv = normalize_advantages(fb.advantages, fb.valid)
        flat0, unravel = ravel_pytree((params.actor, params.log_std))
        flat1, _ = ravel_pytree((new_params.actor, new_params.log_std))
        old = policy.dist(params, fb.obs)

        def dist_of(flat):
            actor, log_std = unravel(flat)
            return policy.dist(params._replace(actor=actor, log_std=log_std), fb.obs)

        def surrogate(flat):
            return masked_mean(jnp.exp(dist_of(flat).log_prob(fb.actions) - fb.old_log_probs) * adv, fb.valid)

        def mean_kl(flat):
            return masked_mean(old.kl(dist_of(flat)), fb.valid)

        def fvp(v: jax.Array) -> jax.Array:  # reverse-over-reverse Hessian-vector product, plus damping
            return jax.grad(lambda f: jnp.vdot(jax.grad(mean_kl)(f), v))(flat0) + CONFIG.cg_damping * v

        g = jax.grad(surrogate)(flat0)
        return dict(kl=mean_kl(flat1), gain=surrogate(flat1) - surrogate(flat0), g=g, step=flat1 - flat0,
                    a_step=fvp(flat1 - flat0), a_g=fvp(g))

    out = {k: np.asarray(v, np.float64) for k, v in analyse(params, new_state.params, batch).items()}
    np.testing.assert_allclose(out["kl"], float(metrics["kl"]), rtol=1e-4, atol=1e-7)
    assert 0.0 < out["kl"] <= CONFIG.max_kl + 1e-6
    np.testing.assert_allclose(out["gain"], float(metrics["surrogate_improvement"]), rtol=1e-3, atol=1e-6)
    assert out["gain"] > 0

    def sin_angle(x: np.ndarray, y: np.ndarray) -> float:
        c = x @ y / (np.linalg.norm(x) * np.linalg.norm(y))
        return float(np.sqrt(max(0.0, 1.0 - c * c)))

    g, a_step = out["g"], out["a_step"]
    assert a_step @ g > 0 and sin_angle(a_step, g) < 1e-3, sin_angle(a_step, g)
    # A plain-gradient step would fail that check: (F + lambda I) g is not along g.
    assert sin_angle(out["a_g"], g) > 0.02
    step = out["step"]
    quad = 0.5 * float(step @ a_step)
    k = np.log(quad / CONFIG.max_kl) / (2 * np.log(CONFIG.line_search_shrink))
    assert abs(k - round(k)) < 0.05 and 0 <= round(k) < CONFIG.line_search_steps, (quad, k)


# The trust region through the trainer ----------------------------------------------------------


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_trainer_respects_the_trust_region(tmp_path: Path, env: str) -> None:
    """8 updates of 1024 steps: every logged update has kl <= max_kl (+1e-6 for the
    6-significant-digit CSV), surrogate_improvement >= 0, and a rejected step reports kl = 0.
    8 envs (not 4): half the Python stepping loop, and the same [128, 8] batch shapes as the
    synthetic-batch test above, so the compiled update is reused."""
    run_dir = tmp_path / "r"
    train("trpo", RunConfig(env=env, total_steps=8192, num_envs=N_ENVS, seed=0, run_dir=str(run_dir), progress=False,
                            eval_episodes=0, video=False), CONFIG)
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    for r in rows:
        kl, gain, accepted = float(r["kl"]), float(r["surrogate_improvement"]), float(r["step_accepted"])
        assert 0.0 <= kl <= CONFIG.max_kl + 1e-6, r
        assert gain >= 0.0, r
        assert accepted in (0.0, 1.0)
        if accepted == 0.0:
            assert kl == 0.0 and gain == 0.0, r
    assert sum(float(r["step_accepted"]) for r in rows) >= 4  # steps are actually being taken
