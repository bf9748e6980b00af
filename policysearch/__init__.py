"""policysearch: robot learning by policy search (policy gradient, PPO, TRPO, iLQR/DDP and Guided Policy Search) on MuJoCo, in JAX."""

from policysearch.api import PG, PPO, TRPO, Agent
from policysearch.envs import make_env
from policysearch.errors import UserError
from policysearch.run.evaluation import evaluate
from policysearch.run.snapshot import TrainedPolicy, load

__all__ = ["PG", "PPO", "TRPO", "Agent", "TrainedPolicy", "UserError", "evaluate", "load", "make_env"]
__version__ = "0.1.0"
