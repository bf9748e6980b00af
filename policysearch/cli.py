"""`policysearch` command line: train, eval, plan, plot, render.

  policysearch train ppo --env Hopper-v5 --total-steps 1000000 --seed 0 --run-dir runs/hopper
  policysearch train ppo --resume runs/hopper          (continue from the last checkpoint)
  policysearch eval runs/hopper --episodes 10 --json
  policysearch plan --env pendulum-swingup --horizon 100 --json
  policysearch plot runs/hopper | policysearch render runs/hopper

Exit codes: 0 success, 2 bad input (one line on stderr naming the problem and the fix),
1 failure.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Sequence

import tyro

from policysearch.algos import ALGORITHMS
from policysearch.envs.systems import TASKS
from policysearch.errors import UserError

COMMANDS = ("train", "eval", "plan", "plot", "render")


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
    """Redraw learning_curve.png of a run directory."""

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


def _train_args_type(algo: str) -> type:
    from policysearch.train import RunConfig

    config_cls, _ = ALGORITHMS[algo]
    return dataclasses.make_dataclass(
        f"Train{algo.upper()}",
        [
            ("run", Annotated[RunConfig, tyro.conf.OmitArgPrefixes], dataclasses.field(default_factory=RunConfig)),
            ("algo", Annotated[config_cls, tyro.conf.OmitArgPrefixes], dataclasses.field(default_factory=config_cls)),
            ("resume", Annotated[str, tyro.conf.arg(help="continue the run in this directory from its last checkpoint")], ""),
        ],
        frozen=True,
    )


def _resume_defaults(argv: Sequence[str], algo: str, args_type: type, run_cls: type | None = None, config_cls: type | None = None) -> Any:
    """On --resume DIR, the run's saved config becomes the default of every flag (run_cls and
    config_cls: the run's config classes, by default RunConfig and the algorithm's)."""
    from policysearch.checkpoint import find_checkpoint, read_meta
    from policysearch.snapshot import config_from_dict
    from policysearch.train import RunConfig

    argv = list(argv)
    resume = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--resume"), None)
    resume = resume or next((a.split("=", 1)[1] for a in argv if a.startswith("--resume=")), None)
    if resume is None:
        return None
    meta = read_meta(find_checkpoint(Path(resume)))
    if meta.get("algo") != algo:
        raise UserError(f"'{resume}' holds a {meta.get('algo')} run; resume it with `policysearch train {meta.get('algo')} --resume {resume}`")
    run_cls = run_cls or RunConfig
    config_cls = config_cls or ALGORITHMS[algo][0]
    run = dataclasses.replace(config_from_dict(run_cls, meta["run"]), run_dir=resume)
    return args_type(run, config_from_dict(config_cls, meta["algo_config"]), resume)


def cmd_train_gps(argv: Sequence[str]) -> int:
    from policysearch.algos.gps import GPSConfig
    from policysearch.gps_run import GPSRunConfig, train_gps

    args_type = dataclasses.make_dataclass(
        "TrainGPS",
        [
            ("run", Annotated[GPSRunConfig, tyro.conf.OmitArgPrefixes], dataclasses.field(default_factory=GPSRunConfig)),
            ("algo", Annotated[GPSConfig, tyro.conf.OmitArgPrefixes], dataclasses.field(default_factory=GPSConfig)),
            ("resume", Annotated[str, tyro.conf.arg(help="continue the run in this directory from its last completed iteration "
                                                         "(pass a larger --iterations to extend it)")], ""),
        ],
        frozen=True,
    )
    default = _resume_defaults(argv, "gps", args_type, GPSRunConfig, GPSConfig)
    args = tyro.cli(args_type, args=list(argv), default=default, prog="policysearch train gps")
    summary = train_gps(args.run, args.algo, args.resume)
    if args.run.json:
        print(json.dumps(summary))
    else:
        extra = f"; env return {summary['eval_return_mean']:.1f} over {summary['eval_episodes']} episodes" if "eval_return_mean" in summary else ""
        print(f"GPS policy cost {summary['policy_cost']:.4g} vs DDP {summary['ddp_cost']:.4g} ({summary['accepted']}/{summary['iterations']} "
              f"iterations accepted, {summary['real_steps']} real steps, {summary['seconds']:.0f} s){extra}; run in {summary['run_dir']}")
    return 0


def cmd_train(argv: Sequence[str]) -> int:
    from policysearch.train import train

    if argv and argv[0] == "gps":
        return cmd_train_gps(argv[1:])
    if not argv or argv[0] not in ALGORITHMS:
        given = argv[0] if argv else "nothing"
        if given in ("-h", "--help"):
            print(f"usage: policysearch train {{{','.join(ALGORITHMS)},gps}} [FLAGS]; `policysearch train ALGO --help` lists the flags")
            return 0
        raise UserError(f"unknown algorithm '{given}': use `policysearch train {{{','.join(ALGORITHMS)},gps}}`")
    algo, rest = argv[0], list(argv[1:])
    args_type = _train_args_type(algo)
    default = _resume_defaults(rest, algo, args_type)
    args = tyro.cli(args_type, args=rest, default=default, prog=f"policysearch train {algo}")
    result = train(algo, args.run, args.algo, resume=Path(args.resume) if args.resume else None)
    summary = {"run_dir": str(result.run_dir)}
    if result.final_eval:
        summary.update({f"eval_{k}": v for k, v in result.final_eval.items()})
    print(json.dumps(summary))
    return 0


def cmd_eval(argv: Sequence[str]) -> int:
    from policysearch.envs import make_env
    from policysearch.evaluation import evaluate
    from policysearch.snapshot import load

    args = tyro.cli(EvalArgs, args=list(argv), prog="policysearch eval")
    if args.episodes <= 0:
        raise UserError(f"--episodes must be positive, got {args.episodes}")
    agent = load(args.run_dir)
    env_id = args.env or agent.spec.env_id
    if agent.meta.get("algo") == "gps" and env_id in TASKS:
        return _eval_gps_task(args, agent)
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


def _eval_gps_task(args: EvalArgs, agent: Any) -> int:
    """A GPS policy on its JAX task: the cost of its mean actions from each training condition."""
    from policysearch.algos.gps import policy_cost, standardized
    from policysearch.gps_run import GPSRunConfig, make_problem
    from policysearch.snapshot import config_from_dict

    problem = make_problem(config_from_dict(GPSRunConfig, agent.meta["run"]))
    features = standardized(problem.features, agent.obs_stats if agent.norm.obs else None, agent.norm.clip_obs)
    costs = [policy_cost(problem, agent.policy, agent.params, c, features) for c in range(len(problem.conditions))]
    result = {"env": problem.name, "cost_mean": float(sum(costs) / len(costs)), "costs": costs}
    print(json.dumps(result) if args.json else f"{problem.name}: cost {result['cost_mean']:.4g} (mean over {len(costs)} conditions)")
    return 0


def cmd_plot(argv: Sequence[str]) -> int:
    from policysearch.viz import plot_learning_curve

    args = tyro.cli(PlotArgs, args=list(argv), prog="policysearch plot")
    run_dir = Path(args.run_dir)
    if not (run_dir / "metrics.csv").exists():
        raise UserError(f"'{run_dir}' has no metrics.csv: pass a run directory written by `policysearch train`")
    print(plot_learning_curve(run_dir))
    return 0


def cmd_render(argv: Sequence[str]) -> int:
    from policysearch.snapshot import load
    from policysearch.viz import record_video

    args = tyro.cli(RenderArgs, args=list(argv), prog="policysearch render")
    agent = load(args.run_dir)
    out = Path(args.output) if args.output else Path(args.run_dir) / "policy.mp4"
    path = record_video(agent, agent.spec.env_id, out, max_steps=args.max_steps, seed=args.seed)
    if path is None:
        raise UserError(f"{agent.spec.env_id} cannot be rendered offscreen here")
    print(path)
    return 0


def cmd_plan(argv: Sequence[str]) -> int:
    from policysearch.plan import PlanConfig, run_plan

    cfg = tyro.cli(PlanConfig, args=list(argv), prog="policysearch plan")
    result = run_plan(cfg)
    if cfg.json:
        print(json.dumps(result))
    else:
        print(f"cost {result['cost_initial']:.6g} -> {result['cost_final']:.6g} in {result['iterations']} iterations, {result['seconds']:.3f} s; controller in {result['run_dir']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    command, rest = argv[0], argv[1:]
    handlers = {"train": cmd_train, "eval": cmd_eval, "plan": cmd_plan, "plot": cmd_plot, "render": cmd_render}
    try:
        if command not in handlers:
            raise UserError(f"unknown command '{command}': use one of {', '.join(COMMANDS)}")
        return handlers[command](rest)
    except UserError as exc:
        print(f"policysearch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("policysearch: interrupted; the last checkpoint is kept (continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
