"""policysearch: robot learning by policy search (policy gradient, PPO, TRPO, iLQR/DDP and Guided Policy Search) on MuJoCo, in JAX.

The exports below are imported on first use (`policysearch.lazy`): `import policysearch` itself
costs no JAX import, so the command line answers `--help` and bad input at once."""

from policysearch import xla_cpu

xla_cpu.configure()  # before anything starts a JAX backend (see xla_cpu)

from policysearch.errors import UserError  # noqa: E402
from policysearch.lazy import lazy_exports  # noqa: E402

__getattr__ = lazy_exports(__name__, {
    "PG": "policysearch.api", "PPO": "policysearch.api", "TRPO": "policysearch.api", "Agent": "policysearch.api",
    "make_env": "policysearch.envs", "evaluate": "policysearch.run.evaluation",
    "TrainedPolicy": "policysearch.run.snapshot", "load": "policysearch.run.snapshot", "export": "policysearch.deploy.export",
})

__all__ = ["PG", "PPO", "TRPO", "Agent", "TrainedPolicy", "UserError", "evaluate", "export", "load", "make_env"]
__version__ = "0.1.0"
