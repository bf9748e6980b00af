"""The rollout's per-step statistics merge and standardisation as one compiled call (Numba, the
`fast` extra): `normalize.update_stats` then `normalize.normalize`, the same float32 arithmetic in
the same order, so that its results are bit for bit those of the NumPy path (tested), and seeded
runs are the same with or without Numba installed.

For a batch x[n, d] and statistics (mean, var, count), per column j (Chan et al.'s merge):

    m = sum_i x_ij / n,   v = sum_i (x_ij - m)^2 / n,   N = count + n,   w = n / N,   delta = m - mean_j
    mean_j' = mean_j + delta w,   var_j' = (var_j count + v n + delta^2 (count w)) / N
    o_ij = clip((x_ij - mean_j') / sqrt(var_j' + eps), -clip, clip)

It writes in place: mean and var become mean' and var', o goes into the caller's array (the
rollout passes the batch buffer's row), and N is returned, so a step allocates nothing.

Why: the NumPy path is about 25 small array operations, 16 us for Hopper's [8, 11] batch alone
(of the step's 26 us) and about three times that in the loop, where EnvPool's worker threads spin
on the cores between steps; this kernel is one call of about 1 us (2026-12-04, Intel Xeon, alone).
Measured in the rollout (`bench/rollout_vs_env.py`): see the README's speed section. Where Numba
is missing, or `POLICYSEARCH_NUMBA=0`, `compiled()` is None and the rollout keeps the NumPy path
(`envs.rollout.HostStep`).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Callable

import numpy as np

from policysearch.core.forward import EPS


def _merge_normalize(mean: Any, var: Any, count: Any, raw: Any, clip: Any, obs: Any) -> Any:
    """N of the module docstring; mean[d] and var[d] become mean' and var', obs[n, d] gets o. All
    float32, raw[n, d] too."""
    n, d = raw.shape
    f32 = np.float32
    nf = f32(n)
    total = count + nf
    w = nf / total
    for j in range(d):
        s = f32(0.0)
        for i in range(n):
            s += raw[i, j]
        batch_mean = s / nf
        v = f32(0.0)
        for i in range(n):
            dev = raw[i, j] - batch_mean
            v += dev * dev
        batch_var = v / nf
        delta = batch_mean - mean[j]
        m2 = var[j] * count + batch_var * nf + delta * delta * (count * w)
        mj = mean[j] + delta * w
        vj = m2 / total
        mean[j], var[j] = mj, vj
        sd = np.sqrt(vj + f32(EPS))
        for i in range(n):
            o = (raw[i, j] - mj) / sd
            if o < -clip:  # comparisons, not min/max: a NaN passes through, as in np.maximum/np.minimum
                o = -clip
            elif o > clip:
                o = clip
            obs[i, j] = o
    return total


Kernel = Callable[[Any, Any, Any, Any, Any, Any], Any]
"""(mean[d], var[d], count, raw[n, d], clip, obs[n, d]), all float32 -> N; mean, var, obs written."""


@cache
def compiled() -> Kernel | None:
    """The kernel compiled by Numba (cached on disk beside this file where it can write), or None
    where Numba is not installed or POLICYSEARCH_NUMBA=0."""
    if os.environ.get("POLICYSEARCH_NUMBA", "1") == "0":
        return None
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(cache=True, nogil=True)(_merge_normalize)
