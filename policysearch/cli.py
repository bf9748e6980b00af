"""`policysearch` command line: train, eval, plan, plot, render, sweep, report, export.

  policysearch train ppo --env Hopper-v5 --total-steps 1000000 --seed 0 --run-dir runs/hopper
  policysearch train ppo --resume runs/hopper          (continue from the last checkpoint)
  policysearch eval runs/hopper --episodes 10 --json
  policysearch plan --env pendulum-swingup --horizon 100 --json
  policysearch plot runs/hopper | policysearch render runs/hopper
  policysearch sweep --algos ppo trpo --envs Hopper-v5 --seeds 0 1 2 --set total-steps=1000000 --out runs/sweep
  policysearch report runs/sweep
  policysearch export runs/hopper --format onnx --out hopper.onnx   (or --format numpy; --show-loader)

Exit codes: 0 success, 2 bad input or a file that cannot be written (one line on stderr naming
the problem and the fix), 3 training became non-finite (the last good checkpoint is kept), 130
Ctrl-C and 143 SIGTERM (the last completed update is checkpointed first), 1 failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import errno
import io
import itertools
import json
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Callable, Sequence

import tyro

from policysearch.algos import ALGORITHMS
from policysearch.errors import NonFiniteError, UserError
from policysearch.run import signals
from policysearch.run.trainers import trainer

COMMANDS = ("train", "eval", "plan", "plot", "render", "sweep", "report", "export")
WRITE_ERRORS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
"""OS errors of a write the user can fix (space, size limit, permissions): exit 2 and one line."""


@dataclass(frozen=True)
class EvalArgs:
    """Evaluate the trained policy of a run directory."""

    run_dir: tyro.conf.Positional[str]
    """Run directory (or checkpoint directory) to load."""
    episodes: int = 10
    """Episodes to run."""
    env: str = ""
    """Environment to evaluate on (default: the one it was trained on)."""
    seed: int = 10_000
    """Seed of the evaluation episodes."""
    stochastic: bool = False
    """Sample actions instead of taking the mean/mode."""
    json: bool = False
    """Print one JSON object instead of a sentence."""


@dataclass(frozen=True)
class PlotArgs:
    """Redraw the picture of a run directory: learning_curve.png of a training run (PPO, TRPO, PG: return per
    step; GPS: cost per iteration), cost.png of a `policysearch plan` folder."""

    run_dir: tyro.conf.Positional[str]


@dataclass(frozen=True)
class RenderArgs:
    """Render an MP4 of a run's trained policy."""

    run_dir: tyro.conf.Positional[str]
    output: str = ""
    """Output path (default: RUN_DIR/policy.mp4)."""
    max_steps: int = 1000
    """Longest episode to render."""
    seed: int = 0
    """Seed of the rendered episode."""


FLAG_HINTS = {"--lr": "--learning-rate", "--steps": "--total-steps", "--n-envs": "--num-envs", "--n-steps": "--steps-per-update",
              "--batch-size": "--minibatch-size", "--n-epochs": "--epochs", "--ent": "--ent-coef", "--env-id": "--env"}
"""Flags users bring from other libraries (SB3, CleanRL), and ours that mean the same."""


def parse_int(text: str) -> int:
    """An integer flag's value: a plain integer, or integer-valued scientific notation (1e6, 2.5e5)."""
    try:
        value = Decimal(text.replace("_", ""))
    except InvalidOperation:
        raise ValueError(f"'{text}' is not an integer") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(f"'{text}' is not an integer")
    return int(value)


def _flag_registry() -> tyro.constructors.ConstructorRegistry:
    registry = tyro.constructors.ConstructorRegistry()

    @registry.primitive_rule
    def integers(info: tyro.constructors.PrimitiveTypeInfo) -> tyro.constructors.PrimitiveConstructorSpec | None:
        if info.type is not int:
            return None
        return tyro.constructors.PrimitiveConstructorSpec(
            nargs=1, metavar="INT", instance_from_str=lambda args: parse_int(args[0]),
            is_instance=lambda x: isinstance(x, int) and not isinstance(x, bool), str_from_instance=lambda x: [str(x)])

    return registry


def _flags(cls: type) -> list[str]:
    """Every flag of a tyro dataclass (nested dataclasses' fields without prefix, as the CLI builds them)."""
    names = []
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(field.default_factory):  # a nested config (the run's, the algorithm's)
            names += _flags(field.default_factory)  # type: ignore[arg-type]
        else:
            names.append("--" + field.name.replace("_", "-"))
    return names


def _one_line(report: str, cls: type, prog: str) -> str:
    """tyro's boxed report of a parse error (a title, the problem, then sections set off by rules)
    as one line with the fix."""
    rows = [line.strip().strip("│").strip() for line in report.splitlines()]
    rows = [row for row in rows if row and not row.startswith(("╭", "╰"))]
    problem = " ".join(row for row in itertools.takewhile(lambda r: not r.startswith("──"), rows))
    problem = " ".join(problem.split())
    if problem.startswith("Unrecognized options:"):
        flags = [arg.strip() for arg in problem.split(":", 1)[1].split(",") if arg.strip().startswith("-")]
        first = flags[0].split("=", 1)[0] if flags else problem.split(":", 1)[1].strip()
        hint = FLAG_HINTS.get(first) or next(iter(difflib.get_close_matches(first, _flags(cls), n=1, cutoff=0.6)), None)
        return f"unknown flag {first}" + (f": did you mean {hint}?" if hint else "") + f" (`{prog} --help` lists the flags)"
    if problem.startswith("Missing from"):
        metavar, _, what = problem.split(":", 1)[1].strip().partition(" ")
        return f"missing {metavar}" + (f" ({what.removesuffix('(required)').strip().rstrip('.')})" if what else "") + f": see `{prog} --help`"
    return f"{problem.removeprefix('Error parsing ').rstrip('.')} (`{prog} --help` lists the flags)"


def parse(cls: type, argv: Sequence[str], prog: str, default: Any = None) -> Any:
    """The flags of `cls` from argv (tyro), with integer flags that take 1e6 and a parse error as
    one line (a UserError: exit 2) instead of tyro's box."""
    report = io.StringIO()
    try:
        with contextlib.redirect_stderr(report):
            kwargs = {"default": default} if default is not None else {}
            return tyro.cli(cls, args=list(argv), prog=prog, registry=_flag_registry(), **kwargs)
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        raise UserError(_one_line(report.getvalue(), cls, prog)) from None


def _train_args_type(algo: str) -> type:
    """The flags of `policysearch train ALGO`: its trainer's run config, its algorithm config,
    --resume, and for the on-policy algorithms --preset."""
    t = trainer(algo)
    fields = [
        ("run", Annotated[t.run_config, tyro.conf.OmitArgPrefixes], dataclasses.field(default_factory=t.run_config)),
        ("algo", Annotated[ALGORITHMS[algo].config, tyro.conf.OmitArgPrefixes], dataclasses.field(default_factory=ALGORITHMS[algo].config)),
        ("resume", Annotated[str, tyro.conf.arg(help=t.resume_help + " (default: a new run)", help_behavior_hint="")], ""),
    ]
    if ALGORITHMS[algo].kind == "on-policy":
        fields.append(("preset", Annotated[str, tyro.conf.arg(
            help="Start from a published per-task setting: zoo (the RL Baselines3 Zoo's tuned values; `algos/presets.py` names each "
                 "value's source); the flags given override it (default: none)", help_behavior_hint="")], ""))
    return dataclasses.make_dataclass(f"Train{algo.upper()}", fields, frozen=True)


def _resume_defaults(argv: Sequence[str], algo: str, args_type: type) -> Any:
    """On --resume DIR, the run's saved config becomes the default of every flag."""
    argv = list(argv)
    resume = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--resume"), None)
    resume = resume or next((a.split("=", 1)[1] for a in argv if a.startswith("--resume=")), None)
    if resume is None:
        return None
    from policysearch.run.checkpoint import find_checkpoint, read_meta
    from policysearch.run.folder import require_algo, run_folder, saved_configs

    meta = read_meta(find_checkpoint(run_folder(resume)))
    require_algo(meta, algo, resume)
    run, algo_config = saved_configs(meta, trainer(algo).run_config, ALGORITHMS[algo].config, resume)
    return args_type(dataclasses.replace(run, run_dir=resume), algo_config, resume)


def train_args(argv: Sequence[str]) -> tuple[str, Any]:
    """(algorithm, parsed flags) of `policysearch train ALGO FLAGS` (ALGO known, checked by the caller)."""
    algo, rest = argv[0], list(argv[1:])
    args_type = _train_args_type(algo)
    default = _resume_defaults(rest, algo, args_type)
    prog = f"policysearch train {algo}"
    args = parse(args_type, rest, default=default, prog=prog)
    if not getattr(args, "preset", ""):
        return algo, args
    from policysearch.algos.presets import find_preset

    preset = find_preset(args.preset, algo, args.run.env)
    base = default or args_type()
    run_fields = {f.name for f in dataclasses.fields(base.run)}
    run = dataclasses.replace(base.run, **{k: v for k, v in preset.values.items() if k in run_fields})
    algo_config = dataclasses.replace(base.algo, **{k: v for k, v in preset.values.items() if k not in run_fields})
    return algo, parse(args_type, rest, default=dataclasses.replace(base, run=run, algo=algo_config), prog=prog)


def cmd_train(argv: Sequence[str]) -> int:
    names = "{" + ",".join(ALGORITHMS) + "}"
    if not argv or argv[0] not in ALGORITHMS:
        given = argv[0] if argv else "nothing"
        if given in ("-h", "--help"):
            print(f"usage: policysearch train {names} [FLAGS]; `policysearch train ALGO --help` lists the flags")
            return 0
        raise UserError(f"unknown algorithm '{given}': use `policysearch train {names}`")
    algo, args = train_args(argv)
    t, resume = trainer(algo), Path(args.resume) if args.resume else None
    t.check(args.run, args.algo, resume)
    result = t.train(args.run, args.algo, resume)
    print(t.report(result.summary, args.run))
    return 0


def cmd_eval(argv: Sequence[str]) -> int:
    from policysearch.run.checkpoint import find_checkpoint

    args = parse(EvalArgs, argv, prog="policysearch eval")
    if args.episodes <= 0:
        raise UserError(f"--episodes must be positive, got {args.episodes}")
    find_checkpoint(Path(args.run_dir))  # a missing run or checkpoint is refused before JAX is imported

    from policysearch.envs import make_env
    from policysearch.envs.systems import TASKS
    from policysearch.run.evaluation import evaluate, evaluate_on_task
    from policysearch.run.snapshot import load

    agent = load(args.run_dir)
    env_id = args.env or agent.spec.env_id
    if env_id in TASKS:  # a model task, not a Gymnasium env: the cost from each training condition
        result = evaluate_on_task(agent)
        print(json.dumps(result) if args.json else f"{result['env']}: cost {result['cost_mean']:.4g} (mean over {len(result['costs'])} conditions)")
        return 0
    if env_id != agent.spec.env_id:
        probe = make_env(env_id, 1, 0)
        spec = probe.spec
        probe.close()
        trained = agent.spec
        if (spec.obs_dim, spec.action_kind, spec.action_dim) != (trained.obs_dim, trained.action_kind, trained.action_dim):
            raise UserError(
                f"the policy in '{args.run_dir}' was trained on {trained.env_id} (obs {trained.obs_dim}, "
                f"actions {trained.action_dim}); {env_id} has obs {spec.obs_dim}, actions {spec.action_dim}: pass --env {trained.env_id}"
            )
    result = evaluate(agent, env_id, args.episodes, seed=args.seed, deterministic=not args.stochastic)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{env_id}: return {result['return_mean']:.1f} +- {result['return_std']:.1f} over {result['episodes']} episodes (mean length {result['length_mean']:.0f})")
    return 0


def cmd_plot(argv: Sequence[str]) -> int:
    from policysearch.run.viz import plot_run

    args = parse(PlotArgs, argv, prog="policysearch plot")
    print(plot_run(args.run_dir))
    return 0


def cmd_render(argv: Sequence[str]) -> int:
    from policysearch.run.snapshot import load
    from policysearch.run.viz import render_video

    args = parse(RenderArgs, argv, prog="policysearch render")
    agent = load(args.run_dir)
    out = Path(args.output) if args.output else Path(args.run_dir) / "policy.mp4"
    print(render_video(agent, agent.spec.env_id, out, max_steps=args.max_steps, seed=args.seed))  # a UserError names the fix
    return 0


def cmd_plan(argv: Sequence[str]) -> int:
    from policysearch.run.config import PlanConfig

    cfg = parse(PlanConfig, argv, prog="policysearch plan")
    from policysearch.run.plan import run_plan

    result = run_plan(cfg)
    if cfg.json:
        print(json.dumps(result))
    else:
        if "cost_receding_start" in result:  # a walker: the full-horizon solve started from the windows' plan
            print(f"receding-horizon start: cost {result['cost_initial']:.6g} -> {result['cost_receding_start']:.6g} "
                  f"in {result['receding_seconds']:.1f} s")
        print(f"cost {result['cost_initial']:.6g} -> {result['cost_final']:.6g}, full-horizon iLQR {result['iterations']} iterations "
              f"(stopped: {result['stopped']}), {result['seconds']:.3f} s; controller in {result['run_dir']}")
        if "iteration_seconds_median" in result:
            print(f"an iLQR iteration took {result['iteration_seconds_median']:.3f} s (median after the first, which compiles); "
                  f"the finite-difference derivatives alone {result['derivatives_seconds']:.3f} s")
        if "steps" in result:  # a MuJoCo robot: the controller's closed loop on the real env
            ran = f"ran the whole horizon ({result['steps']} steps)" if not result["terminated"] else f"terminated at step {result['steps']}"
            print(f"closed loop on the real env: {ran}, return {result['env_return']:.1f}, moved {result['x_travelled']:.2f} m")
    return 0


@dataclass(frozen=True)
class ReportArgs:
    """Aggregate a sweep folder over seeds: report.md, report.json and curves.png."""

    sweep_dir: tyro.conf.Positional[str]
    json: bool = False
    """Print the report as one JSON object instead of the markdown table."""


def cmd_sweep(argv: Sequence[str]) -> int:
    from policysearch.sweep.grid import SweepArgs

    args = parse(SweepArgs, argv, prog="policysearch sweep")
    from policysearch.sweep.runner import run_sweep

    result = run_sweep(args)
    if args.dry_run:
        for name, trial in result["trials"].items():
            print(f"{name}: {trial['state']}: policysearch train {' '.join(trial['argv'])}")
        return 0
    failed = {n: r["error"] for n, r in result["trials"].items() if "error" in r}
    done = len(result["trials"]) - len(failed)
    print(f"sweep {result['out']}: {done} of {len(result['trials'])} trials finished" + (f"; failed: {failed}" if failed else "")
          + f"; `policysearch report {result['out']}` aggregates them")
    return 1 if failed else 0


def cmd_report(argv: Sequence[str]) -> int:
    args = parse(ReportArgs, argv, prog="policysearch report")
    from policysearch.sweep.report import report

    result = report(args.sweep_dir)
    print(json.dumps(result) if args.json else Path(result["markdown"]).read_text() + f"curves: {result['curves']}")
    return 0


def cmd_export(argv: Sequence[str]) -> int:
    from policysearch.deploy.export import LOADER, ExportArgs

    args = parse(ExportArgs, argv, prog="policysearch export")
    if args.show_loader:
        print(LOADER.read_text(), end="")
        return 0
    if not args.run_dir:
        raise UserError("missing RUN_DIR: `policysearch export RUN_DIR --format onnx|numpy` (or --show-loader)")
    from policysearch.deploy.export import export

    path = export(args.run_dir, args.format, args.out or None, args.controller, args.condition)
    how = "loader.py, which `policysearch export --show-loader` prints" if args.format == "numpy" else "onnxruntime"
    print(f"wrote {path} (run it with {how})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nAlgorithms (policysearch train ALGO --help lists the flags):\n"
              + "\n".join(f"  {name:5s} {entry.summary}" for name, entry in ALGORITHMS.items()))
        return 0
    command, rest = argv[0], argv[1:]
    handlers = {"train": cmd_train, "eval": cmd_eval, "plan": cmd_plan, "plot": cmd_plot, "render": cmd_render, "sweep": cmd_sweep,
                "report": cmd_report, "export": cmd_export}

    def dispatch() -> int:
        if command not in handlers:
            raise UserError(f"unknown command '{command}': use one of {', '.join(COMMANDS)}")
        return handlers[command](rest)

    return guarded(dispatch)


def guarded(body: Callable[[], int | None]) -> int:
    """Run a command's body with the stop signals deferred to checkpoints (`run.signals`) and
    return its exit code: bad input (UserError) and a failed write 2, a non-finite update 3, a
    stop signal 130/143 (a training run has checkpointed its last update), each with one line on
    stderr. The CLI's commands and the experiments' scripts run through it."""
    signals.install()
    try:
        return body() or 0
    except UserError as exc:
        print(f"policysearch: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteError as exc:
        print(f"policysearch: error: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:  # a write that failed mid-run: a full disk, a file size limit, a folder made read-only
        if exc.errno not in WRITE_ERRORS:
            raise
        where = f" '{exc.filename}'" if exc.filename else ""
        print(f"policysearch: error: cannot write{where} ({exc.strerror or exc}); free space or fix the permissions, then continue "
              "with --resume (earlier checkpoints are intact)", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        name = "stopped by SIGTERM" if signals.exit_code(exc) == 143 else "interrupted"
        print(f"policysearch: {name}; a training run has checkpointed its last completed update (continue it with --resume)", file=sys.stderr)
        return signals.exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
