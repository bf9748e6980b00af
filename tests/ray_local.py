"""A test's own `ray start --head` cluster, held apart from every other Ray on the machine.

Two things `ray start` and `ray stop` do machine-wide would make tests that start a head flaky
beside each other (pytest-xdist runs test files in parallel) or beside a developer's own Ray:
- a head opens fixed ports (the dashboard's 8265, the client server's 10001), so two heads at once
  clash: `head_slot` is a file lock that one test's head holds at a time;
- `ray stop` ends every Ray process of the user, other tests' local sweeps among them: `stop` ends
  only the processes of the cluster whose temp dir (RAY_TMPDIR or `--temp-dir`) it is given.

`python tests/ray_local.py TEMP_DIR` runs `stop`: the README test runs it for the README's
`ray stop`.
"""

from __future__ import annotations

import fcntl
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def head_slot() -> Iterator[None]:
    """Wait for, then hold, this machine's one slot for a test's Ray head (a lock file, so it
    holds across processes)."""
    with open(Path(tempfile.gettempdir()) / "policysearch-tests-ray-head.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def stop(temp_dir: str | Path, grace: float = 3.0) -> int:
    """`ray stop` for one cluster: SIGTERM to every process whose command line names `temp_dir`
    (the GCS, raylet, monitors, dashboard) and to their descendants (the agents and workers, whose
    titles are renamed), SIGKILL to those still alive after `grace` seconds (a test's cluster holds
    nothing to save; with 10 s, some process outlived SIGTERM every time, 11.5 s a stop). Returns
    how many."""
    import psutil  # Ray's dependency, there wherever a test starts a cluster

    temp_dir = str(Path(temp_dir).resolve())
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if any(temp_dir in arg for arg in proc.info["cmdline"] or []) and proc.pid != psutil.Process().pid:
            found[proc.pid] = proc
            try:
                found.update((child.pid, child) for child in proc.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
    for proc in found.values():
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(list(found.values()), timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)
    return len(found)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/ray_local.py TEMP_DIR")
    print(f"stopped {stop(sys.argv[1])} Ray processes of {sys.argv[1]}")
