"""Which trainer drives each registered algorithm, as the CLI and the Python API need it: the
run's config class, the training call and how its summary is reported. On-policy algorithms are
driven by `run.train` (env rollouts), guided ones by `run.train_gps` (a dynamics model); the
algorithm registry (`algos.ALGORITHMS`) says which is which, so no caller names an algorithm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from policysearch.algos import ALGORITHMS
from policysearch.errors import require
from policysearch.run.folder import check_new_run, default_run_dir

if TYPE_CHECKING:
    from policysearch.run.snapshot import TrainResult


class Trainer(NamedTuple):
    run_config: type
    """The frozen dataclass of what to train on and how the run is kept."""
    train: Callable[[Any, Any, Path | None], TrainResult]
    """(run config, algorithm config, resume folder or None) -> the run folder, policy and summary."""
    report: Callable[[dict[str, Any], Any], str]
    """(summary, run config) -> what `policysearch train` prints at the end."""
    resume_help: str
    check: Callable[[Any, Any, Path | None], None]
    """(run config, algorithm config, resume folder or None) -> None, or a UserError: the checks
    that need no JAX, which the CLI runs before it imports the trainer (bad input answers at once)."""


def _train_on_policy(algo: str, run: Any, config: Any, resume: Path | None) -> TrainResult:
    from policysearch.run.train import train

    return train(algo, run, config, resume=resume)


def check_on_policy(algo: str, run: Any, config: Any, resume: Path | None) -> None:
    """What an on-policy run checks before it imports JAX or writes anything (`run.train` calls
    it first too): the algorithm, the batch against the envs, the env id and the run folder."""
    from policysearch.envs.vector import check_env_id

    require(algo in ALGORITHMS and ALGORITHMS[algo].kind == "on-policy",
            f"unknown on-policy algorithm '{algo}'; choose from {sorted(k for k, v in ALGORITHMS.items() if v.kind == 'on-policy')}")
    spu = config.steps_per_update
    require(spu % run.num_envs == 0, f"--steps-per-update ({spu}) must be a multiple of --num-envs ({run.num_envs})")
    check_env_id(run.env)
    if resume is None:
        check_new_run(new_run_dir(algo, run), run.overwrite)


def check_guided(run: Any, config: Any, resume: Path | None) -> None:
    """What a GPS run checks before it imports JAX or writes anything: the run folder (the task
    is checked when its problem is built)."""
    if resume is None:
        check_new_run(new_run_dir("gps", run), run.overwrite, GPS_FOLDER_FIX)


def new_run_dir(algo: str, run: Any) -> Path:
    """The folder a new run of `algo` writes: --run-dir, or runs/ALGO-ENV-sSEED."""
    return Path(run.run_dir) if run.run_dir else default_run_dir(algo, run.env, run.seed)


def _train_guided(run: Any, config: Any, resume: Path | None) -> TrainResult:
    from policysearch.run.train_gps import train_gps

    return train_gps(run, config, resume)


def _report_guided(summary: dict[str, Any], run: Any) -> str:
    from policysearch.run.train_gps import describe

    return json.dumps(summary) if run.json else describe(summary)


GPS_FOLDER_FIX = "pass --overwrite to replace it, or choose another --run-dir"


def trainer(algo: str) -> Trainer:
    """The trainer of a registered algorithm."""
    if ALGORITHMS[algo].kind == "on-policy":
        from policysearch.run.config import RunConfig

        return Trainer(RunConfig, lambda run, config, resume: _train_on_policy(algo, run, config, resume),
                       lambda summary, run: json.dumps(summary), "continue the run in this directory from its last checkpoint",
                       lambda run, config, resume: check_on_policy(algo, run, config, resume))
    from policysearch.run.config import GPSRunConfig

    return Trainer(GPSRunConfig, _train_guided, _report_guided,
                   "continue the run in this directory from its last completed iteration (pass a larger --iterations to extend it)",
                   check_guided)
