"""The run folder, owned in one place for every command that writes one (`train` of every
algorithm, GPS included, and `plan`): its default name, its creation, the refusal of a folder that
already holds a run, `--overwrite`, the resume check of saved against given settings, the config
record and the checkpoint format version.

A run folder holds config.json, metrics.csv, tb/, checkpoints/step_N/ and the run's pictures,
videos and summaries (RUN_ENTRIES). `--overwrite` removes exactly those entries, for every
algorithm, and leaves anything else the user keeps there.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from policysearch.errors import UserError, require
from policysearch.run.checkpoint import find_checkpoint, list_checkpoints, read_meta, write_json_atomic

FORMAT_VERSION = 2
"""Version of the checkpoint layout (meta.json's "format"); 2: the policy's network settings and
input standardisation in meta.json and its parameters alone in arrays.safetensors, for every
algorithm, and the training state in state.safetensors."""

RUN_ENTRIES = ("config.json", "metrics.csv", "tb", "checkpoints", "learning_curve.png", "policy.mp4", "summary.json", "controllers",
               "controller", "cost.png", "plan.json", "plan.mp4")
"""What a run writes into its folder: the entries `--overwrite` removes."""

OUTPUT_SETTINGS = ("run_dir", "overwrite", "progress", "json", "video", "eval_every", "eval_episodes", "checkpoint_every")
"""Settings that say where and how a run reports, not what it computes: free to change on resume."""


def default_run_dir(prefix: str, env: str, seed: int | None = None) -> Path:
    """runs/PREFIX-ENV[-sSEED], the env id made a file name."""
    name = f"{prefix}-{env.replace('/', '_').replace(':', '_')}"
    return Path("runs") / (name if seed is None else f"{name}-s{seed}")


def holds_run(run_dir: Path) -> bool:
    """Whether run_dir holds a run (at least one complete checkpoint)."""
    return bool(list_checkpoints(run_dir / "checkpoints"))


def new_run_dir(run_dir: Path, overwrite: bool, fix: str = "") -> Path:
    """Create run_dir for a new run. A folder that already holds a run is refused (the message
    ends with `fix`, by default: resume it, pick another folder, or overwrite) unless `overwrite`,
    which removes the run's entries first."""
    if holds_run(run_dir):
        require(overwrite, f"'{run_dir}' already holds a run: "
                + (fix or f"continue it with --resume {run_dir}, pick another --run-dir, or pass --overwrite"))
        for name in RUN_ENTRIES:
            path = run_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the run folder '{run_dir}' ({exc.strerror}): pass another --run-dir") from exc
    return run_dir


def changed_fields(saved: Any, given: Any, free: tuple[str, ...]) -> list[str]:
    """Fields of two configs of one dataclass that differ, leaving out those in `free`."""
    return [f.name for f in dataclasses.fields(saved) if f.name not in free and getattr(saved, f.name) != getattr(given, f.name)]


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a frozen config dataclass from its JSON form (tuples come back as lists)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise UserError(f"config has unknown fields {sorted(unknown)}: written by another policysearch version")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def require_algo(meta: dict[str, Any], algo: str, resume: Path | str) -> None:
    """Refuse to resume another algorithm's run, naming the command that would."""
    saved = meta.get("algo")
    require(saved == algo, f"'{resume}' holds a {saved} run; resume it with `policysearch train {saved} --resume {resume}`")


def check_resume(meta: dict[str, Any], algo: str, resume: Path, run: Any, algo_config: Any, free: tuple[str, ...]) -> None:
    """Refuse (UserError, before anything is written) to resume the run whose last checkpoint has
    `meta` with another algorithm, another env, or any other setting than those in `free` and
    OUTPUT_SETTINGS changed: the saved state would not match the run it continues."""
    require_algo(meta, algo, resume)
    require(meta.get("format") == FORMAT_VERSION,
            f"'{resume}' was written by another policysearch version (checkpoint format {meta.get('format')}, this one reads "
            f"{FORMAT_VERSION}); start a new run")
    try:
        saved_run, saved_algo_config = config_from_dict(type(run), meta["run"]), config_from_dict(type(algo_config), meta["algo_config"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"'{resume}' has an unreadable meta.json ({exc}); start a new run") from exc
    require(saved_run.env == run.env, f"checkpoint in '{resume}' was trained on {saved_run.env}, not {run.env}; pass --env {saved_run.env} or start a new run")
    free = free + OUTPUT_SETTINGS
    changed = changed_fields(saved_run, run, free) + changed_fields(saved_algo_config, algo_config, free)
    flags = ", ".join("--" + n.replace("_", "-") for n in changed)
    may = ", ".join("--" + n.replace("_", "-") for n in free if n not in OUTPUT_SETTINGS)
    require(not changed, f"'{resume}' was trained with other {flags}; only {may} may change on --resume (or start a new run)")


def write_config(run_dir: Path, algo: str, run: Any, algo_config: Any, **extra: Any) -> dict[str, Any]:
    """config.json: the algorithm, both configs and anything the run adds (env spec, backend)."""
    record = {"algo": algo, "run": dataclasses.asdict(run), "algo_config": dataclasses.asdict(algo_config), **extra}
    write_json_atomic(run_dir / "config.json", record)
    return record


def resume_checkpoint(resume: Path, algo: str, run: Any, algo_config: Any, free: tuple[str, ...]) -> tuple[Path, dict[str, Any]]:
    """The last checkpoint of the run in `resume` and its meta, after `check_resume`."""
    ckpt = find_checkpoint(resume)
    meta = read_meta(ckpt)
    check_resume(meta, algo, resume, run, algo_config, free)
    return ckpt, meta
