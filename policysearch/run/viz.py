"""Pictures and videos of a run: the learning curve from metrics.csv, and an MP4 of the policy
rendered offscreen by MuJoCo (MUJOCO_GL=egl unless the user chose another backend)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from policysearch.run.logging import read_metrics  # noqa: E402
from policysearch.run.snapshot import TrainedPolicy  # noqa: E402


def plot_learning_curve(run_dir: Path, title: str = "") -> Path:
    """learning_curve.png: training episode return (rolling mean) and evaluation return vs step."""
    _, rows = read_metrics(run_dir / "metrics.csv")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for column, label, style in (("episode_return_mean", "training (last 100 episodes)", "-"), ("eval_return_mean", "evaluation (deterministic)", "o-")):
        pts = [(float(r["step"]), float(r[column])) for r in rows if r.get(column) not in (None, "")]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, style, label=label, markersize=4)
    return save_axes(fig, ax, run_dir / "learning_curve.png", "environment steps", "episode return", title or run_dir.name)


def save_axes(fig: Any, ax: Any, out: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Label, grid and legend one plot, write it to `out` and close it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def record_video(agent: TrainedPolicy, env_id: str, path: Path, max_steps: int = 1000, seed: int = 0, fps: int = 30) -> Path | None:
    """Render one deterministic episode to an MP4 (frames subsampled to about `fps` of
    simulated time). Returns None, with a warning, when the env cannot render offscreen."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make(env_id, render_mode="rgb_array", width=480, height=360)
    except TypeError:
        env = gym.make(env_id, render_mode="rgb_array")
    except gym.error.Error as exc:
        warnings.warn(f"no video: {env_id} cannot render ({exc})")
        return None
    dt = float(getattr(env.unwrapped, "dt", 1.0 / fps))
    every = max(1, round(1.0 / (fps * dt)))
    obs, _ = env.reset(seed=seed)
    try:
        frames = [env.render()]
        follow_root_body(env)
        frames = [env.render()]
        for t in range(max_steps):
            obs, _, terminated, truncated, _ = env.step(agent.act(obs))
            if t % every == every - 1:
                frames.append(env.render())
            if terminated or truncated:
                break
    except (gym.error.DependencyNotInstalled, RuntimeError) as exc:
        warnings.warn(f"no video: {env_id} cannot render offscreen ({exc})")
        return None
    finally:
        env.close()
    return write_video(path, frames, fps=max(1, round(1.0 / (every * dt))))


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
