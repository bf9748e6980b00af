"""The rollout's fast path against its reference: its per-step call (`HostStep`, NumPy with the
compiled merge or without) against `policy_step` over NumPy bit for bit and jitted over
jax.numpy, the forward pass against Flax's, the batch's episode sums against the step-by-step
ones, and the whole batch a `Collector` gathers with the NumPy step against the one it gathers
with the jitted step, on real envs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from policysearch.core import merge_kernel
from policysearch.core.forward import mlp
from policysearch.core.normalize import NormConfig, NormState, RunningStats, normalize, update_stats
from policysearch.core.policies import Policy
from policysearch.envs import make_env
from policysearch.envs.rollout import Collector, HostStep, host_arrays, host_params, jax_policy_step, policy_step


def _random_stats(d: int, rng: np.random.Generator) -> RunningStats:
    return RunningStats(rng.normal(size=d).astype(np.float32), rng.uniform(0.1, 4.0, d).astype(np.float32), np.float32(37.0))


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
def test_forward_pass_is_flax_dense_bit_for_bit(activation: str) -> None:
    """`forward.mlp` over jax.numpy computes exactly what Flax's Dense layers computed before it
    replaced them (the checkpoints' parameters are Flax's); over NumPy, the same to float32
    rounding."""
    policy = Policy(7, 4, "gaussian", hidden=(32, 16), activation=activation)
    params = policy.init(jax.random.key(3))
    obs = jax.random.normal(jax.random.key(4), (9, 7))
    flax_out = policy._actor.apply(params.actor, obs)
    ours = jax.jit(lambda p, o: mlp(p, o, activation, jnp))(params.actor, obs)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(jax.jit(policy._actor.apply)(params.actor, obs)))
    np.testing.assert_allclose(mlp(host_arrays(params.actor), np.asarray(obs), activation), np.asarray(flax_out), rtol=1e-5, atol=1e-6)


def _host_steps(policy: Policy, params, stats: RunningStats, raw: np.ndarray, noise: np.ndarray, clip: float | None,
                merge) -> tuple[np.ndarray, np.ndarray, RunningStats]:
    """`HostStep` over raw[T, N, d] with noise[T, N, ...]: (obs[T], actions[T], final statistics)."""
    step = HostStep(policy, params, stats, clip, merge, noise)
    obs = np.zeros(raw.shape, np.float32)
    actions = np.zeros(noise.shape if policy.kind == "gaussian" else noise.shape[:2], np.float32 if policy.kind == "gaussian" else np.int32)
    for t in range(len(raw)):
        step(t, raw[t], obs[t], actions[t])
    return obs, actions, step.stats()


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("clip", [None, 10.0])
def test_host_step_matches_the_jitted_step(kind: str, clip: float | None) -> None:
    """One vector step (statistics merged, observations standardised, actions from given noise):
    the rollout's `HostStep` (NumPy, with and without the compiled merge) and the jitted jax.numpy
    `policy_step` agree to float32 rounding, the categorical choices exactly."""
    rng = np.random.default_rng(0)
    policy = Policy(5, 4, kind)
    params = policy.init(jax.random.key(0))
    stats = _random_stats(5, rng)
    raw = rng.normal(scale=3.0, size=(8, 5)).astype(np.float32)
    noise = np.asarray(policy.noise(jax.random.key(1), (8,)))
    ref = jax_policy_step(policy, params, RunningStats(*map(jnp.asarray, stats)), raw, noise, update=True, clip=clip)
    for merge in {None, merge_kernel.compiled()}:  # the NumPy merge, and the compiled one where Numba is installed
        obs, actions, got_stats = _host_steps(policy, params, stats, raw[None], noise[None], clip, merge)
        got = (obs[0], actions[0], got_stats if clip is not None else stats)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
            if kind == "categorical" and np.asarray(b).dtype.kind == "i":
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            else:
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
@pytest.mark.parametrize("clip", [None, 10.0])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_host_step_is_policy_step_over_numpy_bit_for_bit(kind: str, clip: float | None, activation: str) -> None:
    """Twenty steps in a row: `HostStep`'s in-place call (the merge compiled where Numba is
    installed, and NumPy's; the MLP in its buffers, tanh in place or another activation copied in)
    gives exactly the observations, actions and statistics of `policy_step` over NumPy carried
    step by step."""
    rng = np.random.default_rng(1)
    policy = Policy(6, 3, kind, activation=activation)
    params = policy.init(jax.random.key(2))
    stats = _random_stats(6, rng)
    raw = (rng.normal(size=(20, 8, 6)) * np.array([1e-3, 1.0, 30.0, 1e3, 1.0, 5.0])).astype(np.float32)
    noise = np.asarray(policy.noise(jax.random.key(3), (20, 8)))
    want_stats, want = stats, []
    for t in range(20):
        obs, action, want_stats = policy_step(policy, host_params(params), want_stats, raw[t], noise[t], True, clip)
        want.append((obs, action))
    for merge in {None, merge_kernel.compiled()}:
        obs, actions, got_stats = _host_steps(policy, params, stats, raw, noise, clip, merge)
        np.testing.assert_array_equal(obs, np.stack([w[0] for w in want]))
        np.testing.assert_array_equal(actions, np.stack([w[1] for w in want]).astype(actions.dtype))
        if clip is not None:
            for a, b in zip(got_stats, want_stats):
                np.testing.assert_array_equal(np.float32(a), np.float32(b))


def test_host_step_with_float64_weights_is_policy_step() -> None:
    """Weights that are not float32 (the MLP's buffers are) take `mlp` itself: the same actions as
    `policy_step` over NumPy."""
    rng = np.random.default_rng(4)
    policy = Policy(4, 2, "gaussian")
    params = jax.tree.map(lambda x: np.asarray(x, np.float64), host_arrays(policy.init(jax.random.key(5))))
    raw = rng.normal(size=(3, 5, 4)).astype(np.float32)
    noise = np.asarray(policy.noise(jax.random.key(6), (3, 5)))
    obs, actions, _ = _host_steps(policy, params, _random_stats(4, rng), raw, noise, None, None)
    want = [policy_step(policy, host_params(params), None, raw[t], noise[t], False, None)[1] for t in range(3)]
    np.testing.assert_array_equal(actions, np.stack(want).astype(np.float32))


def test_noise_gives_the_policy_distribution() -> None:
    """Actions from `Policy.noise`: categorical choices at the frequencies of softmax(logits)
    (Gumbel-max), Gaussian ones with the policy's mean and standard deviation; zero noise is the
    deterministic action."""
    rng = np.random.default_rng(2)
    n = 200_000
    cat = Policy(3, 4, "categorical")
    params = host_params(cat.init(jax.random.key(5)))
    params = params._replace(actor=[(w * 40.0, b) for w, b in params.actor])  # logits far from uniform
    obs = np.repeat(rng.normal(size=(1, 3)).astype(np.float32), n, axis=0)
    _, choice, _ = policy_step(cat, params, None, obs, np.asarray(cat.noise(jax.random.key(6), (n,))), False, None)
    freq = np.bincount(choice, minlength=4) / n
    np.testing.assert_allclose(freq, special.softmax(mlp(params.actor, obs[:1], "tanh")[0].astype(np.float64)), atol=4e-3)
    _, mode, _ = policy_step(cat, params, None, obs[:1], np.zeros((1, 4), np.float32), False, None)
    assert mode[0] == np.argmax(mlp(params.actor, obs[:1], "tanh")[0])

    gauss = Policy(3, 2, "gaussian", log_std_init=-0.7)
    gparams = host_params(gauss.init(jax.random.key(7)))
    _, actions, _ = policy_step(gauss, gparams, None, obs, np.asarray(gauss.noise(jax.random.key(8), (n,))), False, None)
    mean = mlp(gparams.actor, obs[:1], "tanh")[0]
    np.testing.assert_allclose(actions.mean(axis=0), mean, atol=3 * np.exp(-0.7) / np.sqrt(n) * 2)
    np.testing.assert_allclose(actions.std(axis=0), np.exp(-0.7), rtol=1e-2)


@pytest.mark.parametrize("n,d", [(1, 1), (8, 11), (33, 45)])
def test_merge_kernel_is_the_numpy_merge_bit_for_bit(n: int, d: int) -> None:
    """The compiled merge and standardisation give exactly `update_stats` then `normalize` over
    NumPy: statistics of mixed scales, observations beyond the clip on both sides, a NaN passed
    through, a first merge from the initial count and many merges in a row."""
    kernel = merge_kernel.compiled()
    if kernel is None:
        pytest.skip("Numba is not installed (the `fast` extra)")
    rng = np.random.default_rng(n * 100 + d)
    stats = _random_stats(d, rng)
    ref = stats
    for step in range(20):
        raw = (rng.normal(size=(n, d)) * rng.choice([1e-3, 1.0, 30.0, 1e3], size=d)).astype(np.float32)
        if step == 0:
            raw[0], raw[-1] = 1e6, (-1e6 if n > 1 else 1e6)  # beyond the clip on both sides
        if step == 3:
            raw[0, 0] = np.nan if n > 1 else raw[0, 0]
        ref = update_stats(ref, raw, None, np)
        want = normalize(ref, raw, 2.0, np)
        mean, var, obs = stats.mean.copy(), stats.var.copy(), np.full((n, d), np.nan, np.float32)
        count = kernel(mean, var, np.float32(stats.count), raw, np.float32(2.0), obs)  # mean, var and obs in place
        stats = RunningStats(mean, var, np.float32(count))
        for got, exp in ((obs, want), (mean, ref.mean), (var, ref.var), (np.float32(count), ref.count)):
            np.testing.assert_array_equal(got, exp)
        if step == 3 and n > 1:  # a NaN ruins its column's statistics in both; start them again
            stats = ref = _random_stats(d, rng)
        assert step != 0 or (obs.max() == 2.0 and (n == 1 or obs.min() == -2.0))  # the clip was reached


def test_numba_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYSEARCH_NUMBA", "0")
    assert merge_kernel.compiled.__wrapped__() is None


def test_a_seeded_batch_is_the_same_with_or_without_numba() -> None:
    """The rollout with the compiled merge (the default) and with the NumPy one (what runs without
    Numba, or with POLICYSEARCH_NUMBA=0) collects the very same batch and statistics."""
    if merge_kernel.compiled() is None:
        pytest.skip("Numba is not installed (the `fast` extra)")
    out = []
    for step in ("fast", "numpy"):
        env = make_env("Hopper-v5", 4, seed=3)
        policy = Policy(env.spec.obs_dim, env.spec.action_dim, env.spec.action_kind)
        collector = Collector(env, policy, NormConfig(), 0.99, step=step)
        batch, norm, _ = collector.collect(policy.init(jax.random.key(0)), NormState.create(policy.obs_dim, 4), jax.random.key(1), 50)
        env.close()
        out.append((batch, norm))
    for a, b in zip(*(jax.tree.leaves(o) for o in out)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("env_id", ["Hopper-v5", "CartPole-v1"])
def test_collector_batch_with_the_numpy_step_is_the_reference_batch(env_id: str) -> None:
    """Two consecutive batches (the second starting where the first left off, statistics carried,
    reward scaling on) from the NumPy step and from the jitted reference, same seed: the same
    episodes (dones, valid rows, categorical actions identical) and the same numbers to float32
    rounding; the carried observation statistics and reward scaling agree too."""
    out = {}
    for step in ("fast", "jax"):
        env = make_env(env_id, 4, seed=11)
        spec = env.spec
        policy = Policy(spec.obs_dim, spec.action_dim, spec.action_kind)
        params = policy.init(jax.random.key(0))
        collector = Collector(env, policy, NormConfig(), 0.99, step=step)
        norm, key, batches = NormState.create(policy.obs_dim, 4), jax.random.key(1), []
        for _ in range(2):
            batch, norm, key = collector.collect(params, norm, key, 64)
            batches.append(batch)
        env.close()
        out[step] = (batches, norm, key)
    (fast, fast_norm, fast_key), (ref, ref_norm, ref_key) = out["fast"], out["jax"]
    assert np.array_equal(np.asarray(jax.random.key_data(fast_key)), np.asarray(jax.random.key_data(ref_key)))
    for a, b in zip(fast, ref):
        for name in ("terminated", "truncated", "valid"):
            np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)), err_msg=name)
        assert np.asarray(a.valid).min() < 1 or env_id == "Hopper-v5"  # CartPole's episodes end within 128 steps
        for name in a._fields:
            x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
            if x.dtype.kind == "i":
                np.testing.assert_array_equal(x, y, err_msg=name)
            else:
                np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-4, err_msg=name)
    for a, b in zip(jax.tree.leaves(fast_norm), jax.tree.leaves(ref_norm)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_episode_tracker_matches_the_step_by_step_sums() -> None:
    """Episodes that end anywhere in a batch, several in one env, some carried over from the batch
    before, on auto-reset (invalid) rows: the vectorised `EpisodeTracker.record` gives the episodes
    of summing step by step, in the same order (by step, then env), the lengths exactly and the
    returns to float64 rounding."""
    from policysearch.envs.rollout import EpisodeTracker

    rng = np.random.default_rng(4)
    n, tracker = 5, EpisodeTracker(5)
    returns, lengths, want = np.zeros(n), np.zeros(n, np.int64), []
    prev_done = np.zeros(n, bool)
    for _ in range(4):
        rewards = rng.normal(scale=10.0, size=(40, n)).astype(np.float32)
        dones = rng.random((40, n)) < 0.1
        valid = np.concatenate([~prev_done[None], ~dones[:-1]])
        for t in range(40):  # the reference: the loop it replaced
            returns += rewards[t] * valid[t]
            lengths += valid[t]
            for i in np.flatnonzero(dones[t] & valid[t]):
                want.append((returns[i], lengths[i]))
                returns[i], lengths[i] = 0.0, 0
        tracker.record(rewards, dones, valid)
        prev_done = dones[-1]
    got = tracker.pop()
    assert len(got) == len(want) > 20
    assert [k for _, k in got] == [int(k) for _, k in want]
    np.testing.assert_allclose([r for r, _ in got], [r for r, _ in want], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(tracker.returns, returns, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(tracker.lengths, lengths)
    assert tracker.pop() == []
