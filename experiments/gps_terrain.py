"""The walking-on-unseen-terrain experiment of Guided Policy Search (Levine and Koltun 2013,
Figure 4), on policysearch/Walker2dTerrain-v0; with `--robot humanoid` the running humanoid of
its Figure 5, on policysearch/HumanoidTerrain-v0 (the same terrains; the example a PPO runner
trained on policysearch/HumanoidFlat-v0, flat ground with the terrain task's observation, as
examples/humanoid-runner, which the repository ships). With
the defaults GPS falls there after 79 steps: its DDP guiding samples fall
(experiments/imitation_coverage.py shows what the policy needs instead); with the noisy example
as a second guiding distribution (--example-samples) it ran 3 of 4 test terrains (README, "The
humanoid running on unseen terrain", for the command).

1. GPS trains one policy on the training terrains (seeds 0-3, one DDP controller each). As in the
   paper, DDP starts from an example motion (--example-policy: a trained policysearch run, here a
   PPO walker trained on flat Walker2d-v5; its rollout on each training terrain is iLQR's start).
   The defaults are the settings that worked at a 250-step test (README, "GPS on unseen terrain";
   at the 500-step test they do not yet): standardised
   policy inputs (GPSConfig.normalize_obs; without them the policy falls), narrow guiding noise
   (temperature 1e-4, gain regulariser 100) and no adaptive guiding samples (`--adaptive-guiding`
   adds them: 2.7 times the samples, no better on the test terrains).
2. PPO and TRPO train on the same terrains (policysearch/Walker2dTerrains-v0 draws one per
   episode) with `--rl-factor` times GPS's count of real sampled steps.
3. On every test terrain (seeds 100-103, never trained on), from the default start, each method
   runs for `--test-horizon` steps (default 500, 4 s; 0: the training horizon): the GPS policy, the DDP
   controller of the nearest training terrain (its own trajectory with feedback), TBDP (every
   step of every training terrain's DDP solution as one nearest-neighbour policy,
   `policysearch.control.tbdp`), the PPO and the TRPO policy, and the example policy alone.
Writes OUT/terrain.png (torso paths over each terrain profile, mean reward in brackets), with
--video-terrain SEED every method's episode on that test terrain as OUT/videos/METHOD.mp4 and a
frame strip OUT/strip.png,
OUT/results.json ({"method": {"success_rate", "return_mean", "real_steps", "seconds", ...}}), the
episodes of every method (steps, return, fall) in OUT/details.json, and prints the table.
Success is no fall (termination) before the test horizon. `--gps-from` and `--rl-from` reuse the
trained runs of an earlier OUT, to evaluate them again at another `--test-horizon`. The same
command with `--resume` continues an interrupted experiment (SIGTERM, kill -9, a full disk): its
finished runs in OUT are kept, the others continue from their last checkpoint, and a run there of
other settings is refused (exit 2); each method's seconds are its run's, over every segment.

    policysearch train ppo --env Walker2d-v5 --total-steps 1000000 --run-dir runs/ppo-walker   # the example
    python experiments/gps_terrain.py --example-policy runs/ppo-walker --out runs/gps-terrain

or the whole pipeline over several seeds in one command (an example trained per seed; OUT/seed_S
per seed, and OUT/results.json with the per-seed tables and a summary over seeds):

    python experiments/gps_terrain.py --seeds 0 1 2 --train-example 1000000 --out runs/gps-terrain

Training at the test's length (README, "Training at the test's 500 steps"): `--horizon 125
--segments 4` cuts each training terrain's 500-step example motion (repaired where it falls)
into four 125-step conditions; `--example-controls OUT/gps` reuses an earlier run's DDP solutions
(of the same --horizon and --segments: its conditions too, nothing rolled out or repaired again;
GPS's seeds do not change them, so `--seeds 1 2 --example-controls OUT/gps` adds seeds to a
one-seed run without the DDP work).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import policysearch.envs  # noqa: F401  (registers the terrain tasks)
from policysearch.algos.gps import GPSConfig
from policysearch.control.lqg import LinearGaussianController
from policysearch.control.tbdp import TrajectoryLibrary
from policysearch.envs.terrain import (ENV_ID, HUMANOID_ENV_ID, HUMANOID_FLAT_ENV_ID, HUMANOID_SET_ENV_ID, ROUGHNESS, SET_ENV_ID,
                                       TEST_TERRAINS, TRAIN_TERRAINS, register, terrain_profile)
from policysearch.errors import ArgumentParser, UserError
from policysearch.run.config import RunConfig
from policysearch.run.evaluation import run_from_default_start
from policysearch.run.snapshot import load
from policysearch.run.train_gps import RESUMABLE as GPS_RESUMABLE
from policysearch.run.train_gps import GPSRunConfig, train_gps

ROBOTS = {  # --robot: (terrain task, its set of training terrains, where the example is trained, default --target-velocity)
    "walker": (ENV_ID, SET_ENV_ID, "Walker2d-v5", 2.5),
    "humanoid": (HUMANOID_ENV_ID, HUMANOID_SET_ENV_ID, HUMANOID_FLAT_ENV_ID, 1.5),
}
COLOURS = {"GPS": "tab:green", "DDP": "tab:red", "TBDP": "tab:brown", "PPO": "tab:blue", "TRPO": "tab:purple", "example": "tab:orange"}


def nearest_training_terrain(test_seed: int, roughness: float) -> int:
    """The training terrain whose profile is closest (mean |h_test - h_train| over the first 10 m)."""
    x, h = terrain_profile(test_seed, roughness)
    near = (x >= 0) & (x <= 10)
    return min(TRAIN_TERRAINS, key=lambda s: float(np.mean(np.abs(terrain_profile(s, roughness)[1][near] - h[near]))))


def run_episode(act, terrain_seed: int, horizon: int, env_id: str = ENV_ID, video: Path | None = None) -> dict:
    """One episode from the default start (no reset noise): torso path, return, fall; with
    `video`, an MP4 of it there and its frames under "frames"."""
    frames: list = []
    r = run_from_default_start(act, env_id, horizon, video=video, frames=frames, terrain_seed=terrain_seed)
    return {"return": r["env_return"], "steps": r["steps"], "fell": r["terminated"], "path": r["path"], "frames": frames}


def frame_strip(path: Path, episodes: dict[str, dict], terrain: int, count: int = 6) -> None:
    """One row per method: `count` frames spread over its episode on `terrain` (the last one where
    it fell or stopped), with the step and the episode's return."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(episodes), count, figsize=(2.2 * count, 1.8 * len(episodes)), dpi=100, squeeze=False)
    for row, (m, e) in zip(axes, episodes.items()):
        picks = np.unique(np.linspace(0, len(e["frames"]) - 1, count).round().astype(int))
        for ax in row:
            ax.axis("off")
        for ax, i in zip(row, picks):
            ax.imshow(e["frames"][i])
            ax.set_title(f"step {min(4 * i, e['steps'])}", fontsize=7)
        row[0].text(-0.05, 0.5, f"{m}\n[{e['return']:.0f}]" + (" fell" if e["fell"] else ""), transform=row[0].transAxes,
                    ha="right", va="center", fontsize=8)
    fig.suptitle(f"test terrain {terrain}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train_rl(algo: str, steps: int, out: Path, seed: int, set_env: str = SET_ENV_ID, resume: bool = False) -> tuple[Path, float]:
    run = RunConfig(env=set_env, total_steps=steps, seed=seed, num_envs=8, run_dir=str(out / algo.lower()), backend="gymnasium",
                    video=False, eval_episodes=0, overwrite=True, checkpoint_every=max(steps // 4, 2048))
    return out / algo.lower(), on_policy_run(algo.lower(), run, resume)


def on_policy_run(algo: str, run: RunConfig, resume: bool) -> float:
    """Train `algo` with its defaults into run.run_dir; with `resume`, continue what is there
    instead: a finished run of the same settings is kept, an interrupted one continues from its
    last checkpoint (a run of other settings is refused, exit 2). Returns its training wall time
    (summary.json's, over every segment)."""
    from policysearch.algos import ALGORITHMS
    from policysearch.run.train import RESUMABLE, train

    config, folder = ALGORITHMS[algo].config(), Path(run.run_dir)
    state = kept_state(folder, algo, run, config, RESUMABLE) if resume else "new"
    summary = json.loads((folder / "summary.json").read_text()) if state == "finished" else {}
    if summary.get("steps", 0) >= run.total_steps:
        print(f"{folder}: finished, kept (--resume)")
    else:  # new, or continued (or extended) from its last checkpoint
        summary = train(algo, run, config, resume=folder if state != "new" else None).summary
    return float(summary["wall_time"])


def kept_state(folder: Path, algo: str, run: Any, config: Any, free: tuple[str, ...]) -> str:
    """What --resume finds in a run folder of this experiment: "finished" (summary.json),
    "resumable" (a checkpoint) or "new"; a folder with a checkpoint of other settings than `run`
    and `config` (but those in `free`) is refused with a UserError naming them."""
    from policysearch.run.checkpoint import find_checkpoint, read_meta
    from policysearch.run.folder import check_resume
    from policysearch.sweep.trial import trial_state

    state = trial_state(folder)
    if state != "new":
        check_resume(read_meta(find_checkpoint(folder)), algo, folder, run, config, free)
    return state


def trained_steps(run_dir: Path) -> int:
    """Real steps a policysearch run was trained with (the last row of its metrics.csv)."""
    import csv

    with open(run_dir / "metrics.csv") as f:
        return int(list(csv.DictReader(f))[-1]["step"])


def earlier_seconds(out: Path, method: str) -> float:
    """Training wall time of a method in an earlier experiment's results.json."""
    return json.loads((out / "results.json").read_text())[method]["seconds"]


def train_example(steps: int, run_dir: Path, seed: int, env_id: str = "Walker2d-v5", resume: bool = False) -> float:
    """The example motion as the README's first command makes it: PPO on flat ground with the
    CLI's defaults (`policysearch train ppo --env Walker2d-v5 --total-steps STEPS --seed SEED`;
    policysearch/HumanoidFlat-v0 for the humanoid); returns its training wall time."""
    run = RunConfig(env=env_id, total_steps=steps, seed=seed, run_dir=str(run_dir), video=False, overwrite=True)
    return on_policy_run("ppo", run, resume)


def aggregate(tables: dict[int, dict[str, dict]]) -> dict[str, dict]:
    """Per method, over the seeds' tables: successes per seed, their mean, and the mean reward's
    mean and standard deviation over seeds (methods missing from a seed are left out there)."""
    out: dict[str, dict] = {}
    for m in dict.fromkeys(m for t in tables.values() for m in t):
        rows = {s: t[m] for s, t in tables.items() if m in t}
        returns = [r["return_mean"] for r in rows.values()]
        out[m] = {"successes": {str(s): r["successes"] for s, r in rows.items()},
                  "successes_mean": float(np.mean([r["successes"] for r in rows.values()])),
                  "terrains": next(iter(rows.values()))["terrains"],
                  "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
                  "real_steps_mean": float(np.mean([r.get("real_steps", 0) for r in rows.values()]))}
    return out


def main() -> None:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/gps-terrain")
    p.add_argument("--robot", choices=list(ROBOTS), default="walker", help="walker: Figure 4 (Walker2d); humanoid: Figure 5 (Humanoid)")
    p.add_argument("--horizon", type=int, default=250, help="GPS trajectory length (steps of 8 ms)")
    p.add_argument("--test-horizon", type=int, default=500, help="steps on each test terrain (0: --horizon, the length the DDP controllers are defined for)")
    p.add_argument("--roughness", type=float, default=ROUGHNESS, help="scale of the terrains' slopes and bumps (training and test)")
    p.add_argument("--example-policy", default="", help="run dir of the example motion iLQR starts from (the same for every seed; empty: see --train-example)")
    p.add_argument("--train-example", type=int, default=0,
                   help="train the example per seed, PPO on flat ground for this many steps (0 and no --example-policy: iLQR from standing)")
    p.add_argument("--example-controls", default="", help="a GPS run of this task whose DDP solutions are iLQR's start (GPSRunConfig.example_controls)")
    p.add_argument("--hidden", type=int, nargs="+", default=list(GPSConfig.hidden), help="hidden widths of the GPS policy")
    p.add_argument("--activation", choices=["softplus", "tanh", "relu"], default=GPSConfig.activation, help="hidden units of the GPS policy")
    p.add_argument("--segments", type=int, default=1, help="GPSRunConfig.segments: conditions per terrain along a walk of segments x --horizon steps")
    p.add_argument("--init-iterations", type=int, default=GPSConfig.init_iterations, help="L-BFGS iterations of line 3's fit")
    p.add_argument("--accept-on", choices=["estimate", "true_cost"], default="estimate", help="GPSConfig.accept_on (lines 10-11)")
    p.add_argument("--target-velocity", type=float, default=None, help="forward velocity of the locomotion cost (m/s; default 2.5 walker, 1.5 humanoid)")
    p.add_argument("--gps-iterations", type=int, default=6)
    p.add_argument("--ilqr-iterations", type=int, default=50)
    p.add_argument("--guiding-temperature", type=float, default=1e-4)
    p.add_argument("--guiding-samples", type=int, default=20)
    p.add_argument("--policy-samples", type=int, default=GPSConfig.policy_samples, help="samples of each new policy per terrain (line 8)")
    p.add_argument("--guiding-gain-reg", type=float, default=100.0, help="rho of the guiding gains (GPSConfig.guiding_gain_reg)")
    p.add_argument("--example-samples", type=int, default=0, help="noisy runs of the example policy per terrain as guiding samples "
                   "(GPSConfig.example_samples; 0: DDP's alone, the paper's)")
    p.add_argument("--example-noise", type=float, default=GPSConfig.example_noise, help="their noise, a fraction of the half control range")
    p.add_argument("--rl-factor", type=float, default=10.0, help="PPO/TRPO get this many times GPS's real samples")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the whole pipeline (example, GPS, PPO, TRPO); several: OUT/seed_S each and a summary")
    p.add_argument("--skip-rl", action="store_true", help="leave out PPO and TRPO")
    p.add_argument("--video-terrain", type=int, default=None, help="a test terrain whose episodes are also recorded: "
                   "OUT/videos/METHOD.mp4 and the frame strip OUT/strip.png (default: none)")
    p.add_argument("--adaptive-guiding", action=argparse.BooleanOptionalAction, default=False, help="line 9: re-optimise DDP toward the policy")
    p.add_argument("--gps-from", default="", help="reuse the GPS run of an earlier --out (DIR/gps) instead of training it")
    p.add_argument("--resume", action="store_true", help="continue an interrupted experiment in --out: finished runs there "
                   "(example, GPS, PPO, TRPO) are kept, interrupted ones continue from their last checkpoint")
    p.add_argument("--rl-from", default="", help="reuse the PPO and TRPO runs of an earlier --out (DIR/ppo, DIR/trpo) instead of training them")
    args = p.parse_args()
    args.env, args.set_env, args.example_env, default_velocity = ROBOTS[args.robot]
    args.target_velocity = default_velocity if args.target_velocity is None else args.target_velocity
    if args.example_policy and args.train_example:
        p.error("--example-policy and --train-example both give the example: pass one")
    register(args.roughness)  # every terrain env of this process (GPS's models, RL training, the tests) has it
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    several = len(args.seeds) > 1
    tables = {}
    for seed in args.seeds:
        def per_seed(folder: str) -> str:  # an --out folder (this run's or an earlier one's) for this seed
            return str(Path(folder) / f"seed_{seed}") if folder and several else folder

        tables[seed] = run_seed(args, seed, Path(per_seed(str(out))), per_seed(args.gps_from), per_seed(args.rl_from))
    if several:
        summary = aggregate(tables)
        (out / "results.json").write_text(json.dumps({"seeds": args.seeds, "summary": summary, "per_seed": {str(s): t for s, t in tables.items()}}, indent=2))
        print(f"over seeds {args.seeds}:")
        print(f"{'method':8s} {'successes per seed':>20s} {'reward (mean +- sd)':>22s} {'real steps':>11s}")
        for m, row in summary.items():
            per = " ".join(f"{v}/{row['terrains']}" for v in row["successes"].values())
            print(f"{m:8s} {per:>20s} {row['return_mean']:12.1f} +- {row['return_std']:6.1f} {row['real_steps_mean']:11.0f}")
        print(f"summary: {out / 'results.json'}; per seed: {out}/seed_*/")


def run_seed(args: argparse.Namespace, seed: int, out: Path, gps_from: str, rl_from: str) -> dict[str, dict]:
    """The whole pipeline for one seed into out: example (trained or given), GPS, PPO and TRPO,
    every method on every test terrain; the figure, results.json, details.json; the table."""
    out.mkdir(parents=True, exist_ok=True)
    test_horizon = args.test_horizon or args.horizon
    example_dir, example_seconds = args.example_policy, None
    if args.train_example and not args.example_policy:
        earlier_example = Path(gps_from) / "example" if gps_from else None
        if earlier_example is not None and earlier_example.exists():  # re-evaluating an earlier run: its example
            example_dir = str(earlier_example)
        else:
            example_dir = str(out / "example")
            example_seconds = train_example(args.train_example, out / "example", seed, args.example_env, args.resume)

    if gps_from:  # evaluate an earlier experiment's GPS run again (another --test-horizon)
        gps_dir = Path(gps_from) / "gps"
        summary = json.loads((gps_dir / "summary.json").read_text())
        gps_seconds = earlier_seconds(Path(gps_from), "GPS")
    else:
        gps_dir = out / "gps"
        run = GPSRunConfig(env=args.env, terrains=TRAIN_TERRAINS, horizon=args.horizon, seed=seed, run_dir=str(gps_dir), overwrite=True,
                           eval_episodes=0, example_policy=example_dir, example_controls=args.example_controls, segments=args.segments,
                           target_velocity=args.target_velocity)
        config = GPSConfig(iterations=args.gps_iterations, ilqr_iterations=args.ilqr_iterations,
                           guiding_temperature=args.guiding_temperature, guiding_samples=args.guiding_samples,
                           policy_samples=args.policy_samples, hidden=tuple(args.hidden), activation=args.activation, init_iterations=args.init_iterations,
                           accept_on=args.accept_on, guiding_gain_reg=args.guiding_gain_reg, adaptive_guiding=args.adaptive_guiding,
                           example_samples=args.example_samples, example_noise=args.example_noise)
        state = kept_state(gps_dir, "gps", run, config, GPS_RESUMABLE) if args.resume else "new"
        summary = json.loads((gps_dir / "summary.json").read_text()) if state == "finished" else {}
        if summary.get("iterations", 0) >= args.gps_iterations:
            print(f"{gps_dir}: finished, kept (--resume)")
        else:  # new, or continued from its last completed iteration
            summary = train_gps(run, config, resume=gps_dir if state != "new" else None).summary
        gps_seconds = summary["seconds"]
    agent = load(gps_dir)
    pieces = [LinearGaussianController.load(gps_dir / "controllers" / f"condition_{i}")[0] for i in range(len(TRAIN_TERRAINS) * args.segments)]
    controllers = {s: LinearGaussianController.concatenate(pieces[i * args.segments : (i + 1) * args.segments]) for i, s in enumerate(TRAIN_TERRAINS)}
    library = TrajectoryLibrary.from_controllers(pieces)
    cost = {"GPS": {"real_steps": summary["real_steps"], "seconds": gps_seconds}, "DDP": {"real_steps": 0, "seconds": None},
            "TBDP": {"real_steps": 0, "seconds": None}}
    policies = {"GPS": lambda t, obs, x: agent.act(obs)}
    if example_dir:
        example = load(example_dir)
        policies["example"] = lambda t, obs, x: example.act(obs)
        cost["example"] = {"real_steps": trained_steps(Path(example_dir)), "seconds": example_seconds, "env": example.spec.env_id}
    if not args.skip_rl:
        steps = int(args.rl_factor * summary["real_steps"])
        for algo in ("ppo", "trpo"):
            if rl_from:
                run_dir, seconds = Path(rl_from) / algo, earlier_seconds(Path(rl_from), algo.upper())
            else:
                run_dir, seconds = train_rl(algo, steps, out, seed, args.set_env, args.resume)
            done = trained_steps(run_dir)
            if done < steps:
                raise UserError(f"{run_dir} was trained for {done} steps, below --rl-factor x GPS = {steps}; train it afresh (leave out --rl-from)")
            rl_agent = load(run_dir)
            policies[algo.upper()] = lambda t, obs, x, a=rl_agent: a.act(obs)
            cost[algo.upper()] = {"real_steps": done, "seconds": seconds}

    results: dict[str, dict] = {m: {"episodes": []} for m in policies} | {"DDP": {"episodes": []}, "TBDP": {"episodes": []}}
    for terrain in TEST_TERRAINS:
        near = nearest_training_terrain(terrain, args.roughness)
        acts = dict(policies, DDP=lambda t, obs, x, c=controllers[near]: c.act(t, x), TBDP=lambda t, obs, x: library.act(t, x))
        videos = out / "videos" if terrain == args.video_terrain else None
        if videos is not None:
            videos.mkdir(exist_ok=True)
        runs = {m: run_episode(f, terrain, test_horizon, args.env, videos / f"{m}.mp4" if videos else None) for m, f in acts.items()}
        if videos is not None:
            frame_strip(out / "strip.png", runs, terrain)
        for m, r in runs.items():
            results[m]["episodes"].append(dict({k: v for k, v in r.items() if k != "frames"}, terrain=terrain, ddp_from=near if m == "DDP" else None))
    table = {}
    for m, r in results.items():
        eps = r["episodes"]
        table[m] = {"success_rate": float(np.mean([not e["fell"] for e in eps])), "return_mean": float(np.mean([e["return"] for e in eps])),
                    "successes": int(sum(not e["fell"] for e in eps)), "terrains": len(eps), **cost.get(m, {})}
    (out / "results.json").write_text(json.dumps(table, indent=2))
    (out / "details.json").write_text(json.dumps({"seed": seed, "robot": args.robot, "env": args.env, "test_horizon": test_horizon, "roughness": args.roughness, "gps_summary": summary,
                                                  "episodes": {m: [{k: v for k, v in e.items() if k != "path"} for e in r["episodes"]] for m, r in results.items()}}, indent=2))
    plot(out / "terrain.png", results, test_horizon, args.roughness)
    print(f"seed {seed}:")
    print(f"{'method':8s} {'success':>8s} {'return':>8s} {'real steps':>11s} {'seconds':>8s}")
    for m, row in table.items():
        secs = f"{row['seconds']:.0f}" if row.get("seconds") else "-"
        print(f"{m:8s} {row['successes']}/{row['terrains']:<6d} {row['return_mean']:8.1f} {row.get('real_steps', 0):11d} {secs:>8s}")
    print(f"figure: {out / 'terrain.png'}; table: {out / 'results.json'}; episodes: {out / 'details.json'}")
    return table


def plot(path: Path, results: dict, horizon: int, roughness: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(TEST_TERRAINS), 1, figsize=(9, 2.2 * len(TEST_TERRAINS)), dpi=110, sharex=True)
    for ax, (i, seed) in zip(np.atleast_1d(axes), enumerate(TEST_TERRAINS)):
        x, h = terrain_profile(seed, roughness)
        ax.fill_between(x, h.min() - 0.3, h, color="0.8")
        for m, r in results.items():
            e = r["episodes"][i]
            px, pz = np.asarray(e["path"]).T
            mean_r = np.mean([ep["return"] for ep in r["episodes"]])
            ax.plot(px, pz, color=COLOURS.get(m, "k"), lw=1.5, label=f"{m} [{mean_r:.0f}]" if i == 0 else None)
            if e["fell"]:
                ax.plot(px[-1], pz[-1], "x", color=COLOURS.get(m, "k"))
        ax.set_ylabel(f"terrain {seed}")
    # the axes are shared: one range that holds every path on every terrain
    xs = np.concatenate([np.asarray(e["path"])[:, 0] for r in results.values() for e in r["episodes"]])
    np.atleast_1d(axes)[0].set_xlim(min(-0.5, xs.min() - 0.2), max(3.0, xs.max() + 0.5))
    np.atleast_1d(axes)[0].legend(loc="upper left", ncol=len(results), fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel(f"x (m); torso paths over {horizon} steps, x: fell; [mean reward]")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    from policysearch.cli import guarded

    sys.exit(guarded(main))
