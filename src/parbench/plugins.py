"""Find backends and workloads by name: one module each, no registry to edit."""

import importlib
import pkgutil


def module_name(name: str) -> str:
    """Config word to module name: 'multiprocessing-shared' -> 'multiprocessing_shared'."""
    return name.replace("-", "_")


def names(package: str) -> list[str]:
    """Every plugin in a package, as config words (modules starting with '_' or 'base' are not plugins)."""
    pkg = importlib.import_module(package)
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_") and m.name != "base")


def load(package: str, name: str, attribute: str):
    """The class `attribute` of plugin `name` in `package`."""
    if name not in names(package):
        raise KeyError(f"unknown {package.rsplit('.', 1)[-1][:-1]} {name!r}; known: {', '.join(names(package))}")
    return getattr(importlib.import_module(f"{package}.{module_name(name)}"), attribute)
