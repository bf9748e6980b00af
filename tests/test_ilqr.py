"""iLQR against independent truths: the finite-horizon discrete Riccati recursion on a linear-
quadratic problem, the box-QP against brute force, and a pendulum swing-up's end state."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from policysearch.control.boxqp import box_qp
from policysearch.control.ilqr import ILQRConfig, backward_pass, derivatives, rollout, solve
from policysearch.envs.systems import TASKS


@pytest.fixture
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def _riccati(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, Qf: np.ndarray, T: int):
    """P_T = Qf; K_t = -(R + B'P B)^-1 B'P A; P_t = Q + A'P A + A'P B K_t (NumPy, float64)."""
    P, Ps, Ks = Qf, [Qf], []
    for _ in range(T):
        K = -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P = Q + A.T @ P @ A + A.T @ P @ B @ K
        Ks.append(K)
        Ps.append(P)
    return Ps[::-1], Ks[::-1]


def test_first_iteration_equals_riccati(x64) -> None:
    rng = np.random.default_rng(0)
    n, m, T = 4, 2, 30
    A = np.eye(n) + 0.1 * rng.normal(size=(n, n))
    B = 0.1 * rng.normal(size=(n, m))
    Lq = rng.normal(size=(n, n))
    Q, R, Qf = Lq @ Lq.T / n + np.eye(n) * 0.1, np.diag([0.5, 2.0]), 10 * np.eye(n)
    x0 = rng.normal(size=n)
    dyn = lambda x, u: jnp.asarray(A) @ x + jnp.asarray(B) @ u  # noqa: E731
    run = lambda x, u: 0.5 * x @ jnp.asarray(Q) @ x + 0.5 * u @ jnp.asarray(R) @ u  # noqa: E731
    term = lambda x: 0.5 * x @ jnp.asarray(Qf) @ x  # noqa: E731
    u0 = jnp.asarray(rng.normal(size=(T, m)))
    x_bar = rollout(dyn, jnp.asarray(x0), u0)
    d = derivatives(dyn, run, term, x_bar, u0)
    inf = jnp.full((m,), jnp.inf)
    bw = backward_pass(d, jnp.asarray(0.0), u0, -inf, inf, jnp.zeros_like(u0))
    Ps, Ks = _riccati(A, B, Q, R, Qf, T)
    np.testing.assert_allclose(np.asarray(bw.K), np.stack(Ks), atol=1e-8, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(bw.V_xx), np.stack(Ps), atol=1e-8, rtol=1e-8)
    # the first full step lands on the LQR optimum: cost-to-go 0.5 x0' P_0 x0
    sol = solve(dyn, run, term, jnp.asarray(x0), u0, config=ILQRConfig(mu_init=0.0, max_iterations=3))
    optimum = 0.5 * x0 @ Ps[0] @ x0
    assert float(sol.costs[1]) == pytest.approx(optimum, rel=1e-8)
    assert float(sol.alphas[1]) == 1.0


def test_box_qp_matches_brute_force() -> None:
    """On random 3-d problems, the projected-Newton solution has the best value over a dense grid
    of the box and satisfies the bounds."""
    rng = np.random.default_rng(1)
    for _ in range(5):
        L = rng.normal(size=(3, 3))
        H = L @ L.T + 0.3 * np.eye(3)
        g = rng.normal(size=3) * 3
        lo, hi = -np.ones(3), np.ones(3)
        res = box_qp(jnp.asarray(H, jnp.float32), jnp.asarray(g, jnp.float32), jnp.asarray(lo, jnp.float32), jnp.asarray(hi, jnp.float32), jnp.zeros(3))
        x = np.asarray(res.x, np.float64)
        assert np.all(x >= lo - 1e-6) and np.all(x <= hi + 1e-6)
        grid = np.array(list(itertools.product(np.linspace(-1, 1, 41), repeat=3)))
        vals = 0.5 * np.einsum("bi,ij,bj->b", grid, H, grid) + grid @ g
        assert 0.5 * x @ H @ x + g @ x <= vals.min() + 1e-4
        # clamped coordinates sit on a bound with the gradient pushing outward
        grad = H @ x + g
        for i in np.flatnonzero(~np.asarray(res.free)):
            assert (x[i] <= lo[i] + 1e-6 and grad[i] > 0) or (x[i] >= hi[i] - 1e-6 and grad[i] < 0)


def test_pendulum_swingup() -> None:
    task = TASKS["pendulum-swingup"]()
    lo, hi = jnp.asarray(task.u_low), jnp.asarray(task.u_high)
    sol = jax.jit(lambda x0, u: solve(task.dynamics, task.running_cost, task.terminal_cost, x0, u, lo, hi, ILQRConfig(max_iterations=200)))(
        task.initial_state(), jnp.zeros((task.horizon, 1))
    )
    theta, theta_dot = np.asarray(sol.x[-1])
    assert abs(theta - np.pi) < 0.05 and abs(theta_dot) < 0.1
    costs = np.asarray(sol.costs)[: int(sol.iterations) + 1]
    assert np.all(np.diff(costs) <= 1e-6 * costs[0]), costs  # accepted costs never increase
    assert costs[-1] < 0.01 * costs[0]
    u = np.asarray(sol.u)
    assert np.all(u >= task.u_low[0] - 1e-6) and np.all(u <= task.u_high[0] + 1e-6)
    assert np.abs(u).max() > 0.5 * task.u_high[0]  # the limits matter for this swing


@pytest.mark.parametrize("name", ["cartpole-swingup", "arm-reach"])
def test_other_tasks_converge(name: str) -> None:
    task = TASKS[name]()
    lo, hi = jnp.asarray(task.u_low), jnp.asarray(task.u_high)
    sol = jax.jit(lambda x0, u: solve(task.dynamics, task.running_cost, task.terminal_cost, x0, u, lo, hi, ILQRConfig(max_iterations=300)))(
        task.initial_state(), jnp.zeros((task.horizon, task.control_dim))
    )
    costs = np.asarray(sol.costs)[: int(sol.iterations) + 1]
    assert np.all(np.diff(costs) <= 1e-6 * costs[0])
    assert costs[-1] < 0.01 * costs[0]
    assert np.all(np.abs(np.asarray(sol.u)) <= task.u_high[0] + 1e-6)


def test_linear_gaussian_controller(tmp_path) -> None:
    """log_prob against SciPy's multivariate normal; sample moments; save/load round trip."""
    from scipy.stats import multivariate_normal

    from policysearch.control.lqg import LinearGaussianController

    task = TASKS["arm-reach"]()
    lo, hi = jnp.asarray(task.u_low), jnp.asarray(task.u_high)
    sol = solve(task.dynamics, task.running_cost, task.terminal_cost, task.initial_state(), jnp.zeros((task.horizon, 2)), lo, hi, ILQRConfig(max_iterations=30))
    ctrl = LinearGaussianController.from_solution(sol, temperature=1.0)
    rng = np.random.default_rng(0)
    for t in (0, 17, task.horizon - 1):
        x = np.asarray(ctrl.x_bar[t]) + 0.01 * rng.normal(size=4)
        u = rng.normal(size=2)
        mean = np.asarray(ctrl.u_bar[t] + ctrl.k[t] + ctrl.K[t] @ (x - ctrl.x_bar[t]))
        expected = multivariate_normal(mean, np.asarray(ctrl.cov[t], np.float64)).logpdf(u)
        assert float(ctrl.log_prob(t, jnp.asarray(x, jnp.float32), jnp.asarray(u, jnp.float32))) == pytest.approx(expected, rel=1e-4, abs=1e-3)
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    samples = np.asarray(jax.vmap(lambda k: ctrl.sample(k, 5, ctrl.x_bar[5]))(keys))
    np.testing.assert_allclose(samples.mean(0), np.asarray(ctrl.mean(5, ctrl.x_bar[5])), atol=4 * np.sqrt(np.diag(ctrl.cov[5])).max() / np.sqrt(4000) + 1e-6)
    cov = np.asarray(ctrl.cov[5], np.float64)
    stderr = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / len(samples))  # of a sample covariance
    assert np.all(np.abs(np.cov(samples.T) - cov) < 5 * stderr)
    ctrl.save(tmp_path, {"task": task.name})
    loaded, meta = LinearGaussianController.load(tmp_path)
    assert meta["task"] == task.name
    for a, b in zip(ctrl, loaded):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_regularised_gains_solve_the_penalised_lqr_and_the_mean_is_clipped() -> None:
    """gain_reg = rho: K' = -(Q_uu + rho I)^-1 Q_ux with Q_ux = -Q_uu K (the LQR step with an extra
    (rho/2)|du|^2, minimised by brute force over du in one step below), covariance T (Q_uu + rho I)^-1;
    the mean is clipped to the control box and log_prob scores the clipped mean (SciPy)."""
    from scipy.optimize import minimize
    from scipy.stats import multivariate_normal

    from policysearch.control.lqg import LinearGaussianController

    task = TASKS["arm-reach"]()
    lo, hi = jnp.asarray(task.u_low), jnp.asarray(task.u_high)
    sol = solve(task.dynamics, task.running_cost, task.terminal_cost, task.initial_state(), jnp.zeros((task.horizon, 2)), lo, hi, ILQRConfig(max_iterations=30))
    rho, temp, t = 0.7, 0.3, 11
    plain = LinearGaussianController.from_solution(sol, temp)
    reg = LinearGaussianController.from_solution(sol, temp, gain_reg=rho, u_low=lo, u_high=hi)
    Q_uu = np.asarray(sol.Q_uu[t], np.float64)
    Q_ux = -Q_uu @ np.asarray(sol.K[t], np.float64)
    dx = np.random.default_rng(1).normal(size=4) * 0.05
    # argmin_du 0.5 du^T Q_uu du + du^T Q_ux dx + 0.5 rho |du|^2
    best = minimize(lambda du: 0.5 * du @ Q_uu @ du + du @ Q_ux @ dx + 0.5 * rho * du @ du, np.zeros(2), tol=1e-12).x
    np.testing.assert_allclose(np.asarray(reg.K[t], np.float64) @ dx, best, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(reg.cov[t]), temp * np.linalg.inv(Q_uu + rho * np.eye(2)), rtol=1e-4)
    assert np.abs(np.asarray(reg.K)).max() < np.abs(np.asarray(plain.K)).max()
    # far from the nominal the unclipped mean leaves the box; the controller's mean does not
    x = np.asarray(reg.x_bar[t]) + 50.0
    raw = np.asarray(reg.u_bar[t] + reg.K[t] @ (x - reg.x_bar[t]))
    assert np.any(raw > np.asarray(hi)) or np.any(raw < np.asarray(lo))
    mean = np.asarray(reg.mean(t, jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(mean, np.clip(raw, lo, hi), rtol=1e-5)
    u = np.array([0.3, -0.2])
    expected = multivariate_normal(np.clip(raw, lo, hi), np.asarray(reg.cov[t], np.float64)).logpdf(u)
    assert float(reg.log_prob(t, jnp.asarray(x, jnp.float32), jnp.asarray(u, jnp.float32))) == pytest.approx(expected, rel=1e-4)


def test_solve_says_why_it_stopped() -> None:
    """Solution.stop names the stopping rule that ended the solve: the iteration cap, the relative
    cost tolerance, or the gradient test (already met at the start with a huge threshold)."""
    from policysearch.control.ilqr import STOP_REASONS

    task = TASKS["pendulum-swingup"](horizon=50)
    u0 = jnp.zeros((task.horizon, task.control_dim))
    lo, hi = jnp.asarray(task.u_low), jnp.asarray(task.u_high)

    def reason(config: ILQRConfig) -> str:
        sol = solve(task.dynamics, task.running_cost, task.terminal_cost, task.initial_state(), u0, lo, hi, config)
        return STOP_REASONS[int(sol.stop)], int(sol.iterations)

    assert reason(ILQRConfig(max_iterations=2)) == ("iteration cap", 2)
    why, its = reason(ILQRConfig(max_iterations=200, tolerance=1e-3))
    assert why == "converged" and its < 200
    assert reason(ILQRConfig(gradient_tolerance=1e30)) == ("stationary", 0)


def test_plan_json_says_why_it_stopped(tmp_path) -> None:
    from tests.conftest import run_cli

    out = run_cli("plan", "--env", "pendulum-swingup", "--horizon", "50", "--iterations", "3", "--run-dir", str(tmp_path / "p"))
    assert out.returncode == 0, out.stderr
    assert "(stopped: iteration cap)" in out.stdout


def _double_integrator(dt: float = 0.1):
    """x = (position, velocity), u = force; cost drives the position to 1."""
    dyn = lambda x, u: jnp.stack([x[0] + dt * x[1], x[1] + dt * u[0]])  # noqa: E731
    run = lambda x, u: (x[0] - 1.0) ** 2 + 0.01 * u[0] ** 2  # noqa: E731
    term = lambda x: 10.0 * ((x[0] - 1.0) ** 2 + x[1] ** 2)  # noqa: E731
    return dyn, run, term


def test_line_search_never_shortens_the_valid_prefix(x64) -> None:
    """With a validity test (position < 0.5), no accepted step leaves the valid set, though the
    unconstrained optimum (position 1) lies outside it; the cost still falls."""
    from policysearch.control.ilqr import valid_prefix

    dyn, run, term = _double_integrator()
    x0, u0 = jnp.zeros(2), jnp.zeros((40, 1))
    valid = lambda x: x[0] < 0.5  # noqa: E731
    free = jax.jit(lambda: solve(dyn, run, term, x0, u0))()
    held = jax.jit(lambda: solve(dyn, run, term, x0, u0, valid=valid))()
    assert int(valid_prefix(valid, free.x)) < 41  # the unconstrained plan leaves it
    assert int(held.valid_steps) == 41 and bool(jnp.all(held.x[:, 0] < 0.5))
    assert float(held.cost) < 0.8 * float(held.costs[0])


def test_returned_gains_are_those_at_mu_zero(x64) -> None:
    """The gains returned are a plain (mu = 0) backward pass at the final nominal, not the
    regularised ones the last iterations stepped with."""
    task = TASKS["pendulum-swingup"]()
    lo, hi = jnp.asarray(task.u_low, jnp.float64), jnp.asarray(task.u_high, jnp.float64)
    config = ILQRConfig(max_iterations=3, mu_init=10.0)  # stops with mu > 0
    sol = jax.jit(lambda: solve(task.dynamics, task.running_cost, task.terminal_cost, task.initial_state(np.float64),
                                jnp.zeros((task.horizon, 1)), lo, hi, config))()
    assert float(sol.mus[int(sol.iterations)]) > 0
    d = derivatives(task.dynamics, task.running_cost, task.terminal_cost, sol.x, sol.u)
    plain = backward_pass(d, 0.0, sol.u, lo, hi, jnp.zeros_like(sol.u))
    regularised = backward_pass(d, float(sol.mus[int(sol.iterations)]), sol.u, lo, hi, jnp.zeros_like(sol.u))
    np.testing.assert_allclose(np.asarray(sol.K), np.asarray(plain.K), rtol=1e-6, atol=1e-8)
    assert not np.allclose(np.asarray(sol.K), np.asarray(regularised.K), rtol=1e-3)


class _HostSystem:
    """A JAX system behind the MuJoCo model's interface (NumPy in, NumPy out, batched steps,
    Jacobians from the host), so that the MuJoCo driver can solve it."""

    def __init__(self, task) -> None:
        self.task, self.state_dim = task, task.state_dim
        self.u_low, self.u_high = np.asarray(task.u_low, np.float64), np.asarray(task.u_high, np.float64)
        with jax.enable_x64(True):
            self._step = jax.jit(jax.vmap(task.dynamics))
            self._jac = jax.jit(jax.vmap(jax.jacfwd(task.dynamics, argnums=(0, 1))))

    def step_batch(self, xs: np.ndarray, us: np.ndarray) -> np.ndarray:
        with jax.enable_x64(True):
            return np.asarray(self._step(xs, us))

    def rollout(self, x0: np.ndarray, us: np.ndarray) -> np.ndarray:
        xs = [x0]
        for u in us:
            xs.append(self.step_batch(xs[-1][None], u[None])[0])
        return np.stack(xs)

    def linearize(self, xs: np.ndarray, us: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
        with jax.enable_x64(True):
            return tuple(np.asarray(a) for a in self._jac(xs[:-1], us))


def test_one_solver_loop_serves_both_drivers() -> None:
    """The pendulum swing-up solved by `solve` (autodiff, one step size per forward pass) and by
    the MuJoCo driver (host callbacks, all step sizes per pass) reaches the same cost and gains:
    the derivative source is the only difference."""
    from policysearch.control.mujoco_ilqr import solve_mujoco

    task = TASKS["pendulum-swingup"]()
    config = ILQRConfig(max_iterations=30)
    with jax.enable_x64(True):
        lo, hi = jnp.asarray(task.u_low, jnp.float64), jnp.asarray(task.u_high, jnp.float64)
        x0, u0 = task.initial_state(np.float64), jnp.zeros((task.horizon, 1), jnp.float64)
        direct = jax.jit(lambda: solve(task.dynamics, task.running_cost, task.terminal_cost, x0, u0, lo, hi, config))()
    host = solve_mujoco(_HostSystem(task), task.running_cost, task.terminal_cost, np.asarray(x0), np.asarray(u0), config)
    assert int(host.iterations) == int(direct.iterations)
    np.testing.assert_allclose(np.asarray(host.alphas), np.asarray(direct.alphas))
    np.testing.assert_allclose(float(host.cost), float(direct.cost), rtol=1e-9)
    np.testing.assert_allclose(np.asarray(host.K), np.asarray(direct.K), rtol=1e-6, atol=1e-8)
    assert float(host.cost) < 0.1 * float(host.costs[0])


def test_receding_horizon_controls_chain_the_windows(x64) -> None:
    """The controls built window by window are those each window's solution kept, and their
    rollout passes through the states each window started from."""
    from policysearch.control.receding import RecedingConfig, receding_horizon_controls

    dyn, run, term = _double_integrator()
    starts, kept = [], []
    solver = jax.jit(lambda x0, u: solve(dyn, run, term, x0, u, config=ILQRConfig(max_iterations=20)))

    def window(x0: np.ndarray, u: np.ndarray, iterations: int):
        assert iterations == 20
        sol = solver(jnp.asarray(x0), jnp.asarray(u))
        starts.append(np.asarray(x0))
        kept.append(np.asarray(sol.u)[:4])
        return sol

    u = receding_horizon_controls(window, np.zeros(2), np.zeros((22, 1)), RecedingConfig(window=10, commit=4, window_iterations=20))
    assert u.shape == (22, 1) and len(starts) == 6  # windows at 0, 4, ..., 20
    np.testing.assert_allclose(u[:20], np.concatenate(kept)[:20])
    xs = np.asarray(rollout(dyn, jnp.zeros(2), jnp.asarray(u)))
    for i, x in enumerate(starts):
        np.testing.assert_allclose(xs[4 * i], x, atol=1e-12)
    assert abs(xs[-1, 0] - 1.0) < 0.2  # and the chained plan does the task


@pytest.mark.parametrize("lanes", [False, True])
def test_solve_batch_equals_the_problems_solved_alone(x64, lanes: bool) -> None:
    """solve_batch (one after another inside one compiled call, or as vmap lanes) gives each
    problem the solution `solve` gives it alone: its own iteration count, cost and controls."""
    from policysearch.control.ilqr import solve_batch

    task = TASKS["pendulum-swingup"](horizon=60)
    config = ILQRConfig(max_iterations=40)
    x0s = jnp.stack([jnp.asarray(task.initial_state(), jnp.float64) + d for d in (0.0, 0.4, -0.7)])
    u0 = jnp.zeros((3, task.horizon, task.control_dim))
    args = (task.dynamics, task.running_cost, task.terminal_cost)
    lo, hi = jnp.asarray(task.u_low), jnp.asarray(task.u_high)
    batch = jax.jit(lambda x, u: solve_batch(*args, x, u, lo, hi, config, lanes=lanes))(x0s, u0)
    single = jax.jit(lambda x, u: solve(*args, x, u, lo, hi, config))
    alone = [single(x0s[i], u0[i]) for i in range(3)]
    iterations = [int(s.iterations) for s in alone]
    assert len(set(iterations)) > 1  # the problems need different numbers of iterations
    assert np.asarray(batch.iterations).tolist() == iterations
    for i, s in enumerate(alone):
        np.testing.assert_allclose(np.asarray(batch.cost[i]), np.asarray(s.cost), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(batch.u[i]), np.asarray(s.u), rtol=1e-4, atol=1e-4)


def test_receding_windows_from_a_later_start_keep_the_controls_before_it() -> None:
    """receding_horizon_controls(start=s): the first s controls are kept as they are, and the
    windows begin at s from the given state (the repair of an example that falls at some step)."""
    from policysearch.control.receding import RecedingConfig, receding_horizon_controls

    starts = []

    def solve_window(x0: np.ndarray, u: np.ndarray, iterations: int):
        starts.append(float(x0[0]))
        n = len(u)
        return SimpleNamespace(u=u + 1.0, x=x0[0] + np.arange(n + 1)[:, None] * np.ones((1, 1)), iterations=1, cost=0.0, valid_steps=n + 1)

    u0 = np.zeros((20, 1))
    u = receding_horizon_controls(solve_window, np.array([100.0]), u0, RecedingConfig(window=6, commit=4, window_iterations=1), start=8)
    np.testing.assert_array_equal(u[:8], 0.0)  # kept
    assert np.all(u[8:] >= 1.0)  # every later step was solved at least once
    assert starts == [100.0, 104.0, 108.0]  # windows at steps 8, 12, 16, each from the state the last reached
