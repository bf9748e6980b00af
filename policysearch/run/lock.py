"""The exclusive lock a run holds on its folder for its whole life, so two writers never share
one folder (two new runs, two `--resume`, or `--overwrite` of a running run).

The lock is `flock(2)` on DIR/.lock, which the kernel releases when the holding process ends in
any way (kill -9 included): a crashed run leaves no stale lock, only the file, which records the
last holder's PID for the refusal message. flock is per open file, so one process may hold a
folder once; a second claim, from any process, is refused.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from policysearch.errors import UserError

LOCK_FILE = ".lock"


class RunLock:
    """flock(LOCK_EX | LOCK_NB) on run_dir/.lock, released by `release` (or the process's end)."""

    def __init__(self, run_dir: Path, made: Path | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.made = made
        """The outermost folder the run made for run_dir (run_dir or a parent): `release` removes
        them again if the run wrote nothing there, so a run refused after the claim (e.g. for an env
        GPS cannot use) leaves no empty folders behind."""
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        """Take the lock, or raise UserError naming the PID that holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"cannot write the run folder '{self.run_dir}' ({exc.strerror}): pass another --run-dir") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"'{self.run_dir}' is in use by another run (PID {holder}); wait for it to end, stop it, "
                            "or pick another --run-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            if self.made is not None:
                try:
                    if [p.name for p in self.run_dir.iterdir()] == [LOCK_FILE]:  # still under the lock
                        self.path.unlink()
                        for folder in (self.run_dir, *self.run_dir.parents):
                            folder.rmdir()  # OSError where another run wrote there meanwhile
                            if folder == self.made:
                                break
                except OSError:
                    pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self if self._fd is not None else self.acquire()

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
