"""The peers as runs (`run/peers.py`): SB3 PPO and sb3-contrib TRPO take our flags and mirror
them, write a run folder of our shape, resume from their checkpoint with one metrics row per
update, and are refused in one line where they cannot honour a flag. Needs the bench extra
(stable-baselines3, sb3-contrib, torch); skipped where it is not installed."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

from policysearch.run.peers import latest_checkpoint, sb3_kwargs, train_peer  # noqa: E402
from policysearch.sweep.trial import parse_trial, trial_state  # noqa: E402
from tests.conftest import one_line_error, run_cli  # noqa: E402


def test_sb3_arguments_mirror_our_config() -> None:
    _, ppo = parse_trial(["sb3-ppo", "--env", "Hopper-v5", "--preset", "zoo"])
    kw = sb3_kwargs("ppo", ppo.algo, ppo.run.num_envs)
    assert (kw["n_steps"], kw["batch_size"], kw["n_epochs"], kw["gamma"], kw["gae_lambda"]) == (512, 32, 5, 0.999, 0.99)
    assert kw["learning_rate"] == 9.80828e-05  # the Zoo's constant rate
    assert kw["policy_kwargs"]["net_arch"] == {"pi": [256, 256], "vf": [256, 256]} and kw["policy_kwargs"]["ortho_init"] is False
    _, plain = parse_trial(["sb3-ppo", "--env", "Hopper-v5"])
    schedule = sb3_kwargs("ppo", plain.algo, plain.run.num_envs)["learning_rate"]
    assert schedule(1.0) == pytest.approx(3e-4) and schedule(0.25) == pytest.approx(7.5e-5)  # our annealing
    _, trpo = parse_trial(["sb3-trpo", "--env", "HalfCheetah-v5", "--preset", "zoo"])
    kw = sb3_kwargs("trpo", trpo.algo, trpo.run.num_envs, kl_dims=6)
    assert (kw["n_steps"], kw["cg_max_steps"], kw["n_critic_updates"], kw["batch_size"]) == (1024, 25, 20, 128)
    assert kw["target_kl"] == pytest.approx(0.04) and kw["cg_damping"] == pytest.approx(0.1)  # the Zoo's, in sb3-contrib's units


def test_one_trpo_update_is_sb3_contribs_step() -> None:
    """From the same weights and the same rollout (sb3-contrib's own, Walker2d-v5, the Zoo preset),
    our TRPO update moves the actor exactly as sb3-contrib's does: the peer's arguments divide our
    KL bound and damping by the 6 action dimensions its KL is averaged over. Before that division
    its step was 1.1-1.4 times ours, at 0.85 cosine, and its KL 5 times ours."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import torch
    from jax.flatten_util import ravel_pytree

    from policysearch.algos.base import Batch
    from policysearch.algos.trpo import TRPOState, trpo_update
    from policysearch.core.policies import Policy, PolicyParams
    from policysearch.run.peers import kl_dims, make_sb3_env, sb3_class

    _, args = parse_trial(["sb3-trpo", "--env", "Walker2d-v5", "--preset", "zoo"])
    cfg, run = args.algo, args.run
    venv = make_sb3_env(run.env, run.num_envs, 0, run, cfg.gamma)
    assert kl_dims(venv.action_space) == 6
    model = sb3_class("sb3-trpo")("MlpPolicy", venv, seed=0, **sb3_kwargs("trpo", cfg, run.num_envs, kl_dims(venv.action_space)))
    caught = []
    train = model.train

    def spy() -> None:
        """Keep the weights, the rollout and the weights after sb3-contrib's update."""
        weights = {k: v.detach().clone().numpy() for k, v in model.policy.state_dict().items()}
        buf = model.rollout_buffer
        with torch.no_grad():
            last_value = model.policy.predict_values(torch.as_tensor(model._last_obs)).numpy()[:, 0]
        terminated = np.concatenate([buf.episode_starts[1:], np.asarray(model._last_episode_starts, np.float32)[None]])
        rollout = (buf.observations, buf.actions, buf.log_probs, buf.values, buf.rewards, terminated,
                   np.zeros_like(buf.rewards), np.ones_like(buf.rewards), last_value)
        batch = Batch(*(jnp.asarray(np.array(x), jnp.float32) for x in rollout))  # SB3 adds truncations' bootstrap to the reward
        train()
        caught.append((weights, batch, {k: v.detach().clone().numpy() for k, v in model.policy.state_dict().items()}))

    model.train = spy
    model.learn(2 * cfg.steps_per_update)

    def ours(sd: dict) -> PolicyParams:
        def mlp(trunk: str, head: str) -> dict:
            layers = [(f"{trunk}.0", "Dense_0"), (f"{trunk}.2", "Dense_1"), (head, "Dense_2")]
            return {"params": {name: {"kernel": jnp.asarray(sd[f"{t}.weight"].T), "bias": jnp.asarray(sd[f"{t}.bias"])} for t, name in layers}}
        return PolicyParams(mlp("mlp_extractor.policy_net", "action_net"), mlp("mlp_extractor.value_net", "value_net"), jnp.asarray(sd["log_std"]))

    policy = Policy(17, 6, "gaussian", cfg.hidden, cfg.activation, cfg.log_std_init, cfg.ortho_init)
    assert len(caught) == 2
    for before, batch, after in caught:
        start = ours(before)
        state = TRPOState(start, optax.adam(cfg.learning_rate).init(start.critic), jax.random.PRNGKey(0))
        new, metrics = trpo_update(state, batch, cfg, policy)
        flat0, flat_ours, flat_theirs = (ravel_pytree((p.actor, p.log_std))[0] for p in (start, new.params, ours(after)))
        mine, theirs = flat_ours - flat0, flat_theirs - flat0
        assert float(metrics["step_accepted"]) == 1.0 and float(jnp.linalg.norm(theirs)) > 0.05
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=0, atol=2e-3 * float(jnp.linalg.norm(theirs)))
        assert abs(float(jnp.vdot(mine, theirs)) / float(jnp.vdot(theirs, theirs)) - 1.0) < 1e-3


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_peer_run_resumes_from_its_checkpoint_with_one_row_per_update(tmp_path: Path) -> None:
    """Train sb3-trpo on CartPole to 2,048 steps (checkpoints every 512), then lose the end as a
    killed run does (summary and the newest checkpoint gone, metrics.csv ahead of the checkpoint):
    the rerun resumes at 1,536 steps and the metrics have each update's row once."""
    run_dir = tmp_path / "peer"
    _, args = parse_trial(["sb3-trpo", "--env", "CartPole-v1", "--total-steps", "2048", "--num-envs", "4", "--steps-per-update", "512",
                           "--checkpoint-every", "512", "--eval-episodes", "4"])
    run = dataclasses.replace(args.run, run_dir=str(run_dir))
    summary = train_peer("sb3-trpo", run, args.algo)
    assert summary["steps"] == 2048 and summary["eval_episodes"] == 4 and trial_state(run_dir, peer=True) == "finished"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["peer"]["library"] == "sb3-contrib" and config["peer"]["kwargs"]["n_steps"] == 128
    (run_dir / "summary.json").unlink()
    shutil.rmtree(latest_checkpoint(run_dir))
    assert latest_checkpoint(run_dir).name == "step_1536" and trial_state(run_dir, peer=True) == "resumable"
    resumed = train_peer("sb3-trpo", run, args.algo)
    steps = [int(r["step"]) for r in _rows(run_dir)]
    assert steps == [512, 1024, 1536, 2048] and resumed["steps"] == 2048
    walls = [float(r["wall_time"]) for r in _rows(run_dir)]
    assert walls == sorted(walls)  # the wall clock continues from the checkpoint's


@pytest.mark.parametrize("argv, fragments", [
    (["sweep", "--algos", "sb3-ppo", "--envs", "CartPole-v1", "--set", "profile=true", "--dry-run"], ["sb3-ppo", "--profile"]),
    (["sweep", "--algos", "sb3-ppo", "--envs", "CartPole-v1", "--set", "loss=kl_penalty", "--dry-run"], ["clipped loss"]),
    (["sweep", "--algos", "sb3-a2c", "--envs", "CartPole-v1", "--dry-run"], ["'sb3-a2c' cannot be swept", "sb3-ppo, sb3-trpo"]),
])
def test_bad_peer_trials_are_refused_before_anything_runs(argv: list[str], fragments: list[str], tmp_path: Path) -> None:
    one_line_error(run_cli(*argv, "--out", str(tmp_path / "s")), 2, *fragments)


def test_a_sweep_holds_ours_and_the_peer_and_reports_them_side_by_side(tmp_path: Path) -> None:
    """PPO (2 seeds) and then, by a second command into the same folder, SB3 PPO (1 seed) on
    CartPole at a tiny budget on a local Ray cluster: the folder holds both grids, and the report
    compares the peer with ours."""
    out = tmp_path / "sweep"
    tiny = ["--set", "total-steps=1024", "--set", "num-envs=4", "--set", "steps-per-update=512", "--set", "eval-episodes=2",
            "--out", str(out), "--cpus-per-trial", "1", "--no-progress"]
    first = run_cli("sweep", "--algos", "ppo", "--envs", "CartPole-v1", "--seeds", "0", "1", *tiny)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli("sweep", "--algos", "sb3-ppo", "--envs", "CartPole-v1", "--seeds", "0", *tiny)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {t["algo"] for t in json.loads((out / "sweep.json").read_text())["trials"]} == {"ppo", "sb3-ppo"}
    report = run_cli("report", str(out))
    assert report.returncode == 0, report.stderr[-3000:]
    groups = {g["algo"]: g for g in json.loads((out / "report.json").read_text())["groups"]}
    assert groups["ppo"]["finished"] == 2 and groups["sb3-ppo"]["finished"] == 1
    assert groups["sb3-ppo"]["steps"] == 1024 and groups["sb3-ppo"]["vs"]["group"].startswith("ppo CartPole-v1")
    assert len(_rows(out / "sb3-ppo-CartPole-v1-s0")) == 2
