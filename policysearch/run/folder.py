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
import os
import shutil
from pathlib import Path
from typing import Any

from policysearch.errors import UserError, require
from policysearch.run.checkpoint import META, find_checkpoint, list_checkpoints, read_meta, write_json_atomic
from policysearch.run.lock import RunLock
from policysearch.run.schema import from_dict

FORMAT_VERSION = 2
"""Version of the checkpoint layout (meta.json's "format"); 2: the policy's network settings and
input standardisation in meta.json and its parameters alone in arrays.safetensors, for every
algorithm, and the training state in state.safetensors."""

RUN_ENTRIES = ("config.json", "metrics.csv", "tb", "checkpoints", "learning_curve.png", "policy.mp4", "summary.json", "controllers",
               "controller", "cost.png", "plan.json", "plan.mp4", "profile.json", "policy.onnx", "policy.npz", "controller.npz")
"""What a run writes into its folder (and `policysearch export` by default beside it, an export
of the policy that an overwritten run no longer has): the entries `--overwrite` removes."""

OUTPUT_SETTINGS = ("run_dir", "overwrite", "progress", "profile", "json", "video", "eval_every", "eval_episodes", "checkpoint_every")
"""Settings that say where and how a run reports, not what it computes: free to change on resume."""


def default_run_dir(prefix: str, env: str, seed: int | None = None) -> Path:
    """runs/PREFIX-ENV[-sSEED], the env id made a file name."""
    name = f"{prefix}-{env.replace('/', '_').replace(':', '_')}"
    return Path("runs") / (name if seed is None else f"{name}-s{seed}")


def holds_run(run_dir: Path) -> bool:
    """Whether run_dir holds a run (at least one complete checkpoint)."""
    return bool(list_checkpoints(run_dir / "checkpoints"))


def check_writable(run_dir: Path) -> None:
    """Refuse, before any expensive set-up, a run folder that cannot be made or written: a file,
    a path under a file, a name over the file system's limit, or a folder (or its nearest
    existing parent) this process may not write."""
    run_dir = Path(run_dir)
    long = next((part for part in run_dir.parts if len(os.fsencode(part)) > 255), None)
    require(long is None, f"--run-dir has a name of {len(os.fsencode(long or ''))} bytes, over the limit of 255: pass a shorter --run-dir")
    require(not run_dir.exists() or run_dir.is_dir(), f"'{run_dir}' is a file, not a folder: pass another --run-dir")
    parent = run_dir
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    require(parent.is_dir(), f"'{run_dir}' lies under '{parent}', which is a file: pass another --run-dir")
    require(os.access(parent, os.W_OK | os.X_OK), f"cannot write '{parent}' (permission denied): pass another --run-dir")
    checkpoints = run_dir / "checkpoints"
    require(not checkpoints.is_dir() or os.access(checkpoints, os.W_OK | os.X_OK),
            f"cannot write '{checkpoints}' (permission denied): make it writable or pass another --run-dir")


def remove_leftovers(run_dir: Path) -> None:
    """Remove the temporary folders and files a killed write left (checkpoints/.tmp-*, *.tmp)."""
    for tmp in list((run_dir / "checkpoints").glob(".tmp-*")) + list(run_dir.glob("*.tmp")):
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)


def claim_new_run(run_dir: Path, overwrite: bool, fix: str = "") -> RunLock:
    """Create run_dir for a new run and lock it for the run's life (`RunLock`; the caller releases
    it). A folder in use by another run is refused, as is one that already holds a run (the
    message ends with `fix`, by default: resume it, pick another folder, or overwrite) unless
    `overwrite`, which removes the run's entries first."""
    check_new_run(run_dir, overwrite, fix)
    missing = [f for f in (run_dir, *run_dir.parents) if not f.exists()]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the run folder '{run_dir}' ({exc.strerror}): pass another --run-dir") from exc
    lock = RunLock(run_dir, missing[-1] if missing else None).acquire()
    try:
        if holds_run(run_dir):
            check_new_run(run_dir, overwrite, fix)  # again under the lock: another run may have started meanwhile
            for name in RUN_ENTRIES:
                path = run_dir / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        remove_leftovers(run_dir)
    except BaseException:
        lock.release()
        raise
    return lock


def check_new_run(run_dir: Path, overwrite: bool, fix: str = "") -> None:
    """Refuse, before anything is written, a run_dir that cannot be written, or that holds a run
    without `overwrite` (the message ends with `fix`)."""
    check_writable(run_dir)
    require(overwrite or not holds_run(run_dir), f"'{run_dir}' already holds a run: "
            + (fix or f"continue it with --resume {run_dir}, pick another --run-dir, or pass --overwrite"))


def run_folder(resume: Path | str) -> Path:
    """The run folder that --resume names, or a UserError saying which folder to pass: a
    checkpoint (step_*) or a checkpoints/ folder is refused, with the run folder it belongs to."""
    resume = Path(resume)
    if (resume / META).exists() or resume.name == "checkpoints":
        run = resume.parent.parent if (resume / META).exists() else resume.parent
        raise UserError(f"'{resume}' is part of the run in '{run}': pass --resume {run} (it continues from the newest complete "
                        f"checkpoint; to go back to an earlier one, first move the newer step_* folders out of {run / 'checkpoints'})")
    require(resume.is_dir() and holds_run(resume),
            f"no checkpoint found in '{resume}': pass the run folder (the --run-dir) of a run written by `policysearch train`")
    return resume


def changed_fields(saved: Any, given: Any, free: tuple[str, ...]) -> list[str]:
    """Fields of two configs of one dataclass that differ, leaving out those in `free`."""
    return [f.name for f in dataclasses.fields(saved) if f.name not in free and getattr(saved, f.name) != getattr(given, f.name)]


def config_from_dict(cls: type, data: dict[str, Any], where: str = "the saved config") -> Any:
    """Rebuild a frozen config dataclass from its JSON form, checked against its fields' types
    (`schema.from_dict`)."""
    return from_dict(cls, data, where)


def saved_configs(meta: dict[str, Any], run_cls: type, algo_cls: type, resume: Path | str) -> tuple[Any, Any]:
    """The run and algorithm settings a checkpoint's meta.json records, checked against their
    dataclasses (a UserError naming the record otherwise)."""
    where = f"the meta.json of '{resume}'"
    return config_from_dict(run_cls, meta.get("run"), f"{where} (run)"), config_from_dict(algo_cls, meta.get("algo_config"), f"{where} (algo_config)")


def require_algo(meta: dict[str, Any], algo: str, resume: Path | str) -> None:
    """Refuse to resume another algorithm's run, naming the command that would."""
    from policysearch.algos import ALGORITHMS

    saved = meta.get("algo")
    require(isinstance(saved, str) and saved in ALGORITHMS,
            f"the checkpoint of '{resume}' names no algorithm this version knows ('algo': {saved!r}): its meta.json was edited or damaged")
    require(saved == algo, f"'{resume}' holds a {saved} run; resume it with `policysearch train {saved} --resume {resume}`")


def check_resume(meta: dict[str, Any], algo: str, resume: Path, run: Any, algo_config: Any, free: tuple[str, ...]) -> None:
    """Refuse (UserError, before anything is written) to resume the run whose last checkpoint has
    `meta` with another algorithm, another env, or any other setting than those in `free` and
    OUTPUT_SETTINGS changed: the saved state would not match the run it continues."""
    require_algo(meta, algo, resume)
    require(meta.get("format") == FORMAT_VERSION,
            f"'{resume}' was written by another policysearch version (checkpoint format {meta.get('format')}, this one reads "
            f"{FORMAT_VERSION}); start a new run")
    saved_run, saved_algo_config = saved_configs(meta, type(run), type(algo_config), resume)
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


def claim_resume(resume: Path | str, algo: str, run: Any, algo_config: Any, free: tuple[str, ...]) -> tuple[RunLock, Path, dict[str, Any]]:
    """Lock the run folder `resume` for the continued run's life and return the lock with its
    last checkpoint and meta, after `check_resume`; nothing in the folder changes (but the lock
    file) before every check has passed."""
    run_dir = run_folder(resume)
    check_writable(run_dir)
    check_resume(read_meta(find_checkpoint(run_dir)), algo, run_dir, run, algo_config, free)  # refuse before taking the lock
    lock = RunLock(run_dir).acquire()
    try:
        ckpt = find_checkpoint(run_dir)  # again under the lock: the newest checkpoint now
        meta = read_meta(ckpt)
        check_resume(meta, algo, run_dir, run, algo_config, free)
        remove_leftovers(run_dir)
    except BaseException:
        lock.release()
        raise
    return lock, ckpt, meta
