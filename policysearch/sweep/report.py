"""`policysearch report SWEEP_DIR`: a sweep's trials grouped by (algorithm, env, settings), over
their seeds: the final evaluation return (mean, std, interquartile mean, 95% bootstrap CI), real
steps, wall time and steps/s, and the cores the trials, other processes and the host took
meanwhile (`sweep.cpu`: wall times compare only under like load); learning curves as the mean
over seeds with a 95% bootstrap band; and each group's difference in mean return from a baseline group with its 95% bootstrap
interval: for a peer's group (sb3-ppo, sb3-trpo) ours with the same env and settings (ppo, trpo),
else the env's first group. Written as report.md, report.json (the groups, and one row per trial) and
curves.png in the sweep folder.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from policysearch.errors import UserError
from policysearch.sweep import cpu, stats


def _curve(metrics: Path) -> tuple[np.ndarray, np.ndarray]:
    steps, values = [], []
    if metrics.exists():
        with open(metrics, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("episode_return_mean") not in (None, ""):
                    steps.append(float(row["step"]))
                    values.append(float(row["episode_return_mean"]))
    return np.asarray(steps), np.asarray(values)


def _group_key(trial: dict[str, Any]) -> str:
    settings = " ".join(f"{k}={v}" for k, v in sorted(trial["settings"].items()))
    return f"{trial['algo']} {trial['env']}" + (f" [{settings}]" if settings else "")


def collect(sweep_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """{group: [{"seed", "summary" (None if unfinished), "curve"}]} from the sweep folder."""
    record = sweep_dir / "sweep.json"
    if not record.exists():
        raise UserError(f"'{sweep_dir}' holds no sweep (no sweep.json): pass the --out folder of `policysearch sweep`")
    groups: dict[str, list[dict[str, Any]]] = {}
    for trial in json.loads(record.read_text())["trials"]:
        folder = sweep_dir / trial["name"]
        summary_path = folder / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
        groups.setdefault(_group_key(trial), []).append(
            {"name": trial["name"], "algo": trial["algo"], "env": trial["env"], "seed": trial["seed"], "summary": summary,
             "curve": _curve(folder / "metrics.csv"), "ours": _group_key({**trial, "algo": _ours(trial["algo"])}),
             "cpu": cpu.load(folder)})
    return groups


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _ours(algo: str) -> str:
    """The algorithm a peer mirrors ("sb3-trpo" -> "trpo"); ours map to themselves."""
    from policysearch.run.peers import PEERS

    return PEERS[algo][0] if algo in PEERS else algo


def summarize(groups: dict[str, list[dict[str, Any]]], seed: int = 0) -> list[dict[str, Any]]:
    """One row per group: its seeds' final evaluation statistics, budgets, and the difference in
    mean return from its baseline (a peer's: ours with the same env and settings; else the env's
    first group) with the difference's 95% bootstrap CI."""
    rows = []
    first_of_env: dict[str, str] = {}
    returns_of: dict[str, np.ndarray] = {}
    for key, runs in groups.items():
        done = [r for r in runs if r["summary"] is not None]
        returns = np.asarray([r["summary"]["eval_return_mean"] for r in done if r["summary"].get("eval_return_mean") is not None])
        env = runs[0]["env"]
        row: dict[str, Any] = {"group": key, "algo": runs[0]["algo"], "env": env, "seeds": len(runs), "finished": len(done),
                               "evaluated": int(returns.size)}
        if returns.size:
            lo, hi = stats.bootstrap_ci(returns, seed=seed)
            row.update(return_mean=float(returns.mean()), return_std=float(returns.std(ddof=1)) if returns.size > 1 else 0.0,
                       return_iqm=float(stats.iqm(returns)), return_ci=[_num(lo), _num(hi)])
            returns_of[key] = returns
            first_of_env.setdefault(env, key)
        if done:
            row.update(steps=float(np.mean([r["summary"]["steps"] for r in done])),
                       wall_time=float(np.mean([r["summary"]["wall_time"] for r in done])),
                       steps_per_second=float(np.mean([r["summary"]["steps_per_second"] for r in done])))
        loads = [r["cpu"] for r in done if r["cpu"] is not None]
        if loads:  # the machine's load while they trained (sweep.cpu), mean over the trials that recorded it
            row["cpu"] = {f"{k}_cores": float(np.mean([c[f"{k}_cores"] for c in loads])) for k in cpu.PARTS}
            row["cpu"]["trials"] = len(loads)
        rows.append(row)
    for row, (key, runs) in zip(rows, groups.items()):
        ours = runs[0]["ours"]
        base = ours if ours != key and ours in returns_of else first_of_env.get(runs[0]["env"])
        if key in returns_of and base is not None and base != key:
            diff, dlo, dhi = stats.difference_ci(returns_of[key], returns_of[base], seed=seed)
            row["vs"] = {"group": base, "difference": diff, "ci": [_num(dlo), _num(dhi)]}
    return rows


def _fmt(x: Any, spec: str = ",.1f") -> str:
    return "-" if x is None else format(x, spec)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| group | seeds (finished) | return mean | std | IQM | 95% CI | difference from (95% CI) | steps | wall s | steps/s "
             "| cores: own / others' / stolen |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ci = r.get("return_ci")
        vs = r.get("vs")
        lines.append("| " + " | ".join([
            r["group"], f"{r['seeds']} ({r['finished']})", _fmt(r.get("return_mean")), _fmt(r.get("return_std")), _fmt(r.get("return_iqm")),
            f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "-",
            f"{vs['difference']:+,.1f} [{_fmt(vs['ci'][0])}, {_fmt(vs['ci'][1])}] from {vs['group'].split(' [')[0]}" if vs else "-",
            _fmt(r.get("steps"), ",.0f"), _fmt(r.get("wall_time")), _fmt(r.get("steps_per_second"), ",.0f"),
            " / ".join(f"{r['cpu'][f'{k}_cores']:.2f}" for k in cpu.PARTS) if "cpu" in r else "-"]) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(groups: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """One panel per env: each group's mean training return over seeds and its 95% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(runs[0]["env"] for runs in groups.values()))
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for key, runs in groups.items():
            if runs[0]["env"] != env:
                continue
            band = stats.curve_band([r["curve"] for r in runs])
            if band["steps"].size:
                with_data = sum(r["curve"][0].size > 0 for r in runs)  # seeds not started yet have no curve
                ax.plot(band["steps"], band["mean"], label=f"{key.replace(f' {env}', '', 1)} (n={with_data})")
                ax.fill_between(band["steps"], band["low"], band["high"], alpha=0.25)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("training return (mean over seeds, 95% band)")
        if ax.get_legend_handles_labels()[0]:  # no curve yet (no metrics.csv): no legend
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(sweep_dir: str | Path) -> dict[str, Any]:
    """Write report.md, report.json and curves.png into the sweep folder; returns the JSON."""
    folder = Path(sweep_dir)
    groups = collect(folder)
    rows = summarize(groups)
    (folder / "report.md").write_text(markdown(rows))
    trials = [{"name": r["name"], "group": key, "seed": r["seed"], "finished": r["summary"] is not None,
               **{k: (r["summary"] or {}).get(k) for k in ("eval_return_mean", "steps", "wall_time", "steps_per_second")}, "cpu": r["cpu"]}
              for key, runs in groups.items() for r in runs]
    (folder / "report.json").write_text(json.dumps({"groups": rows, "trials": trials}, indent=2))
    plot_curves(groups, folder / "curves.png")
    return {"groups": rows, "trials": trials, "markdown": str(folder / "report.md"), "json": str(folder / "report.json"), "curves": str(folder / "curves.png")}
