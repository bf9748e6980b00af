"""What else used the machine while a trial trained, so that wall times are compared under a
known load.

A trial's wall time means little beside another's unless both had the machine to themselves.
Each segment a sweep trains of a trial (a new run, or a resumed one up to its end) appends to
DIR/cpu.json:
- `wall`: its wall seconds;
- `own`: the CPU seconds of the trial's process (every thread: the trainer, EnvPool's, XLA's);
- `others`: the CPU seconds the rest of the machine used meanwhile, from Linux's /proc/stat
  (user + nice + system + irq + softirq over all CPUs, less `own`);
- `stolen`: the seconds a hypervisor gave this machine's CPUs to other guests (steal).
`others / wall` is how many cores other processes took on average, `stolen / wall` how many the
host took. A segment killed before its end records nothing. Off Linux nothing is recorded.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE = "cpu.json"
PARTS = ("own", "others", "stolen")
"""The CPU seconds a segment splits into; `load` gives each as mean cores, `PART_cores`."""


def _machine() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine without steal, steal seconds) since boot."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _own() -> float:
    """CPU seconds of this process (all its threads) and of its waited-for children."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


@contextmanager
def recorded(folder: Path) -> Iterator[None]:
    """Append this block's segment to folder/cpu.json when it ends normally."""
    from policysearch.run.checkpoint import write_json_atomic

    start, own0, t0 = _machine(), _own(), time.perf_counter()
    yield
    end, own1, wall = _machine(), _own(), time.perf_counter() - t0
    if start is None or end is None:
        return
    own = own1 - own0
    segment = {"wall": wall, "own": own, "others": max(0.0, end[0] - start[0] - own), "stolen": end[1] - start[1],
               "cpus": os.cpu_count()}
    path = folder / FILE
    segments = json.loads(path.read_text())["segments"] if path.exists() else []
    write_json_atomic(path, {"segments": [*segments, segment]})


def load(folder: Path) -> dict[str, float] | None:
    """The trial's recorded segments summed: {"wall", "own_cores", "others_cores", "stolen_cores"}
    (each mean cores over the recorded wall time); None if nothing was recorded."""
    path = folder / FILE
    if not path.exists():
        return None
    segments = json.loads(path.read_text())["segments"]
    wall = sum(s["wall"] for s in segments)
    if wall <= 0:
        return None
    return {"wall": wall, **{f"{k}_cores": sum(s[k] for s in segments) / wall for k in PARTS}}
