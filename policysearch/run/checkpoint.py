"""Checkpoints: arrays in safetensors, everything else in JSON, no pickle.

A checkpoint is a directory `DIR/checkpoints/step_<N>/` holding `arrays.safetensors` (every leaf
of the state pytree, named by its path) and `meta.json` (config, env, counters). It is written
under a temporary name and renamed into place, so a crash leaves either the old set or the new
one, never half a checkpoint. Loading fills a template pytree of the same structure and names
every mismatch.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from policysearch.errors import UserError

ARRAYS, META, EXTRA = "arrays.safetensors", "meta.json", "state.safetensors"


def named_arrays(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Every leaf of `tree` as an array named prefix + its path (the names `fill_tree` reads)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {prefix + jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename: readers never see half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def save_checkpoint(root: Path, step: int, tree: Any, meta: dict[str, Any], keep: int = 3,
                    extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write `tree`, `meta` and optionally `extra` (named arrays of an algorithm's own state,
    read back by `load_extra`) atomically as root/step_<step>; keep the newest `keep` checkpoints."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:012d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        arrays = {k: np.array(v, order="C") for k, v in named_arrays(tree).items()}
        save_file(arrays, str(tmp / ARRAYS))
        if extra is not None:
            save_file(extra, str(tmp / EXTRA))
        with open(tmp / META, "w") as f:
            json.dump(dict(meta, step=step), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under root, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step_*") if p.is_dir() and (p / META).exists())


def find_checkpoint(path: Path) -> Path:
    """The newest checkpoint in a run dir, a checkpoints dir, or the checkpoint dir itself."""
    path = Path(path)
    if (path / META).exists():
        return path
    for root in (path / "checkpoints", path):
        found = list_checkpoints(root)
        if found:
            return found[-1]
    raise UserError(f"no checkpoint found in '{path}': pass a run directory written by `policysearch train`")


def read_meta(ckpt: Path) -> dict[str, Any]:
    try:
        with open(ckpt / META) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"checkpoint '{ckpt}' is corrupt ({META}: {exc}); resume from an earlier step_* directory") from exc


def load_extra(ckpt: Path) -> dict[str, np.ndarray]:
    """The named arrays `save_checkpoint(..., extra=...)` wrote into checkpoint `ckpt`."""
    try:
        return load_file(str(ckpt / EXTRA))
    except (OSError, SafetensorError, ValueError) as exc:
        raise UserError(f"checkpoint '{ckpt}' has no readable {EXTRA} ({exc}): it cannot be resumed; resume from an earlier step_* directory or start a new run") from exc


def load_arrays(ckpt: Path, template: Any) -> Any:
    """Fill a pytree shaped like `template` with the arrays of checkpoint `ckpt`."""
    try:
        arrays = load_file(str(ckpt / ARRAYS))
    except (OSError, SafetensorError, ValueError) as exc:
        raise UserError(f"checkpoint '{ckpt}' is corrupt ({ARRAYS}: {exc}); resume from an earlier step_* directory") from exc
    return fill_tree(template, arrays, ckpt)


def fill_tree(template: Any, arrays: dict[str, np.ndarray], ckpt: Path, prefix: str = "") -> Any:
    """A pytree shaped like `template` whose leaves are arrays[prefix + path] (read from checkpoint
    `ckpt`, named in the errors), each checked for presence and shape."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    out = []
    for path, leaf in leaves:
        name = prefix + jax.tree_util.keystr(path)
        if name not in arrays:
            raise UserError(f"checkpoint '{ckpt}' lacks '{name}': it was written by another algorithm or network shape")
        value = arrays[name]
        if value.shape != np.shape(leaf):
            raise UserError(
                f"checkpoint '{ckpt}' has '{name}' of shape {value.shape}, expected {np.shape(leaf)}: "
                "the network or environment differs from the one it was trained with"
            )
        out.append(jax.numpy.asarray(value, dtype=np.asarray(leaf).dtype))
    return jax.tree_util.tree_unflatten(treedef, out)
