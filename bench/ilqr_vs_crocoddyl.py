"""Benchmark policysearch's iLQR against Crocoddyl's SolverDDP (the C++ reference DDP), in one process.

Problems: the two action models Crocoddyl ships, rebuilt exactly in our JAX form (float64) and
checked against Crocoddyl's own `calc` / `calcDiff` on random points (to 1e-12) before timing:

  * unicycle: `ActionModelUnicycle` with cost weights [10, 1], dt 0.1, horizon 200, from
    x0 = (-1, -1, 1); the same model is the terminal one (Crocoddyl's examples):
        x+ = x + dt (v cos th, v sin th, w),  l(x, u) = 0.5 |10 x|^2 + 0.5 |1 u|^2,  l_T(x) = 0.5 |10 x|^2
  * lqr: `ActionModelLQR(8, 4)` (drift free: A = I, B = I[8x4], Q = I, R = I, N = 0, f = 0,
    q = 1, r = 1, read from the model object), horizon 200, from x0 = (1, ..., 1):
        x+ = A x + B u + f,  l(x, u) = 0.5 x'Qx + 0.5 u'Ru + x'Nu + q'x + r'u,  l_T(x) = 0.5 x'Qx + q'x

Both solvers start from the same trajectory: zero controls and their rollout from x0
(Crocoddyl: `solve(xs, us, maxiter, True)` with `xs = problem.rollout(us)`). Crocoddyl stops when
sum_t |Q_u,t|^2 < th_stop (1e-9, its default); ours when an accepted step lowers the cost by less
than `tolerance` (relative), or, with `gradient_tolerance` set, on Crocoddyl's criterion too. Rows:

  * ours (matched): ILQRConfig(max_iterations=100, tolerance=1e-9, mu_init=0,
    gradient_tolerance=1e-9), i.e. no V_xx regularisation to start with, like Crocoddyl (whose
    regulariser starts at reg_min = 1e-9), and Crocoddyl's stop test with its th_stop.
  * ours (defaults): ILQRConfig() (mu_init=1, tolerance=1e-6, no gradient test), for reference.

Time per solve: median (and min) over `--repeats` calls. Ours is `jax.jit(lambda x0, u: solve(...))`
compiled by a first call (its time printed separately) and each timed call ends with
`block_until_ready()`; Crocoddyl's solver object is built outside the timer, the timer wraps
`solve(...)` only. Crocoddyl runs with `problem.nthreads = --croc-threads` (1 by default: its
OpenMP build defaults to one thread per core, and on a loaded 2-core machine the spinning threads
made the unicycle solve ~100x slower, 150 ms instead of 1.4 ms). Iterations: Crocoddyl's
`solver.iter` (steps taken; the last backward pass finds the stop criterion met) and our
`Solution.iterations` (line searches; each is followed by the backward pass at the resulting
nominal, so a solve runs iterations + 1 backward passes; it ends after an accepted step below
tolerance, or when that backward pass meets the gradient test). A per-iteration breakdown of
ours (autodiff derivatives, backward pass, one forward pass with its cost, each jitted alone) is
printed under the problem table.

MuJoCo section: `solve_mujoco` on Walker2d-v5 at horizon 500 from the default start and zero
controls, ILQRConfig(max_iterations=--mujoco-iterations, tolerance=1e-4), fd_eps 1e-3. Seconds
per iteration are the `seconds` field of its on_iteration callback (line search over all step
sizes in one batch, then the finite-difference derivatives if the step was accepted, then the
backward pass), median over iterations 2..N (iteration 1 also traces and compiles the jitted
pieces, on a process's first solve). A rejected step keeps the nominal, whose derivatives are
then reused, so such iterations cost less than the derivatives alone; the median over the
iterations that did recompute them is printed too. Next to it: the time of the derivatives
alone, `model.linearize(xs, us, eps=1e-3)` along the zero-control nominal (horizon x one
linearisation), median of 4 (2 before the solve, 2 after).

Batches: `--batch` problems that differ only in their initial state (x0 + U(-0.5, 0.5), seeded),
as GPS solves one per condition: ours one jitted `solve_batch` of the matched solve, which on the
CPU solves them one after another inside the compiled call (each stops at its own iteration
count and keeps XLA:CPU's whole-loop kernels); printed beside it, the same batch as the lanes of
one `vmap` (`lanes=True`: every lane runs as many iterations as the slowest). Crocoddyl's
SolverDDP solves each in turn (x0 set on the ShootingProblem, the rollout and solver built outside
the timer). Times are of the whole batch.

Targets (from the issue): final cost equal to Crocoddyl's to 1e-6 relative (singles and every
problem of a batch); single problems (matched row) and the batch at most Crocoddyl's time (ratio
<= 1); MuJoCo seconds per iteration within 1.5x the derivatives alone.

Run (from the repository root; `pip install crocoddyl`, 3.2.1 used):
    python bench/ilqr_vs_crocoddyl.py
    python bench/ilqr_vs_crocoddyl.py --repeats 50 --json ilqr_bench.json
    python bench/ilqr_vs_crocoddyl.py --no-mujoco
Run it on an otherwise idle machine; the load average is printed before and after.
Importing policysearch sets XLA:CPU's small-while-loop threshold (see `policysearch/xla_cpu.py`),
under which a loop of small kernels is compiled into one, and its depth-first scheduler; run with
POLICYSEARCH_XLA_DEFAULTS=0 to time XLA's defaults instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from policysearch.control import ilqr  # noqa: E402
from policysearch.control.ilqr import ILQRConfig, solve, solve_batch  # noqa: E402

HORIZON = 200
MUJOCO_ENV = "Walker2d-v5"
MUJOCO_HORIZON = 500
MATCHED = ILQRConfig(max_iterations=100, tolerance=1e-9, mu_init=0.0, gradient_tolerance=1e-9)
DEFAULTS = ILQRConfig()
CROC_TH_STOP = 1e-9
CROC_MAXITER = 100


# ------------------------------------------------------------------------------------------------
# The problems, in Crocoddyl and in our JAX form.


def unicycle_problem(crocoddyl):
    model = crocoddyl.ActionModelUnicycle()
    model.costWeights = np.array([10.0, 1.0])
    dt, (wx, wu) = float(model.dt), (float(w) for w in model.costWeights)

    def dynamics(x, u):
        return x + dt * jnp.stack([u[0] * jnp.cos(x[2]), u[0] * jnp.sin(x[2]), u[1]])

    def running(x, u):
        return 0.5 * wx**2 * (x @ x) + 0.5 * wu**2 * (u @ u)

    def terminal(x):
        return 0.5 * wx**2 * (x @ x)

    return dict(name="unicycle", model=model, x0=np.array([-1.0, -1.0, 1.0]), nu=2,
                dynamics=dynamics, running=running, terminal=terminal)


def lqr_problem(crocoddyl):
    model = crocoddyl.ActionModelLQR(8, 4)
    A, B, Q, R, N = (jnp.asarray(np.array(getattr(model, k), dtype=np.float64)) for k in "ABQRN")
    f, q, r = (jnp.asarray(np.array(getattr(model, k), dtype=np.float64)) for k in "fqr")

    def dynamics(x, u):
        return A @ x + B @ u + f

    def running(x, u):
        return 0.5 * x @ Q @ x + 0.5 * u @ R @ u + x @ N @ u + q @ x + r @ u

    def terminal(x):
        return 0.5 * x @ Q @ x + q @ x

    return dict(name="lqr", model=model, x0=np.ones(8), nu=4, dynamics=dynamics, running=running, terminal=terminal)


def check_against_crocoddyl(p: dict, rng: np.random.Generator, points: int = 20, tol: float = 1e-12) -> float:
    """Largest absolute difference between our functions (and their autodiff derivatives) and
    Crocoddyl's calc / calcDiff at random points; raises if above tol."""
    model = p["model"]
    data = model.createData()
    nx, nu = model.state.nx, model.nu
    dyn, run, term = p["dynamics"], p["running"], p["terminal"]
    jac = jax.jit(jax.jacfwd(dyn, argnums=(0, 1)))
    grad = jax.jit(jax.grad(run, argnums=(0, 1)))
    hess = jax.jit(jax.hessian(run, argnums=(0, 1)))
    worst = 0.0
    for _ in range(points):
        x, u = rng.normal(size=nx) * 2, rng.normal(size=nu) * 2
        model.calc(data, x, u)
        model.calcDiff(data, x, u)
        fx, fu = jac(x, u)
        (lx, lu), ((lxx, lxu), (_, luu)) = grad(x, u), hess(x, u)
        # copies: the data's arrays are views that the terminal calc below overwrites
        theirs = [np.array(a) for a in (data.xnext, data.cost, data.Fx, data.Fu, data.Lx, data.Lu, data.Lxx, data.Luu, data.Lxu)]
        pairs = list(zip([dyn(x, u), run(x, u), fx, fu, lx, lu, lxx, luu, lxu], theirs))
        model.calc(data, x)
        model.calcDiff(data, x)
        theirs = [np.array(a) for a in (data.cost, data.Lx, data.Lxx)]
        pairs += list(zip([term(x), jax.grad(term)(x), jax.hessian(term)(x)], theirs))
        for ours, theirs in pairs:
            worst = max(worst, float(np.max(np.abs(np.asarray(ours) - np.asarray(theirs)))))
    if worst > tol:
        raise SystemExit(f"{p['name']}: our JAX model differs from Crocoddyl's by {worst:.3g} (> {tol})")
    return worst


# ------------------------------------------------------------------------------------------------
# Timing.


def crocoddyl_problem(crocoddyl, p: dict, threads: int):
    """The problem's ShootingProblem over HORIZON steps and its zero controls."""
    model = p["model"]
    problem = crocoddyl.ShootingProblem(p["x0"], [model] * HORIZON, model)
    problem.nthreads = threads
    return problem, [np.zeros(p["nu"])] * HORIZON


def crocoddyl_solve(crocoddyl, problem, us: list) -> tuple[float, object]:
    """(seconds, solver) of one SolverDDP solve from the rollout of us; the solver is built and
    the rollout made outside the timer."""
    xs = problem.rollout(us)
    solver = crocoddyl.SolverDDP(problem)
    solver.th_stop = CROC_TH_STOP
    t0 = time.perf_counter()
    solver.solve(xs, us, CROC_MAXITER, True)
    return time.perf_counter() - t0, solver


def run_crocoddyl(crocoddyl, p: dict, repeats: int, threads: int) -> dict:
    problem, us = crocoddyl_problem(crocoddyl, p, threads)
    times, solver = [], None
    for _ in range(repeats):
        seconds, solver = crocoddyl_solve(crocoddyl, problem, us)
        times.append(seconds)
    return dict(median_s=float(np.median(times)), min_s=float(np.min(times)), iterations=int(solver.iter),
                cost=float(solver.cost), stop=float(solver.stop),
                u=np.array(solver.us), x=np.array(solver.xs), threads=int(problem.nthreads))


def _median_time(fn, *args, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times))


def run_ours(p: dict, config: ILQRConfig, repeats: int) -> dict:
    dyn, run, term = p["dynamics"], p["running"], p["terminal"]
    fn = jax.jit(lambda x0, u: solve(dyn, run, term, x0, u, config=config))
    x0, u0 = jnp.asarray(p["x0"]), jnp.zeros((HORIZON, p["nu"]))
    t0 = time.perf_counter()
    sol = jax.block_until_ready(fn(x0, u0))
    compile_s = time.perf_counter() - t0
    med, mn = _median_time(fn, x0, u0, repeats=repeats)
    return dict(median_s=med, min_s=mn, compile_s=compile_s, iterations=int(sol.iterations), cost=float(sol.cost),
                u=np.asarray(sol.u), x=np.asarray(sol.x))


def batch_x0s(p: dict, count: int) -> np.ndarray:
    """count initial states around the problem's x0 (seeded): x0 + U(-0.5, 0.5) per coordinate."""
    return p["x0"][None] + np.random.default_rng(1).uniform(-0.5, 0.5, (count, len(p["x0"])))


def run_batch(crocoddyl, p: dict, count: int, repeats: int, threads: int) -> dict:
    """`count` problems that differ in their initial state (GPS's conditions): ours as one jitted
    `solve_batch` of the matched solve (on the CPU: one after another inside the compiled call),
    and for reference as lanes of one `vmap` (`solve_batch(lanes=True)`); Crocoddyl solving them
    one after another (the problem's x0 reset between solves, its solver object rebuilt outside
    the timer). Each time is the median over repeats of the whole batch."""
    x0s = jnp.asarray(batch_x0s(p, count))
    dyn, run, term = p["dynamics"], p["running"], p["terminal"]
    u0 = jnp.zeros((count, HORIZON, p["nu"]))
    ours = {}
    for name, lanes in (("ours", False), ("ours_lanes", True)):
        fn = jax.jit(lambda x0, u, lanes=lanes: solve_batch(dyn, run, term, x0, u, config=MATCHED, lanes=lanes))
        t0 = time.perf_counter()
        sols = jax.block_until_ready(fn(x0s, u0))
        ours[name] = (sols, time.perf_counter() - t0, *_median_time(fn, x0s, u0, repeats=repeats))
    problem, us = crocoddyl_problem(crocoddyl, p, threads)
    times, costs, iters = [], [], []
    for r in range(repeats):
        total = 0.0
        for x0 in np.asarray(x0s):
            problem.x0 = x0
            seconds, solver = crocoddyl_solve(crocoddyl, problem, us)
            total += seconds
            if r == 0:
                costs.append(float(solver.cost))
                iters.append(int(solver.iter))
        times.append(total)
    croc = float(np.median(times))
    sols, compile_s, med, mn = ours["ours"]
    lane_sols, _, lanes_med, _ = ours["ours_lanes"]
    rel = lambda s: float(np.max(np.abs(np.asarray(s.cost) - np.asarray(costs)) / np.abs(np.asarray(costs))))  # noqa: E731
    return dict(count=count, ours_median_s=med, ours_min_s=mn, ours_compile_s=compile_s,
                ours_lanes_median_s=lanes_med, lanes_ratio=lanes_med / croc,
                crocoddyl_median_s=croc, crocoddyl_min_s=float(np.min(times)), ratio=med / croc,
                cost_rel_diff=max(rel(sols), rel(lane_sols)),
                ours_iterations=np.asarray(sols.iterations).tolist(),
                ours_iterations_max=int(np.max(np.asarray(sols.iterations))), crocoddyl_iterations=iters)


def iteration_breakdown(p: dict, repeats: int) -> dict:
    """Time of the parts of one of our iterations along the zero-control nominal, each jitted alone
    (so each includes one jitted call's dispatch, ~0.01-0.02 ms): autodiff derivatives, the backward
    pass as the solver runs it (mu = 0, no limits: Cholesky-free closed form / Gauss-Jordan, no box
    QP), and one closed-loop forward pass with its cost (the line search tries alpha = 1 first and
    the smaller step sizes only when it is rejected)."""
    dyn, run, term = p["dynamics"], p["running"], p["terminal"]
    u = jnp.zeros((HORIZON, p["nu"]))
    x = ilqr.rollout(dyn, jnp.asarray(p["x0"]), u)
    inf = jnp.full((p["nu"],), jnp.inf)
    der = jax.jit(lambda x, u: ilqr.derivatives(dyn, run, term, x, u))
    bw = jax.jit(lambda d, u: ilqr._backward(d, 0.0, u, -inf, inf, jnp.zeros_like(u), bounded=False, values=False))

    def forward(x, u, k, K):
        xs, us = ilqr.closed_loop_rollout(dyn, x, u, k, K, 1.0, None, None)
        return ilqr.trajectory_cost(run, term, xs, us)

    fw = jax.jit(forward)
    d = jax.block_until_ready(der(x, u))
    b = jax.block_until_ready(bw(d, u))
    jax.block_until_ready(fw(x, u, b.k, b.K))
    return dict(derivatives_s=_median_time(der, x, u, repeats=repeats)[0],
                backward_s=_median_time(bw, d, u, repeats=repeats)[0],
                forward_s=_median_time(fw, x, u, b.k, b.K, repeats=repeats)[0])


def run_mujoco(iterations: int) -> dict:
    from policysearch.control.costs import initial_controls, locomotion_cost
    from policysearch.control.mujoco_ilqr import solve_mujoco
    from policysearch.envs.mujoco_model import MujocoModel

    model = MujocoModel(MUJOCO_ENV)
    cost = locomotion_cost(MUJOCO_ENV, model.nq, healthy=model.healthy_ranges)
    x0 = model.initial_state()
    u0 = initial_controls(MUJOCO_ENV, MUJOCO_HORIZON, model.control_dim)
    xs = model.rollout(x0, u0)

    def linearize_times(n: int) -> list[float]:
        out = []
        for _ in range(n):
            t1 = time.perf_counter()
            model.linearize(xs, u0, eps=1e-3)
            out.append(time.perf_counter() - t1)
        return out

    lin = linearize_times(2)  # before and after the solve, so that both see similar load
    log: list[dict] = []
    t0 = time.perf_counter()
    sol = solve_mujoco(model, cost.running, cost.terminal, x0, u0,
                       ILQRConfig(max_iterations=iterations, tolerance=1e-4), on_iteration=log.append, fd_eps=1e-3,
                       valid=cost.healthy)
    total_s = time.perf_counter() - t0
    per_iter = [d["seconds"] for d in log]
    steady = per_iter[1:] if len(per_iter) > 1 else per_iter
    with_derivatives = [d["seconds"] for d in log[1:] if d["derivatives"]]
    lin += linearize_times(2)
    out = dict(env=MUJOCO_ENV, horizon=MUJOCO_HORIZON, state_dim=model.state_dim, control_dim=model.control_dim,
               threads=len(model._datas), iterations=int(sol.iterations), total_s=total_s,
               seconds_per_iteration=float(np.median(steady)), iteration_seconds=per_iter,
               seconds_per_iteration_with_derivatives=float(np.median(with_derivatives)) if with_derivatives else None,
               iteration_costs=[d["cost"] for d in log], iteration_alphas=[d["alpha"] for d in log],
               iteration_derivatives=[d["derivatives"] for d in log],
               linearize_s=float(np.median(lin)), linearize_seconds=lin)
    out["ratio"] = out["seconds_per_iteration"] / out["linearize_s"]
    model.close()
    return out


# ------------------------------------------------------------------------------------------------


def load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20, help="timed solves per solver and problem (median)")
    ap.add_argument("--croc-threads", type=int, default=1, help="Crocoddyl ShootingProblem.nthreads")
    ap.add_argument("--mujoco-iterations", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32, help="problems in the batched comparison (initial states)")
    ap.add_argument("--no-mujoco", action="store_true", help="skip the Walker2d section")
    ap.add_argument("--json", metavar="PATH", help="write the figures here")
    args = ap.parse_args()

    import crocoddyl

    print(f"crocoddyl {crocoddyl.__version__}, jax {jax.__version__} ({jax.default_backend()}), "
          f"python {platform.python_version()}, {os.cpu_count()} cores, load average {load()}, "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)
    rng = np.random.default_rng(0)
    results: dict = dict(crocoddyl=crocoddyl.__version__, jax=jax.__version__, cores=os.cpu_count(),
                         xla_flags=os.environ.get("XLA_FLAGS", ""),
                         load_before=load(), repeats=args.repeats, horizon=HORIZON, problems={})
    rows = []
    for p in (unicycle_problem(crocoddyl), lqr_problem(crocoddyl)):
        err = check_against_crocoddyl(p, rng)
        croc = run_crocoddyl(crocoddyl, p, args.repeats, args.croc_threads)
        res = dict(model_check_max_abs_diff=err,
                   crocoddyl={k: v for k, v in croc.items() if k not in ("u", "x")})
        for label, cfg in (("matched", MATCHED), ("defaults", DEFAULTS)):
            ours = run_ours(p, cfg, args.repeats)
            rel = abs(ours["cost"] - croc["cost"]) / abs(croc["cost"])
            du = float(np.max(np.abs(ours["u"] - croc["u"])))
            r = {k: v for k, v in ours.items() if k not in ("u", "x")}
            r.update(config=cfg.__dict__, cost_rel_diff=rel, max_abs_u_diff=du,
                     time_ratio=ours["median_s"] / croc["median_s"])
            res[f"ours_{label}"] = r
            rows.append((p["name"], f"ours ({label})", r["median_s"], r["min_s"], r["iterations"], r["cost"], rel,
                         r["time_ratio"]))
        rows.append((p["name"], f"crocoddyl DDP ({croc['threads']} thr)", croc["median_s"], croc["min_s"],
                     croc["iterations"], croc["cost"], 0.0, 1.0))
        res["ours_breakdown"] = iteration_breakdown(p, args.repeats)
        res["batch"] = run_batch(crocoddyl, p, args.batch, max(3, args.repeats // 4), args.croc_threads)
        results["problems"][p["name"]] = res
        print(f"{p['name']}: JAX model = Crocoddyl calc/calcDiff to {err:.1e}; ours compiled in "
              f"{res['ours_matched']['compile_s']:.1f} s (matched) / {res['ours_defaults']['compile_s']:.1f} s (defaults)")

    mj = None
    if not args.no_mujoco:
        mj = run_mujoco(args.mujoco_iterations)
        results["mujoco"] = mj
    results["load_after"] = load()

    print()
    print(f"iLQR vs Crocoddyl SolverDDP, horizon {HORIZON}, float64, median of {args.repeats} "
          f"(load average before {results['load_before']}, after {results['load_after']})")
    head = f"{'problem':<9} {'solver':<24} {'ms/solve':>9} {'min ms':>8} {'iters':>5} {'final cost':>20} {'rel diff':>9} {'x croc':>7}"
    print(head)
    print("-" * len(head))
    for name, solver, med, mn, it, cost, rel, ratio in rows:
        rel_s = "-" if solver.startswith("crocoddyl") else f"{rel:.1e}"
        print(f"{name:<9} {solver:<24} {med * 1e3:9.2f} {mn * 1e3:8.2f} {it:5d} {cost:20.12f} {rel_s:>9} {ratio:7.2f}")
    print()
    for name, res in results["problems"].items():
        b, it = res["ours_breakdown"], res["ours_matched"]
        print(f"{name}: ours per iteration: derivatives {b['derivatives_s'] * 1e3:.2f} ms, backward pass "
              f"{b['backward_s'] * 1e3:.2f} ms, forward pass + cost (one step size) {b['forward_s'] * 1e3:.2f} ms; "
              f"matched solve / (iterations + 1) = {it['median_s'] / (it['iterations'] + 1) * 1e3:.2f} ms")
    print()
    print(f"Batches of {args.batch} problems (initial states x0 + U(-0.5, 0.5)): ours one jitted solve_batch "
          "(on the CPU one after another inside the call), Crocoddyl one after another")
    for name, res in results["problems"].items():
        b = res["batch"]
        its = b["ours_iterations"]
        print(f"{name}: ours {b['ours_median_s'] * 1e3:.1f} ms (compiled in {b['ours_compile_s']:.1f} s, {min(its)}-{max(its)} "
              f"iterations each), Crocoddyl {b['crocoddyl_median_s'] * 1e3:.1f} ms "
              f"({min(b['crocoddyl_iterations'])}-{max(b['crocoddyl_iterations'])} iterations each): "
              f"ratio {b['ratio']:.2f}; as vmap lanes (every lane runs {b['ours_iterations_max']} iterations) "
              f"{b['ours_lanes_median_s'] * 1e3:.1f} ms, ratio {b['lanes_ratio']:.2f}; worst cost difference {b['cost_rel_diff']:.1e}")
    if mj is not None:
        print()
        print(f"MuJoCo {mj['env']}, horizon {mj['horizon']} (n={mj['state_dim']}, m={mj['control_dim']}, "
              f"{mj['threads']} threads), {mj['iterations']} iterations, fd_eps 1e-3")
        print(f"  seconds per iteration (median of iterations 2..{len(mj['iteration_seconds'])}) {mj['seconds_per_iteration']:8.3f}")
        print(f"  derivatives alone (linearize, horizon {mj['horizon']})          {mj['linearize_s']:8.3f}")
        print(f"  ratio                                                 {mj['ratio']:8.2f}")
        wd = mj["seconds_per_iteration_with_derivatives"]
        if wd is not None:
            print(f"  median of those iterations that recomputed derivatives {wd:8.3f}  (ratio {wd / mj['linearize_s']:.2f})")
        print(f"  per-iteration seconds {[round(s, 3) for s in mj['iteration_seconds']]}, "
              f"costs {[round(c, 2) for c in mj['iteration_costs']]}, step sizes {mj['iteration_alphas']}, "
              f"derivatives recomputed {mj['iteration_derivatives']}; solve total {mj['total_s']:.2f} s")

    worst_rel = max(r[f"ours_{k}"]["cost_rel_diff"] for r in results["problems"].values() for k in ("matched", "defaults"))
    worst_rel = max([worst_rel] + [r["batch"]["cost_rel_diff"] for r in results["problems"].values()])
    worst_ratio = max(r["ours_matched"]["time_ratio"] for r in results["problems"].values())
    worst_batch = max(r["batch"]["ratio"] for r in results["problems"].values())
    targets = dict(cost_rel_diff_le_1e6=worst_rel <= 1e-6, single_ratio_le_1=worst_ratio <= 1.0, batch_ratio_le_1=worst_batch <= 1.0)
    if mj is not None:
        targets["mujoco_ratio_le_1_5"] = mj["ratio"] <= 1.5
    results["targets"] = targets
    print()
    print(f"targets: final cost within 1e-6 relative: {'met' if targets['cost_rel_diff_le_1e6'] else 'NOT met'} "
          f"(worst {worst_rel:.1e}); batch time <= Crocoddyl's: {'met' if targets['batch_ratio_le_1'] else 'NOT met'} "
          f"(worst {worst_batch:.2f}x); single problems <= Crocoddyl's: {'met' if targets['single_ratio_le_1'] else 'NOT met'} "
          f"(worst {worst_ratio:.2f}x)"
          + ("" if mj is None else f"; MuJoCo iteration <= 1.5x derivatives: "
             f"{'met' if targets['mujoco_ratio_le_1_5'] else 'NOT met'} ({mj['ratio']:.2f}x)"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
