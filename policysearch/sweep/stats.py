"""Statistics over seeds for `policysearch report`, in NumPy: the mean with a percentile-bootstrap
confidence interval, the interquartile mean (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice": the mean of the middle 50% of runs, robust to one failed seed), learning
curves averaged over seeds on a common step grid with a bootstrap band, and the difference of two
means with its bootstrap interval.

The bootstrap resamples seeds with replacement (`resamples` times, a seeded generator, so a report
is reproducible) and takes the alpha/2 and 1 - alpha/2 percentiles of the statistic.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Statistic = Callable[[np.ndarray], np.ndarray]
"""stat(x[..., n]) -> the statistic over the last axis (vectorised over resamples)."""


def mean(x: np.ndarray) -> np.ndarray:
    return np.mean(x, axis=-1)


def iqm(x: np.ndarray) -> np.ndarray:
    """Interquartile mean over the last axis: the mean of the sorted values left after cutting
    int(n / 4) from each end (scipy.stats.trim_mean(x, 0.25), which rliable's IQM is)."""
    x = np.sort(np.asarray(x, np.float64), axis=-1)
    n = x.shape[-1]
    k = int(0.25 * n)
    return np.mean(x[..., k:n - k], axis=-1)


def bootstrap_ci(x: Sequence[float], stat: Statistic = mean, resamples: int = 10_000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float]:
    """The (alpha/2, 1 - alpha/2) percentile-bootstrap interval of stat(x) over the values x[n]."""
    x = np.asarray(x, np.float64)
    if x.size < 2:
        return (float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, x.size, (resamples, x.size))
    values = stat(x[idx])
    return float(np.percentile(values, 100 * alpha / 2)), float(np.percentile(values, 100 * (1 - alpha / 2)))


def difference_ci(a: Sequence[float], b: Sequence[float], resamples: int = 10_000, alpha: float = 0.05,
                  seed: int = 0) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its percentile-bootstrap interval, a and b resampled independently."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return diff, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    da = a[rng.integers(0, a.size, (resamples, a.size))].mean(axis=-1)
    db = b[rng.integers(0, b.size, (resamples, b.size))].mean(axis=-1)
    d = da - db
    return diff, float(np.percentile(d, 100 * alpha / 2)), float(np.percentile(d, 100 * (1 - alpha / 2)))


def curve_band(curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = 100, resamples: int = 2_000, alpha: float = 0.05,
               seed: int = 0) -> dict[str, np.ndarray]:
    """Learning curves (steps[k], values[k]) of several seeds on one grid: `points` steps from the
    latest first step to the earliest last step (where every seed has data), each seed linearly
    interpolated. Returns {"steps", "mean", "low", "high"} (the band: the bootstrap interval of
    the mean over seeds at each step; equal to the mean for one seed)."""
    curves = [(np.asarray(s, np.float64), np.asarray(v, np.float64)) for s, v in curves if len(s)]
    if not curves:
        return {k: np.zeros(0) for k in ("steps", "mean", "low", "high")}
    start, end = max(s[0] for s, _ in curves), min(s[-1] for s, _ in curves)
    grid = np.linspace(start, end, points) if end > start else np.asarray([end], np.float64)
    y = np.stack([np.interp(grid, s, v) for s, v in curves])  # [seeds, points]
    m = y.mean(axis=0)
    if len(curves) < 2:
        return {"steps": grid, "mean": m, "low": m, "high": m}
    idx = np.random.default_rng(seed).integers(0, len(curves), (resamples, len(curves)))
    means = y[idx].mean(axis=1)  # [resamples, points]
    return {"steps": grid, "mean": m, "low": np.percentile(means, 100 * alpha / 2, axis=0),
            "high": np.percentile(means, 100 * (1 - alpha / 2), axis=0)}
