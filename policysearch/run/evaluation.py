"""Evaluation: a trained policy on fresh episodes of its environment, on the training conditions
of a model task (the JAX systems, which are not Gymnasium envs), and any controller on the real
MuJoCo env from its default start (no reset noise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from policysearch.control.lqg import LinearGaussianController
from policysearch.envs import Backend, make_env
from policysearch.run.progress import phase
from policysearch.run.snapshot import TrainedPolicy


def evaluate(
    agent: TrainedPolicy, env_id: str, episodes: int = 10, seed: int = 10_000, deterministic: bool = True,
    backend: Backend = "auto", max_envs: int = 8, progress: str | None = None,
) -> dict[str, float]:
    """Run `episodes` episodes (spread evenly over up to max_envs envs) and summarise them:
    return_mean, return_std, length_mean, episodes. progress: the title of a phase
    (`run.progress.phase`) that shows the episodes as they end (None: nothing shown)."""
    with phase(progress or "", episodes, enabled=progress is not None, unit="episodes") as bar:
        return _evaluate(agent, env_id, episodes, seed, deterministic, backend, max_envs,
                         lambda n, ret: bar.advance(n, detail=f"return {ret:.1f}"))


def _evaluate(agent: TrainedPolicy, env_id: str, episodes: int, seed: int, deterministic: bool, backend: Backend, max_envs: int,
              on_episode: Callable[[int, float], None]) -> dict[str, float]:
    """`evaluate`, with on_episode(episodes done, its return) after each episode."""
    num_envs = min(episodes, max_envs)
    quota = np.array([episodes // num_envs + (i < episodes % num_envs) for i in range(num_envs)])
    env = make_env(env_id, num_envs, seed, backend)
    obs = env.reset()
    key = jax.random.PRNGKey(seed)
    returns, lengths = [], []
    ep_ret, ep_len = np.zeros(num_envs), np.zeros(num_envs, int)
    done_count = np.zeros(num_envs, int)
    prev_done = np.zeros(num_envs, bool)
    while (done_count < quota).any():
        sub = None
        if not deterministic:
            key, sub = jax.random.split(key)
        obs, reward, terminated, truncated = env.step(agent.act(obs, deterministic, sub))
        valid = ~prev_done
        ep_ret += reward * valid
        ep_len += valid
        done = terminated | truncated
        for i in np.flatnonzero(done & valid):
            if done_count[i] < quota[i]:
                returns.append(ep_ret[i])
                lengths.append(ep_len[i])
                done_count[i] += 1
                on_episode(len(returns), float(ep_ret[i]))
            ep_ret[i], ep_len[i] = 0.0, 0
        prev_done = done
    env.close()
    return {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "episodes": len(returns),
        "length_mean": float(np.mean(lengths)),
    }


def evaluate_on_task(agent: TrainedPolicy) -> dict[str, Any]:
    """The cost of the policy's mean actions from each training condition of the model task it was
    trained on (the run's conditions, from its saved settings): env, cost_mean, costs."""
    from policysearch.algos.gps import policy_cost
    from policysearch.run.folder import config_from_dict
    from policysearch.run.train_gps import GPSRunConfig, make_problem

    problem = make_problem(config_from_dict(GPSRunConfig, agent.meta["run"]))
    stats = agent.obs_stats if agent.norm.obs else None
    costs = [policy_cost(problem, agent.policy, agent.params, stats, c) for c in range(len(problem.conditions))]
    return {"env": problem.name, "cost_mean": float(sum(costs) / len(costs)), "costs": costs}


def closed_loop_on_env(controller: LinearGaussianController, env_id: str, video: Path | None = None) -> dict[str, Any]:
    """Run the controller's mean on the real Gymnasium env from the default initial state (no
    reset noise) for its horizon: env_return, steps, terminated, x_travelled."""
    out = run_from_default_start(lambda t, obs, x: controller.act(t, x), env_id, controller.horizon, video)
    del out["path"]
    return out


def run_from_default_start(
    act: Callable[[int, np.ndarray, np.ndarray], np.ndarray], env_id: str, horizon: int, video: Path | None = None,
    frames: list[np.ndarray] | None = None, **env_kwargs: Any,
) -> dict[str, Any]:
    """Run u_t = act(t, obs_t, x_t) (x = (qpos, qvel)), clipped to the action bounds ([-1, 1] on the
    walkers, [-0.4, 0.4] on the humanoid), on the real MuJoCo env from its default initial state
    (no reset noise) for `horizon` steps or until the episode ends: env_return, steps, terminated,
    x_travelled and the root's (x, z) path (z: qpos[2] under a free root, else qpos[1]). With
    `video`, the frames (every 4th step) are written there as an MP4 and also appended to
    `frames` when it is given."""
    import gymnasium as gym

    from policysearch.run.viz import follow_root_body, write_video

    kwargs = {"render_mode": "rgb_array", "width": 480, "height": 360} if video is not None else {}
    env = gym.make(env_id, **kwargs, reset_noise_scale=0.0, **env_kwargs)
    obs, _ = env.reset(seed=0)
    inner = env.unwrapped
    if video is not None:
        env.render()
        follow_root_body(env)
    shown = [env.render()] if video is not None else []
    ret, steps, terminated, x_start = 0.0, 0, False, float(inner.data.qpos[0])
    z = 2 if inner.model.nq > inner.model.nv else 1  # a free joint's quaternion has one entry more than its velocity
    low, high = env.action_space.low, env.action_space.high
    path = [(x_start, float(inner.data.qpos[z]))]
    for t in range(horizon):
        x = np.concatenate([inner.data.qpos, inner.data.qvel])
        obs, reward, terminated, truncated, _ = env.step(np.clip(act(t, obs, x), low, high))
        ret, steps = ret + float(reward), steps + 1
        path.append((float(inner.data.qpos[0]), float(inner.data.qpos[z])))
        if video is not None and t % 4 == 3:
            shown.append(env.render())
        if terminated or truncated:
            break
    if video is not None:
        write_video(video, shown, fps=round(1.0 / (4 * inner.dt)))
        if frames is not None:
            frames.extend(shown)
    out = {"env_return": ret, "steps": steps, "terminated": bool(terminated), "x_travelled": path[-1][0] - x_start, "path": path}
    env.close()
    return out
