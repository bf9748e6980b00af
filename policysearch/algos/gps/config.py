"""The settings of Guided Policy Search (Algorithm 1), one frozen dataclass the CLI reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from policysearch.algos.configs import Activation
from policysearch.errors import require, require_finite_fields, require_positive


@dataclass(frozen=True)
class GPSConfig:
    """GPS settings. The paper's exact sample counts and network width could not be checked
    (shared/reference/gps-notes.md); these defaults run the 2-link arm in about a minute and the
    Swimmer in about two on 2 cores."""

    iterations: int = 10
    """K, iterations of the main loop."""
    guiding_samples: int = 20
    """Guiding samples per DDP solution (per condition)."""
    policy_samples: int = 5
    """Samples of each new policy per condition."""
    recent_policies: int = 4
    """S_k keeps the samples of this many newest policies (plus all guiding samples)."""
    w_r: float = 1e-2
    """Initial weight of the w_r log Z_t regulariser."""
    w_r_factor: float = 10.0
    """w_r is divided by this on acceptance and multiplied on rejection."""
    w_r_min: float = 1e-6
    """Lower bound of w_r."""
    w_r_max: float = 1e2
    """Upper bound of w_r."""
    lbfgs_iterations: int = 50
    """L-BFGS iterations per optimisation of Phi."""
    init_iterations: int = 200
    """L-BFGS iterations of the maximum-likelihood initialisation (line 3)."""
    normalize_obs: bool = True
    """Standardise the policy's input by the mean and variance of the guiding samples'
    observations (fixed after line 2, clipped to +-10 like PPO's, saved with the policy). The
    walkers' observations mix angles (~0.1) with velocities (~10), which leaves the unscaled fit
    ill-conditioned for L-BFGS: on Walker2dTerrain the unscaled policy fell after about 140 steps,
    the standardised one ran all 250 on every terrain (README, "GPS on unseen terrain")."""
    hidden: tuple[int, ...] = (50,)
    """Hidden widths of the policy network."""
    activation: Activation = "softplus"
    """Its hidden units: soft rectifiers, as in the paper."""
    log_std_init: float = -0.5
    """Initial log standard deviation of the Gaussian policy (then fitted by line 3)."""
    guiding_temperature: float = 0.1
    """Guiding covariance = temperature * Q_uu^-1 (then capped by guiding_max_std). Our costs weigh
    effort lightly, so Q_uu^-1 at temperature 1 is wider than the control limits."""
    guiding_gain_reg: float = 1.0
    """rho of the guiding controllers' gains K = (Q_uu + rho I)^-1 Q_uu K_DDP and covariance
    temperature * (Q_uu + rho I)^-1 (`LinearGaussianController.from_solution`): the LQR with an
    extra (rho / 2) |u - g(x)|^2. 0 gives the plain DDP gains, which on the walkers are large
    enough that the guiding samples fall."""
    guiding_max_std: float = 0.5
    """Cap on the guiding standard deviation, as a fraction of the half control range."""
    guiding_min_std: float = 0.001
    """Floor of the guiding standard deviation, as a fraction of the half control range."""
    example_samples: int = 0
    """Guiding samples of the example policy with Gaussian noise per condition (line 2, a second
    kind of guiding distribution, `gps.example`; needs an example policy, --example-policy). 0:
    the DDP controllers' alone, as in the paper."""
    example_noise: float = 0.125
    """Standard deviation of the example's noise, as a fraction of the half control range (0.05 on
    the humanoid's +-0.4, the noise of experiments/imitation_coverage.py)."""
    ilqr_iterations: int = 200
    """iLQR iteration cap for every DDP solution."""
    adaptive_guiding: bool = False
    """Line 9: re-optimise the guiding controllers toward the current policy each iteration."""
    adaptive_weight: float = 1.0
    """lambda of the adaptive cost l(x, u) - lambda log pi_theta(u | x)."""
    resample_best: bool = True
    """Line 16: on rejection, draw new samples of pi_theta*."""
    accept_on: Literal["estimate", "true_cost"] = "estimate"
    """Lines 10-11: compare theta_k with theta* by their importance-sampled values on S_k (the
    paper's), or by the true cost of each one's mean actions from every condition (one
    deterministic rollout each on the model; the policy the user runs)."""

    def __post_init__(self) -> None:
        for name in ("iterations", "guiding_samples", "policy_samples", "recent_policies", "lbfgs_iterations",
                     "init_iterations", "guiding_temperature", "guiding_max_std", "guiding_min_std", "ilqr_iterations"):
            require_positive(name, getattr(self, name))
        require(self.w_r_factor > 1, f"--w-r-factor must be > 1, got {self.w_r_factor}")
        require(0 < self.w_r_min <= self.w_r <= self.w_r_max, "--w-r must lie in [--w-r-min, --w-r-max], both positive")
        require(self.example_samples >= 0, f"--example-samples must be >= 0, got {self.example_samples}")
        require(self.example_noise > 0, f"--example-noise must be positive, got {self.example_noise}")
        require(self.guiding_gain_reg >= 0, f"--guiding-gain-reg must be >= 0, got {self.guiding_gain_reg}")
        require(self.guiding_min_std < self.guiding_max_std, "--guiding-min-std must be below --guiding-max-std")
        require(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), f"--hidden needs positive widths, got {self.hidden}")
        require_finite_fields(self)
