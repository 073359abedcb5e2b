"""Find backends and workloads by name: one module each, no registry to edit."""

import ast
import contextlib
import functools
import importlib
import pkgutil
import sys
import sysconfig
from pathlib import Path


class Unavailable(Exception):
    """A backend or workload cannot run on this interpreter (a package it needs is not installed for it, or
    cannot be loaded where its tasks run): the run is `skipped` with this reason, before any timer."""


# The reference backend, by its config word (backends/serial.py): every cell is compared with it at the
# same worker count; the rest of parbench names it only through this constant.
REFERENCE = "serial"

# The plugin packages: each finds its modules by name at run time (names, load).
PLUGIN_PACKAGES = ("backends", "workloads")
SOURCE = Path(__file__).parent


@functools.cache
def declared(package: str, constant: str) -> dict:
    """{plugin's config word: value} of a module-level constant its plugins declare (`DISTRIBUTIONS`, `SENTINEL`),
    read from their source, not imported: what the rest of parbench needs to know of a plugin, without Ray or
    spaCy in the process that asks (Snakemake's own, a run's driver)."""
    found = {}
    for path in sorted((SOURCE / package).glob("*.py")):
        if path.stem.startswith("_") or path.stem == "base":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == constant for t in node.targets):
                found[path.stem.replace("_", "-")] = ast.literal_eval(node.value)
    return found


def python_build() -> str:
    """'free-threaded' (CPython built with --disable-gil, Py_GIL_DISABLED) or 'GIL'."""
    return "free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "GIL"


def interpreter() -> str:
    """This interpreter, as a reason names it: 'Python 3.13.5 free-threaded (/path/python3.13t)'."""
    build = " free-threaded" if python_build() == "free-threaded" else ""
    return f"Python {sys.version.split()[0]}{build} ({sys.executable})"


@contextlib.contextmanager
def needing(what: str):
    """Importing `what`'s code: a third-party module that is not installed becomes Unavailable (parbench's own is a bug)."""
    try:
        yield
    except ModuleNotFoundError as error:
        if not error.name or error.name.split(".")[0] == "parbench":
            raise
        needs = "" if error.name == what else f" ({what} needs it)"
        raise Unavailable(f"{error.name} is not installed for {interpreter()}{needs}") from error


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
    with needing(name):
        return getattr(importlib.import_module(f"{package}.{module_name(name)}"), attribute)
