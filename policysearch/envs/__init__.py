"""Environments: the batched interface every algorithm uses."""

from policysearch.envs.vector import Backend, EnvSpec, VecEnv, check_env_id, make_env

__all__ = ["Backend", "EnvSpec", "VecEnv", "check_env_id", "make_env"]
