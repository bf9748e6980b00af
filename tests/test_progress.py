"""Progress of long work (`run.progress`): the training bar keeps its numbers whole at 80 columns,
and the phases around training (GPS's DDP solves and fits, the final evaluations) say what they
do before the first iteration line and after the last, off with --json."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from policysearch.run.progress import Phases, TrainProgress, phase

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ETA = re.compile(r"ETA \d+:\d\d:\d\d")


def _last_line(console: Console) -> str:
    """The bar's last state as the terminal shows it (control codes out)."""
    text = ANSI.sub("", console.file.getvalue()).replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip()][-1]


def _bar_line(title: str, console: Console, step: int = 471_040, ret: float = -1234.5) -> str:
    with TrainProgress(title, 1_000_000, 0, console=console) as bar:
        time.sleep(0.05)
        bar.advance(step, ret)
    return _last_line(console)


@pytest.mark.parametrize("title", ["ppo Hopper-v5", "trpo policysearch/Walker2dTerrain-v0"])
def test_bar_at_80_columns_shows_the_whole_count_rate_and_eta(title: str) -> None:
    line = _bar_line(title, Console(width=80, force_terminal=True, file=io.StringIO()))
    assert len(line) <= 80, line
    assert "471,040/1,000,000" in line and "steps/s" in line and ETA.search(line), line
    assert "return -1234.5" in line, line
    assert "…" not in line.split(" ", 2)[-1].split("/")[1], line  # only the title may be cut


def test_bar_reads_the_width_from_COLUMNS(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    line = _bar_line("ppo Hopper-v5", Console(force_terminal=True, file=io.StringIO()), step=1_000_000)
    assert "1,000,000/1,000,000" in line and ETA.search(line) and len(line) <= 80, line


def test_wide_bar_has_a_bar_and_the_elapsed_time_and_narrow_keeps_the_numbers() -> None:
    wide = _bar_line("ppo Hopper-v5", Console(width=140, force_terminal=True, file=io.StringIO()))
    assert "━" in wide and len(re.findall(r"\d+:\d\d:\d\d", wide)) == 2, wide  # elapsed and ETA
    narrow = _bar_line("ppo Hopper-v5", Console(width=50, force_terminal=True, file=io.StringIO()))
    assert "471,040/1,000,000" in narrow and ETA.search(narrow) and len(narrow) <= 50, narrow


def test_phase_off_a_terminal_prints_a_line_when_it_starts_advances_and_ends() -> None:
    console = Console(width=80, file=io.StringIO())
    with phase("final evaluation", 4, unit="episodes", console=console, every=0) as bar:
        for n in range(1, 5):
            bar.advance(n, detail=f"return {n:.1f}")
    with phase("fitting", console=console):
        pass
    lines = console.file.getvalue().splitlines()
    assert lines[0] == "final evaluation (4 episodes) ..."
    assert lines[1].startswith("final evaluation: 1/4 episodes,") and ETA.search(lines[1]) and "(return 1.0)" in lines[1]
    assert lines[5].startswith("final evaluation: 4/4 episodes in ") and lines[6:] == ["fitting ...", lines[-1]]
    assert re.fullmatch(r"fitting: done in \d+\.\d s", lines[-1])


def test_a_phase_ended_by_an_exception_does_not_say_done() -> None:
    console = Console(width=80, file=io.StringIO())
    with pytest.raises(ValueError):
        with phase("building conditions", console=console):
            raise ValueError("bad start")
    with pytest.raises(KeyboardInterrupt):
        with Phases(console=console) as phases:
            phases("solves", 0, None)
            raise KeyboardInterrupt
    lines = console.file.getvalue().splitlines()
    assert lines[0] == "building conditions ..." and re.fullmatch(r"building conditions: stopped after \d+\.\d s", lines[1]), lines
    assert lines[2] == "solves ..." and lines[3].startswith("solves: stopped after "), lines


def test_phases_follow_a_cores_reports_and_disabled_print_nothing() -> None:
    console = Console(width=80, file=io.StringIO())
    with Phases(console=console, every=0) as phases:
        phases("solves", 0, 2, "condition 1")
        phases("solves", 1, 2, "condition 2")
        phases("solves", 2, 2, "")
        phases("fit", 0, None, "")
        phases("fit", 1, None, "")
    out = console.file.getvalue()
    assert out.index("solves (2) ...") < out.index("solves: 2/2 in") < out.index("fit ...") < out.index("fit: done in")
    quiet = Console(width=80, file=io.StringIO())
    with Phases(enabled=False, console=quiet) as phases, phase("x", 3, enabled=False, console=quiet) as bar:
        phases("solves", 0, 2, "")
        bar.advance(1)
    assert quiet.file.getvalue() == ""


def test_gps_shows_its_phases_before_the_first_iteration_and_after_the_last(tmp_path, capsys) -> None:
    from policysearch.algos import GPSConfig
    from policysearch.run.train_gps import GPSRunConfig, train_gps

    algo = GPSConfig(iterations=1, lbfgs_iterations=10, init_iterations=20, ilqr_iterations=30, guiding_samples=6, policy_samples=3)
    train_gps(GPSRunConfig(env="arm-reach-dense", horizon=20, conditions=2, run_dir=str(tmp_path / "gps")), algo)
    out = capsys.readouterr().out
    order = ["DDP solutions and guiding samples (2) ...", "DDP solutions and guiding samples: 2/2 in",
             "maximum-likelihood fit of the policy (20 L-BFGS iterations) ...", "maximum-likelihood fit of the policy (20 L-BFGS iterations): done in",
             "first policy: samples and true costs: 2/2 in", "iter   1", "true cost of the final policy: 2/2 conditions in"]
    at = [out.find(s) for s in order]
    assert all(i >= 0 for i in at) and at == sorted(at), out


def test_on_policy_final_evaluation_reports_its_episodes(tmp_path, capsys) -> None:
    from policysearch.algos import PPOConfig
    from policysearch.run.train import RunConfig, train

    run = RunConfig(env="CartPole-v1", total_steps=1024, num_envs=4, seed=3, run_dir=str(tmp_path / "r"), eval_episodes=3, video=False)
    result = train("ppo", run, PPOConfig(steps_per_update=512, minibatch_size=64, epochs=2))
    out = capsys.readouterr().out
    assert result.summary["eval_episodes"] == 3
    assert out.index("1,024/1,024") < out.index("final evaluation (3 episodes) ...") < out.index("final evaluation: 3/3 episodes in"), out
    quiet = train("ppo", RunConfig(**{**run.__dict__, "run_dir": str(tmp_path / "q"), "progress": False}),
                  PPOConfig(steps_per_update=512, minibatch_size=64, epochs=2))
    assert quiet.summary["eval_episodes"] == 3 and "final evaluation" not in capsys.readouterr().out
