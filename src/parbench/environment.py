"""Provenance: the machine, the software and the code a run used."""

import ast
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from parbench import plugins
from parbench.plugins import PLUGIN_PACKAGES, module_name, python_build

# Every distribution whose version can change any result; a plugin adds its own (`DISTRIBUTIONS` in its module).
PACKAGES = ["parbench", "numpy", "scipy", "pandas", "cloudpickle", "snakemake", "psutil", "threadpoolctl"]


def plugin_distributions() -> tuple[str, ...]:
    """The distributions the plugins declare (a module-level `DISTRIBUTIONS` tuple, read from their source): a run's
    record names them all without importing every backend (Ray, Dask) into its driver."""
    found = [name for package in PLUGIN_PACKAGES for names in plugins.declared(package, "DISTRIBUTIONS").values() for name in names]
    return tuple(dict.fromkeys(found))


def versions(names=None) -> dict:
    """Each recorded distribution's installed version (None: not installed)."""
    names = [*PACKAGES, *plugin_distributions()] if names is None else names
    found = {}
    for name in names:
        try:
            found[name] = _head(importlib.metadata.distribution(name)).get("Version")
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def installation_paths() -> list[str]:
    """sys.path without folders inside an imported package: Ray puts its vendored ray/thirdparty_files (colorama)
    on the path when imported, which made Ray's runs list a package no other run's set had."""

    def vendored(entry: Path) -> bool:
        return any((folder / "__init__.py").is_file() for folder in [entry, *entry.parents][:-1])

    return [p for p in sys.path if not (p and vendored(Path(p)))]


@functools.cache
def installed() -> list[str]:
    """Every distribution installed for this interpreter as 'name==version', sorted (parbench itself, named by
    the git commit and code hash, left out): what `pip install -r` needs to rebuild the environment."""
    found = {}
    for dist in importlib.metadata.distributions(path=installation_paths()):
        head = _head(dist)
        name = head.get("Name", "").lower().replace("_", "-")
        if name and name != "parbench":
            found.setdefault(name, head.get("Version"))
    return [f"{name}=={version}" for name, version in sorted(found.items())]


def _head(dist: importlib.metadata.Distribution) -> dict:
    """Name and Version from the metadata's header alone: `dist.metadata` parses the whole file (long descriptions
    included) as e-mail, 50 ms of every driver's start for 129 packages, against 8 ms."""
    head = {}
    for line in (dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "").splitlines():
        if not line.strip():
            break  # the header ends at the first blank line; the description follows
        key, _, value = line.partition(":")
        if key in ("Name", "Version"):
            head.setdefault(key, value.strip())
    return head


def installed_text(records: list[dict]) -> str:
    """results/installed.txt: the installed set of the runs' interpreter (the first of them, the sweep's own when
    given its runs), a header naming it and how many runs share the set, and any other set the runs had."""
    sets = {}
    for r in records:
        env = r.get("environment") or {}
        if env.get("installed"):
            key = (env.get("python"), env.get("python_build"), env.get("python_executable"), tuple(env["installed"]))
            sets[key] = sets.get(key, 0) + 1
    if not sets:
        return "# The runs' records name no installed set (made before parbench recorded it).\n"
    (python, build, executable, packages), n = next(iter(sets.items()))
    lines = [f"# The installed set of {n} of {len(records)} runs: Python {python} {build or ''} ({executable})."]
    lines += ["# Rebuild it: python -m venv ENV && ENV/bin/pip install -r installed.txt, then parbench at the records' git commit."]
    for (other, other_build, where, listed), m in list(sets.items())[1:]:
        lines.append(
            f"# Another set ran {m} runs: Python {other} {other_build or ''} ({where}), {len(listed)} packages (their records list it)."
        )
    return "\n".join(lines) + "\n" + "".join(f"{line}\n" for line in packages)


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        return platform.processor() or None


def git(source: Path = Path(__file__).parent) -> dict:
    """The commit of the parbench code that ran, and whether its tracked files had changes; nulls outside git."""
    try:
        run = lambda *args: subprocess.run(  # noqa: E731
            ["git", *args], cwd=source, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        return {"git_commit": run("rev-parse", "HEAD"), "git_dirty": bool(run("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def blas() -> list[dict]:
    """threadpoolctl's view of the BLAS libraries loaded in this process."""
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_info

    keep = ("internal_api", "version", "threading_layer", "architecture", "num_threads")
    return [{k: p.get(k) for k in keep} for p in threadpool_info() if p["user_api"] == "blas"]


SOURCE = Path(__file__).parent
# The code every run goes through; with the run's own backend and workload modules it makes the run's code hash.
RUN_CODE = [
    "run/runner",
    "run/measure",
    "worker",
    "run/driver",
    "run/job",
    "run/supervise",
    "cgroups",
    "cleanup",
    "records",
    "environment",
    "plugins",
    "backends/base",
    "workloads/base",
    *(f"backends/{p.stem}" for p in sorted((SOURCE / "backends").glob("_[a-z]*.py"))),
]


@functools.cache
def code_hash(*modules: str) -> str:
    """Hash of the given parbench modules' source ('runner', 'backends/ray'): a Snakemake param, so
    editing a module reruns exactly the jobs whose results it shapes."""
    digest = hashlib.sha256()
    for module in sorted(set(modules)):
        path = SOURCE / (module if "." in module else f"{module}.py")  # a template or style sheet keeps its suffix
        digest.update(module.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# A statement that imports parbench, on lines of its own (in a function too): parenthesised names or a backslash
# may continue it. Parsing these alone, not the whole module, saves a tenth of a second of every Snakemake start.
PARBENCH_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+parbench\b[\w.]*[ \t]+import[ \t]+(?:\([^)]*\)|(?:[^\n]*\\\n)*[^\n]*)"
    r"|import[ \t]+(?:[^\n]*\\\n)*[^\n]*\bparbench\b[^\n]*)",
    re.M,
)


def _imports(source: str) -> list[str]:
    """The parbench modules and packages `source` imports (static imports, inside functions too), as code_hash names them."""
    try:
        return imported_names(ast.parse("\n".join(m.group(0).strip() for m in PARBENCH_IMPORT.finditer(source))))
    except SyntaxError:  # a match in a docstring, or a statement the pattern cut short: the whole source, as Python reads it
        return imported_names(ast.parse(source))


def imported_names(tree: ast.AST) -> list[str]:
    """The parbench modules and packages the import statements in `tree` name, as code_hash names them."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "parbench":
            base = node.module.removeprefix("parbench").lstrip(".").replace(".", "/")
            names += ([base] if base else []) + [f"{base}/{a.name}" if base else a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names += [a.name.removeprefix("parbench.").replace(".", "/") for a in node.names if a.name.startswith("parbench.")]
    return names


@functools.cache
def imported(*modules: str) -> tuple[str, ...]:
    """`modules` and every parbench module they import, directly or through each other. A plugin package
    (backends, workloads) finds its plugins by name at run time: importing it counts as importing every plugin."""
    seen, todo = set(), list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        if (SOURCE / module).is_dir():  # a package: its __init__ and, for a plugin package, every plugin
            todo += [
                f"{module}/{f.stem}" for f in sorted((SOURCE / module).glob("*.py")) if module in PLUGIN_PACKAGES or f.stem == "__init__"
            ]
        elif (SOURCE / f"{module}.py").is_file():
            todo += _imports_of(module)
    return tuple(sorted(m for m in seen if not (SOURCE / m).is_dir()))  # a template or style sheet keeps its suffix


@functools.cache
def _imports_of(module: str) -> tuple[str, ...]:
    """The parbench modules and packages that module `module` ('run/runner') imports: each parsed once, not once
    for every rule's script that reaches it (a quarter of a second of every Snakemake start)."""
    return _ours(_imports((SOURCE / f"{module}.py").read_text()))


def _ours(names: list[str]) -> tuple[str, ...]:
    """Those of `names` that are parbench modules or packages (an imported name may be a function or a constant)."""
    return tuple(n for n in names if (SOURCE / n).is_dir() or (SOURCE / f"{n}.py").is_file())


def script_code_hash(script, *more: str) -> str:
    """The code hash of a workflow script's job: the parbench modules it imports, their imports in turn, and
    `more` (a module it runs as a command, a data file such as `templates/report.css`): so a module added to
    that code is never left out."""
    return code_hash(*imported(*_ours(_imports(Path(script).read_text())), *more))


@functools.cache
def run_code_hash(backend: str, workload: str, module: str | None = None) -> str:
    """The code hash of one run: the shared run code, the backend's module, and the workload's
    module (a user's `module` by the content of its file, with the code that adapts it)."""
    if module is None:
        return code_hash(*RUN_CODE, f"backends/{module_name(backend)}", f"workloads/{module_name(workload)}")
    from parbench.workloads import _user

    ours = code_hash(*RUN_CODE, f"backends/{module_name(backend)}", "workloads/_user")
    return hashlib.sha256(f"{ours}:{_user.digest(module)}".encode()).hexdigest()[:16]


def interpreter(python: str | None) -> str:
    """A run's Python: a variant's `python` (an interpreter, or a virtual environment's folder), else ours."""
    if not python:
        return sys.executable
    path = Path(python).expanduser()
    return str(path / "bin" / "python") if path.is_dir() else str(path)


def gil_enabled() -> bool:
    """Whether the GIL is on now: always on a GIL build; on a free-threaded build until an extension that does
    not declare itself free-threading safe is imported (spaCy's thinc does), which turns it on for the process."""
    return getattr(sys, "_is_gil_enabled", lambda: True)()


def config_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def collect(start_method: str | None = None, settings: dict | None = None) -> dict:
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        # CPUs this run may use: fewer than the machine's where a scheduler binds it (srun, taskset, cgroups).
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "memory_bytes": psutil.virtual_memory().total,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_build": python_build(),
        "python_executable": sys.executable,
        "packages": versions(),
        "installed": installed(),
        "start_method": start_method,
        "blas": blas(),
        **git(),
        "config_hash": config_hash(settings or {}),
        "env": {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")},
    }


def of_run(spec: dict) -> dict:
    """The environment section of a run's record: the machine and software, with the run's config and code hashes."""
    options = spec["settings"].get("options", {})
    return {
        **collect(options.get("start_method"), {"params": spec["params"], "settings": spec["settings"]}),
        "code_hash": spec.get("code"),
    }
