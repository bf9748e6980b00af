"""Run a policy exported by `policysearch export --format numpy` with NumPy alone.

Copy this file into the robot's code base: it needs only NumPy (no JAX, Flax or policysearch).

    from loader import load
    policy = load("policy.npz")
    action = policy.act(observation)          # one observation [obs_dim] or a batch [B, obs_dim]

A network policy (PPO, TRPO, PG, GPS) computes, from the raw observation o:

    x = clip((o - mean) / sqrt(var + eps), -clip, clip)     (only if the run normalised observations)
    h_0 = x,  h_{i+1} = f(h_i W_i + b_i),  out = h_L W_L + b_L
    action = clip(out, low, high)   for continuous actions (the Gaussian's mean)
    action = argmax(out)            for discrete actions (the most likely choice)

A linear-Gaussian controller (iLQR / DDP, a GPS guiding controller) acts on the robot's state x
(for MuJoCo: qpos and qvel concatenated) at time step t:

    u = clip(u_bar[t] + k[t] + K[t] (x - x_bar[t]), u_low, u_high)

its time steps past the horizon reuse the last one. `policy.meta` holds what the exporter recorded
(env id, algorithm, spaces, version, the state's layout).
"""

from __future__ import annotations

import json

import numpy as np

ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "softplus": lambda x: np.logaddexp(x, 0.0),
}


class NetworkPolicy:
    """An MLP policy with its frozen observation normalisation."""

    def __init__(self, arrays: dict, meta: dict) -> None:
        self.meta = meta
        self.layers = [(arrays[f"W{i}"], arrays[f"b{i}"]) for i in range(int(arrays["num_layers"]))]
        self.activation = ACTIVATIONS[str(arrays["activation"])]
        self.discrete = str(arrays["kind"]) == "categorical"
        self.normalize = bool(arrays["normalize_obs"])
        self.mean, self.std, self.clip = arrays["obs_mean"], np.sqrt(arrays["obs_var"] + arrays["eps"]), arrays["obs_clip"]
        self.low, self.high = arrays["action_low"], arrays["action_high"]

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic action for obs[obs_dim] or obs[B, obs_dim] (float32 arithmetic)."""
        x = np.asarray(obs, np.float32)
        if self.normalize:
            x = np.minimum(np.maximum((x - self.mean) / self.std, -self.clip), self.clip)
        for i, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return np.argmax(x, axis=-1) if self.discrete else np.clip(x, self.low, self.high)


class LinearGaussianController:
    """u = clip(u_bar[t] + k[t] + K[t] (x - x_bar[t]), u_low, u_high): the mean of the controller."""

    def __init__(self, arrays: dict, meta: dict) -> None:
        self.meta = meta
        self.x_bar, self.u_bar, self.k, self.K = arrays["x_bar"], arrays["u_bar"], arrays["k"], arrays["K"]
        self.cov, self.u_low, self.u_high = arrays["cov"], arrays["u_low"], arrays["u_high"]
        self.horizon = len(self.u_bar)

    def act(self, t: int, x: np.ndarray) -> np.ndarray:
        """The control at time step t for state x[state_dim]."""
        t = min(int(t), self.horizon - 1)
        return np.clip(self.u_bar[t] + self.k[t] + self.K[t] @ (np.asarray(x, self.x_bar.dtype) - self.x_bar[t]), self.u_low, self.u_high)


def load(path: str) -> NetworkPolicy | LinearGaussianController:
    """The policy or controller in an exported .npz file."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    kind = meta.get("format")
    if kind == "policysearch-network-v1":
        return NetworkPolicy(arrays, meta)
    if kind == "policysearch-linear-gaussian-v1":
        return LinearGaussianController(arrays, meta)
    raise ValueError(f"{path} is not a policysearch export (format {kind!r})")
