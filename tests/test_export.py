"""`policysearch export`: the ONNX graph under onnxruntime and the NumPy-only loader give our own
deterministic action to 1e-5 on 1,000 observations from each policy's rollouts (a categorical and
a Gaussian policy, each from a normalised and an unnormalised run, of PPO, TRPO and PG; a softplus
network as GPS's); the linear-Gaussian controller's export gives its mean control; bad input is
refused in one line. GPS's own run is exported in test_gps.py's CLI test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from policysearch.deploy.export import LOADER, export, export_policy
from policysearch.envs import make_env
from policysearch.run.snapshot import load
from tests.conftest import one_line_error, run_cli

RUNS = {  # name: (algo, env, normalise observations)
    "ppo-cartpole-norm": ("ppo", "CartPole-v1", True),
    "pg-cartpole-raw": ("pg", "CartPole-v1", False),
    "trpo-pendulum-norm": ("trpo", "Pendulum-v1", True),
    "ppo-pendulum-raw": ("ppo", "Pendulum-v1", False),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Four short runs, trained in this process."""
    from policysearch.algos import ALGORITHMS
    from policysearch.run.train import RunConfig, train

    root = tmp_path_factory.mktemp("export")
    out = {}
    for name, (algo, env, norm) in RUNS.items():
        run = RunConfig(env=env, total_steps=2048, num_envs=4, seed=1, run_dir=str(root / name), normalize_obs=norm, progress=False,
                        eval_episodes=0, video=False)
        out[name] = train(algo, run, ALGORITHMS[algo].config()).run_dir
    return out


def rollout_observations(agent, env_id: str, count: int = 1000) -> np.ndarray:
    """`count` raw observations met by the policy's own (stochastic) actions on 8 envs."""
    env = make_env(env_id, 8, 123)
    obs, seen, key = env.reset(), [], jax.random.PRNGKey(5)
    while len(seen) * 8 < count:
        seen.append(obs)
        key, sub = jax.random.split(key)
        obs, *_ = env.step(agent.act(obs, False, sub))
    env.close()
    return np.concatenate(seen)[:count].astype(np.float32)


def loader_actions(npz: Path, obs: np.ndarray, tmp: Path) -> np.ndarray:
    """The loader's actions, in a fresh interpreter that imports nothing of JAX or policysearch."""
    np.save(tmp / "obs.npy", obs)
    script = (
        "import importlib.util, sys, numpy as np\n"
        f"spec = importlib.util.spec_from_file_location('loader', {str(LOADER)!r}); m = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        f"policy = m.load({str(npz)!r})\n"
        f"np.save({str(tmp / 'act.npy')!r}, policy.act(np.load({str(tmp / 'obs.npy')!r})))\n"
        "assert not any(k.split('.')[0] in ('jax', 'flax', 'policysearch') for k in sys.modules), sorted(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(tmp / "act.npy")


@pytest.mark.parametrize("name", list(RUNS))
def test_onnx_and_numpy_exports_act_as_the_policy(name: str, runs: dict[str, Path], tmp_path: Path) -> None:
    algo, env_id, norm = RUNS[name]
    agent = load(runs[name])
    obs = rollout_observations(agent, env_id)
    expected = agent.act(obs, deterministic=True)
    onnx_path = export(runs[name], "onnx", tmp_path / "p.onnx")
    npz_path = export(runs[name], "numpy", tmp_path / "p.npz")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got_onnx = session.run(None, {"obs": obs})[0]
    got_numpy = loader_actions(npz_path, obs, tmp_path)
    if agent.spec.action_kind == "categorical":
        assert got_onnx.dtype == np.int64 and got_onnx.shape == (1000,)
        np.testing.assert_array_equal(got_onnx, expected)
        np.testing.assert_array_equal(got_numpy, expected)
        assert len(np.unique(expected)) == 2  # both actions occur: the comparison is not trivial
    else:
        assert got_onnx.dtype == np.float32 and got_onnx.shape == expected.shape == (1000, 1)
        np.testing.assert_allclose(got_onnx, expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(got_numpy, expected, rtol=0, atol=1e-5)
        assert expected.std() > 1e-3
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert meta["env_id"] == env_id and meta["algorithm"] == algo and json.loads(meta["observation"])["shape"] == [agent.spec.obs_dim]
    assert (json.loads(meta["normalization"]) is not None) == norm
    if norm:  # the normalisation matters: the network on raw observations acts otherwise
        raw = agent.policy.dist(agent.params, obs).mode() if agent.spec.action_kind == "gaussian" else None
        if raw is not None:
            assert np.abs(np.clip(np.asarray(raw), -2, 2) - expected).max() > 1e-3


def test_softplus_network_as_gps_saves_it(tmp_path: Path) -> None:
    """A GPS-shaped policy (softplus MLP, standardised inputs, inputs beyond the clip)."""
    from policysearch.core.normalize import RunningStats
    from policysearch.core.policies import Policy
    from policysearch.envs.vector import EnvSpec
    from policysearch.run.snapshot import frozen_policy

    policy = Policy(6, 2, "gaussian", (40, 40), "softplus")
    params = policy.init(jax.random.PRNGKey(3))
    rng = np.random.default_rng(0)
    stats = RunningStats(np.asarray(rng.normal(0, 1, 6), np.float32), np.asarray(rng.uniform(0.1, 4, 6), np.float32), np.float32(1))
    agent = frozen_policy(policy, params, stats, 5.0, EnvSpec("arm-reach-dense", 6, "gaussian", 2, (-3.0, -3.0), (3.0, 3.0)), {})
    obs = rng.normal(0, 6, (1000, 6)).astype(np.float32)
    expected = agent.act(obs)
    onnx_path = export_policy(agent, tmp_path / "gps.onnx", "onnx", "gps")
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"obs": obs})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(loader_actions(export_policy(agent, tmp_path / "gps.npz", "numpy", "gps"), obs, tmp_path), expected,
                               rtol=0, atol=1e-5)


def test_linear_gaussian_controller_exports_its_mean(tmp_path: Path) -> None:
    """A `policysearch plan` run's controller: the loader's u(t, x) is the controller's mean, past
    the horizon too; ONNX is refused for it in one line."""
    from policysearch.control.lqg import LinearGaussianController
    from policysearch.deploy import loader

    run_dir = tmp_path / "plan"
    done = run_cli("plan", "--env", "pendulum-swingup", "--horizon", "60", "--run-dir", str(run_dir), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    npz = export(run_dir, "numpy")
    assert npz == run_dir / "controller.npz"
    ctrl, _ = LinearGaussianController.load(run_dir)
    exported = loader.load(str(npz))
    assert exported.meta["horizon"] == 60 and exported.meta["env_id"] == "pendulum-swingup"
    rng = np.random.default_rng(0)
    for t in (0, 17, 59, 80):
        x = np.asarray(ctrl.x_bar[min(t, 59)]) + rng.normal(0, 0.3, ctrl.x_bar.shape[-1])
        np.testing.assert_allclose(exported.act(t, x), ctrl.act(t, x), rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(ctrl.K)).max() > 0  # the feedback is exercised
    one_line_error(run_cli("export", str(run_dir), "--format", "onnx"), 2, "numpy only")


@pytest.mark.parametrize("argv, fragments", [
    (["export", "{tmp}/missing"], ["not found"]),
    (["export", "{tmp}"], ["no checkpoint", "policysearch train"]),
    (["export", "{run}", "--format", "tflite"], ["tflite", "onnx", "numpy"]),
    (["export", "{run}", "--out", "/proc/policy.onnx"], ["cannot write '/proc/policy.onnx'", "--out"]),
    (["export", "{run}", "--controller"], ["no linear-Gaussian controller"]),
    (["export"], ["missing RUN_DIR"]),
])
def test_bad_exports_are_refused_in_one_line(argv: list[str], fragments: list[str], runs: dict[str, Path], tmp_path: Path) -> None:
    args = [a.format(tmp=tmp_path, run=runs["ppo-cartpole-norm"]) for a in argv]
    one_line_error(run_cli(*args), 2, *fragments)


def test_show_loader_prints_the_loader() -> None:
    done = run_cli("export", "--show-loader")
    assert done.returncode == 0 and done.stdout == LOADER.read_text()
    compile(done.stdout, "loader.py", "exec")
