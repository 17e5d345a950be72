"""Names a package loads on first use (PEP 562), so importing it costs nothing until a name is used.

``import seqstudio`` (and so every CLI command) and a plugin package found through its entry points must not pay
for torch's import, which is most of a command's start-up: their public names point at the module that defines
each one and are imported when first looked up. The core and every plugin package declare theirs the same way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, names: dict[str, str], namespace: dict[str, Any]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public name to the submodule defining it;
    a looked-up name is stored in the package's ``namespace`` (its ``globals()``), so the import happens once."""

    def __getattr__(name: str):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
