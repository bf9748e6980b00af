"""The policy's forward pass, written once over an array module `xp`: `jax.numpy` inside jitted
code (the updates, the reference rollout step), NumPy where a per-step call into JAX costs more
than the arithmetic (the rollout's step: 30-40 us of NumPy against 275-380 us per jitted call for
an [8, 11] batch through 64x64 layers on the 2-core machine), and in a deployed controller.

It imports nothing beyond NumPy, so that it runs where JAX is not installed.

    normalize:  o' = clip((o - mean) / sqrt(var + eps), -clip, clip)
    mlp:        h_0 = x, h_{i+1} = f(h_i W_i + b_i), out = h_L W_L + b_L
    action:     Gaussian  a = mu + exp(log_std) * eps,        eps ~ N(0, I)
                categorical a = argmax_j (logits_j + g_j),    g ~ Gumbel(0, 1)   (the Gumbel-max trick)
Zero noise gives the deterministic action (the mean, the most likely choice).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

EPS = 1e-8

Array = Any
"""A NumPy or JAX array."""


def _relu(x: Array, xp: Any) -> Array:
    return xp.where(x > 0, x, 0.0)  # jax.nn.relu's value and its gradient at 0 (zero)


ACTIVATIONS: dict[str, Callable[[Array, Any], Array]] = {
    "tanh": lambda x, xp: xp.tanh(x),
    "relu": _relu,
    "softplus": lambda x, xp: xp.logaddexp(x, 0.0),  # jax.nn.softplus
}


def normalize(mean: Array, var: Array, x: Array, clip: float, xp: Any = np) -> Array:
    """clip((x - mean) / sqrt(var + eps), -clip, clip) (as min(max(., -clip), clip), which is what
    jnp.clip computes and a quarter of np.clip's overhead on small arrays)."""
    return xp.minimum(xp.maximum((x - mean) / xp.sqrt(var + EPS), -clip), clip)


Layers = Sequence[tuple[Array, Array]]
"""[(W_0, b_0), ...]: an MLP's dense layers, in order."""


def dense_layers(params: Mapping[str, Any] | Layers) -> Layers:
    """[(W_0, b_0), ...] of a Flax MLP's parameters {"params": {"Dense_0": {"kernel", "bias"}, ...}}
    (a list of layers is returned as it is)."""
    if isinstance(params, (list, tuple)) or not isinstance(params, Mapping):  # the cheap test first: it runs per step
        return params
    layers = params["params"]
    return [(layers[f"Dense_{i}"]["kernel"], layers[f"Dense_{i}"]["bias"]) for i in range(len(layers))]


def mlp(params: Mapping[str, Any] | Layers, x: Array, activation: str, xp: Any = np) -> Array:
    """The MLP's output for x[..., in]: dense layers with `activation` between them (the same
    arithmetic as Flax's Dense: x @ W + b). `params`: Flax's parameter dict, or its
    `dense_layers` made once where the call is in a loop."""
    f = ACTIVATIONS[activation]
    layers = dense_layers(params)
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        x = x @ w + b
        if i < last:
            x = f(x, xp)
    return x


def gaussian_action(mean: Array, std: Array, noise: Array) -> Array:
    """mu + std * eps."""
    return mean + std * noise


def categorical_action(logits: Array, gumbel: Array, xp: Any = np) -> Array:
    """argmax_j (logits_j + g_j): a sample of softmax(logits) for Gumbel(0, 1) noise g."""
    return xp.argmax(logits + gumbel, axis=-1)
