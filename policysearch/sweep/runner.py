"""`policysearch sweep`: the grid's trials as Ray tasks, on a local cluster started for the sweep
(sized to the machine) or on one started with `ray start` (--address). Each task asks for the CPUs
its envs' threads use and runs `trial.run_trial` in a Ray worker; a task whose worker dies is
started again (--max-retries) and resumes from the trial's checkpoint. The folder must lie on
storage every node sees. sweep.json records the trials of every grid run into the folder (the
report covers them all); results.json what this command's trials did.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from policysearch.errors import UserError
from policysearch.run.progress import clock
from policysearch.sweep.grid import SweepArgs, Trial, expand


PROGRESS_EVERY = 60.0
"""Seconds between status lines while no trial changes state."""


def trial_cpus(run: Any, args: SweepArgs, cluster_cpus: int) -> int:
    """CPUs a trial asks for: --cpus-per-trial, else the threads its envs step on
    (`vector.env_threads` of its parsed run config, presets included), at most the cluster's."""
    if args.cpus_per_trial:
        return min(args.cpus_per_trial, cluster_cpus)
    from policysearch.envs.vector import env_threads

    return max(1, min(env_threads(run.env, run.num_envs, run.backend), cluster_cpus))


def check_trials(trials: list[Trial], out: Path) -> dict[str, Any]:
    """Every trial's train flags, parsed: {name: its run config}. Exit 2 before anything runs
    when one does not parse, or when the trial's folder under `out` holds a run of other settings
    (`check_folder`)."""
    from policysearch.sweep.trial import parse_trial

    runs = {}
    for trial in trials:
        try:
            args = parse_trial(trial.argv())[1]
        except UserError as exc:
            raise UserError(f"trial {trial.name}: {exc}") from None
        check_folder(trial, args, out / trial.name)
        runs[trial.name] = args.run
    return runs


NOT_SETTINGS = ("run_dir", "overwrite", "progress", "video", "profile", "checkpoint_every")
"""Run fields that do not change what a trial computes: a folder may differ from the grid in these.
Unlike a resume's free `folder.OUTPUT_SETTINGS`, the evaluation's settings count: a finished
trial's summary is their result."""


def check_folder(trial: Trial, args: Any, folder: Path) -> None:
    """A trial whose folder already holds a run (finished, or with a checkpoint to resume) must
    be that run: the sweep would otherwise skip a finished run of other settings as done, or resume
    one under new flags. A UserError names the first setting that differs (`folder.changed_fields`
    on the configs its config.json records)."""
    from policysearch.run.folder import changed_fields, config_from_dict
    from policysearch.run.peers import PEERS
    from policysearch.sweep.trial import trial_state

    if trial_state(folder, trial.algo in PEERS) == "new":
        return  # nothing kept: the trial starts afresh
    record = folder / "config.json"
    try:
        saved = json.loads(record.read_text())
    except (OSError, ValueError):
        saved = None
    if not isinstance(saved, dict):
        return  # no readable record to compare with
    try:
        kept = [(config_from_dict(type(args.run), saved.get("run"), f"{record} (run)"), args.run),
                (config_from_dict(type(args.algo), saved.get("algo_config"), f"{record} (algo_config)"), args.algo)]
    except UserError as exc:
        raise UserError(f"trial {trial.name}: {exc}") from None
    for old, new in kept:
        for name in changed_fields(old, new, NOT_SETTINGS):
            flag = name.replace("_", "-")
            raise UserError(
                f"trial {trial.name}: its folder {folder} holds a run with {flag}={getattr(old, name)}, this grid asks "
                f"{flag}={getattr(new, name)}: give the grid another --out, or a --tag to name its trials apart")


def _status_line(done: int, failed: int, running: int, total: int, started: float, durations: list[float]) -> str:
    left = total - done - failed
    eta = ""
    if durations and left:
        parallel = max(1, running)
        eta = f", ETA {clock(sum(durations) / len(durations) * left / parallel)}"
    return f"sweep: {done}/{total} done, {running} running, {failed} failed, {clock(time.perf_counter() - started)} elapsed{eta}"


def _record(path: Path, trials: list[Trial]) -> list[dict[str, Any]]:
    """sweep.json's trials: those an earlier command put in the folder, then this grid's (a
    folder can hold several grids, for instance 5 seeds of ours and 3 of a peer's)."""
    now = [t.record() for t in trials]
    names = {t["name"] for t in now}
    try:
        before = json.loads(path.read_text())["trials"] if path.exists() else []
    except (ValueError, KeyError):
        before = []
    return [t for t in before if t.get("name") not in names] + now


def run_sweep(args: SweepArgs) -> dict[str, Any]:
    """Run (or resume) every trial; returns {"out", "trials": {name: result or error}}."""
    from policysearch.sweep.trial import trial_state

    trials = expand(args)
    out = Path(args.out)
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise UserError("two trials of the grid would share a folder: give each flag once")
    runs = check_trials(trials, out)
    if args.dry_run:
        from policysearch.run.peers import PEERS

        return {"out": str(out), "trials": {t.name: {"state": trial_state(out / t.name, t.algo in PEERS), "argv": t.argv()} for t in trials}}
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "sweep.json").write_text(json.dumps({"trials": _record(out / "sweep.json", trials)}, indent=2))
    except OSError as exc:
        raise UserError(f"cannot write the sweep folder '{out}' ({exc.strerror}): pass another --out") from None
    try:
        import ray
    except ImportError:
        raise UserError("policysearch sweep needs Ray: pip install 'policysearch[distributed]'") from None

    from policysearch.sweep.trial import run_trial

    if args.address:
        try:
            ray.init(address=args.address, log_to_driver=False, logging_level="ERROR")
        except ConnectionError as exc:
            raise UserError(f"cannot join the Ray cluster at '{args.address}' ({exc}): start it with `ray start --head`, "
                            "or leave out --address for a local one") from None
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        cluster_cpus = int(max(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]))
        remote = ray.remote(run_trial)
        cpus = {t.name: trial_cpus(runs[t.name], args, cluster_cpus) for t in trials}
        pending = {}
        for t in trials:
            ref = remote.options(num_cpus=cpus[t.name], max_retries=args.max_retries, retry_exceptions=False,
                                 name=t.name).remote(t.name, t.argv(), str((out / t.name).resolve()))
            pending[ref] = t
        results: dict[str, Any] = {}
        durations: list[float] = []
        started, failed, last, shown = time.perf_counter(), 0, "", 0.0
        slots = max(1, cluster_cpus // min(cpus.values()))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
            for ref in ready:
                t = pending.pop(ref)
                try:
                    result = ray.get(ref)
                    results[t.name] = result
                    if result["state"] != "finished":
                        durations.append(result["seconds"])
                except ray.exceptions.RayTaskError as exc:  # the trial raised: not retried
                    cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
                    results[t.name] = {"name": t.name, "error": f"{type(cause).__name__}: {cause}"}
                    failed += 1
                except ray.exceptions.RayError as exc:  # the worker died more often than --max-retries
                    results[t.name] = {"name": t.name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
                    failed += 1
            line = _status_line(len(results) - failed, failed, min(len(pending), slots), len(trials), started, durations)
            changed = line.split(", ")[:3] != last.split(", ")[:3]  # done, running, failed
            if args.progress and (changed or time.perf_counter() - shown >= PROGRESS_EVERY):
                print(line, file=sys.stderr, flush=True)
                last, shown = line, time.perf_counter()
    finally:
        ray.shutdown()
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return {"out": str(out), "trials": results}
