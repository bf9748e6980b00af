"""`policysearch export RUN_DIR`: a trained controller in a form a robot's computer runs without
JAX or policysearch, normalisation included.

    onnx:   one graph from the raw observation to the action (`onnx_graph.py`): input "obs" float32
            [batch, obs_dim]; output "action", float32 [batch, action_dim] (the Gaussian's mean
            clipped to the action bounds) or int64 [batch] (the most likely choice). The model's
            metadata_props hold the env id, algorithm, spaces, normalisation and our version.
    numpy:  a .npz of arrays and a JSON "meta" that `deploy/loader.py` (NumPy only; printed by
            `policysearch export --show-loader`) runs, for a network policy or a linear-Gaussian
            controller (iLQR / DDP plans, GPS's guiding controllers).

Every algorithm's policy exports the same way (PPO, TRPO, PG and GPS save the same
`TrainedPolicy`). Files are written to a temporary name and renamed: a failed export leaves no
half file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tyro

from policysearch.errors import UserError

Format = Literal["onnx", "numpy"]
NETWORK_FORMAT = "policysearch-network-v1"
CONTROLLER_FORMAT = "policysearch-linear-gaussian-v1"
LOADER = Path(__file__).with_name("loader.py")


@dataclass(frozen=True)
class ExportArgs:
    """Export a run's trained policy (or its linear-Gaussian controller) to ONNX or to NumPy arrays
    with a NumPy-only loader, the observation normalisation included."""

    run_dir: tyro.conf.Positional[str] = ""
    """The run folder (or a checkpoint folder) to export."""
    format: Format = "onnx"
    """onnx: one graph, raw observation -> action; numpy: a .npz that deploy/loader.py runs."""
    out: str = ""
    """The file to write (default: RUN_DIR/policy.onnx, RUN_DIR/policy.npz, RUN_DIR/controller.npz)."""
    controller: bool = False
    """Export the linear-Gaussian controller instead of the policy: a plan run's, or a GPS run's guiding controller of --condition."""
    condition: int = 0
    """The GPS condition (terrain) whose guiding controller --controller exports."""
    show_loader: bool = False
    """Print the NumPy loader's source (to paste into a robot's code base) and exit."""


def _version() -> str:
    from policysearch import __version__

    return __version__


def network_arrays(agent: Any, algorithm: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and meta of a `TrainedPolicy`: its actor's dense layers, the frozen observation
    statistics and clip, the action bounds. `algorithm`: as the checkpoint's meta.json says, unless
    given."""
    from policysearch.core.forward import EPS, dense_layers

    spec, policy = agent.spec, agent.policy
    layers = [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in dense_layers(agent.params.actor)]
    gaussian = spec.action_kind == "gaussian"
    arrays: dict[str, np.ndarray] = {
        "num_layers": np.asarray(len(layers)), "activation": np.asarray(policy.activation), "kind": np.asarray(spec.action_kind),
        "normalize_obs": np.asarray(bool(agent.norm.obs)), "obs_mean": np.asarray(agent.obs_stats.mean, np.float32),
        "obs_var": np.asarray(agent.obs_stats.var, np.float32), "eps": np.asarray(EPS, np.float32),
        "obs_clip": np.asarray(agent.norm.clip_obs, np.float32),
        "action_low": np.asarray(spec.action_low if gaussian else (), np.float32),
        "action_high": np.asarray(spec.action_high if gaussian else (), np.float32),
    }
    for i, (w, b) in enumerate(layers):
        arrays[f"W{i}"], arrays[f"b{i}"] = w, b
    action = ({"type": "Box", "shape": [spec.action_dim], "low": list(spec.action_low), "high": list(spec.action_high), "dtype": "float32",
               "deterministic": "the Gaussian's mean, clipped to [low, high]"} if gaussian else
              {"type": "Discrete", "n": spec.action_dim, "dtype": "int64", "deterministic": "argmax of the logits"})
    meta = {
        "format": NETWORK_FORMAT, "env_id": spec.env_id, "algorithm": algorithm or agent.meta.get("algo"), "policysearch_version": _version(),
        "observation": {"type": "Box", "shape": [spec.obs_dim], "dtype": "float32"},
        "action": action,
        "normalization": ({"obs": "clip((obs - mean) / sqrt(var + eps), -clip, clip)", "clip": float(agent.norm.clip_obs)}
                          if agent.norm.obs else None),
        "network": {"hidden": list(policy.hidden), "activation": policy.activation},
        "inputs": {"obs": f"float32 [batch, {spec.obs_dim}], the raw observation"},
        "outputs": {"action": f"float32 [batch, {spec.action_dim}]" if gaussian else "int64 [batch]"},
        "source": str(agent.meta.get("checkpoint", "")),
    }
    return arrays, meta


def controller_arrays(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and meta of the linear-Gaussian controller saved in `folder` (a plan run, or a
    GPS run's controllers/condition_C)."""
    from policysearch.control.lqg import LinearGaussianController

    ctrl, saved = LinearGaussianController.load(folder)
    arrays = {name: np.asarray(getattr(ctrl, name)) for name in ctrl._fields}
    env = saved.get("env") or saved.get("task")
    meta = {
        "format": CONTROLLER_FORMAT, "env_id": env, "policysearch_version": _version(), "horizon": ctrl.horizon,
        "state_dim": int(ctrl.x_bar.shape[-1]), "control_dim": int(ctrl.u_bar.shape[-1]),
        "state": "the robot's state x; for a MuJoCo robot qpos then qvel of the whole model (the root's position included)",
        "control": "u = clip(u_bar[t] + k[t] + K[t] (x - x_bar[t]), u_low, u_high); cov[t] is the Gaussian's covariance",
        "saved": {k: v for k, v in saved.items() if isinstance(v, (str, int, float, bool))},
    }
    return arrays, meta


def _write(out: Path, write: Any) -> Path:
    """write(tmp path) then rename onto `out`; an unwritable place is a UserError naming it."""
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write '{out}' ({exc.strerror or exc}): pass another --out") from None
    return out


def _save_npz(out: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.asarray(json.dumps(meta)), **arrays)

    return _write(out, write)


def export_policy(agent: Any, out: str | Path, format: Format = "onnx", algorithm: str | None = None) -> Path:
    """Write a `TrainedPolicy` as ONNX or .npz; returns the file's path."""
    arrays, meta = network_arrays(agent, algorithm)
    out = Path(out)
    if format == "numpy":
        return _save_npz(out, arrays, meta)
    try:
        import onnx
    except ImportError:
        raise UserError("ONNX export needs the onnx package: pip install 'policysearch[export]' (or use --format numpy)") from None
    from policysearch.deploy.onnx_graph import network_model

    model = network_model(arrays, meta)
    return _write(out, lambda tmp: onnx.save(model, str(tmp)))


def export(run_dir: str | Path, format: Format = "onnx", out: str | Path | None = None, controller: bool = False,
           condition: int = 0) -> Path:
    """Export the run's policy (or, with controller=True, its linear-Gaussian controller) and
    return the written file. Refusals (no checkpoint, an unknown format, an unwritable path) are
    UserErrors."""
    from policysearch.run.checkpoint import find_checkpoint

    if format not in ("onnx", "numpy"):
        raise UserError(f"unknown export format '{format}': use onnx or numpy")
    folder = Path(run_dir)
    if not folder.exists():
        raise UserError(f"run folder '{folder}' not found: pass a folder that `policysearch train` or `plan` wrote")
    plan_only = (folder / "controller").is_dir() and not (folder / "checkpoints").exists()
    if controller or plan_only:
        source = folder if (folder / "controller").is_dir() else folder / "controllers" / f"condition_{condition}"
        if not (source / "controller").is_dir():
            raise UserError(f"'{folder}' holds no linear-Gaussian controller (no controller/ or controllers/condition_{condition}/): "
                            "export a `policysearch plan` run or a GPS run, or leave out --controller")
        if format != "numpy":
            raise UserError("a linear-Gaussian controller exports to numpy only (it is indexed by time step): pass --format numpy")
        arrays, meta = controller_arrays(source)
        return _save_npz(Path(out) if out else folder / "controller.npz", arrays, meta)
    find_checkpoint(folder)  # a run without a checkpoint is refused with its fix
    from policysearch.run.snapshot import load

    suffix = ".onnx" if format == "onnx" else ".npz"
    return export_policy(load(folder), Path(out) if out else folder / f"policy{suffix}", format)
