"""User-facing errors: the CLI turns these into exit code 2 and one line on stderr."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (an env id, a flag, a checkpoint): the message names the fix."""


def require(condition: bool, message: str) -> None:
    """Raise `UserError(message)` unless `condition` holds."""
    if not condition:
        raise UserError(message)


def require_positive(name: str, value: float) -> None:
    """A hyper-parameter that must be > 0, named as its CLI flag."""
    require(value > 0, f"--{name.replace('_', '-')} must be positive, got {value}")


def require_fraction(name: str, value: float, *, closed: bool = True) -> None:
    """A hyper-parameter in [0, 1] (or (0, 1) when closed=False), named as its CLI flag."""
    ok = 0 <= value <= 1 if closed else 0 < value < 1
    interval = "[0, 1]" if closed else "(0, 1)"
    require(ok, f"--{name.replace('_', '-')} must be in {interval}, got {value}")
