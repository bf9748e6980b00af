"""`core.permutation`: jax.random.permutation's permutation without the key-value sort, the
same in every case (ties in the random bits included)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from policysearch.core.permutation import permutation, rounds, stable_reorder


@pytest.mark.parametrize("n", [1, 2, 5, 64, 2048, 5000])
def test_the_permutation_is_jax_random_permutations(n: int) -> None:
    ours = jax.jit(permutation, static_argnums=1)
    for seed in range(12):
        for key in (jax.random.key(seed), jax.random.PRNGKey(seed)):  # typed and raw keys
            got, want = ours(key, n), jax.random.permutation(key, n)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    assert sorted(np.asarray(ours(jax.random.key(0), n)).tolist()) == list(range(n))


def test_rounds_grow_with_n_as_jax_counts_them() -> None:
    assert [rounds(n) for n in (0, 1, 2, 2048, 2_600_000, 2_700_000)] == [0, 0, 1, 2, 2, 3]


@pytest.mark.parametrize("distinct", [3, 100, 2**32 - 1])
def test_stable_reorder_is_the_stable_key_value_sort_with_and_without_ties(distinct: int) -> None:
    reorder = jax.jit(stable_reorder)
    ties_seen = False
    for seed in range(8):
        keys = jax.random.bits(jax.random.key(seed), (500,), jnp.uint32) % jnp.uint32(distinct)
        x = jnp.arange(500, dtype=jnp.int32)[::-1]
        np.testing.assert_array_equal(reorder(keys, x), jax.lax.sort_key_val(keys, x)[1])
        ties_seen = ties_seen or len(np.unique(keys)) < 500
    assert ties_seen == (distinct < 2**32 - 1)  # the few-values cases went through the tie path


def test_the_permutation_under_vmap_is_each_keys_permutation() -> None:
    """Under vmap the tie test becomes a select over both branches; the result stays exact."""
    keys = jax.random.split(jax.random.key(7), 6)
    got = jax.vmap(lambda k: permutation(k, 300))(keys)
    np.testing.assert_array_equal(got, np.stack([jax.random.permutation(k, 300) for k in keys]))
