"""Environments: the batched interface every algorithm uses, and our own registered tasks."""

from policysearch.envs.terrain import register as _register_terrain
from policysearch.envs.vector import Backend, EnvSpec, VecEnv, check_env_id, make_env

_register_terrain()

__all__ = ["Backend", "EnvSpec", "VecEnv", "check_env_id", "make_env"]
