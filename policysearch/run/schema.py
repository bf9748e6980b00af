"""The one schema of everything a run folder records: a dataclass's own type hints. `from_dict`
rebuilds a config or spec dataclass from its JSON form and refuses (UserError naming the file and
the field) a record with a missing or unknown field or a value of the wrong type, so a
hand-edited or garbled `config.json` / `meta.json` is answered with one line, never a traceback
from deep inside the run. The dataclass's own `__post_init__` then checks the values' ranges.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, Literal

from policysearch.errors import UserError


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint (tuples arrive as lists, floats may arrive as ints)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        return len(items) == len(value) and all(_matches(v, a) for v, a in zip(value, items))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def from_dict(cls: type, data: Any, where: str, others: bool = False) -> Any:
    """cls(**data) after checking data against cls's fields and type hints; `where` names the
    record in the message (e.g. "the meta.json of 'runs/x' (run)"). With `others`, data may hold
    other keys too (a record that several readers share), which are left out."""
    if not isinstance(data, dict):
        raise UserError(f"{where} is not a JSON object: it was not written by this policysearch version")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if others:
        data = {k: v for k, v in data.items() if k in fields}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{where} has unknown fields {unknown}: it was written by another policysearch version")
    hints = _hints(cls)
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise UserError(f"{where} lacks the field '{name}': it was not written by this policysearch version")
            continue
        if not _matches(data[name], hints[name]):
            raise UserError(f"{where} has '{name}': {data[name]!r}, which is not a {hints[name]}: the file was edited or damaged")
    try:
        return cls(**{k: _tuples(v) for k, v in data.items()})
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
