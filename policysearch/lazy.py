"""Names a package exports without importing them until first use (PEP 562 module `__getattr__`).

`import policysearch` and the command line's `--help` and input checks must not pay for JAX's
import (1-2 s): the packages that re-export JAX code (`policysearch`, `algos`, `algos.gps`,
`control`) name where each export lives, and it is imported when first touched.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports `where[name]` (a module path) on first use
    of `name` and caches it in the package's namespace."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__


def lazy_callable(module: str, name: str) -> Callable[..., Any]:
    """A function that imports `module.name` when first called and forwards to it."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"`{module}.{name}`, imported on first call."
    return call
