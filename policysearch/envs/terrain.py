"""`policysearch/Walker2dTerrain-v0`: the Walker2d-v5 robot on uneven ground, a MuJoCo height
field generated from a `terrain_seed` (the walking task of Guided Policy Search, Levine and
Koltun 2013, sec. 5); `policysearch/HumanoidTerrain-v0`: the Humanoid-v5 robot on the same
terrains (the running task of the paper's Figure 5).

The profile h(x) is flat for x < 0.5 m and then the sum of (a) a piecewise-linear slope whose grade
changes every 2-4 m, uniform in +-0.08 * roughness rad, and (b) Gaussian bumps (one every 1.5 m
on average, height +-0.06 * roughness m, width 0.2-0.5 m); it is sampled every 5 cm over
[-5, 35] m. The height field is a 2-row MuJoCo hfield, constant across y (4 m wide for the planar
walker, 20 m for the humanoid, which may drift sideways). Health, the reward and the observation
are the robot's v5 ones, with the torso height measured above the ground under the torso instead
of above z = 0 (the observation's first entry). The humanoid's observation is its state without
the root's x and y: qpos[2:] (22) and qvel (23), 45 entries, Humanoid-v5 with its
include_*_in_observation options off: the centre-of-mass inertias and velocities, actuator forces
and contact forces that v5 adds by default are not functions a dynamics model or GPS's features
give from the state alone. Its reward is Humanoid-v5's: forward velocity of the centre of mass,
a healthy bonus, control and contact costs.

Training terrains are seeds 0-3 (`TRAIN_TERRAINS`); test terrains, never trained on, are seeds
100-103 (`TEST_TERRAINS`), both at roughness 1.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.humanoid_v5 import HumanoidEnv
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv

ROUGHNESS = 1.0
"""The tasks' default roughness (scale of the slopes and bumps)."""
TRAIN_TERRAINS = (0, 1, 2, 3)
TEST_TERRAINS = (100, 101, 102, 103)
X_MIN, X_MAX, DX = -5.0, 35.0, 0.05
ENV_ID = "policysearch/Walker2dTerrain-v0"
SET_ENV_ID = "policysearch/Walker2dTerrains-v0"
"""A set of terrains, one drawn at every reset: how PPO and TRPO train on several terrains."""
HUMANOID_ENV_ID = "policysearch/HumanoidTerrain-v0"
HUMANOID_SET_ENV_ID = "policysearch/HumanoidTerrains-v0"
HUMANOID_FLAT_ENV_ID = "policysearch/HumanoidFlat-v0"
"""The humanoid terrain task on flat ground (roughness 0): the same 45-entry observation, where a
runner is trained as the example motion GPS's DDP starts from."""


@dataclass(frozen=True)
class RobotAsset:
    """Where a robot's Gymnasium MJCF has its floor, and how wide the terrain is across y."""

    asset: str
    floor: str
    """The floor geom's opening text, replaced by the height field."""
    floor_extra: str
    """Attributes of the floor geom kept on the height field."""
    half_width: float


ROBOTS = {
    "walker2d": RobotAsset("walker2d_v5.xml", '<geom conaffinity="1" condim="3" name="floor"', 'conaffinity="1" condim="3"', 2.0),
    "humanoid": RobotAsset("humanoid.xml", '<geom condim="3" friction="1 .1 .1" material="MatPlane" name="floor"',
                           'condim="3" friction="1 .1 .1"', 10.0),
}


def terrain_profile(terrain_seed: int, roughness: float = ROUGHNESS) -> tuple[np.ndarray, np.ndarray]:
    """(x, h(x)) of the terrain, documented in the module docstring."""
    rng = np.random.default_rng(terrain_seed)
    x = np.arange(X_MIN, X_MAX + DX / 2, DX)
    slope = np.zeros_like(x)
    pos = 0.5
    while pos < X_MAX:
        length = rng.uniform(2.0, 4.0)
        slope[(x >= pos) & (x < pos + length)] = np.tan(rng.uniform(-0.08, 0.08) * roughness)
        pos += length
    h = np.concatenate([[0.0], np.cumsum(slope[:-1] * DX)])
    for centre in np.arange(1.5, X_MAX, 1.5) + rng.uniform(-0.5, 0.5, len(np.arange(1.5, X_MAX, 1.5))):
        h += rng.uniform(-0.06, 0.06) * roughness * np.exp(-0.5 * ((x - centre) / rng.uniform(0.2, 0.5)) ** 2)
    h[x < 0.5] = 0.0
    return x, h


def ground_height(profile: tuple[np.ndarray, np.ndarray], x: float) -> float:
    return float(np.interp(x, *profile))


def terrain_xml(terrain_seed: int, roughness: float = ROUGHNESS, robot: str = "walker2d") -> Path:
    """An MJCF file of the robot's v5 model with the plane floor replaced by this terrain's height
    field (written once per (robot, seed, roughness) to a cache folder, atomically)."""
    import gymnasium.envs.mujoco as gm

    spec = ROBOTS[robot]
    cache = Path(os.environ.get("POLICYSEARCH_CACHE", Path(tempfile.gettempdir()) / "policysearch")) / "terrain"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{robot}_terrain_v2_s{terrain_seed}_r{roughness:g}.xml"
    if path.exists():
        return path
    x, h = terrain_profile(terrain_seed, roughness)
    # MuJoCo rescales elevation data to span [0, 1], so it must span exactly that range
    lo, hi = float(h.min()), max(float(h.max()), float(h.min()) + 1e-3)
    elev = np.clip((h - lo) / (hi - lo), 0.0, 1.0)
    data = " ".join(f"{v:.5f}" for v in np.concatenate([elev, elev]))
    base = (Path(gm.__file__).parent / "assets" / spec.asset).read_text()
    hfield = (f'<hfield name="terrain" nrow="2" ncol="{len(x)}" size="{(X_MAX - X_MIN) / 2:.4f} {spec.half_width:g} {hi - lo:.5f} 0.5" '
              f'elevation="{data}"/>')
    floor_start = base.index(spec.floor)
    floor_end = base.index("/>", floor_start) + 2
    floor = (f'<geom {spec.floor_extra} name="floor" hfield="terrain" type="hfield" '
             f'pos="{(X_MAX + X_MIN) / 2:.4f} 0 {lo:.5f}" rgba="0.8 0.9 0.8 1" material="MatPlane"/>')
    xml = base[:floor_start] + floor + base[floor_end:]
    xml = xml.replace("<asset>", "<asset>\n        " + hfield, 1)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(xml)
    os.replace(tmp, path)
    return path


class OnTerrain:
    """What a robot on a terrain changes in its Gymnasium env: the terrain's MJCF and profile, and
    the torso height measured above the ground beneath it, in health and in the observation's first
    entry, so that a dip in the ground does not look like a fall. A subclass names its `robot`
    (`ROBOTS`) and the index of the root's z in qpos, and puts this class before the env's."""

    robot: str
    z_index: int
    defaults: dict = {}
    """Env keyword arguments the task sets unless given."""

    def __init__(self, terrain_seed: int = 0, roughness: float = ROUGHNESS, **kwargs) -> None:
        self.terrain_seed, self.roughness = terrain_seed, roughness
        self.profile = terrain_profile(terrain_seed, roughness)
        super().__init__(xml_file=str(terrain_xml(terrain_seed, roughness, self.robot)), **{**self.defaults, **kwargs})

    def height_above_ground(self) -> float:
        return float(self.data.qpos[self.z_index]) - ground_height(self.profile, float(self.data.qpos[0]))

    def _get_obs(self) -> np.ndarray:
        obs = super()._get_obs()
        obs[0] -= ground_height(self.profile, float(self.data.qpos[0]))
        return obs


class Walker2dTerrainEnv(OnTerrain, Walker2dEnv):
    """Walker2d-v5 on the terrain of `terrain_seed`; health uses the height above the ground."""

    robot, z_index = "walker2d", 1

    @property
    def is_healthy(self) -> bool:
        min_z, max_z = self._healthy_z_range
        min_angle, max_angle = self._healthy_angle_range
        return bool(min_z < self.height_above_ground() < max_z and min_angle < self.data.qpos[2] < max_angle)


class HumanoidTerrainEnv(OnTerrain, HumanoidEnv):
    """Humanoid-v5 on the terrain of `terrain_seed`: health and the observation's height use the
    height above the ground; the observation is the 45-entry state (module docstring)."""

    robot, z_index = "humanoid", 2
    defaults = {f"include_{k}_in_observation": False for k in ("cinert", "cvel", "qfrc_actuator", "cfrc_ext")}

    @property
    def is_healthy(self) -> bool:
        min_z, max_z = self._healthy_z_range
        return bool(min_z < self.height_above_ground() < max_z)


class TerrainSetEnv(gym.Env):
    """A terrain task on one of `terrain_seeds`, drawn uniformly (from the reset seed's stream)
    at every reset; observation and action spaces are the robot's."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 125}
    robot: type = Walker2dTerrainEnv

    def __init__(self, terrain_seeds: tuple[int, ...] = TRAIN_TERRAINS, roughness: float = ROUGHNESS, **kwargs) -> None:
        self.envs = [self.robot(s, roughness, **kwargs) for s in terrain_seeds]
        self.metadata = {**self.metadata, "render_fps": self.envs[0].metadata["render_fps"]}
        self.observation_space, self.action_space = self.envs[0].observation_space, self.envs[0].action_space
        self.render_mode = kwargs.get("render_mode")
        self.current = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.current = int(self.np_random.integers(len(self.envs)))
        return self.envs[self.current].reset(seed=int(self.np_random.integers(2**31)), options=options)

    def step(self, action):
        return self.envs[self.current].step(action)

    def render(self):
        return self.envs[self.current].render()

    def close(self) -> None:
        for env in self.envs:
            env.close()


class Walker2dTerrainSetEnv(TerrainSetEnv):
    robot = Walker2dTerrainEnv


class HumanoidTerrainSetEnv(TerrainSetEnv):
    robot = HumanoidTerrainEnv


def register(roughness: float | None = None) -> None:
    """Register the terrain tasks (once), or, given a roughness, register them again with it as
    their default: every env made by id afterwards in this process (GPS's models, RL training,
    evaluation) is built on that roughness unless told otherwise."""
    kwargs = {} if roughness is None else {"roughness": float(roughness)}
    for env_id, entry in ((ENV_ID, "Walker2dTerrainEnv"), (SET_ENV_ID, "Walker2dTerrainSetEnv"),
                          (HUMANOID_ENV_ID, "HumanoidTerrainEnv"), (HUMANOID_SET_ENV_ID, "HumanoidTerrainSetEnv")):
        if env_id not in gym.envs.registry or kwargs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "overriding environment"
                gym.register(env_id, entry_point=f"policysearch.envs.terrain:{entry}", max_episode_steps=1000, kwargs=kwargs)
    if HUMANOID_FLAT_ENV_ID not in gym.envs.registry:  # always flat, whatever roughness the others are given
        gym.register(HUMANOID_FLAT_ENV_ID, entry_point="policysearch.envs.terrain:HumanoidTerrainEnv", max_episode_steps=1000,
                     kwargs={"roughness": 0.0})

