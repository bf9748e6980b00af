"""Which trainer drives each registered algorithm, as the CLI and the Python API need it: the
run's config class, the training call and how its summary is reported. On-policy algorithms are
driven by `run.train` (env rollouts), guided ones by `run.train_gps` (a dynamics model); the
algorithm registry (`algos.ALGORITHMS`) says which is which, so no caller names an algorithm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, NamedTuple

from policysearch.algos import ALGORITHMS
from policysearch.run.snapshot import TrainResult


class Trainer(NamedTuple):
    run_config: type
    """The frozen dataclass of what to train on and how the run is kept."""
    train: Callable[[Any, Any, Path | None], TrainResult]
    """(run config, algorithm config, resume folder or None) -> the run folder, policy and summary."""
    report: Callable[[dict[str, Any], Any], str]
    """(summary, run config) -> what `policysearch train` prints at the end."""
    resume_help: str


def _train_on_policy(algo: str, run: Any, config: Any, resume: Path | None) -> TrainResult:
    from policysearch.run.train import train

    return train(algo, run, config, resume=resume)


def _train_guided(run: Any, config: Any, resume: Path | None) -> TrainResult:
    from policysearch.run.train_gps import train_gps

    return train_gps(run, config, resume)


def _report_guided(summary: dict[str, Any], run: Any) -> str:
    from policysearch.run.train_gps import describe

    return json.dumps(summary) if run.json else describe(summary)


def trainer(algo: str) -> Trainer:
    """The trainer of a registered algorithm."""
    if ALGORITHMS[algo].kind == "on-policy":
        from policysearch.run.train import RunConfig

        return Trainer(RunConfig, lambda run, config, resume: _train_on_policy(algo, run, config, resume),
                       lambda summary, run: json.dumps(summary), "continue the run in this directory from its last checkpoint")
    from policysearch.run.train_gps import GPSRunConfig

    return Trainer(GPSRunConfig, _train_guided, _report_guided,
                   "continue the run in this directory from its last completed iteration (pass a larger --iterations to extend it)")
