"""policysearch: robot learning by policy search (policy gradient, PPO, TRPO, iLQR/DDP and Guided Policy Search) on MuJoCo, in JAX."""

from policysearch import xla_cpu

xla_cpu.configure()  # before anything starts a JAX backend (see xla_cpu)

from policysearch.api import PG, PPO, TRPO, Agent  # noqa: E402
from policysearch.envs import make_env  # noqa: E402
from policysearch.errors import UserError  # noqa: E402
from policysearch.run.evaluation import evaluate  # noqa: E402
from policysearch.run.snapshot import TrainedPolicy, load  # noqa: E402

__all__ = ["PG", "PPO", "TRPO", "Agent", "TrainedPolicy", "UserError", "evaluate", "load", "make_env"]
__version__ = "0.1.0"
