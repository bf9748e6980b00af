"""The guard against non-finite training: after every update (and GPS iteration) the parameters
and every loss must be finite, else the run stops with `NonFiniteError` (exit code 3) before the
bad state is logged or checkpointed, keeping its last good checkpoint."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.errors import NonFiniteError


@jax.jit
def all_finite(tree: Any) -> jax.Array:
    """Whether every leaf of a pytree of float arrays is finite."""
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def require_finite_update(params: Any, metrics: dict[str, Any], update: int, step: int) -> None:
    """Raise NonFiniteError when an update left a non-finite parameter or loss (a metric whose
    name has "loss" or "value" in it)."""
    bad = [k for k, v in metrics.items() if ("loss" in k or k.startswith("value")) and isinstance(v, (float, np.ndarray, np.floating))
           and not np.all(np.isfinite(v))]
    if bad or not bool(all_finite(params)):
        what = f"loss ({', '.join(bad)})" if bad else "parameters"
        raise NonFiniteError(f"update {update} (step {step}) made the {what} non-finite; the run stopped and keeps its last good checkpoint "
                             "(try a smaller --learning-rate or --max-grad-norm)")
