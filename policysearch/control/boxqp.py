"""Box-constrained quadratic programme by projected Newton (Tassa, Mansard and Todorov, ICRA 2014,
"Control-limited differential dynamic programming", Algorithm 1):

    minimise  0.5 x^T H x + g^T x   subject to  lower <= x <= upper.

Each iteration fixes the clamped set (at a bound, with the gradient pushing outward), takes a
Newton step in the free subspace and a projected Armijo line search. The free-subspace inverse is
what the iLQR backward pass turns into feedback gains (zero rows on clamped controls).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class BoxQPResult(NamedTuple):
    x: jax.Array  # [m] solution
    free: jax.Array  # [m] bool, controls not at an active bound
    H_free_inv: jax.Array  # [m, m] inverse of H on the free set, zero elsewhere
    ok: jax.Array  # bool: H was positive definite on the free set


def _masked_inverse(H: jax.Array, free: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Inverse of H restricted to the free set (identity padding elsewhere), and whether the
    restricted H was positive definite."""
    mask = free[:, None] & free[None, :]
    Hm = jnp.where(mask, H, jnp.eye(H.shape[0], dtype=H.dtype))
    chol = jnp.linalg.cholesky(Hm)
    ok = jnp.all(jnp.isfinite(chol))
    inv = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(H.shape[0], dtype=H.dtype))
    return jnp.where(mask, inv, 0.0), ok


def box_qp(
    H: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array, x0: jax.Array,
    max_iter: int = 50, min_grad: float = 1e-8, min_rel_improve: float = 1e-8, armijo: float = 0.1,
    step_decrease: float = 0.6, line_search_steps: int = 30,
) -> BoxQPResult:
    """Projected-Newton solution of the box QP from the warm start x0 (clipped into the box)."""
    value = lambda x: 0.5 * x @ H @ x + g @ x  # noqa: E731
    steps = step_decrease ** jnp.arange(line_search_steps, dtype=H.dtype)

    def free_set(x: jax.Array, grad: jax.Array) -> jax.Array:
        clamped = ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
        return ~clamped

    def body(c: tuple) -> tuple:
        i, x, _, _ = c
        grad = g + H @ x
        free = free_set(x, grad)
        inv, ok = _masked_inverse(H, free)
        dx = -(inv @ grad) * free
        old = value(x)
        cand = jnp.clip(x[None, :] + steps[:, None] * dx[None, :], lower, upper)
        vals = jax.vmap(value)(cand)
        sufficient = (old - vals) >= armijo * steps * (-(grad @ dx))
        j = jnp.argmax(sufficient)
        found = sufficient[j] & ok
        x_new = jnp.where(found, cand[j], x)
        rel = (old - value(x_new)) / (jnp.abs(old) + 1e-12)
        small = (jnp.linalg.norm(grad * free) < min_grad) | (rel < min_rel_improve) | ~found
        return i + 1, x_new, small, ok

    x = jnp.clip(x0, lower, upper)
    _, x, _, _ = jax.lax.while_loop(lambda c: (c[0] < max_iter) & ~c[2], body, (0, x, jnp.asarray(False), jnp.asarray(True)))
    free = free_set(x, g + H @ x)
    inv, ok = _masked_inverse(H, free)
    return BoxQPResult(x, free, inv, ok)
