"""XLA:CPU settings the library's loops need, applied when policysearch is imported.

1. The small-while-loop threshold. XLA:CPU compiles a while loop (a `lax.scan`, `fori_loop`,
`while_loop`) whose body moves less than `xla_cpu_small_while_loop_byte_threshold` bytes per
iteration (1 kB by default) and holds no custom fusion or custom call into one native kernel; any
other loop runs its body kernel by kernel, a runtime dispatch of ~1-2 us per kernel per iteration.
A matrix product is a custom fusion (`__ynn_fusion`, YNNPACK's kernels) in jaxlib 0.10: turning
those off (`--xla_cpu_experimental_ynn_fusion_type=`) lets PPO's minibatch loop compile whole, but
its products then run as naive loops, 8x slower in all (README, 2026-12-04). The iLQR backward and
forward passes are loops of hundreds of steps over a few dozen small kernels (profiled on a
vmapped batch of 32 unicycle problems: about 20 kernels per step, 1.5-2 us each). Raising the
threshold compiles them whole (measured on a 2-core machine, `bench/ilqr_vs_crocoddyl.py`: a
unicycle solve 1.75 -> 0.49 ms, 32 solves in one call 101 -> 17 ms). PPO and TRPO (whose loops
hold dots, which stay on the kernel-by-kernel path) trained Hopper-v5 for 40,960 steps to the same
return at the same speed within the machine's noise (PPO 4,070-4,353 steps/s without, 4,446-4,815
with; TRPO 3,754-3,816 without, 3,229-3,943 with).

2. The memory-minimising instruction order (`--xla_cpu_enable_concurrency_optimized_scheduler=false`:
XLA's depth-first memory scheduler instead of its breadth-first one, which orders independent
kernels side by side so that they can run at once, at the price of more live buffers). On the
kernel-by-kernel loops of the on-policy updates, whose ~70 kernels per minibatch take about a
microsecond each, running side by side costs more than it gains: PPO's default update on Hopper's
shapes took 39.2-39.9 ms with the breadth-first order and 30.8-31.0 with the depth-first one (three
runs each, alternated, 2-core machine, 2026-12-04), and in training, after 95 ms of env stepping,
43.1 ms against 30.7 (`bench/profile_onpolicy.py`): the slower "cold" update after other work
went with it. TRPO's and PG's updates moved within noise (19.8-20.3 -> 18.8-20.0 ms, 9.0-9.3 ->
9.2-9.5). The results are the same bits (three updates of each algorithm compared). The iLQR
batches of `bench/ilqr_vs_crocoddyl.py --no-mujoco` were 5-15% slower (unicycle 12.5-12.8 ->
13.6-14.1 ms, LQR 15.0-16.3 -> 16.8-18.9, still below Crocoddyl's time) and its single problems
faster (the worst against Crocoddyl 1.33-1.45x -> 1.17-1.32x), three runs each; GPS on the 2-link
arm (its test, compilation included) 37.5-39.4 s -> 38.6-39.2, two runs each.

XLA reads its flags once, when the first JAX backend starts, from the environment variable
XLA_FLAGS. So the settings are added there at import, and only where they can still take effect
and the user has not chosen: no backend started yet, and XLA_FLAGS does not name the flag already
(`--xla_backend_extra_options` for the first; set POLICYSEARCH_XLA_DEFAULTS=0 to leave XLA_FLAGS
alone altogether).
"""

from __future__ import annotations

import os
import sys

SMALL_WHILE_LOOP_BYTES = 100_000_000
OPTIONS: dict[str, str] = {  # the flag a user may have set -> what is added where they have not
    "xla_backend_extra_options": f"--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold={SMALL_WHILE_LOOP_BYTES}",
    "xla_cpu_enable_concurrency_optimized_scheduler": "--xla_cpu_enable_concurrency_optimized_scheduler=false",
}


def configure(environ: dict[str, str] | None = None) -> list[str]:
    """Add to XLA_FLAGS each of OPTIONS whose flag it does not name, where they can take effect;
    the options added."""
    env = os.environ if environ is None else environ
    flags = env.get("XLA_FLAGS", "")
    if env.get("POLICYSEARCH_XLA_DEFAULTS", "1") == "0" or _backend_started():
        return []
    added = [option for flag, option in OPTIONS.items() if flag not in flags]
    if added:
        env["XLA_FLAGS"] = " ".join([flags, *added]).strip()
    return added


def _backend_started() -> bool:
    if "jax" not in sys.modules:  # no JAX imported, so no backend (and no 1-2 s import to find out)
        return False
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - a JAX without that module: assume the worst
        return True
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return True if started is None else bool(started())
