"""XLA:CPU settings the library's loops need, applied when policysearch is imported.

XLA:CPU compiles a while loop (a `lax.scan`, `fori_loop`, `while_loop`) whose body moves less than
`xla_cpu_small_while_loop_byte_threshold` bytes per iteration (1 kB by default) and holds no
custom fusion or custom call into one native kernel; any other loop runs its body kernel by
kernel, a runtime dispatch of ~1-2 us per kernel per iteration. A matrix product is a custom
fusion (`__ynn_fusion`, YNNPACK's kernels) in jaxlib 0.10: turning those off
(`--xla_cpu_experimental_ynn_fusion_type=`) lets PPO's minibatch loop compile whole, but its
products then run as naive loops, 8x slower in all (README, 2026-12-04). The iLQR backward and
forward passes are loops of hundreds of steps over a few dozen small kernels (profiled on a vmapped batch of 32 unicycle
problems: about 20 kernels per step, 1.5-2 us each). Raising the threshold compiles them whole (measured on a 2-core machine,
`bench/ilqr_vs_crocoddyl.py`: a unicycle solve 1.75 -> 0.49 ms, 32 solves in one call 101 ->
17 ms). PPO and TRPO (whose loops hold dots, which stay on the kernel-by-kernel path) trained
Hopper-v5 for 40,960 steps to the same return at the same speed within the machine's noise
(PPO 4,070-4,353 steps/s without, 4,446-4,815 with; TRPO 3,754-3,816 without, 3,229-3,943 with).

XLA reads its flags once, when the first JAX backend starts, from the environment variable
XLA_FLAGS. So the setting is added there at import, and only when it can still take effect and
the user has not chosen: no backend started yet, and XLA_FLAGS names no
`--xla_backend_extra_options` of its own (set POLICYSEARCH_XLA_DEFAULTS=0 to leave XLA_FLAGS
alone altogether).
"""

from __future__ import annotations

import os
import sys

SMALL_WHILE_LOOP_BYTES = 100_000_000
OPTION = f"--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold={SMALL_WHILE_LOOP_BYTES}"


def configure(environ: dict[str, str] | None = None) -> bool:
    """Add OPTION to XLA_FLAGS where it can take effect and the user has not chosen; whether it
    was added."""
    env = os.environ if environ is None else environ
    flags = env.get("XLA_FLAGS", "")
    if env.get("POLICYSEARCH_XLA_DEFAULTS", "1") == "0" or "xla_backend_extra_options" in flags or _backend_started():
        return False
    env["XLA_FLAGS"] = f"{flags} {OPTION}".strip()
    return True


def _backend_started() -> bool:
    if "jax" not in sys.modules:  # no JAX imported, so no backend (and no 1-2 s import to find out)
        return False
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - a JAX without that module: assume the worst
        return True
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return True if started is None else bool(started())
