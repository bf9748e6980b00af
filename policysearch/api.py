"""The Python API, in the spirit of Stable-Baselines3:

    model = PPO("Hopper-v5", learning_rate=3e-4, seed=0)
    model.learn(200_000)                 # writes nothing unless run_dir= is given
    action = model.act(obs)              # deterministic by default
    model.save("hopper-policy")          # a checkpoint directory
    policy = policysearch.load("hopper-policy")   # TrainedPolicy with .act

Files go only where asked, as SB3's `learn()` does: without `run_dir` a run lives in a temporary
folder removed with the model (or at exit), and no video is rendered unless `video=True`. Errors
name the keywords of these classes, not the command line's flags.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from policysearch.algos import ALGORITHMS
from policysearch.errors import UserError
from policysearch.run.checkpoint import find_checkpoint
from policysearch.run.config import RunConfig
from policysearch.run.snapshot import TrainedPolicy
from policysearch.run.train import TrainResult, train


def python_words(message: str) -> str:
    """A run's error message with the CLI's words for what the API spells otherwise:
    `--resume DIR` -> `.resume("DIR", total_steps)`, `--some-flag` -> `some_flag=`."""
    message = re.sub(r"--resume ([^\s,;]+)", r'.resume("\1", total_steps)', message)
    message = re.sub(r"`?policysearch train (\w+) --help`?", lambda m: f"help(policysearch.{m.group(1).upper()})", message)
    switches = {f.name for cls in (RunConfig, *(entry.config for entry in ALGORITHMS.values())) for f in dataclasses.fields(cls)
                if f.type in (bool, "bool")}

    def keyword(m: re.Match[str]) -> str:
        name = m.group(2).replace("-", "_")
        return f"{name}={not m.group(1)}" if name in switches else f"{name}="

    return re.sub(r"--(no-)?([a-z][a-z0-9-]*)", keyword, message)


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
            raise UserError(f"{type(self).__name__} has no keyword(s) {sorted(unknown)}; help(policysearch.{type(self).__name__}) "
                            f"and the fields of {config_cls.__name__} and RunConfig list them")
        self._run_kwargs = {k: v for k, v in kwargs.items() if k in run_fields}
        self._run_kwargs.setdefault("progress", True)
        self._run_kwargs.setdefault("video", False)
        self.env_id = env
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        with _keywords():
            self.config = config_cls(**{k: v for k, v in kwargs.items() if k in algo_fields})
            RunConfig(env=env, **self._run_kwargs)  # validate now, not at learn()
        self.result: TrainResult | None = None

    def _run(self, total_steps: int, run_dir: str | Path | None = None) -> RunConfig:
        kwargs = dict(self._run_kwargs)
        if run_dir is not None:
            kwargs["run_dir"] = str(run_dir)
        elif not kwargs.get("run_dir"):  # nothing asked: a scratch folder that goes with the model
            self._scratch = self._scratch or tempfile.TemporaryDirectory(prefix=f"policysearch-{self.algo}-")
            kwargs["run_dir"], kwargs["overwrite"] = str(Path(self._scratch.name) / "run"), True
        return RunConfig(env=self.env_id, total_steps=total_steps, **kwargs)

    def learn(self, total_steps: int) -> "Agent":
        """Train for total_steps environment steps (a new run; `resume` continues a saved one)."""
        with _keywords():
            self.result = train(self.algo, self._run(total_steps), self.config)
        return self

    def resume(self, run_dir: str | Path, total_steps: int) -> "Agent":
        """Continue the run in run_dir from its last checkpoint up to total_steps."""
        with _keywords():
            self.result = train(self.algo, self._run(total_steps, run_dir), self.config, resume=Path(run_dir))
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


class _keywords:
    """Re-raise a UserError from the run layer in the API's words (`python_words`)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, UserError):
            raise UserError(python_words(str(exc))) from exc


class PPO(Agent):
    """Proximal Policy Optimization; see `policysearch.algos.configs.PPOConfig` for the options."""

    algo = "ppo"


class TRPO(Agent):
    """Trust Region Policy Optimization; see `policysearch.algos.configs.TRPOConfig` for the options."""

    algo = "trpo"


class PG(Agent):
    """Policy gradient with a baseline; see `policysearch.algos.configs.PGConfig` for the options."""

    algo = "pg"
