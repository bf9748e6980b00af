"""Where a training run's wall time goes: each phase of an update timed and summed (`--profile`).

The on-policy loop splits an update into the env stepping (`env`), the policy's step for the
actions (`policy`: the batch's noise and parameters to the host once, then per step the NumPy
step and its stores), the rollout's bookkeeping (`rollout other`: valid rows, episode returns),
building the batch's device arrays with its log-probabilities and values and scaling the rewards
(`to device`), the algorithm's update (`update`, waited for), and the run's own work (`logging`,
`checkpoint`, `evaluation`). `table` prints them per
update and as a share of the whole, next to the env stepping's own rate, which is the most the
run could reach if every other phase took no time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import AbstractContextManager, nullcontext
from typing import Any

PHASES = ("env", "policy", "rollout other", "to device", "update", "logging", "checkpoint", "evaluation")
"""The phases in the order of an update (others, if any, follow)."""


class PhaseTimes:
    """Seconds per phase, summed over the updates timed; `with times("env"): ...` adds one span."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.updates = 0
        self.steps = 0

    def __call__(self, phase: str) -> AbstractContextManager[None]:
        return _Span(self.seconds, phase)

    def reset(self) -> None:
        """Forget what was timed (the first update, which compiles, is not the steady state)."""
        self.seconds.clear()
        self.updates = self.steps = 0

    def count(self, steps: int) -> None:
        """One more update of `steps` env steps."""
        self.updates += 1
        self.steps += steps

    def summary(self) -> dict[str, float]:
        """Per phase: seconds in all; plus `total`, `updates`, `steps`, `steps_per_second` and
        `env_steps_per_second` (the steps over the env phase alone)."""
        total = sum(self.seconds.values())
        out: dict[str, float] = {p: self.seconds[p] for p in (*PHASES, *sorted(set(self.seconds) - set(PHASES))) if p in self.seconds}
        out.update(total=total, updates=self.updates, steps=self.steps,
                   steps_per_second=self.steps / total if total else 0.0,
                   env_steps_per_second=self.steps / self.seconds["env"] if self.seconds.get("env") else 0.0)
        return out

    def table(self, title: str = "") -> str:
        """The phases as a table: ms per update and share of the wall time."""
        s = self.summary()
        total, n = s["total"], max(1, self.updates)
        rows = [f"{title}: {self.updates} updates, {self.steps:,} steps, {s['steps_per_second']:,.0f} steps/s "
                f"(env stepping alone: {s['env_steps_per_second']:,.0f} steps/s)" if title else "",
                f"{'phase':<14} {'ms/update':>10} {'share':>7}"]
        for phase, seconds in s.items():
            if phase in ("total", "updates", "steps", "steps_per_second", "env_steps_per_second"):
                continue
            rows.append(f"{phase:<14} {1000 * seconds / n:>10.1f} {seconds / total if total else 0:>7.1%}")
        rows.append(f"{'total':<14} {1000 * total / n:>10.1f} {1:>7.0%}")
        return "\n".join(r for r in rows if r)


class _Span:
    """One timed span of a phase (a plain class: a generator-based context manager costs a few
    microseconds, which the step loop would pay twice per step)."""

    __slots__ = ("seconds", "phase", "t0")

    def __init__(self, seconds: dict[str, float], phase: str) -> None:
        self.seconds, self.phase = seconds, phase

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        self.seconds[self.phase] += time.perf_counter() - self.t0


_UNTIMED = nullcontext()


class NoTimes(PhaseTimes):
    """A PhaseTimes that times nothing (the default: no clock calls in the step loop)."""

    def __call__(self, phase: str) -> AbstractContextManager[None]:
        return _UNTIMED
