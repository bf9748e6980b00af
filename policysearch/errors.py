"""User-facing errors: the CLI turns these into exit code 2 and one line on stderr."""

from __future__ import annotations

import argparse
import dataclasses
import math


class UserError(Exception):
    """Bad input from the user (an env id, a flag, a checkpoint): the message names the fix."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the scripts beside the CLI (experiments/): a bad flag raises a UserError, which
    `cli.guarded` turns into exit code 2 and one line, instead of argparse's usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def require(condition: bool, message: str) -> None:
    """Raise `UserError(message)` unless `condition` holds."""
    if not condition:
        raise UserError(message)


def require_positive(name: str, value: float) -> None:
    """A hyper-parameter that must be > 0, named as its CLI flag."""
    require(value > 0, f"{flag(name)} must be positive, got {value}")


def require_fraction(name: str, value: float, *, closed: bool = True) -> None:
    """A hyper-parameter in [0, 1] (or (0, 1) when closed=False), named as its CLI flag."""
    ok = 0 <= value <= 1 if closed else 0 < value < 1
    interval = "[0, 1]" if closed else "(0, 1)"
    require(ok, f"{flag(name)} must be in {interval}, got {value}")


class NonFiniteError(Exception):
    """Training produced a non-finite loss or parameter: the run stops (exit code 3) with its last
    good checkpoint kept and nothing written from the bad state."""


def flag(name: str) -> str:
    """The CLI flag of a config field."""
    return "--" + name.replace("_", "-")


def require_finite_fields(config: object) -> None:
    """Every float field of a config dataclass is finite (inf passes `> 0` checks and makes every
    parameter NaN after one update)."""
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        values = value if isinstance(value, tuple) else (value,)
        bad = [v for v in values if isinstance(v, float) and not math.isfinite(v)]
        require(not bad, f"{flag(f.name)} must be a finite number, got {bad[0] if bad else ''}")


SEED_LIMIT = 2**32
"""Seeds are unsigned 32-bit integers (JAX's PRNGKey, NumPy's and the envs' seeds)."""


def require_seed(seed: int) -> None:
    require(0 <= seed < SEED_LIMIT, f"--seed must be in [0, {SEED_LIMIT - 1}], got {seed}")
