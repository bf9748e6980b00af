"""One trial of a sweep, as a Ray worker runs it: look at its folder, then train it new, resume it
from its last checkpoint, or skip it when it finished (its summary.json is written last). A peer's
trial (`sb3-ppo`, `sb3-trpo`) runs `run.peers.train_peer` on the same flags instead.

The worker runs the trial in its own process through the same code as `policysearch train`, with
the trial's output in DIR/trial.log and its PID in DIR/worker.pid (what a test kills). A worker
killed mid-trial leaves the run folder as kill -9 leaves any run (its lock dies with it); Ray
starts the task again and this function resumes the run. Each segment trained records the
machine's load in DIR/cpu.json (`sweep.cpu`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

State = Literal["finished", "resumable", "new"]


def parse_trial(argv: list[str]) -> tuple[str, Any]:
    """(algorithm, parsed train flags) of a trial's argv; a peer's flags are those of the
    algorithm it mirrors. A bad flag raises UserError."""
    from policysearch.cli import train_args
    from policysearch.run.peers import PEERS, check_peer_run, ours

    if argv[0] in PEERS:
        _, args = train_args([ours(argv[0]), *argv[1:]])
        check_peer_run(argv[0], args.run, args.algo)
        return argv[0], args
    return train_args(argv)


def trial_state(run_dir: Path, peer: bool = False) -> State:
    """finished: summary.json exists; resumable: a complete checkpoint exists (ours, or for a
    peer's trial the peer's); new: neither."""
    from policysearch.errors import UserError
    from policysearch.run.checkpoint import find_checkpoint
    from policysearch.run.peers import latest_checkpoint

    if (run_dir / "summary.json").exists():
        return "finished"
    if peer:
        return "resumable" if latest_checkpoint(run_dir) is not None else "new"
    try:
        find_checkpoint(run_dir)
        return "resumable"
    except UserError:
        return "new"


def trial_argv(argv: list[str], run_dir: Path) -> tuple[list[str], State]:
    """The train command's arguments for the trial's folder in its current state."""
    from policysearch.run.peers import PEERS

    state = trial_state(run_dir, argv[0] in PEERS)
    if state == "resumable":
        return [*argv, "--resume", str(run_dir)], state
    return [*argv, "--run-dir", str(run_dir), "--overwrite"], state  # overwrite: a start killed before its first checkpoint


def run_trial(name: str, argv: list[str], run_dir: str) -> dict[str, Any]:
    """Train the trial to the end (or skip it). Returns {"name", "state" it was found in, "seconds",
    "summary"}; a bad flag raises UserError, which the sweep reports without retrying."""
    import dataclasses

    from policysearch.cli import cmd_train
    from policysearch.run.peers import PEERS, train_peer
    from policysearch.sweep import cpu

    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    full, state = trial_argv(argv, folder)
    t0 = time.perf_counter()
    if state != "finished":
        (folder / "worker.pid").write_text(f"{os.getpid()}\n")
        if state == "new":  # a folder without checkpoint or summary trains from scratch: segments left in it are stale
            (folder / cpu.FILE).unlink(missing_ok=True)
        with open(folder / "trial.log", "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), \
                cpu.recorded(folder):
            print(f"# policysearch train {' '.join(full)}", flush=True)
            if argv[0] in PEERS:  # the peer finds its own checkpoint
                _, args = parse_trial(argv)
                train_peer(argv[0], dataclasses.replace(args.run, run_dir=str(folder)), args.algo)
            else:
                cmd_train(full)
    summary = json.loads((folder / "summary.json").read_text())
    return {"name": name, "state": state, "seconds": time.perf_counter() - t0, "summary": summary}
