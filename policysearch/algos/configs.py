"""The hyper-parameters of the on-policy algorithms (PPO, TRPO, policy gradient) as frozen,
validated dataclasses: their fields are the CLI's flags and the run folder's saved record.

They live apart from the algorithms' equations (`ppo.py`, `trpo.py`, `pg.py`, which import them)
for one reason: this module imports no JAX, so `policysearch train ALGO --help` and the refusal of
bad input answer in a fraction of a second instead of after JAX's 1-2 s import. GPS's config is
`gps/config.py` for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from policysearch.errors import flag, require, require_finite_fields, require_fraction, require_positive

Activation = Literal["tanh", "relu", "softplus"]
"""Hidden-layer activations of the policy and value MLPs (`core.policies`)."""
Estimator = Literal["trajectory", "reward_to_go", "gae"]
"""psi_k of the policy gradient (`pg.py`)."""


@dataclass(frozen=True)
class OnPolicyConfig:
    """Shared fields: network shape, rollout size and return estimation."""

    steps_per_update: int = 2048
    """Environment steps collected (over all envs) before each update."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda (1 = Monte Carlo reward-to-go, 0 = one-step TD)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and value MLPs."""
    activation: Activation = "tanh"
    """Hidden activation."""
    log_std_init: float = 0.0
    """Initial log standard deviation of Gaussian policies."""
    ortho_init: bool = True
    """Orthogonal weight initialisation (gains sqrt 2, 0.01 policy head, 1 value head); off: PyTorch's nn.Linear default."""

    def __post_init__(self) -> None:
        require_positive("steps_per_update", self.steps_per_update)
        require_fraction("gamma", self.gamma)
        require_fraction("gae_lambda", self.gae_lambda)
        require(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), f"--hidden needs positive widths, got {self.hidden}")
        require_finite_fields(self)

    @property
    def kl_reference(self) -> float | None:
        """The KL per update the algorithm aims at or bounds (None: it has none); the trainer
        warns when an update moves the policy far beyond it."""
        return None

    def require_minibatch(self, name: str) -> None:
        """A minibatch-size field must not exceed --steps-per-update: a batch smaller than one
        minibatch gives no gradient step at all."""
        size = getattr(self, name)
        require(size <= self.steps_per_update, f"{flag(name)} ({size}) must not exceed --steps-per-update ({self.steps_per_update})")


@dataclass(frozen=True)
class PPOConfig(OnPolicyConfig):
    """PPO hyper-parameters; defaults are the paper's MuJoCo settings (Table 3)."""

    learning_rate: float = 3e-4
    """Adam step size (eps 1e-5)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over training."""
    epochs: int = 10
    """Passes over each batch."""
    minibatch_size: int = 64
    """Samples per gradient step."""
    loss: Literal["clip", "kl_penalty"] = "clip"
    """Surrogate: the clipped objective, or the adaptive KL penalty of the paper's section 4."""
    clip_coef: float = 0.2
    """Clipping epsilon of L^CLIP."""
    kl_target: float = 0.01
    """d_targ of the KL-penalty variant."""
    kl_beta: float = 1.0
    """Initial KL penalty coefficient beta."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("learning_rate", "epochs", "minibatch_size", "clip_coef", "kl_target", "kl_beta", "max_grad_norm"):
            require_positive(name, getattr(self, name))
        require(self.ent_coef >= 0 and self.vf_coef >= 0, "--ent-coef and --vf-coef must be >= 0")
        self.require_minibatch("minibatch_size")

    @property
    def kl_reference(self) -> float:
        return self.kl_target


@dataclass(frozen=True)
class TRPOConfig(OnPolicyConfig):
    """TRPO hyper-parameters; defaults are sb3-contrib's numbers. Its target_kl and cg_damping,
    though, bound and damp the KL averaged over the action's dimensions, ours the KL of the whole
    action distribution (the paper's): sb3-contrib's settings on A action dimensions are ours times
    A (`algos/presets.py`)."""

    max_kl: float = 0.01
    """Trust region radius delta on the mean over samples of KL(pi_old || pi_theta) of the whole action distribution."""
    cg_iterations: int = 15
    """Conjugate-gradient iterations."""
    cg_damping: float = 0.1
    """Damping lambda added to the Fisher matrix: (F + lambda I) x = g."""
    line_search_shrink: float = 0.8
    """Backtracking factor of the line search."""
    line_search_steps: int = 10
    """Step sizes tried by the line search."""
    learning_rate: float = 1e-3
    """Adam step size of the value function."""
    critic_epochs: int = 10
    """Passes of value-function regression per update."""
    critic_minibatch_size: int = 128
    """Samples per value-function gradient step."""
    normalize_advantage: bool = True
    """Normalise advantages over each batch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("max_kl", "cg_iterations", "line_search_steps", "learning_rate", "critic_epochs", "critic_minibatch_size"):
            require_positive(name, getattr(self, name))
        require_fraction("line_search_shrink", self.line_search_shrink, closed=False)
        require_positive("cg_damping", self.cg_damping + 1e-30)
        self.require_minibatch("critic_minibatch_size")

    @property
    def kl_reference(self) -> float:
        return self.max_kl


@dataclass(frozen=True)
class PGConfig(OnPolicyConfig):
    """Vanilla policy-gradient hyper-parameters."""

    estimator: Estimator = "gae"
    """psi_k: whole-trajectory return, reward-to-go, or GAE advantage."""
    baseline: bool = True
    """Subtract the batch-mean baseline b (trajectory and reward_to_go estimators)."""
    learning_rate: float = 1e-3
    """Adam step size of the policy."""
    critic_learning_rate: float = 1e-3
    """Adam step size of the value function."""
    critic_epochs: int = 5
    """Passes of value-function regression per update."""
    critic_minibatch_size: int = 128
    """Samples per value-function gradient step."""
    normalize_advantage: bool = True
    """Divide psi by its batch standard deviation (no centring: that is the baseline's job)."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip of the policy step."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("learning_rate", "critic_learning_rate", "critic_epochs", "critic_minibatch_size", "max_grad_norm"):
            require_positive(name, getattr(self, name))
        self.require_minibatch("critic_minibatch_size")
