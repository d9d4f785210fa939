"""Package exports imported on first use (PEP 562), so a light import does not pay for a package's heavy modules."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, where: dict[str, list[str]]) -> tuple[list[str], Callable[[str], object]]:
    """(`__all__`, module `__getattr__`) for `package`, whose names live in the modules of `where`."""
    module_of = {name: module for module, names in where.items() for name in names}

    def __getattr__(name: str):
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return sorted(module_of), __getattr__
