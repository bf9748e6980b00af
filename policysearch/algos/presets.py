"""Per-task hyper-parameter presets (`policysearch train ALGO --preset NAME`): named sets of flag
values taken from a published source, each value's origin recorded. Imports no JAX.

`zoo`: the RL Baselines3 Zoo's tuned settings (DLR-RM/rl-baselines3-zoo at commit ZOO_COMMIT,
hyperparams/ppo.yml and trpo.yml), the ones behind the returns Stable-Baselines3 and sb3-contrib
publish for MuJoCo. The Zoo tunes the -v4 tasks; the presets serve the same robots at -v4 and -v5.
Its keys map onto our flags as follows:

    n_envs -> --num-envs                 n_steps * n_envs -> --steps-per-update
    batch_size -> --minibatch-size (PPO), --critic-minibatch-size (TRPO)
    n_epochs -> --epochs                 n_critic_updates -> --critic-epochs
    cg_max_steps -> --cg-iterations      target_kl x A -> --max-kl, cg_damping x A -> --cg-damping
    clip_range -> --clip-coef            a constant learning rate -> --no-anneal-lr
    policy_kwargs: log_std_init, ortho_init, activation_fn, net_arch -> --log-std-init,
    --ortho-init, --activation, --hidden
    normalize: true -> obs and reward normalisation, our default

TRPO's A is the number of action dimensions: sb3-contrib bounds the KL averaged over the action's
dimensions (its Gaussian's KL is per dimension, and `.mean()` takes both the samples and the
dimensions) and damps the Fisher matrix of that average, where our --max-kl bounds the KL of the
whole action distribution (the paper's). Its target_kl 0.01 on Walker2d (A = 6) is our --max-kl
0.06, and with the damping scaled alike the two take the same step to float rounding
(tests/test_peers.py); `run.peers` divides back for the peer.

Keys the Zoo leaves out are SB3's defaults (PPO: n_steps 2048, batch 64, 10 epochs, lr 3e-4
constant, clip 0.2, ent 0, vf 0.5, grad-norm 0.5; TRPO: target_kl 0.01). sb3-contrib TRPO's
`sub_sampling_factor: 1` is no sub-sampling, which is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policysearch.errors import UserError

ZOO_COMMIT = "22e3ff2450fd92033f7f032915e1f64894a09584"
ZOO_URL = f"https://github.com/DLR-RM/rl-baselines3-zoo/blob/{ZOO_COMMIT}/hyperparams"


@dataclass(frozen=True)
class Preset:
    """Flag values (our field names) for one algorithm on one robot, and where they come from."""

    values: dict[str, Any]
    source: str


ACTION_DIMS = {"Hopper": 3, "Walker2d": 6, "HalfCheetah": 6, "Ant": 8, "Swimmer": 2}
"""A, the action dimensions of the robots the TRPO presets serve (the same at -v4 and -v5)."""


def _zoo_trpo(robot: str, target_kl: float = 0.01, **changes: Any) -> dict[str, Any]:
    """trpo.yml's `&pybullet-defaults` that its `&mujoco-defaults` (Ant-v4) inherit (n_envs 2,
    n_steps 1024, ...), its KL bound and damping (0.1) in our units (x A, see above)."""
    a = ACTION_DIMS[robot]
    return {"num_envs": 2, "steps_per_update": 2048, "critic_minibatch_size": 128, "gamma": 0.99, "gae_lambda": 0.95,
            "cg_iterations": 25, "cg_damping": round(0.1 * a, 10), "critic_epochs": 20, "learning_rate": 1e-3, "max_kl": round(target_kl * a, 10), **changes}


_ZOO_PPO_SB3 = {"steps_per_update": 2048, "minibatch_size": 64, "epochs": 10, "learning_rate": 3e-4, "anneal_lr": False,
                "clip_coef": 0.2, "ent_coef": 0.0, "vf_coef": 0.5, "max_grad_norm": 0.5, "gamma": 0.99, "gae_lambda": 0.95}
"""SB3 PPO's defaults, which ppo.yml's entries start from (its learning rate is constant)."""

_BIG_RELU = {"hidden": (256, 256), "activation": "relu", "log_std_init": -2.0, "ortho_init": False}

ZOO: dict[tuple[str, str], Preset] = {
    ("trpo", "Hopper"): Preset(_zoo_trpo("Hopper"), f"{ZOO_URL}/trpo.yml (Hopper-v4: <<: *mujoco-defaults)"),
    ("trpo", "Walker2d"): Preset(_zoo_trpo("Walker2d"), f"{ZOO_URL}/trpo.yml (Walker2d-v4: <<: *mujoco-defaults)"),
    ("trpo", "Ant"): Preset(_zoo_trpo("Ant"), f"{ZOO_URL}/trpo.yml (Ant-v4: &mujoco-defaults)"),
    ("trpo", "HalfCheetah"): Preset(_zoo_trpo("HalfCheetah", target_kl=0.04), f"{ZOO_URL}/trpo.yml (HalfCheetah-v4: target_kl 0.04)"),
    ("trpo", "Swimmer"): Preset(_zoo_trpo("Swimmer", gamma=0.9999), f"{ZOO_URL}/trpo.yml (Swimmer-v4: gamma 0.9999)"),
    ("ppo", "Hopper"): Preset(
        {**_ZOO_PPO_SB3, **_BIG_RELU, "num_envs": 1, "steps_per_update": 512, "minibatch_size": 32, "gamma": 0.999,
         "learning_rate": 9.80828e-05, "ent_coef": 0.00229519, "clip_coef": 0.2, "epochs": 5, "gae_lambda": 0.99,
         "max_grad_norm": 0.7, "vf_coef": 0.835671},
        f"{ZOO_URL}/ppo.yml (Hopper-v4, tuned)"),
    ("ppo", "Walker2d"): Preset(
        {**_ZOO_PPO_SB3, "num_envs": 1, "steps_per_update": 512, "minibatch_size": 32, "gamma": 0.99,
         "learning_rate": 5.05041e-05, "ent_coef": 0.000585045, "clip_coef": 0.1, "epochs": 20, "gae_lambda": 0.95,
         "max_grad_norm": 1.0, "vf_coef": 0.871923},
        f"{ZOO_URL}/ppo.yml (Walker2d-v4, tuned)"),
    ("ppo", "HalfCheetah"): Preset(
        {**_ZOO_PPO_SB3, **_BIG_RELU, "num_envs": 1, "steps_per_update": 512, "minibatch_size": 64, "gamma": 0.98,
         "learning_rate": 2.0633e-05, "ent_coef": 0.000401762, "clip_coef": 0.1, "epochs": 20, "gae_lambda": 0.92,
         "max_grad_norm": 0.8, "vf_coef": 0.58096},
        f"{ZOO_URL}/ppo.yml (HalfCheetah-v4, tuned)"),
    ("ppo", "Swimmer"): Preset(
        {**_ZOO_PPO_SB3, "num_envs": 4, "steps_per_update": 4096, "minibatch_size": 256, "gamma": 0.9999,
         "learning_rate": 6e-4, "gae_lambda": 0.98},
        f"{ZOO_URL}/ppo.yml (Swimmer-v4, tuned)"),
    ("ppo", "Ant"): Preset({**_ZOO_PPO_SB3, "num_envs": 1}, f"{ZOO_URL}/ppo.yml (Ant-v4: SB3's defaults, n_envs 1)"),
}

PRESETS: dict[str, dict[tuple[str, str], Preset]] = {"zoo": ZOO}


def robot(env_id: str) -> str:
    """The robot of a MuJoCo env id: "Hopper-v5" -> "Hopper"."""
    return env_id.rsplit(":", 1)[-1].split("/")[-1].rsplit("-v", 1)[0]


def find_preset(name: str, algo: str, env_id: str) -> Preset:
    """The preset `name` for `algo` on `env_id`'s robot; a UserError naming what exists otherwise."""
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}': use one of {', '.join(PRESETS)}")
    table = PRESETS[name]
    try:
        return table[(algo, robot(env_id))]
    except KeyError:
        served = sorted({r for a, r in table if a == algo})
        what = f"it serves {algo} on {', '.join(served)}" if served else f"it has nothing for {algo}"
        raise UserError(f"preset '{name}' has no settings for {algo} on {env_id} ({what}): leave out --preset") from None
