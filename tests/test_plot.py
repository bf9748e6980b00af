"""`policysearch plot` draws the picture of every kind of run folder (on-policy, GPS, plan) with
the function that drew it during the run, and refuses a folder with nothing to draw (exit 2, one
line); `policysearch render` and the end-of-training video name the fix of an env that cannot
render here, with no Python warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import one_line_error, run_cli

PIP_FIX = 'pip install "gymnasium[classic-control]"'


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory) -> Path:
    """A tiny CartPole PPO run (two updates)."""
    run_dir = tmp_path_factory.mktemp("runs") / "ppo"
    result = run_cli("train", "ppo", "--env", "CartPole-v1", "--total-steps", "2048", "--steps-per-update", "1024", "--num-envs", "2",
                     "--no-video", "--eval-episodes", "0", "--no-progress", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture
def drawn(monkeypatch) -> list[dict[str, list]]:
    """Every figure saved while the test runs, as {file name: the (x, y) data of each line drawn}:
    what a PNG shows, read before it is written."""
    from matplotlib.figure import Figure

    saved: list[dict[str, list]] = []
    original = Figure.savefig

    def spy(fig, path, *args, **kwargs):
        lines = [(list(map(float, ln.get_xdata())), list(map(float, ln.get_ydata()))) for ax in fig.axes for ln in ax.get_lines()]
        saved.append({Path(path).name: lines})
        return original(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return saved


def _plot_quietly(run_dir: Path) -> Path:
    """plot_run with every warning turned into an error (matplotlib's 'No artists with labels' over empty axes among them)."""
    from policysearch.run.viz import plot_run

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return plot_run(run_dir)


def test_plot_of_an_on_policy_run_draws_the_return_per_step(ppo_run: Path, drawn) -> None:
    png = ppo_run / "learning_curve.png"
    png.unlink()
    result = run_cli("plot", str(ppo_run))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(png) and png.stat().st_size > 0
    assert _plot_quietly(ppo_run) == png
    [(name, lines)] = drawn[-1].items()
    assert name == "learning_curve.png"
    steps = [x for xs, _ in lines for x in xs]
    assert lines and max(steps) == 2048.0 and all(len(xs) > 0 for xs, _ in lines)


def test_plot_of_a_gps_run_redraws_the_training_plot(tmp_path: Path, drawn) -> None:
    """The cost per iteration the GPS run drew at its end, redrawn from metrics.csv: the same lines
    (up to the 6 digits metrics.csv keeps), not the on-policy return curve over empty columns."""
    from policysearch.algos.gps import GPSConfig
    from policysearch.run.train_gps import GPSRunConfig, train_gps

    run_dir = tmp_path / "gps"
    train_gps(GPSRunConfig(env="arm-reach-dense", horizon=20, conditions=2, run_dir=str(run_dir), json=True),
              GPSConfig(iterations=2, lbfgs_iterations=10, init_iterations=20, ilqr_iterations=30))
    [(name, at_training)] = drawn[-1].items()
    assert name == "learning_curve.png" and len(at_training) >= 2
    (run_dir / "learning_curve.png").unlink()
    assert _plot_quietly(run_dir) == run_dir / "learning_curve.png"
    [(name, redrawn)] = drawn[-1].items()
    assert name == "learning_curve.png" and len(redrawn) == len(at_training)
    for (x0, y0), (x1, y1) in zip(at_training, redrawn):
        np.testing.assert_allclose(x1, x0)
        np.testing.assert_allclose(y1, y0, rtol=1e-5)
    assert redrawn[0][0] == [0.0, 1.0, 2.0]  # the policy's cost at iterations 0, 1, 2

    # without config.json the metrics columns say it is a GPS run
    (run_dir / "config.json").unlink()
    _plot_quietly(run_dir)
    assert len(list(drawn[-1].values())[0]) == len(at_training)


def test_plot_of_a_plan_redraws_its_cost_plot(tmp_path: Path, drawn) -> None:
    from policysearch.run.plan import PlanConfig, run_plan

    run_dir = tmp_path / "plan"
    result = run_plan(PlanConfig(env="pendulum-swingup", horizon=50, iterations=20, run_dir=str(run_dir), json=True))
    [(name, at_plan)] = drawn[-1].items()
    assert name == "cost.png"
    before = (run_dir / "cost.png").read_bytes()
    (run_dir / "cost.png").unlink()
    assert _plot_quietly(run_dir) == run_dir / "cost.png"
    [(name, redrawn)] = drawn[-1].items()
    assert name == "cost.png" and redrawn == at_plan
    assert len(redrawn[0][0]) == result["iterations"] + 1 and redrawn[0][1][0] == pytest.approx(result["cost_initial"])
    assert (run_dir / "cost.png").read_bytes() == before

    # a plan.json without the cost per iteration (an older plan): refused, naming the plan to run again
    plan = json.loads((run_dir / "plan.json").read_text())
    del plan["costs"]
    (run_dir / "plan.json").write_text(json.dumps(plan))
    one_line_error(run_cli("plot", str(run_dir)), 2, "no cost per iteration", f"policysearch plan --env pendulum-swingup --horizon 50 --run-dir {run_dir}")


def _refused(run_dir: Path, *fragments: str) -> None:
    one_line_error(run_cli("plot", str(run_dir)), 2, *fragments)
    assert not (run_dir / "learning_curve.png").exists()


def test_plot_refuses_a_folder_with_nothing_to_draw(ppo_run: Path, tmp_path: Path) -> None:
    header = (ppo_run / "metrics.csv").read_text().splitlines()[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(empty, "holds no metrics.csv or plan.json", "policysearch train")
    _refused(tmp_path / "nowhere", "does not exist")
    one_line_error(run_cli("plot", str(ppo_run / "metrics.csv")), 2, "is a file, not a run folder")

    no_rows = tmp_path / "no_rows"
    no_rows.mkdir()
    (no_rows / "metrics.csv").write_text(header + "\n")
    _refused(no_rows, "has no rows yet", "--resume")

    no_returns = tmp_path / "no_returns"  # an update logged before any episode finished, no evaluation
    no_returns.mkdir()
    columns = header.split(",")
    row = ["1024" if c == "step" else ("" if c.endswith("return_mean") or c.startswith("episode") else "0.5") for c in columns]
    (no_returns / "metrics.csv").write_text(header + "\n" + ",".join(row) + "\n")
    (no_returns / "config.json").write_text(json.dumps({"algo": "ppo", "run": {"env": "CartPole-v1"}}))
    _refused(no_returns, "no episode or evaluation return to draw", "policysearch train ppo --resume")


class _NeedsPygame:
    """An env that renders as CartPole does without pygame."""

    unwrapped = SimpleNamespace(dt=0.02)
    observation_space = SimpleNamespace(shape=(4,))  # flat observations: `flat_observations` leaves the env as it is

    def reset(self, seed=None):
        return np.zeros(4, np.float32), {}

    def render(self):
        import gymnasium as gym

        warnings.warn("a renderer's warning the user should not see")
        raise gym.error.DependencyNotInstalled(f"pygame is not installed, run `{PIP_FIX}`")

    def close(self) -> None:
        pass


def test_render_names_the_missing_extra(ppo_run: Path, monkeypatch, capsys) -> None:
    import gymnasium as gym

    from policysearch import cli
    from policysearch.run import signals

    monkeypatch.setattr(signals, "install", lambda: None)
    monkeypatch.setattr(gym, "make", lambda *args, **kwargs: _NeedsPygame())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = cli.main(["render", str(ppo_run)])
    err = capsys.readouterr().err
    one_line_error((rc, err), 2, "CartPole-v1 cannot be rendered", PIP_FIX)
    assert not caught, [str(w.message) for w in caught]
    assert not (ppo_run / "policy.mp4").exists()


def test_video_at_the_end_of_training_says_how_to_get_it(tmp_path: Path, monkeypatch, capsys) -> None:
    import gymnasium as gym

    from policysearch.run.viz import record_video

    monkeypatch.setattr(gym, "make", lambda *args, **kwargs: _NeedsPygame())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert record_video(None, "CartPole-v1", tmp_path / "policy.mp4") is None
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no video" in lines[0] and PIP_FIX in lines[0] and f"policysearch render {tmp_path}" in lines[0], lines
    assert not caught, [str(w.message) for w in caught]


def test_render_without_pygame_prints_one_line_and_no_warning(ppo_run: Path) -> None:
    """The real thing, where pygame is missing: warnings left on, stderr is the one line."""
    try:
        import pygame  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pygame is installed: test_render_names_the_missing_extra covers the message")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run([sys.executable, "-m", "policysearch.cli", "render", str(ppo_run)], capture_output=True, text=True,
                            env=env, timeout=300)
    one_line_error(result, 2, "CartPole-v1 cannot be rendered", PIP_FIX)
    assert "Warning" not in result.stderr
