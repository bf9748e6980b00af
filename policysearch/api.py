"""The Python API, in the spirit of Stable-Baselines3:

    model = PPO("Hopper-v5", learning_rate=3e-4, seed=0)
    model.learn(200_000)
    action = model.act(obs, deterministic=True)
    model.save("runs/hopper")            # a checkpoint directory
    policy = policysearch.load("runs/hopper")   # TrainedPolicy with .act
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from policysearch.algos import ALGORITHMS
from policysearch.errors import UserError
from policysearch.run.checkpoint import find_checkpoint
from policysearch.run.snapshot import TrainedPolicy
from policysearch.run.train import RunConfig, TrainResult, train


class Agent:
    """An algorithm bound to an environment; keyword arguments are the CLI's flags in snake case
    (RunConfig fields such as seed, num_envs, run_dir, or the algorithm's hyper-parameters)."""

    algo: str = ""

    def __init__(self, env: str = "Hopper-v5", **kwargs: Any) -> None:
        config_cls = ALGORITHMS[self.algo].config
        run_fields = {f.name for f in dataclasses.fields(RunConfig)}
        algo_fields = {f.name for f in dataclasses.fields(config_cls)}
        unknown = set(kwargs) - run_fields - algo_fields
        if unknown:
            raise UserError(f"{type(self).__name__} has no option(s) {sorted(unknown)}; see `policysearch train {self.algo} --help`")
        self._run_kwargs = {k: v for k, v in kwargs.items() if k in run_fields}
        self._run_kwargs.setdefault("progress", True)
        self.env_id = env
        self.config = config_cls(**{k: v for k, v in kwargs.items() if k in algo_fields})
        RunConfig(env=env, **self._run_kwargs)  # validate now, not at learn()
        self.result: TrainResult | None = None

    def learn(self, total_steps: int) -> "Agent":
        """Train for total_steps environment steps (a new run; `resume` continues a saved one)."""
        run = RunConfig(env=self.env_id, total_steps=total_steps, **self._run_kwargs)
        self.result = train(self.algo, run, self.config)
        return self

    def resume(self, run_dir: str | Path, total_steps: int) -> "Agent":
        """Continue the run in run_dir from its last checkpoint up to total_steps."""
        run = RunConfig(env=self.env_id, total_steps=total_steps, **dict(self._run_kwargs, run_dir=str(run_dir)))
        self.result = train(self.algo, run, self.config, resume=Path(run_dir))
        return self

    @property
    def policy(self) -> TrainedPolicy:
        if self.result is None:
            raise UserError("the model has not been trained: call learn() first, or policysearch.load(path)")
        return self.result.agent

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Action(s) for raw observation(s) of the environment."""
        return self.policy.act(obs, deterministic)

    def save(self, path: str | Path) -> Path:
        """Copy the final checkpoint to `path` (a directory that `policysearch.load` reads)."""
        if self.result is None:
            raise UserError("nothing to save: call learn() first")
        src = find_checkpoint(self.result.run_dir)
        dst = Path(path)
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
        return dst


class PPO(Agent):
    """Proximal Policy Optimization; see `policysearch.algos.ppo.PPOConfig` for the options."""

    algo = "ppo"


class TRPO(Agent):
    """Trust Region Policy Optimization; see `policysearch.algos.trpo.TRPOConfig` for the options."""

    algo = "trpo"


class PG(Agent):
    """Policy gradient with a baseline; see `policysearch.algos.pg.PGConfig` for the options."""

    algo = "pg"
