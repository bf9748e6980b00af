"""PPO's clipped surrogate against hand-computed values, hand-derived gradients and finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from policysearch.algos.ppo import clipped_surrogate

EPS = 0.2


def _surrogate(ratio: list[float], adv: list[float], clip: float = EPS) -> np.ndarray:
    return np.asarray(clipped_surrogate(jnp.log(jnp.asarray(ratio, jnp.float32)), jnp.asarray(adv, jnp.float32), clip))


def _grad(ratio: list[float], adv: list[float], clip: float = EPS) -> np.ndarray:
    """d L / d log_ratio per sample (the objective is elementwise, so grad of the sum is per-sample)."""
    log_ratio = jnp.log(jnp.asarray(ratio, jnp.float32))
    a = jnp.asarray(adv, jnp.float32)
    return np.asarray(jax.grad(lambda lr: jnp.sum(clipped_surrogate(lr, a, clip)))(log_ratio))


# min(r A, clip(r, 0.8, 1.2) A) and its d/dlog r, worked by hand for eps = 0.2.
# A = +2 (Figure 1 left): r = 0.5 -> min(1.0, 1.6) = 1.0, grad r A = 1.0; r = 1.1 -> 2.2, grad 2.2;
#   r = 1.5 -> min(3.0, 2.4) = 2.4 clipped, grad 0.
# A = -2 (Figure 1 right): r = 0.5 -> min(-1.0, -1.6) = -1.6 clipped, grad 0; r = 0.9 -> -1.8, grad -1.8;
#   r = 1.5 -> min(-3.0, -2.4) = -3.0 unclipped, grad r A = -3.0.
CASES = [
    (0.5, 2.0, 1.0, 1.0),
    (1.1, 2.0, 2.2, 2.2),
    (1.5, 2.0, 2.4, 0.0),
    (0.5, -2.0, -1.6, 0.0),
    (0.9, -2.0, -1.8, -1.8),
    (1.5, -2.0, -3.0, -3.0),
    (1.0, 2.0, 2.0, 2.0),
    (1.0, -2.0, -2.0, -2.0),
    (3.0, 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(("ratio", "adv", "value", "grad"), CASES)
def test_clipped_surrogate_hand_values(ratio: float, adv: float, value: float, grad: float) -> None:
    """Value and gradient on both sides of the clip, for positive and negative advantages."""
    np.testing.assert_allclose(_surrogate([ratio], [adv]), [value], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_grad([ratio], [adv]), [grad], rtol=1e-5, atol=1e-6)


def test_clipped_surrogate_batched_matches_hand_values() -> None:
    """The same cases as one batch: per-sample output, no mixing across samples."""
    ratio, adv, value, grad = (list(c) for c in zip(*CASES))
    out = _surrogate(ratio, adv)
    assert out.shape == (len(CASES),)
    np.testing.assert_allclose(out, value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_grad(ratio, adv), grad, rtol=1e-5, atol=1e-6)


def test_clipped_surrogate_gradient_rule_on_random_points() -> None:
    """Gradient is r A where the unclipped term is active, 0 where A > 0, r > 1 + eps or A < 0, r < 1 - eps."""
    rng = np.random.default_rng(0)
    ratio = np.exp(rng.uniform(-0.7, 0.7, size=400)).astype(np.float32)
    adv = rng.normal(scale=2.0, size=400).astype(np.float32)
    far = (np.abs(ratio - (1 - EPS)) > 1e-3) & (np.abs(ratio - (1 + EPS)) > 1e-3)
    ratio, adv = ratio[far], adv[far]
    flat = ((adv > 0) & (ratio > 1 + EPS)) | ((adv < 0) & (ratio < 1 - EPS))
    assert flat.sum() > 50 and (~flat).sum() > 50
    expected_grad = np.where(flat, 0.0, ratio * adv)
    expected_value = np.where(flat, np.clip(ratio, 1 - EPS, 1 + EPS) * adv, ratio * adv)
    np.testing.assert_allclose(_grad(list(ratio), list(adv)), expected_grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_surrogate(list(ratio), list(adv)), expected_value, rtol=1e-5, atol=1e-6)


def test_clipped_surrogate_gradient_matches_finite_differences() -> None:
    """jax.grad agrees with central finite differences in log_ratio away from the kinks at 1 +- eps."""
    rng = np.random.default_rng(1)
    h = 1e-2
    log_ratio = rng.uniform(-0.6, 0.6, size=300)
    kinks = np.log([1 - EPS, 1 + EPS])
    log_ratio = log_ratio[np.min(np.abs(log_ratio[:, None] - kinks[None]), axis=1) > 5 * h].astype(np.float32)
    adv = rng.choice([-1.0, 1.0], size=log_ratio.size) * rng.uniform(0.2, 3.0, size=log_ratio.size)
    lr, a = jnp.asarray(log_ratio), jnp.asarray(adv, jnp.float32)
    fd = (np.asarray(clipped_surrogate(lr + h, a, EPS), np.float64) - np.asarray(clipped_surrogate(lr - h, a, EPS), np.float64)) / (2 * h)
    grad = np.asarray(jax.grad(lambda x: jnp.sum(clipped_surrogate(x, a, EPS)))(lr))
    np.testing.assert_allclose(grad, fd, rtol=2e-3, atol=2e-3)
    assert np.sum(grad == 0.0) > 20 and np.sum(grad != 0.0) > 20
