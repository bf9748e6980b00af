"""Nothing lost, nothing silently wrong: the run layer under signals, concurrent writers, changed
or damaged files, non-finite training and failing writes, as a fault injector would try it
(README, "A run folder"). Every refusal is exit code 2 and one line; non-finite training is exit
code 3 with the last good checkpoint kept."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from policysearch.algos import PPOConfig
from policysearch.errors import NonFiniteError, UserError
from policysearch.run.checkpoint import list_checkpoints
from policysearch.run.train import RunConfig, train
from tests.conftest import one_line_error, run_cli

REPO = Path(__file__).resolve().parents[1]
LONG = ("train", "ppo", "--env", "CartPole-v1", "--total-steps", "100000000", "--num-envs", "4", "--checkpoint-every", "100000000",
        "--no-progress", "--eval-episodes", "0", "--no-video")
"""A CartPole run that would not end by itself and checkpoints only when stopped."""
SMALL = PPOConfig(steps_per_update=512, minibatch_size=64, epochs=2)


def _start(run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "policysearch.cli", *LONG, "--run-dir", str(run_dir), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))


def _rows(run_dir: Path) -> list[str]:
    path = run_dir / "metrics.csv"
    return path.read_text().splitlines()[1:] if path.exists() else []


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    t0 = time.time()
    while not condition():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() - t0 < timeout, "timed out"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _digest(folder: Path) -> dict[str, str]:
    """Every file of a folder (but the lock) and its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _step(ckpt: Path) -> int:
    return int(json.loads((ckpt / "meta.json").read_text())["step"])


def test_sigterm_checkpoints_the_last_update_and_exits_143(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    proc = _start(run_dir)
    _wait_for(lambda: len(_rows(run_dir)) >= 2, proc)
    line = one_line_error(_stop(proc, signal.SIGTERM), 143, "SIGTERM", "--resume")
    assert "interrupted" not in line
    ckpts = list_checkpoints(run_dir / "checkpoints")
    assert ckpts and _step(ckpts[-1]) == int(_rows(run_dir)[-1].split(",")[0])


def test_ctrl_c_during_start_up_is_not_swallowed(tmp_path: Path) -> None:
    """SIGINT once the run holds its folder, before its first update (env set-up, compilation):
    exit 130 with one line, not a traceback, and not a run that trains on."""
    run_dir = tmp_path / "r"
    proc = _start(run_dir)
    _wait_for(lambda: (run_dir / ".lock").exists(), proc)
    one_line_error(_stop(proc, signal.SIGINT), 130, "interrupted")


def test_a_second_writer_is_refused_and_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    first = _start(run_dir)
    short = ("train", "ppo", "--env", "CartPole-v1", "--total-steps", "2048", "--num-envs", "4", "--no-progress", "--eval-episodes", "0",
             "--no-video", "--run-dir", str(run_dir))
    try:
        _wait_for(lambda: len(_rows(run_dir)) >= 1, first)
        for extra in ((), ("--overwrite",)):  # a second new run, and one that would wipe the running one
            one_line_error(run_cli(*short, *extra), 2, f"PID {first.pid}", "in use")
        assert len(_rows(run_dir)) >= 1  # the running run's output is still there
    finally:
        first.kill()  # kill -9: the kernel drops the lock with the process
        first.wait()
    result = run_cli(*short)  # the killed run wrote no checkpoint: a new run may take the folder
    assert result.returncode == 0, result.stderr[-2000:]
    assert _step(list_checkpoints(run_dir / "checkpoints")[-1]) == 2048


def test_two_resumes_at_once_one_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    train("ppo", RunConfig(env="CartPole-v1", total_steps=1024, num_envs=4, run_dir=str(run_dir), progress=False, eval_episodes=0,
                           video=False), SMALL)
    before = _digest(run_dir / "checkpoints")
    from policysearch.run.lock import RunLock

    with RunLock(run_dir):  # another process's run in the folder, as far as a second writer can tell
        with pytest.raises(UserError, match=f"PID {os.getpid()}"):
            train("ppo", RunConfig(env="CartPole-v1", total_steps=2048, num_envs=4, run_dir=str(run_dir), progress=False, eval_episodes=0,
                                   video=False), SMALL, resume=run_dir)
    assert _digest(run_dir / "checkpoints") == before


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "cartpole"
    train("ppo", RunConfig(env="CartPole-v1", total_steps=1024, num_envs=4, run_dir=str(run_dir), progress=False, eval_episodes=0,
                           video=False, checkpoint_every=512), SMALL)
    return run_dir


def _copy(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(run, out, ignore=shutil.ignore_patterns(".lock"))
    return out


def test_a_changed_tensor_is_refused_by_its_checksum(finished_run: Path, tmp_path: Path) -> None:
    run = _copy(finished_run, tmp_path)
    path = list_checkpoints(run / "checkpoints")[-1] / "arrays.safetensors"
    data = bytearray(path.read_bytes())
    data[-8:] = os.urandom(8)  # tensor bytes changed, header intact: loads without the checksum
    path.write_bytes(bytes(data))
    one_line_error(run_cli("eval", str(run)), 2, "checksum", "move it out")


def test_non_finite_parameters_in_a_checkpoint_are_refused(finished_run: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load, save

    run = _copy(finished_run, tmp_path)
    ckpt = list_checkpoints(run / "checkpoints")[-1]
    arrays = {k: np.full_like(v, np.nan) for k, v in load((ckpt / "arrays.safetensors").read_bytes()).items()}
    (ckpt / "arrays.safetensors").write_bytes(save(arrays))
    meta = json.loads((ckpt / "meta.json").read_text())
    del meta["sha256"]  # as an older or hand-made checkpoint: the finiteness check alone must refuse it
    (ckpt / "meta.json").write_text(json.dumps(meta))
    one_line_error(run_cli("eval", str(run)), 2, "non-finite")


def test_non_finite_training_stops_with_exit_3_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    """Observations turn NaN after 300 steps per env (update 3 of 128 steps per env): the run
    stops at that update, logs nothing of it, and its last checkpoint (update 2) loads."""
    run_dir = tmp_path / "r"
    result = run_cli("train", "ppo", "--env", "tests.fake_envs:PolicysearchTest/GoesNonFinite-v0", "--total-steps", "5120", "--num-envs", "4",
                     "--steps-per-update", "512", "--minibatch-size", "64", "--checkpoint-every", "100000", "--no-progress", "--eval-episodes", "0",
                     "--no-video", "--backend", "gymnasium", "--run-dir", str(run_dir), cwd=REPO)
    one_line_error(result, 3, "update 3", "non-finite", "last good checkpoint")
    assert [int(r.split(",")[0]) for r in _rows(run_dir)] == [512, 1024]
    ckpts = list_checkpoints(run_dir / "checkpoints")
    assert [_step(c) for c in ckpts] == [1024]
    import policysearch

    assert np.all(np.isfinite(policysearch.load(run_dir).act(np.zeros(2, np.float32))))


def test_non_finite_error_is_raised_in_process(tmp_path: Path) -> None:
    import tests.fake_envs  # noqa: F401  (registers the env)

    with pytest.raises(NonFiniteError):
        train("ppo", RunConfig(env="PolicysearchTest/GoesNonFinite-v0", total_steps=5120, num_envs=4, run_dir=str(tmp_path / "r"),
                               progress=False, eval_episodes=0, video=False, backend="gymnasium"), SMALL)


@pytest.mark.parametrize(("args", "fragment"), [
    (("--learning-rate", "inf"), "--learning-rate must be a finite number"),
    (("--clip-obs", "inf"), "--clip-obs must be a finite number"),
    (("--seed", "-1"), "--seed must be in [0, 4294967295]"),
    (("--seed", "99999999999999999999"), "--seed must be in [0, 4294967295]"),
])
def test_bad_numbers_are_refused(args: tuple[str, ...], fragment: str) -> None:
    one_line_error(run_cli("train", "ppo", "--env", "CartPole-v1", *args), 2, fragment)


@pytest.mark.parametrize("algo", ["trpo", "pg"])
def test_a_critic_minibatch_above_the_batch_is_refused(algo: str) -> None:
    result = run_cli("train", algo, "--env", "CartPole-v1", "--steps-per-update", "64", "--num-envs", "4")
    one_line_error(result, 2, "--critic-minibatch-size (128) must not exceed --steps-per-update (64)")


def test_gps_refuses_more_conditions_than_the_task_has() -> None:
    one_line_error(run_cli("train", "gps", "--env", "arm-reach-dense", "--conditions", "10"), 2, "has 4 training starts", "--conditions 4")


def test_run_dirs_that_cannot_be_written_are_refused_before_set_up(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for run_dir, fragment in ((a_file, "is a file"), (a_file / "under", "which is a file"), (tmp_path / ("n" * 300), "over the limit of 255")):
        t0 = time.time()
        one_line_error(run_cli("train", "ppo", "--env", "CartPole-v1", "--run-dir", str(run_dir)), 2, fragment)
        assert time.time() - t0 < 60
    one_line_error(run_cli("train", "gps", "--env", "arm-reach-dense", "--run-dir", str(a_file)), 2, "is a file")
    one_line_error(run_cli("plan", "--env", "pendulum-swingup", "--run-dir", str(a_file)), 2, "is a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only folders: there is nothing to refuse")
def test_read_only_folders_are_refused(finished_run: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    one_line_error(run_cli("train", "ppo", "--env", "CartPole-v1", "--run-dir", str(ro / "r")), 2, "cannot write")
    run = _copy(finished_run, tmp_path)
    (run / "checkpoints").chmod(0o555)
    one_line_error(run_cli("train", "ppo", "--resume", str(run), "--total-steps", "4096"), 2, "cannot write")


def test_a_write_that_fails_mid_run_exits_2_with_the_path(finished_run: Path, tmp_path: Path) -> None:
    """A file size limit of 60 KiB (as a full disk would): the resumed run's first checkpoint
    cannot be written; exit 2 names it, and the earlier checkpoints are intact."""
    run = _copy(finished_run, tmp_path)
    before = _digest(run / "checkpoints")
    cmd = " ".join([sys.executable, "-m", "policysearch.cli", "train", "ppo", "--resume", str(run), "--total-steps", "2048", "--no-progress",
                    "--eval-episodes", "0"])
    proc = subprocess.run(["bash", "-c", f"ulimit -f 60; exec {cmd}"], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    one_line_error(proc, 2, "cannot write", "step_000000001536", "--resume")
    assert _digest(run / "checkpoints") == before
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_resume_of_a_checkpoint_folder_names_the_run_folder(finished_run: Path) -> None:
    ckpt = list_checkpoints(finished_run / "checkpoints")[-1]
    one_line_error(run_cli("train", "ppo", "--resume", str(ckpt)), 2, f"--resume {finished_run}")
    assert not (ckpt / "config.json").exists()


def test_corrupt_checkpoint_message_says_what_to_do(finished_run: Path, tmp_path: Path) -> None:
    run = _copy(finished_run, tmp_path)
    newest = list_checkpoints(run / "checkpoints")[-1]
    (newest / "state.safetensors").write_bytes(b"garbage")
    one_line_error(run_cli("train", "ppo", "--resume", str(run), "--total-steps", "2048"), 2, f"move it out of '{newest.parent}'")
    shutil.move(newest, tmp_path / "set-aside")  # as the message says: the run continues from the checkpoint before
    train("ppo", RunConfig(env="CartPole-v1", total_steps=1536, num_envs=4, run_dir=str(run), progress=False, eval_episodes=0, video=False,
                           checkpoint_every=512), SMALL, resume=run)
    assert [_step(c) for c in list_checkpoints(run / "checkpoints")][-1] == 1536


def test_leftovers_of_a_killed_write_are_removed_and_checkpoints_follow_the_umask(finished_run: Path, tmp_path: Path) -> None:
    run = _copy(finished_run, tmp_path)
    (run / "checkpoints" / ".tmp-killed").mkdir()
    (run / "config.tmp").write_text("{")
    old = os.umask(0o022)
    try:
        train("ppo", RunConfig(env="CartPole-v1", total_steps=1536, num_envs=4, run_dir=str(run), progress=False, eval_episodes=0,
                               video=False), SMALL, resume=run)
    finally:
        os.umask(old)
    assert not (run / "checkpoints" / ".tmp-killed").exists() and not (run / "config.tmp").exists()
    newest = list_checkpoints(run / "checkpoints")[-1]
    assert newest.stat().st_mode & 0o777 == 0o755
    assert all(f.stat().st_mode & 0o777 == 0o644 for f in newest.iterdir())


def test_resume_rewrites_metrics_atomically_and_refuses_a_garbled_file(finished_run: Path, tmp_path: Path) -> None:
    run = _copy(finished_run, tmp_path)
    (run / "metrics.csv").write_text("")  # what a kill during a non-atomic rewrite left
    result = run_cli("train", "ppo", "--resume", str(run), "--total-steps", "2048")
    one_line_error(result, 2, "metrics.csv", "move it out")
    one_line_error(run_cli("plot", str(run)), 2, "metrics.csv")
    (run / "metrics.csv").unlink()  # as the message says: the resumed run starts a new file, with no blank rows
    train("ppo", RunConfig(env="CartPole-v1", total_steps=1536, num_envs=4, run_dir=str(run), progress=False, eval_episodes=0, video=False),
          SMALL, resume=run)
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("step,") and [ln.split(",")[0] for ln in lines[1:]] == ["1536"]


def test_a_torn_last_metrics_row_is_dropped(finished_run: Path, tmp_path: Path) -> None:
    from policysearch.run.logging import read_metrics

    run = _copy(finished_run, tmp_path)
    with open(run / "metrics.csv", "a") as f:
        f.write("1536,0.5,9")  # a kill during the append of a row
    columns, rows = read_metrics(run / "metrics.csv")
    assert [r["step"] for r in rows] == ["512", "1024"] and columns[0] == "step"


def test_stochastic_actions_differ_from_step_to_step(finished_run: Path) -> None:
    import policysearch

    agent = policysearch.load(finished_run)
    obs = np.zeros((4, 4), np.float32)
    draws = np.stack([agent.act(obs, deterministic=False) for _ in range(20)])
    assert len(np.unique(draws[:, 0])) > 1  # not one fixed sample per env
    assert np.array_equal(agent.act(obs), agent.act(obs))


def test_kl_far_beyond_its_target_warns_once() -> None:
    from policysearch.run.train import warn_kl

    with pytest.warns(UserWarning, match="KL 5"):
        warned = warn_kl({"kl": np.float32(5.0)}, SMALL, 7, False)
    assert warned and warn_kl({"kl": np.float32(50.0)}, SMALL, 8, warned)
    assert not warn_kl({"kl": np.float32(0.5)}, SMALL, 7, False)


# --- the loaders, fuzzed: a damaged or hand-edited file is a UserError (exit 2, one line), never a traceback

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _loads_or_refuses(run: Path) -> None:
    """Load the policy and check a resume of the run: each works or is a UserError."""
    import policysearch
    from policysearch.run.folder import claim_resume
    from policysearch.run.train import RESUMABLE, resume_point

    try:
        policysearch.load(run)
    except UserError:
        pass
    try:
        config = RunConfig(env="CartPole-v1", total_steps=1024, num_envs=4, run_dir=str(run), progress=False, eval_episodes=0, video=False,
                           checkpoint_every=512)
        lock, ckpt, meta = claim_resume(run, "ppo", config, SMALL, RESUMABLE)
        lock.release()
        resume_point(meta, ckpt)
    except UserError:
        pass


@pytest.fixture(scope="module")
def fuzz_dir(finished_run: Path, tmp_path_factory) -> tuple[Path, Path]:
    return finished_run, tmp_path_factory.mktemp("fuzz")


def _fresh(fuzz_dir: tuple[Path, Path]) -> tuple[Path, Path]:
    run, root = fuzz_dir
    out = root / "run"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(run, out, ignore=shutil.ignore_patterns(".lock"))
    return out, list_checkpoints(out / "checkpoints")[-1]


@FUZZ
@given(data=st.data())
def test_fuzzed_meta_json(fuzz_dir, data) -> None:
    run, ckpt = _fresh(fuzz_dir)
    meta = json.loads((ckpt / "meta.json").read_text())
    kind = data.draw(st.sampled_from(["replace", "delete", "nested", "whole"]))
    if kind == "whole":
        meta = data.draw(JSON)
    else:
        key = data.draw(st.sampled_from(sorted(meta)))
        if kind == "delete":
            del meta[key]
        elif kind == "nested" and isinstance(meta[key], dict) and meta[key]:
            meta[key][data.draw(st.sampled_from(sorted(meta[key])))] = data.draw(JSON)
        else:
            meta[key] = data.draw(JSON)
    (ckpt / "meta.json").write_text(json.dumps(meta))
    _loads_or_refuses(run)


@FUZZ
@given(data=st.data())
def test_fuzzed_safetensors(fuzz_dir, data) -> None:
    run, ckpt = _fresh(fuzz_dir)
    name = data.draw(st.sampled_from(["arrays.safetensors", "state.safetensors"]))
    raw = bytearray((ckpt / name).read_bytes())
    kind = data.draw(st.sampled_from(["truncate", "flip", "random"]))
    if kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "flip":
        for i in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[i] ^= 0xFF
    else:
        raw = bytearray(data.draw(st.binary(max_size=256)))
    (ckpt / name).write_bytes(bytes(raw))
    _loads_or_refuses(run)


@FUZZ
@given(content=st.binary(max_size=512) | st.text(max_size=300).map(str.encode))
def test_fuzzed_metrics_csv(fuzz_dir, content: bytes) -> None:
    from policysearch.run.logging import read_metrics

    run, _ = _fresh(fuzz_dir)
    (run / "metrics.csv").write_bytes(content)
    try:
        columns, rows = read_metrics(run / "metrics.csv")
    except UserError:
        return
    assert "step" in columns and all(float(r["step"]) == float(r["step"]) for r in rows)


@FUZZ
@given(content=st.binary(max_size=256))
def test_fuzzed_config_json_is_only_a_record(fuzz_dir, content: bytes) -> None:
    """config.json is written for people; nothing reads it back, so a damaged one changes nothing."""
    import policysearch

    run, _ = _fresh(fuzz_dir)
    (run / "config.json").write_bytes(content)
    policysearch.load(run)
    _loads_or_refuses(run)


def test_loader_refusals_reach_the_cli_as_one_line(finished_run: Path, tmp_path: Path) -> None:
    run = _copy(finished_run, tmp_path)
    ckpt = list_checkpoints(run / "checkpoints")[-1]
    meta = json.loads((ckpt / "meta.json").read_text())
    for field, value, fragment in (("env_spec", [1, 2], "env_spec"), ("algo", None, "names no algorithm"), ("run", dict(meta["run"], num_envs="4"), "num_envs")):
        (ckpt / "meta.json").write_text(json.dumps(dict(meta, **{field: value})))
        one_line_error(run_cli("eval", str(run)) if field == "env_spec" else run_cli("train", "ppo", "--resume", str(run)), 2, fragment)
    (ckpt / "meta.json").write_text(json.dumps(dict(meta, env_spec=dict(meta["env_spec"], obs_dim=-3))))
    one_line_error(run_cli("eval", str(run)), 2, "do not fit")
    (ckpt / "meta.json").write_text("{}")  # once answered "resume it with `policysearch train None`"
    one_line_error(run_cli("train", "ppo", "--resume", str(run)), 2, "names no algorithm")
    one_line_error(run_cli("eval", str(run)), 2, "corrupt", "'format'")


def test_a_signal_inside_a_deferred_step_is_raised_at_its_end() -> None:
    """`signals.deferred`: SIGTERM during a metrics row and its commit does not cut the step in
    two (the trainers log and commit inside one); it stops the run right after it."""
    from policysearch.run import signals

    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    signals.install()
    done = []
    try:
        with pytest.raises(signals.Stopped) as stopped:
            with signals.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler has run by now: recorded, not raised
                done.append("row and commit")
        assert done == ["row and commit"] and stopped.value.exit_code == 143
    finally:
        signals._received.clear()
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def test_a_signal_swallowed_by_a_finaliser_is_not_printed_and_still_stops() -> None:
    """SIGINT while a finaliser or a gc callback runs (JAX has one): Python swallows the exception
    the handler raises there and would print it as "Exception ignored in" with a traceback. The run
    prints nothing for it, and `raise_if_stopped` stops it at the next update; any other swallowed
    exception is still printed."""
    import gc

    from policysearch.run import signals

    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), sys.unraisablehook
    printed: list[BaseException] = []
    sys.unraisablehook = lambda unraisable: printed.append(unraisable.exc_value)  # stands for Python's, which prints
    signals.install()

    class Finalised:
        def __init__(self, action) -> None:
            self.action = action

        def __del__(self) -> None:
            self.action()

    def signalled() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs (and raises) inside the finaliser

    def failing() -> None:
        raise ValueError("a real bug in a finaliser")

    try:
        Finalised(signalled)
        gc.collect()
        assert signals._received == [signal.SIGINT]
        with pytest.raises(signals.Stopped):
            signals.raise_if_stopped()
        Finalised(failing)
        gc.collect()
        assert [type(e) for e in printed] == [ValueError]
    finally:
        signals._received.clear()
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
        sys.unraisablehook = previous[2]
