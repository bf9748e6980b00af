"""Box-constrained quadratic programme by projected Newton (Tassa, Mansard and Todorov, ICRA 2014,
"Control-limited differential dynamic programming", Algorithm 1):

    minimise  0.5 x^T H x + g^T x   subject to  lower <= x <= upper.

Each iteration fixes the clamped set (at a bound, with the gradient pushing outward), takes a
Newton step in the free subspace and a projected Armijo line search. The free-subspace inverse is
what the iLQR backward pass turns into feedback gains (zero rows on clamped controls).

Also the small dense linear algebra both this and the iLQR backward pass use, written for XLA:CPU
inside loops: `matmul` and `spd_solve` on small operands lower to multiplies, reductions and
elementwise ops (no dot, no LAPACK call), which XLA fuses into a few kernels per loop step; a dot or
a LAPACK custom call is one runtime call each, and a loop holding one is never compiled as a
single kernel (XLA's small-while-loop hoisting excludes dots and custom calls).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

SMALL_DIM = 16
"""Operands with every dimension up to this use the fused forms below; larger ones use `@` / LAPACK."""


def matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """a @ b for a [p, q] and b [q, r] or [q] (or a [q] and b [q, r]); broadcast multiply and
    reduce when small (see the module docstring)."""
    if max(a.shape + b.shape) > SMALL_DIM:
        return a @ b
    if a.ndim == 1:
        return jnp.sum(a[:, None] * b, axis=0)
    if b.ndim == 1:
        return jnp.sum(a * b[None, :], axis=1)
    return jnp.sum(a[:, :, None] * b[None, :, :], axis=1)


def spd_solve(A: jax.Array, B: jax.Array) -> jax.Array:
    """A^-1 B for a symmetric positive definite A [m, m] and B [m, r]; nan where A is not positive
    definite. m <= 2: the explicit inverse. Up to SMALL_DIM / 2: Gauss-Jordan elimination without
    pivoting (stable for positive definite A, whose pivots are the squared Cholesky diagonal; a
    pivot <= 0 means A is not positive definite), unrolled into m whole-matrix updates of [A | B],
    one fused kernel each. Larger m: LAPACK Cholesky."""
    m = A.shape[0]
    if m > SMALL_DIM // 2:
        chol = jnp.linalg.cholesky(A)
        return jax.scipy.linalg.cho_solve((chol, True), B)
    if m == 1:
        return B / jnp.where(A[0, 0] > 0, A[0, 0], jnp.nan)
    if m == 2:  # the adjugate; positive definite iff a > 0 and det > 0
        a, b, c, d = A[0, 0], A[0, 1], A[1, 0], A[1, 1]
        det = a * d - b * c
        det = jnp.where((a > 0) & (det > 0), det, jnp.nan)
        return jnp.stack([(d * B[0] - b * B[1]) / det, (a * B[1] - c * B[0]) / det])
    M = jnp.concatenate([A, B], axis=1)
    for j in range(m):
        pivot = M[j, j]
        row = M[j] / jnp.where(pivot > 0, pivot, jnp.nan)
        M = (M - M[:, j : j + 1] * row[None, :]).at[j].set(row)
    return M[:, m:]


class BoxQPResult(NamedTuple):
    x: jax.Array  # [m] solution
    free: jax.Array  # [m] bool, controls not at an active bound
    H_free_inv: jax.Array  # [m, m] inverse of H on the free set, zero elsewhere
    ok: jax.Array  # bool: H was positive definite on the free set


def _masked_inverse(H: jax.Array, free: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Inverse of H restricted to the free set (identity padding elsewhere), and whether the
    restricted H was positive definite."""
    mask = free[:, None] & free[None, :]
    eye = jnp.eye(H.shape[0], dtype=H.dtype)
    inv = spd_solve(jnp.where(mask, H, eye), eye)
    ok = jnp.all(jnp.isfinite(inv))
    return jnp.where(mask, inv, 0.0), ok


def box_qp(
    H: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array, x0: jax.Array,
    max_iter: int = 50, min_grad: float = 1e-8, min_rel_improve: float = 1e-8, armijo: float = 0.1,
    step_decrease: float = 0.6, line_search_steps: int = 30,
) -> BoxQPResult:
    """Projected-Newton solution of the box QP from the warm start x0 (clipped into the box)."""
    value = lambda x: jnp.sum(x * (0.5 * matmul(H, x) + g))  # noqa: E731
    steps = step_decrease ** jnp.arange(line_search_steps, dtype=H.dtype)

    def free_set(x: jax.Array, grad: jax.Array) -> jax.Array:
        clamped = ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
        return ~clamped

    def body(c: tuple) -> tuple:
        i, x, _, _ = c
        grad = g + matmul(H, x)
        free = free_set(x, grad)
        inv, ok = _masked_inverse(H, free)
        dx = -matmul(inv, grad) * free
        old = value(x)
        cand = jnp.clip(x[None, :] + steps[:, None] * dx[None, :], lower, upper)
        vals = 0.5 * jnp.sum(cand * jnp.sum(cand[:, None, :] * H[None], axis=-1), axis=-1) + jnp.sum(cand * g, axis=-1)
        sufficient = (old - vals) >= armijo * steps * (-jnp.sum(grad * dx))
        j = jnp.argmax(sufficient)
        found = sufficient[j] & ok
        x_new = jnp.where(found, cand[j], x)
        rel = (old - value(x_new)) / (jnp.abs(old) + 1e-12)
        small = (jnp.linalg.norm(grad * free) < min_grad) | (rel < min_rel_improve) | ~found
        return i + 1, x_new, small, ok

    x = jnp.clip(x0, lower, upper)
    _, x, _, _ = jax.lax.while_loop(lambda c: (c[0] < max_iter) & ~c[2], body, (0, x, jnp.asarray(False), jnp.asarray(True)))
    free = free_set(x, g + matmul(H, x))
    inv, ok = _masked_inverse(H, free)
    return BoxQPResult(x, free, inv, ok)
