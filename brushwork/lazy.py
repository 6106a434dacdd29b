"""Modules imported on first use. torch takes about two seconds to import, and the command line must answer
`--help`, `brushwork methods` and a bad argument before that: the registry, the options and the parser are built
from modules that name their heavy dependencies through `lazy` and import them only when a run needs them."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any, Callable


class LazyModule(types.ModuleType):
    """Stands in for a module: the first attribute read imports it, and every read is passed on to it, so that
    what is patched or added on the real module later is seen here too."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_lazy_target"] = name

    def __getattr__(self, attr: str):
        name = self.__dict__["_lazy_target"]
        return getattr(sys.modules.get(name) or importlib.import_module(name), attr)


def lazy(name: str) -> types.ModuleType:
    """The module `name` if it is already imported, else a stand-in that imports it on first attribute access."""
    return sys.modules.get(name) or LazyModule(name)


def attribute_loader(package: str, names: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A package's `__getattr__` (PEP 562): the attribute `name` comes from its submodule `names[name]`, imported
    on first use and then kept in the package's `namespace`, so a package can name its API without importing it."""
    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(f".{names[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module '{package}' has no attribute '{name}'")
    return __getattr__
