"""The run configs: what to train or plan on and how the run is kept, as frozen, validated
dataclasses (their fields are the CLI's flags and the run folder's saved record). `RunConfig` for
the on-policy trainer (`run.train`), `GPSRunConfig` for GPS's (`run.train_gps`), `PlanConfig` for
`policysearch plan` (`run.plan`).

They live apart from the trainers for one reason: this module imports no JAX, so the command
line's `--help` and its refusal of bad input answer in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import tyro

from policysearch.control.receding import RecedingConfig
from policysearch.envs.vector import Backend
from policysearch.errors import require, require_finite_fields, require_positive, require_seed

if TYPE_CHECKING:
    from policysearch.core.normalize import NormConfig

RunDir = Annotated[str, tyro.conf.arg(help_behavior_hint="")]
"""A run folder flag: empty means the default folder its help names (tyro would add "(default: '')")."""


@dataclass(frozen=True)
class RunConfig:
    """What to train on and how the run is kept: shared by every algorithm."""

    env: str = "Hopper-v5"
    """Gymnasium environment id (or `module:EnvId` for a user's env)."""
    total_steps: int = 1_000_000
    """Environment steps to train for (all envs together)."""
    seed: int = 0
    """Seed of parameters, sampling and environments."""
    num_envs: int = 8
    """Environments stepped in parallel."""
    run_dir: RunDir = ""
    """Where config, metrics, checkpoints, plots and videos go (default: runs/ALGO-ENV-sSEED)."""
    backend: Backend = "auto"
    """Vector env backend: EnvPool where it serves the env, else Gymnasium."""
    normalize_obs: bool = True
    """Running mean/std observation normalisation (statistics saved with the policy)."""
    normalize_reward: bool = True
    """Scale rewards by the running std of the discounted return."""
    clip_obs: float = 10.0
    """Clip normalised observations to [-clip, clip]."""
    clip_reward: float = 10.0
    """Clip scaled rewards to [-clip, clip]."""
    checkpoint_every: int = 100_000
    """Steps between checkpoints (one is always written at the end)."""
    eval_every: int = 0
    """Steps between evaluations during training (0: only at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation (0: none)."""
    video: bool = True
    """Render an MP4 of the trained policy at the end (MuJoCo tasks)."""
    progress: bool = True
    """Show a live progress bar."""
    profile: bool = False
    """Time each phase of every update (env stepping, policy, transfers, the update, logging,
    checkpoints) and print the table at the end (also RUN_DIR/profile.json; the first update,
    which compiles, is left out)."""
    overwrite: bool = False
    """Start afresh in a run dir that already holds a run (its checkpoints are deleted)."""

    def __post_init__(self) -> None:
        require_positive("total_steps", self.total_steps)
        require_positive("num_envs", self.num_envs)
        require_positive("checkpoint_every", self.checkpoint_every)
        require(self.eval_every >= 0 and self.eval_episodes >= 0, "--eval-every and --eval-episodes must be >= 0")
        require_positive("clip_obs", self.clip_obs)
        require_positive("clip_reward", self.clip_reward)
        require_seed(self.seed)
        require_finite_fields(self)

    @property
    def norm(self) -> NormConfig:
        from policysearch.core.normalize import NormConfig

        return NormConfig(self.normalize_obs, self.normalize_reward, self.clip_obs, self.clip_reward)


@dataclass(frozen=True)
class GPSRunConfig:
    """What GPS trains on and where the run goes."""

    env: str = "arm-reach-dense"
    """A task with a dynamics model: a JAX system (arm-reach-dense, arm-reach, pendulum-swingup,
    cartpole-swingup) or a MuJoCo robot with a locomotion cost (Swimmer-v5, Hopper-v5, Walker2d-v5,
    policysearch/Walker2dTerrain-v0: one condition per --terrains seed)."""
    conditions: int = 4
    """Training conditions (initial states). arm-reach-dense has its 4 documented starts; other
    tasks use the default start and perturbed ones."""
    horizon: int = 0
    """Time steps T of every trajectory (0: the task's default, 150 for MuJoCo robots)."""
    condition_spread: float = 0.1
    """Perturbation (rad) of the joint angles of the extra initial states."""
    terrains: tuple[int, ...] = (0, 1, 2, 3)
    """Training terrain seeds of policysearch/Walker2dTerrain-v0 (one condition each, or --segments each; --conditions is ignored there)."""
    segments: int = 1
    """On terrains: each terrain's example motion over segments x horizon steps is cut into this
    many conditions of --horizon steps, each from the motion's state there (short guiding
    trajectories along a long walk; `MujocoProblem`). Needs an example motion."""
    example_policy: str = ""
    """A trained policysearch run (PPO, TRPO or GPS) whose deterministic rollout from each condition
    is the controls iLQR starts from: the paper initialised DDP from example motions. MuJoCo robots
    only; empty: the robot's default start (`control.costs.initial_controls`, for the walkers built window by window by `control.receding`)."""
    example_controls: str = ""
    """A GPS run of the same task whose saved DDP controllers' nominal controls are iLQR's start
    at each condition (instead of --example-policy's rollouts): GPS again with other settings or
    another seed from the same DDP solutions, without solving them again from the example. A run
    of the same conditions and --horizon also gives their start states, so the example's motion
    is neither rolled out nor repaired again; one of other --segments is cut again."""
    target_velocity: float = 1.0
    """Forward velocity (m/s) of the MuJoCo robots' locomotion cost."""
    seed: int = 0
    """Seed of parameters, sampling and initial-state perturbations."""
    run_dir: RunDir = ""
    """Where the run goes (default: runs/gps-ENV-sSEED)."""
    eval_episodes: int = 10
    """Episodes of the final evaluation on the real env (MuJoCo robots)."""
    overwrite: bool = False
    """Start afresh in a run dir that already holds a run."""
    progress: bool = True
    """Show what each long phase is doing (DDP solves, fits, samples), how far and its ETA."""
    json: bool = False
    """Print the summary as one JSON object (and no progress)."""

    def __post_init__(self) -> None:
        require_positive("conditions", self.conditions)
        require_positive("segments", self.segments)
        require(self.horizon >= 0, f"--horizon must be >= 0, got {self.horizon}")
        require(self.eval_episodes >= 0, f"--eval-episodes must be >= 0, got {self.eval_episodes}")
        require(self.target_velocity > 0, f"--target-velocity must be > 0, got {self.target_velocity}")
        require_seed(self.seed)
        require_finite_fields(self)


@dataclass(frozen=True)
class PlanConfig:
    """Trajectory optimisation of one task."""

    env: str = "pendulum-swingup"
    """Task: a JAX system (pendulum-swingup, cartpole-swingup, arm-reach) or a MuJoCo robot with a
    locomotion cost (Swimmer-v5, Hopper-v5, Walker2d-v5, Humanoid-v5, the terrain tasks)."""
    target_velocity: float = 1.0
    """Forward velocity the locomotion cost asks for (MuJoCo robots)."""
    video: bool = True
    """Render the closed-loop rollout to an MP4 (MuJoCo robots)."""
    fd_eps: float = 1e-3
    """Finite-difference step of the MuJoCo Jacobians (wide enough to average over contacts)."""
    receding: bool = True
    """Start a walker's (Hopper, Walker2d) full-horizon iLQR from controls built window by window
    (`policysearch.control.receding`); off: from zero controls."""
    window: int = RecedingConfig.window
    """Steps each receding-horizon window looks ahead."""
    commit: int = RecedingConfig.commit
    """Steps kept from each window before solving the next."""
    window_iterations: int = RecedingConfig.window_iterations
    """iLQR iteration cap per window."""
    horizon: int = 100
    """Time steps T."""
    iterations: int = 100
    """iLQR iteration cap."""
    tolerance: float = 1e-6
    """Relative cost decrease below which iLQR stops."""
    temperature: float = 1.0
    """Scale of the controller's covariance Q_uu^-1."""
    run_dir: RunDir = ""
    """Where the controller and the cost plot go (default: runs/plan-ENV)."""
    json: bool = False
    """Print one JSON object of the result."""

    def __post_init__(self) -> None:
        require_positive("horizon", self.horizon)
        require_positive("iterations", self.iterations)
        require_positive("temperature", self.temperature)
        require_positive("fd_eps", self.fd_eps)
        self.receding_config()  # checks the window settings
        require_finite_fields(self)

    def receding_config(self) -> RecedingConfig:
        return RecedingConfig(self.window, self.commit, self.window_iterations)
