"""A long plan built from short ones (receding horizon), to start iLQR from on a walker.

Over a long horizon from rest, the zero-control nominal of a walker falls within its first
second, and everything after the fall is lying on the ground: derivatives there say nothing of
how to walk, and iLQR stalls (measured: Walker2d at horizon 300 from zero controls stopped at
the mu cap with its nominal leaving the healthy range at step 272). Even at a healthy optimised
plan, over 250 steps of contacts a change of 0.002 in the controls moves the final state by
0.2-0.8, so the linear model of a long horizon predicts nothing and every step size is rejected
(Hopper, fd_eps 1e-3 and 1e-5, mu 0 to 100). Short problems are easy.
So the start is built as model-predictive control does it: solve the `window` steps ahead of
the current state, keep the first `commit` of them, step on to the state they reach, and solve
again from the kept solution shifted forward (its last control held over the new end):

    u[s : s + window] <- iLQR(x_s, u[s : s + window]),   x_{s + commit} = rollout(x_s, u[s : s + commit]),
    s <- s + commit,  until s >= horizon.

Each window is solved with the task's validity test in its line search (`ilqr.valid_prefix`), so
a window's solution never falls sooner than its start did: the kept steps come from plans that
stayed healthy up to the window's end wherever the previous window's did. The full-horizon
iLQR then starts from the concatenated controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # the solver's JAX module is not imported for the settings alone
    from policysearch.control.ilqr import Solution
from policysearch.errors import require, require_positive


@dataclass(frozen=True)
class RecedingConfig:
    """The windows of the receding-horizon start."""

    window: int = 90
    """Steps each short problem looks ahead (0.72 s on Hopper and Walker2d)."""
    commit: int = 15
    """Steps kept from each window's solution before solving again."""
    window_iterations: int = 60
    """iLQR iteration cap per window."""

    def __post_init__(self) -> None:
        require_positive("window", self.window)
        require_positive("commit", self.commit)
        require_positive("window_iterations", self.window_iterations)
        require(self.commit <= self.window, f"--commit ({self.commit}) must be at most --window ({self.window})")


WindowSolver = Callable[[np.ndarray, np.ndarray, int], "Solution"]
"""(x0, u_init[window, m], iteration cap) -> the window's iLQR solution."""


def receding_horizon_controls(
    solve_window: WindowSolver, x0: np.ndarray, u_init: np.ndarray, config: RecedingConfig = RecedingConfig(),
    on_window: Callable[[dict], None] | None = None, start: int = 0,
) -> np.ndarray:
    """Controls u[horizon, m] (horizon = len(u_init)) built window by window as above; u_init
    seeds the windows (its steps beyond the horizon, where a window reaches past it, repeat its
    last control); a horizon no longer than a window is returned as it is. With `start` > 0 the
    first `start` controls are kept as they are and x0 is the state they reach: the windows
    repair the rest (an example motion that falls at some step). on_window gets each window's
    start, iterations, cost and valid steps."""
    horizon = len(u_init)
    if start == 0 and horizon <= config.window:  # one window covers it: the full-horizon solve is that window
        return np.asarray(u_init, np.float64)
    u = np.concatenate([np.asarray(u_init, np.float64), np.repeat(np.asarray(u_init[-1:], np.float64), config.window, axis=0)])
    x = np.asarray(x0, np.float64)
    s = start
    while s < horizon:
        sol = solve_window(x, u[s : s + config.window], config.window_iterations)
        u[s : s + config.window] = np.asarray(sol.u)
        keep = min(config.commit, horizon - s)
        x = np.asarray(sol.x)[keep]
        u[s + config.window :] = u[s + config.window - 1]
        if on_window is not None:
            on_window({"start": s, "iterations": int(sol.iterations), "cost": float(sol.cost), "valid_steps": int(sol.valid_steps)})
        s += keep
    return u[:horizon]
