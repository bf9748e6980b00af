"""A sweep's grid: algorithms x env ids x seeds x flag values, from the command line or a TOML file,
expanded into trials. Each trial is an ordinary `policysearch train` command whose run folder lies
under the sweep folder, so `eval`, `plot`, `render` and `--resume` work on it. Imports no JAX.

A TOML grid (the command line's lists extend it, its `--set` values replace the file's):

    algos = ["ppo", "trpo"]
    envs = ["Hopper-v5", "Walker2d-v5"]
    seeds = [0, 1, 2, 3, 4]
    [set]
    total-steps = [1000000]
    "ppo:learning-rate" = [3e-4, 1e-3]     # only PPO's trials take this flag
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import tyro

from policysearch.algos import ALGORITHMS
from policysearch.errors import UserError


@dataclass(frozen=True)
class SweepArgs:
    """Train a grid of runs (algorithms x envs x seeds x flag values) on a Ray cluster: a local one
    sized to this machine, or one started with `ray start` (--address). Running the same command
    again skips finished trials and resumes unfinished ones from their last checkpoint."""

    algos: tuple[str, ...] = ()
    """Algorithms (ppo, trpo, pg), and the peers sb3-ppo (Stable-Baselines3 PPO) and sb3-trpo (sb3-contrib TRPO), which take ppo's and trpo's flags."""
    envs: tuple[str, ...] = ()
    """Gymnasium env ids."""
    seeds: tuple[int, ...] = ()
    """Seeds (default 0)."""
    set: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """FLAG=V1,V2,...: a train flag and its values (one trial per value); ALGO:FLAG=... for one algorithm only; repeat --set for each flag."""
    grid: str = ""
    """A TOML file with algos, envs, seeds and a [set] table (the command line's values are added)."""
    out: str = "runs/sweep"
    """The sweep folder: one run folder per trial, sweep.json, and the report."""
    address: str = ""
    """Ray cluster to join ("auto": the one `ray start` made on this machine; empty: start a local one for the sweep)."""
    cpus_per_trial: int = 0
    """CPUs each trial asks Ray for (0: as many as its envs' threads use)."""
    max_retries: int = 3
    """Times a trial whose worker died (killed process, lost node) is started again; it resumes from its checkpoint."""
    tag: str = ""
    """A name put in every trial's folder (ALGO-ENV-TAG-sSEED), so that a variant of a grid (another --set value) can share a sweep folder with the grid's trials."""
    dry_run: bool = False
    """List the trials and their state, run nothing."""
    progress: bool = True
    """Print the sweep's progress (trials done, running, failed, ETA)."""


@dataclass(frozen=True)
class Trial:
    """One run of the grid: `policysearch train ARGV` with its folder given by the sweep."""

    name: str
    algo: str
    env: str
    seed: int
    settings: dict[str, str] = field(default_factory=dict)
    """The flags this trial sets beyond env and seed, without dashes (as given: "learning-rate")."""

    def argv(self) -> list[str]:
        """The train command's arguments, folder flags left out (the trial adds --run-dir or --resume)."""
        flags = [x for k, v in self.settings.items() for x in _flag(k, v)]
        return [self.algo, "--env", self.env, "--seed", str(self.seed), *flags, "--no-progress", "--no-video"]

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "algo": self.algo, "env": self.env, "seed": self.seed, "settings": self.settings}


def _flag(name: str, value: str) -> tuple[str, ...]:
    """A setting as train flags: true/false are the switch forms (--name, --no-name)."""
    if value.lower() in ("true", "false"):
        return (f"--{name}",) if value.lower() == "true" else (f"--no-{name}",)
    return (f"--{name}", value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_")


def _values(name: str, raw: Any) -> list[str]:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise UserError(f"sweep setting '{name}' has no values: give at least one")
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in values]


def _parse_set(item: str) -> tuple[str, list[str]]:
    if "=" not in item:
        raise UserError(f"--set '{item}' has no '=': write it as FLAG=V1,V2 (for instance --set learning-rate=3e-4,1e-3)")
    name, _, values = item.partition("=")
    return name.strip(), _values(name, [v.strip() for v in values.split(",") if v.strip()])


def load_grid(args: SweepArgs) -> tuple[list[str], list[str], list[int], dict[str, list[str]]]:
    """(algos, envs, seeds, settings) from the TOML grid and the command line."""
    data: dict[str, Any] = {}
    if args.grid:
        import tomllib  # Python 3.11+

        path = Path(args.grid)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"grid file '{path}' not found: give the path of a TOML file") from None
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"grid file '{path}' is not valid TOML ({exc}): fix it") from None
        unknown = sorted(set(data) - {"algos", "envs", "seeds", "set"})
        if unknown:
            raise UserError(f"grid file '{path}' has unknown keys {unknown}: use algos, envs, seeds and a [set] table")
    algos = list(dict.fromkeys([*data.get("algos", []), *args.algos]))
    envs = list(dict.fromkeys([*data.get("envs", []), *args.envs]))
    seeds = list(dict.fromkeys([*(int(s) for s in data.get("seeds", [])), *args.seeds])) or [0]
    settings = {name.lstrip("-"): _values(name, raw) for name, raw in data.get("set", {}).items()}
    settings.update((name.lstrip("-"), values) for name, values in map(_parse_set, args.set))
    if not algos or not envs:
        raise UserError("a sweep needs algorithms and envs: pass --algos ppo trpo --envs CartPole-v1 (or a --grid file)")
    from policysearch.run.peers import PEERS

    for algo in algos:
        if algo not in PEERS and (algo not in ALGORITHMS or ALGORITHMS[algo].kind != "on-policy"):
            names = ", ".join([*(n for n, e in ALGORITHMS.items() if e.kind == "on-policy"), *PEERS])
            raise UserError(f"'{algo}' cannot be swept: use one of {names}")
    for name in settings:
        scope, _, flag = name.rpartition(":")
        if scope and scope not in algos:
            raise UserError(f"--set '{name}' names algorithm '{scope}', which is not in the sweep ({', '.join(algos)})")
        if flag.replace("_", "-") in ("env", "seed", "run-dir", "resume", "overwrite"):
            raise UserError(f"--set cannot set '{flag}': the sweep sets it (use --envs, --seeds, --out)")
    return algos, envs, seeds, settings


def expand(args: SweepArgs) -> list[Trial]:
    """Every trial of the grid, named by what varies: ALGO-ENV[-TAG][-flag=value...]-sSEED."""
    algos, envs, seeds, settings = load_grid(args)
    label = f"-{_slug(args.tag)}" if _slug(args.tag) else ""
    varying = {name for name, values in settings.items() if len(values) > 1}
    trials = []
    for algo, env in itertools.product(algos, envs):
        own = {name.rpartition(":")[2]: (name, values) for name, values in settings.items() if name.rpartition(":")[0] in ("", algo)}
        names = list(own)
        for combo in itertools.product(*(own[n][1] for n in names)):
            chosen = dict(zip(names, combo))
            tag = "".join(f"-{_slug(n)}={_slug(v)}" for n, v in chosen.items() if own[n][0] in varying)
            for seed in seeds:
                trials.append(Trial(f"{algo}-{_slug(env)}{label}{tag}-s{seed}", algo, env, seed, chosen))
    return trials
