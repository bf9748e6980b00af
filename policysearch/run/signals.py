"""Stopping a run by signal: SIGTERM (what `kill`, systemd, Slurm and Kubernetes send) behaves as
Ctrl-C does, so one path checkpoints the last completed update and exits (130 for SIGINT, 143
for SIGTERM, 128 + the signal's number).

The handlers raise at once (a run stopped during start-up or compilation ends there) and also
record the signal, and the training loops call `raise_if_stopped` between updates: a signal whose
exception was swallowed on the way (by a library callback that catches everything) still stops
the run at the next update instead of letting it train to the end.

Where Python itself swallows the exception (the signal arrived while a finaliser or a garbage
collector callback ran, such as JAX's `_xla_gc_callback`), it would print "Exception ignored in"
and a traceback before the run's one line; `install` sets a `sys.unraisablehook` that drops
`Stopped` there (it was recorded, and is raised again) and passes anything else to the hook it
replaced. Seen once in the test suite (2026-12-04): SIGINT during start-up, exit 130 as it should,
but eight lines on stderr instead of one.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from types import FrameType
from typing import Any, Callable, Iterator


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal; `signum` says which. A KeyboardInterrupt, so every handler of
    Ctrl-C (the checkpoint on interrupt) serves SIGTERM too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_received: list[int] = []


_deferring = [0]


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    if not _deferring[0]:
        raise Stopped(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A step that must not be cut in two (a metrics row and the commit of the state it
    describes): a stop signal arriving inside is recorded and raised at the block's end, so the
    run stops either before the step or after all of it."""
    _deferring[0] += 1
    try:
        yield
    finally:
        _deferring[0] -= 1
    raise_if_stopped()


def install() -> None:
    """SIGINT and SIGTERM raise `Stopped` (main thread only; elsewhere Python keeps its own), and
    a `Stopped` that Python swallows is not printed (`_unraisable`)."""
    _received.clear()
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, _handler)
        if not isinstance(sys.unraisablehook, _Unraisable):
            sys.unraisablehook = _Unraisable(sys.unraisablehook)


class _Unraisable:
    """sys.unraisablehook: silent for a `Stopped` (recorded by the handler, raised again by
    `raise_if_stopped`), the previous hook for anything else."""

    def __init__(self, previous: Callable[[Any], object]) -> None:
        self.previous = previous

    def __call__(self, unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, Stopped):
            self.previous(unraisable)


def raise_if_stopped() -> None:
    """Raise `Stopped` again if a stop signal arrived since `install` (its exception may have been
    swallowed where it was raised)."""
    if _received:
        raise Stopped(_received[-1])


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + signal for a `Stopped` run."""
    return exc.exit_code if isinstance(exc, Stopped) else 128 + signal.SIGINT
