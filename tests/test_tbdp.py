"""TBDP (the trajectory library policy): the nearest stored step by standardised distance, and
its local controller applied."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from policysearch.control.lqg import LinearGaussianController
from policysearch.control.tbdp import TrajectoryLibrary


def _controller(x_bar: np.ndarray, u_bar: np.ndarray, k: np.ndarray, K: np.ndarray, limit: float = np.inf) -> LinearGaussianController:
    T, m = u_bar.shape
    f = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return LinearGaussianController(f(x_bar), f(u_bar), f(k), f(K), f(np.broadcast_to(np.eye(m), (T, m, m))),
                                    f(np.full(m, -limit)), f(np.full(m, limit)))


def _library(limit: float = np.inf) -> TrajectoryLibrary:
    # two trajectories of 2 steps in a 2-d state; coordinate 1 spans 100, coordinate 0 about 3
    a = _controller(np.array([[0.0, 0.0], [1.0, 0.0], [9.0, 9.0]]), np.array([[1.0], [2.0]]), np.array([[0.5], [0.0]]),
                    np.array([[[1.0, 0.01]], [[0.0, 1.0]]]), limit)
    b = _controller(np.array([[2.0, 100.0], [3.0, 100.0], [9.0, 9.0]]), np.array([[-1.0], [-2.0]]), np.array([[0.0], [0.25]]),
                    np.array([[[2.0, 0.0]], [[0.0, 0.1]]]), limit)
    return TrajectoryLibrary.from_controllers([a, b])


def test_nearest_is_by_standardised_distance_and_ignores_the_terminal_state() -> None:
    lib = _library()
    assert lib.x_bar.shape == (4, 2)  # the terminal states (9, 9) are not stored
    np.testing.assert_allclose(np.asarray(lib.scale), [np.std([0.0, 1.0, 2.0, 3.0]), 50.0], rtol=1e-6)
    # (0, 55): the raw distance picks b's step 0 ((2, 100): 2029 against 3025); standardised, the 2
    # in coordinate 0 weighs more than the 10 in coordinate 1, and a's step 0 is nearest
    x = jnp.array([0.0, 55.0])
    assert int(jnp.argmin(jnp.sum((x - lib.x_bar) ** 2, axis=-1))) == 2
    assert int(lib.nearest(x)) == 0
    assert int(lib.nearest(jnp.array([2.9, 60.0]))) == 3  # b, step 1


@pytest.mark.parametrize(("x", "expected"), [
    ((0.0, 55.0), 1.0 + 0.5 + 0.01 * 55.0),  # a, step 0: u_bar + k + K (x - x_bar)
    ((2.9, 60.0), -2.0 + 0.25 + 0.1 * (60.0 - 100.0)),  # b, step 1
])
def test_applies_the_local_controller_of_the_nearest_step(x: tuple, expected: float) -> None:
    lib = _library()
    np.testing.assert_allclose(lib.act(0, np.array(x)), [expected], rtol=1e-6)
    np.testing.assert_allclose(lib.act(57, np.array(x)), [expected], rtol=1e-6)  # the time step plays no part


def test_controls_are_clipped_to_the_box() -> None:
    np.testing.assert_allclose(_library(limit=1.0).act(0, np.array([2.9, 60.0])), [-1.0])
