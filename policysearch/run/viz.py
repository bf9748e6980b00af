"""Pictures and videos of a run: the learning curve from metrics.csv (return per step of an
on-policy run, cost per iteration of a GPS run), the cost per iteration of a plan, and an MP4 of the
policy rendered offscreen by MuJoCo (MUJOCO_GL=egl unless the user chose another backend).

`plot_run` redraws the picture of any run folder with the same function that drew it during the
run, or refuses (a `UserError` naming the fix) a folder that holds nothing to draw."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from policysearch.errors import UserError  # noqa: E402
from policysearch.envs.vector import flat_observations  # noqa: E402
from policysearch.run.logging import read_metrics  # noqa: E402

if TYPE_CHECKING:  # the policy's JAX modules are not needed to draw a plot
    from policysearch.run.snapshot import TrainedPolicy


RETURN_CURVES = (("episode_return_mean", "training (last 100 episodes)", "-"), ("eval_return_mean", "evaluation (deterministic)", "o-"))
"""The metrics.csv columns of an on-policy run's learning curve: column, legend label, style."""
GPS_COLUMNS = ("iteration", "policy_cost_mean", "ddp_cost_mean", "accepted")
"""The metrics.csv columns of a GPS run's learning curve (one row per iteration)."""


def plot_run(run_dir: Path | str) -> Path:
    """Redraw the picture of a run folder, found from what the folder holds: learning_curve.png of
    an on-policy run (return per step) or of a GPS run (cost per iteration, from metrics.csv), or
    cost.png of a `policysearch plan` folder (from the costs in plan.json). A folder with nothing
    to draw is a UserError that names the problem and the fix; nothing is drawn then."""
    run_dir = Path(run_dir)
    usage = "pass a run folder written by `policysearch train` or `policysearch plan`"
    if not run_dir.exists():
        raise UserError(f"'{run_dir}' does not exist: {usage}")
    if not run_dir.is_dir():
        raise UserError(f"'{run_dir}' is a file, not a run folder: {usage}")
    config = _read_config(run_dir)
    if not (run_dir / "metrics.csv").exists():
        if (run_dir / "plan.json").exists():
            return _replot_plan(run_dir)
        if config.get("algo"):
            raise UserError(f"'{run_dir}' has no metrics.csv yet (no update has finished): train it further with "
                            f"`policysearch train {config['algo']} --resume {run_dir}`, then plot it")
        raise UserError(f"'{run_dir}' holds no metrics.csv or plan.json: {usage}")
    columns, rows = read_metrics(run_dir / "metrics.csv")
    algo = str(config.get("algo") or ("gps" if "policy_cost_mean" in columns else ""))
    env = str((config.get("run") or {}).get("env") or "")
    resume = f"`policysearch train {algo or 'ALGO'} --resume {run_dir}`"
    if not rows:
        raise UserError(f"'{run_dir / 'metrics.csv'}' has no rows yet (no update has finished): train the run further with {resume}, then plot it")
    if algo == "gps":
        missing = [c for c in GPS_COLUMNS if c not in columns]
        if missing:
            raise UserError(f"'{run_dir / 'metrics.csv'}' of a GPS run has no {', '.join(missing)} column: it was not written by "
                            "`policysearch train gps`; train the run again")
        history = [_gps_row(r) for r in rows if all(r.get(c) not in (None, "") for c in GPS_COLUMNS)]
        if not history:
            raise UserError(f"'{run_dir / 'metrics.csv'}' has no completed GPS iteration to draw: train the run further with {resume}")
        return plot_gps_curve(run_dir, history, history[-1]["ddp_cost_mean"], env or run_dir.name)
    if not any(r.get(column) not in (None, "") for column, _, _ in RETURN_CURVES for r in rows):
        raise UserError(f"'{run_dir / 'metrics.csv'}' has no episode or evaluation return to draw (no episode has finished yet): "
                        f"train the run further with {resume} and a larger --total-steps")
    return plot_learning_curve(run_dir, f"{algo.upper()} on {env}" if algo and env else "")


def _read_config(run_dir: Path) -> dict[str, Any]:
    """config.json of a run folder, or {} when it is absent or unreadable (the kind of run is then
    found from the metrics columns)."""
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _gps_row(row: dict[str, str]) -> dict[str, Any]:
    """A metrics.csv row of a GPS run as the history row GPS logged (numbers and `accepted`)."""
    out: dict[str, Any] = {k: float(v) for k, v in row.items() if v not in (None, "", "True", "False")}
    out["iteration"] = int(out["iteration"])
    out["accepted"] = row["accepted"] == "True"
    return out


def _replot_plan(run_dir: Path) -> Path:
    """cost.png of a `policysearch plan` folder, from the cost per iteration in plan.json."""
    try:
        plan = json.loads((run_dir / "plan.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read '{run_dir / 'plan.json'}' ({exc.__class__.__name__}): run `policysearch plan --run-dir {run_dir}` again") from exc
    costs = plan.get("costs") if isinstance(plan, dict) else None
    if not costs:
        settings = _plan_settings(run_dir)
        raise UserError(f"'{run_dir / 'plan.json'}' holds no cost per iteration (written by an older policysearch): "
                        f"run `policysearch plan{settings} --run-dir {run_dir}` again to redraw cost.png")
    return plot_costs(run_dir / "cost.png", np.asarray(costs, dtype=float), str(plan.get("task") or run_dir.name))


def _plan_settings(run_dir: Path) -> str:
    """The --env and --horizon flags of the plan saved in run_dir (its controller's meta), or ''."""
    try:
        meta = json.loads(next((run_dir / "controller").glob("step_*/meta.json")).read_text())
        cfg = meta["plan_config"]
        return f" --env {cfg['env']} --horizon {int(cfg['horizon'])}"
    except (OSError, ValueError, StopIteration, KeyError, TypeError):
        return ""


def plot_learning_curve(run_dir: Path, title: str = "") -> Path:
    """learning_curve.png: training episode return (rolling mean) and evaluation return vs step."""
    _, rows = read_metrics(run_dir / "metrics.csv")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for column, label, style in RETURN_CURVES:
        pts = [(float(r["step"]), float(r[column])) for r in rows if r.get(column) not in (None, "")]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, style, label=label, markersize=4)
    return save_axes(fig, ax, run_dir / "learning_curve.png", "environment steps", "episode return", title or run_dir.name)


def plot_gps_curve(run_dir: Path, history: Sequence[dict[str, Any]], ddp_cost: float, env: str) -> Path:
    """learning_curve.png of a GPS run: the policy's cost (mean over conditions) per iteration,
    from its initial cost at iteration 0, rejected iterations crossed, and the DDP controllers'
    cost. `history` holds GPS's rows (iteration, accepted, policy_cost_mean, policy_cost_initial),
    from the run's state or its metrics.csv."""
    it = [r["iteration"] for r in history]
    cost = [r["policy_cost_mean"] for r in history]
    if history and history[0].get("policy_cost_initial") is not None:
        it, cost = [0] + it, [history[0]["policy_cost_initial"]] + cost
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(it, cost, "o-", label="GPS policy (mean over conditions)")
    ax.axhline(float(ddp_cost), color="k", ls="--", label="DDP controllers")
    for r in history:
        if not r["accepted"]:
            ax.plot(r["iteration"], r["policy_cost_mean"], "x", color="tab:red")
    return save_axes(fig, ax, run_dir / "learning_curve.png", "GPS iteration (x: rejected)", "cost", f"GPS on {env}")


def plot_costs(path: Path, costs: np.ndarray, title: str) -> Path:
    """cost.png of a plan: the trajectory cost per iLQR iteration (log scale)."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.semilogy(np.arange(len(costs)), costs, "o-", markersize=3)
    ax.grid(alpha=0.3, which="both")  # the log scale's minor lines too
    return save_axes(fig, ax, path, "iLQR iteration", "trajectory cost", title)


def save_axes(fig: Any, ax: Any, out: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Label, grid and legend one plot, write it to `out` and close it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[1]:  # no legend (and no matplotlib warning) over empty axes
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def record_video(agent: TrainedPolicy, env_id: str, path: Path, max_steps: int = 1000, seed: int = 0, fps: int = 30,
                 progress: bool = False) -> Path | None:
    """`render_video`, for the end of a run: when the env cannot render here, one line on stderr
    saying why and how to get the video (`policysearch render` once the fix is in), and None."""
    try:
        return render_video(agent, env_id, path, max_steps, seed, fps, progress)
    except UserError as exc:
        print(f"policysearch: warning: no video: {exc}; then `policysearch render {path.parent}` writes it", file=sys.stderr, flush=True)
        return None


def render_video(agent: TrainedPolicy, env_id: str, path: Path, max_steps: int = 1000, seed: int = 0, fps: int = 30,
                 progress: bool = False) -> Path:
    """Render one deterministic episode to an MP4 (frames subsampled to about `fps` of simulated
    time). An env that cannot render here (a missing extra such as pygame, no offscreen OpenGL) is
    a UserError naming the fix, with no Python warning printed. progress: show the rendering
    (steps of the episode, frames) and the encoding as phases (`run.progress`)."""
    from policysearch.run.progress import phase

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gymnasium's and the renderers' warnings: the error below says what went wrong
        try:
            try:
                env = gym.make(env_id, render_mode="rgb_array", width=480, height=360)
            except TypeError:  # an env without a frame size (the classic-control ones)
                env = gym.make(env_id, render_mode="rgb_array")
        except gym.error.Error as exc:
            raise UserError(_cannot_render(env_id, exc)) from None
        except TypeError as exc:  # a user's env whose constructor takes no render_mode
            raise UserError(f"{env_id} cannot render: its constructor takes no render_mode ({exc}); give it a render_mode "
                            "argument and an rgb_array render() to get a video") from None
        env = flat_observations(env)  # the layout the policy was trained on
        dt = float(getattr(env.unwrapped, "dt", 1.0 / fps))
        every = max(1, round(1.0 / (fps * dt)))
        try:
            obs, _ = env.reset(seed=seed)
            frames = [env.render()]
            follow_root_body(env)
            frames = [env.render()]
            with phase(f"rendering {path.name}", max_steps, enabled=progress, unit="steps") as bar:
                for t in range(max_steps):
                    obs, _, terminated, truncated, _ = env.step(agent.act(obs))
                    if t % every == every - 1:
                        frames.append(env.render())
                    bar.advance(t + 1, detail=f"{len(frames)} frames" + (", the episode ended" if terminated or truncated else ""))
                    if terminated or truncated:
                        break
        except (gym.error.Error, RuntimeError, ImportError, AttributeError) as exc:  # AttributeError: a GL backend that failed to load
            raise UserError(_cannot_render(env_id, exc)) from None
        finally:
            env.close()
    with phase(f"encoding {path.name} ({len(frames)} frames)", enabled=progress):
        return write_video(path, frames, fps=max(1, round(1.0 / (every * dt))))


def _cannot_render(env_id: str, exc: BaseException) -> str:
    """Why env_id cannot render here and the fix: Gymnasium's message of a missing dependency
    names the pip command; otherwise the offscreen OpenGL backend (MUJOCO_GL) is the suspect."""
    reason = " ".join(str(exc).split()) or exc.__class__.__name__
    if isinstance(exc, (gym.error.DependencyNotInstalled, ImportError)) and "pip install" in reason:
        return f"{env_id} cannot be rendered: {reason}"
    gl = os.environ.get("MUJOCO_GL", "")
    return (f"{env_id} cannot be rendered offscreen here with MUJOCO_GL={gl} ({reason}): set MUJOCO_GL=egl (a GPU with EGL), "
            "osmesa (CPU, needs libosmesa) or glfw (a display)")


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """Encode RGB frames to an MP4, atomically (written aside, then renamed)."""
    import imageio.v2 as imageio

    tmp = path.with_suffix(".tmp.mp4")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called")  # ffmpeg child exec()s at once
        imageio.mimwrite(tmp, [np.asarray(f) for f in frames], fps=max(1, fps), macro_block_size=8)
    os.replace(tmp, path)
    return path


def follow_root_body(env: gym.Env) -> None:
    """Point the offscreen camera at the robot's root body and keep it there (Gymnasium's
    default free camera stays where the robot started)."""
    import mujoco

    renderer = getattr(env.unwrapped, "mujoco_renderer", None)
    viewer = getattr(renderer, "viewer", None) if renderer is not None else None
    cam = getattr(viewer, "cam", None)
    if cam is not None:
        renderer.camera_id = None  # -1 would reset the camera to free mode on every frame
        cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        cam.trackbodyid = int(getattr(renderer, "default_cam_config", None) and renderer.default_cam_config.get("trackbodyid", 1) or 1)
