"""Checkpoints: arrays in safetensors, everything else in JSON, no pickle.

A checkpoint is a directory `DIR/checkpoints/step_<N>/` holding `arrays.safetensors` (every leaf
of the state pytree, named by its path) and `meta.json` (config, env, counters). It is written
under a temporary name and renamed into place, so a crash leaves either the old set or the new
one, never half a checkpoint. Loading fills a template pytree of the same structure and names
every mismatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from policysearch.errors import UserError

ARRAYS, META, EXTRA = "arrays.safetensors", "meta.json", "state.safetensors"


def named_arrays(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Every leaf of `tree` as an array named prefix + its path (the names `fill_tree` reads)."""
    import jax  # here, not at the top: reading a run's meta.json (the CLI's resume check) needs no JAX

    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {prefix + jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename: readers never see half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_synced(path: Path, data: bytes) -> str:
    """Write data to path (mode from the umask), flushed to disk; its SHA-256."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(root: Path, step: int, tree: Any, meta: dict[str, Any], keep: int = 3,
                    extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write `tree`, `meta` and optionally `extra` (named arrays of an algorithm's own state,
    read back by `load_extra`) atomically as root/step_<step>, with the SHA-256 of each array file
    in meta.json ("sha256", checked on load); keep the newest `keep` checkpoints. Folder and files
    follow the umask."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:012d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        sums = {ARRAYS: _write_synced(tmp / ARRAYS, save({k: np.array(v, order="C") for k, v in named_arrays(tree).items()}))}
        if extra is not None:
            sums[EXTRA] = _write_synced(tmp / EXTRA, save(extra))
        _write_synced(tmp / META, json.dumps(dict(meta, step=step, sha256=sums), indent=2).encode())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as exc:  # a full disk or a size limit: name the checkpoint, not the temporary file
        raise OSError(exc.errno, exc.strerror, str(final)) from exc
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
    if not path.exists():
        raise UserError(f"'{path}' does not exist: pass a run directory written by `policysearch train`")
    if any((path / name).exists() for name in ("config.json", "metrics.csv", ".lock")):
        raise UserError(f"the run in '{path}' has written no checkpoint yet: the first is written after --checkpoint-every steps "
                        "(default 100,000; GPS after its first iteration) and whenever the run ends or is stopped with Ctrl-C or SIGTERM")
    raise UserError(f"no checkpoint found in '{path}': pass a run directory written by `policysearch train`")


def corrupt(ckpt: Path, what: str) -> UserError:
    """The refusal of a damaged checkpoint, with what to do: set it aside and resume the run folder."""
    run = ckpt.parent.parent
    return UserError(f"checkpoint '{ckpt}' is corrupt ({what}); move it out of '{ckpt.parent}' (or delete it), then use the run "
                     f"folder '{run}' again: it continues from the newest checkpoint before it")


POLICY_META = {"format": int, "step": int, "network": dict, "env_spec": dict}
"""The fields of a saved policy's meta.json, with their JSON types (the records inside are
checked against their dataclasses by `schema.from_dict` where they are read; a run's settings,
"run" and "algo_config", where it is resumed)."""


def read_meta(ckpt: Path) -> dict[str, Any]:
    """meta.json of a checkpoint, checked to be a JSON object with a well-formed 'sha256'."""
    try:
        with open(ckpt / META) as f:
            meta = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise corrupt(ckpt, f"{META}: {getattr(exc, 'strerror', None) or exc}") from exc
    if not isinstance(meta, dict):
        raise corrupt(ckpt, f"{META} is not a JSON object")
    if not isinstance(meta.get("sha256", {}), dict):
        raise corrupt(ckpt, f"{META} has a malformed 'sha256'")
    return meta


def read_policy_meta(ckpt: Path) -> dict[str, Any]:
    """meta.json of a checkpoint that holds a policy, checked to have POLICY_META's fields."""
    meta = read_meta(ckpt)
    for name, kind in POLICY_META.items():
        value = meta.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise corrupt(ckpt, f"{META} has '{name}': {value!r}, not a JSON {kind.__name__}")
    return meta


def read_arrays(ckpt: Path, name: str, finite: bool = True) -> dict[str, np.ndarray]:
    """The arrays of file `name` of a checkpoint, checked against the SHA-256 its meta.json
    records and (when `finite`) for finite floats: a damaged or non-finite file is a UserError."""
    meta = read_meta(ckpt)
    try:
        data = (ckpt / name).read_bytes()
    except OSError as exc:
        raise corrupt(ckpt, f"{name}: {exc.strerror}") from exc
    expected = meta.get("sha256", {}).get(name)
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise corrupt(ckpt, f"{name} does not match its checksum")
    try:
        arrays = load(data)
    except (SafetensorError, ValueError) as exc:
        raise corrupt(ckpt, f"{name}: {exc}") from exc
    if finite:
        bad = next((k for k, v in arrays.items() if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v))), None)
        if bad is not None:
            raise corrupt(ckpt, f"'{bad}' in {name} holds non-finite values")
    return arrays


def load_extra(ckpt: Path) -> dict[str, np.ndarray]:
    """The named arrays `save_checkpoint(..., extra=...)` wrote into checkpoint `ckpt`."""
    return read_arrays(ckpt, EXTRA)


def load_arrays(ckpt: Path, template: Any, finite: bool = True) -> Any:
    """Fill a pytree shaped like `template` with the arrays of checkpoint `ckpt` (all finite,
    unless `finite` is False)."""
    return fill_tree(template, read_arrays(ckpt, ARRAYS, finite), ckpt)


def fill_tree(template: Any, arrays: dict[str, np.ndarray], ckpt: Path, prefix: str = "") -> Any:
    """A pytree shaped like `template` whose leaves are arrays[prefix + path] (read from checkpoint
    `ckpt`, named in the errors), each checked for presence and shape."""
    import jax

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
