"""`parbench reproduce RESULTS`: a sweep again from its results folder. A new working folder gets the recorded
config (results/config.yaml, as validated) with `compare_with: [RESULTS]`, so that its report and comparison
page say which cells differ beyond the margin; its `.venv` holds exactly the recorded installed set
(results/installed.txt), installed without dependency resolution, and this parbench through a link.

Paths in the config (a user workload's `module:` file, a variant's `python`) are relative to the original
working folder, RESULTS' parent: the new folder links them (see `linked`). The rerun runs this parbench's code; its
records' code hashes and the comparison page show whether that is the code that made RESULTS."""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HEADER = re.compile(r"Python (\d+)\.(\d+)\.(\d+)\S* (GIL|free-threaded)? ?\((.*)\)")


class ReproduceError(Exception):
    """The folder cannot be reproduced as asked; the message says why."""


def venv_python(folder: Path) -> str:
    return str(folder / ".venv" / "bin" / "python")


def recorded(results: Path) -> tuple[dict, list[str], dict]:
    """(the config, the installed set as 'name==version' lines, the interpreter: version, build, executable)."""
    missing = [name for name in ("config.yaml", "installed.txt") if not (results / name).is_file()]
    if missing:
        raise ReproduceError(f"{results} has no {' or '.join(missing)} (a sweep made by this parbench writes both)")
    config = yaml.safe_load((results / "config.yaml").read_text())
    text = (results / "installed.txt").read_text()
    packages = [line for line in text.splitlines() if line and not line.startswith("#")]
    match = HEADER.search(text.splitlines()[0])
    if not packages or not match:
        raise ReproduceError(f"{results / 'installed.txt'} names no installed set (made before parbench recorded it)")
    major, minor, patch, build, executable = match.groups()
    return config, packages, {"version": f"{major}.{minor}.{patch}", "build": build or "GIL", "executable": executable}


def linked(config: dict, origin: Path, folder: Path) -> dict:
    """The config for the new folder: each relative path it holds (a user workload's `module:` file, a variant's
    `python`) reaches the original through a link of its first folder or file, so the config, and with it every
    record's parameters, stays as it was; a path that climbs out (`../x.py`) is made absolute."""
    out = json.loads(json.dumps(config))
    holders = [
        (p, "module") for p in (out.get("workloads") or {}).values() if isinstance(p, dict) and str(p.get("module", "")).endswith(".py")
    ]
    holders += [(v, "python") for v in (out.get("variants") or {}).values() if isinstance(v, dict) and isinstance(v.get("python"), str)]
    for holder, key in holders:
        path = Path(holder[key])
        if path.is_absolute() or not (origin / path).exists():
            continue
        top = path.parts[0]
        if top in ("..", "results", ".snakemake"):
            holder[key] = str((origin / path).resolve())
        elif not (folder / top).exists():
            (folder / top).symlink_to(origin / top)
    return out


# Run by a candidate interpreter, which may have no parbench: its version, build and base (for `venv`).
PROBE = (
    "import json, platform, sys, sysconfig; print(json.dumps([platform.python_version(), "
    "'free-threaded' if sysconfig.get_config_var('Py_GIL_DISABLED') else 'GIL', sys._base_executable]))"
)


def interpreter(wanted: dict) -> str:
    """An interpreter of the recorded version and build to make the new environment from: the recorded one if it
    is still there, this one, or pythonX.Y on the PATH."""
    major_minor = ".".join(wanted["version"].split(".")[:2])
    seen = []
    for candidate in (wanted["executable"], sys.executable, shutil.which(f"python{major_minor}")):
        if not candidate or not os.path.isfile(candidate):
            continue
        probe = subprocess.run([candidate, "-c", PROBE], capture_output=True, text=True)
        if probe.returncode:
            continue
        version, build, base = json.loads(probe.stdout)
        seen.append(f"{candidate}: Python {version} {build}")
        if version.startswith(major_minor + ".") and build == wanted["build"]:
            if version != wanted["version"]:
                print(f"parbench reproduce: Python {version} stands in for the recorded {wanted['version']}", file=sys.stderr)
            return base
    raise ReproduceError(
        f"no Python {major_minor} ({wanted['build']}) to rebuild the environment with; tried {'; '.join(seen) or 'none found'}"
    )


def build(folder: Path, packages: list[str], wanted: dict) -> str:
    """folder/.venv with exactly `packages` (no pip of its own: this interpreter's pip installs into it) and this
    parbench through a folder that links the package alone; ReproduceError if its installed set is not `packages`."""
    base = interpreter(wanted)
    venv = folder / ".venv"
    subprocess.run([base, "-m", "venv", "--without-pip", venv], check=True)
    pip = [sys.executable, "-m", "pip", "--python", venv_python(folder)]
    with tempfile.TemporaryDirectory(dir=folder) as fetched:
        files = fetch(pip, packages, Path(fetched))
        wheels, sources = [f for f in files if f.suffix == ".whl"], [f for f in files if f.suffix != ".whl"]
        install = [*pip, "install", "-qq", "--no-deps", "--no-compile"]
        # The wheels from their files alone; a source distribution's build may need packages from the index.
        if subprocess.run([*install, "--no-index", *wheels]).returncode or (sources and subprocess.run([*install, *sources]).returncode):
            raise ReproduceError(f"pip could not install the recorded set into {venv} (its messages are above)")
    # Compiled here, on every core (pip compiles one file at a time), so that no rerun's start-up compiles
    # its imports; a file that does not compile (a package's test data) is left, silently, as pip leaves it.
    subprocess.run([venv_python(folder), "-m", "compileall", "-qq", "-j", "0", venv / "lib"])
    link = folder / ".venv" / "parbench-only"
    link.mkdir()
    (link / "parbench").symlink_to(Path(__file__).resolve().parent)
    # Its dist-info too, so records name its version as the original's do (no public API names that folder).
    metadata = importlib.metadata.distribution("parbench")._path
    (link / Path(metadata).name).symlink_to(Path(metadata).resolve())
    purelib = subprocess.run(
        [venv_python(folder), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True, check=True
    ).stdout.strip()
    Path(purelib, "parbench.pth").write_text(f"{link}\n")
    got = installed(venv_python(folder))
    if got != packages:
        extra, lacking = sorted(set(got) - set(packages)), sorted(set(packages) - set(got))
        raise ReproduceError(f"{venv} does not hold the recorded set: extra {extra}, missing {lacking}")
    return venv_python(folder)


# One pip fetches one package at a time, most of it waiting on the index: the suite's recorded set (129 packages)
# took 6 s to fetch four at a time and 7 s to install from the files, against 22 s in one `pip install`.
FETCHES = 4


def fetch(pip: list[str], packages: list[str], folder: Path) -> list[Path]:
    """Each recorded package's file (a wheel for the new environment's interpreter, where there is one) in
    `folder`, FETCHES pip processes at once; ReproduceError if any failed."""
    parts = [packages[i::FETCHES] for i in range(FETCHES)]
    fetching = [subprocess.Popen([*pip, "download", "-qq", "--no-deps", "-d", folder, *part]) for part in parts if part]
    if any([p.wait() for p in fetching]):  # a list: every pip ends before this returns
        raise ReproduceError("pip could not download the recorded set (its messages are above)")
    return sorted(folder.iterdir())


def installed(python: str) -> list[str]:
    """The installed set of `python`, as results/installed.txt lists it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [python, "-c", "import json; from parbench import environment; print(json.dumps(environment.installed()))"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def prepare(results: Path, output: Path | None = None) -> Path:
    """The new working folder, with config/config.yaml and .venv ready: `parbench run` there reruns the sweep."""
    results = results.resolve()
    config, packages, wanted = recorded(results)
    origin = results.parent
    folder = (output or origin.with_name(f"{origin.name}-reproduced")).resolve()
    if folder.exists() and any(folder.iterdir()):
        raise ReproduceError(f"{folder} exists and is not empty; name a new folder with -o")
    (folder / "config").mkdir(parents=True, exist_ok=True)
    rerun = {**linked(config, origin, folder), "compare_with": [str(results)]}
    header = (
        f"# The sweep of {results} again (`parbench reproduce`), compared with it: its report's comparison says which\n"
        "# cells differ beyond the margin. Another machine or another day is a confound the comparison page names.\n"
    )
    (folder / "config" / "config.yaml").write_text(header + yaml.safe_dump(rerun, sort_keys=False))
    build(folder, packages, wanted)
    return folder
