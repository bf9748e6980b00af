"""policysearch: robot learning by policy search (PPO, and more to come) on MuJoCo, in JAX."""

from policysearch.api import PPO, Agent
from policysearch.envs import make_env
from policysearch.errors import UserError
from policysearch.evaluation import evaluate
from policysearch.snapshot import TrainedPolicy, load

__all__ = ["PPO", "Agent", "TrainedPolicy", "UserError", "evaluate", "load", "make_env"]
__version__ = "0.1.0"
