"""A user's own workload: a module of plain functions in the user's project, named in the config by
`module:` (a .py file relative to the working directory, or a dotted module name).

    STATEFUL = False                         # optional: True = costly state, built once per worker where the backend can
    def data(params): ...                    # the shared input, a dict; made in the driver outside every timer, again for the check
    def build(**data): ...                   # optional: a task's state, made from the data inside a worker (default: the dict)
    def items(params, batch, n): ...         # the n inputs of one batch (the same arguments give the same items)
    def task(state, item): ...               # one task; its result comes back to the driver
    def check(item, result, expected): ...   # optional: True if result is right (default: `same`)

A module may instead define `Workload`, a `BaseWorkload` subclass, for full control. The module's
folder goes first on the path of the driver and of every worker (through PYTHONPATH), so its
functions pickle by reference, as parbench's own do.
"""

import dataclasses
import faulthandler
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from types import ModuleType

import numpy as np

from parbench.workloads.base import RUN_KEYS, BaseWorkload, Work, WorkloadError, data_as_state, pairs

# Default check: floating-point arrays and numbers agree to this relative error (norm-wise for
# arrays): results computed with other BLAS thread counts differ in their last bits.
RTOL = 1e-7
ATOL = 1e-12
REQUIRED = {"data": 1, "items": 3, "task": 2}  # function name: positional arguments it takes
OPTIONAL = {"build": None, "check": 3}
CHECKED = Path(".snakemake", "parbench", "checked")  # workloads that passed `problems`, by digest


def locate(module: str, cwd: Path | None = None) -> tuple[str, Path, Path]:
    """(import name, folder to put on the path, source file) of `module`; LookupError if there is none."""
    cwd = Path(cwd or Path.cwd())
    if module.endswith(".py"):
        path = (cwd / module).resolve()
        if not path.is_file():
            raise LookupError(f"{module} does not exist (looked for {path})")
        name = path.stem
        if not name.isidentifier():
            raise LookupError(f"{path.name} is not an importable module name; rename the file (letters, digits, _)")
        if _shadows(name, path):  # first on the path, the file would replace that module for every library
            raise LookupError(f"{path.name} has the name of the module {name!r} already installed; rename the file")
        return name, path.parent, path
    if str(cwd) not in sys.path:
        sys.path.insert(0, str(cwd))
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as error:
        raise LookupError(f"no module {module!r} can be imported ({error})") from None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise LookupError(f"no module {module!r} can be imported from {cwd} or the installed packages")
    return module, cwd, Path(spec.origin).resolve()


def _shadows(name: str, path: Path) -> bool:
    """True if a module `name` other than the file `path` exists: in the standard library, or on the
    path (but for the file's own folder and the folders of user modules loaded before)."""
    if name in sys.builtin_module_names or name in sys.stdlib_module_names:
        return True
    search = [p for p in sys.path if p not in _LOADED and Path(p or ".").resolve() != path.parent]
    spec = importlib.machinery.PathFinder.find_spec(name, search)
    return spec is not None and spec.origin is not None and Path(spec.origin).resolve() != path


_LOADED: set[str] = set()  # folders `load` put on sys.path


def digest(module: str, cwd: Path | None = None) -> str:
    """SHA-256 of the module's source file: part of the runs' code hash, so editing it reruns them."""
    return hashlib.sha256(locate(module, cwd)[2].read_bytes()).hexdigest()


def load(module: str) -> type[BaseWorkload]:
    """The Workload class for `module`; its folder goes on the path of this process and of every child."""
    name, folder, path = locate(module)
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    else:
        _LOADED.add(str(folder))
    sys.path.insert(0, str(folder))  # first: another folder loaded before may hold a file of the same name
    cached = sys.modules.get(name)
    if cached is not None and Path(getattr(cached, "__file__", "") or "").resolve() != path:
        del sys.modules[name]  # a file of the same name elsewhere, loaded earlier in this process
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(folder) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(folder), *paths])
    loaded = importlib.import_module(name)
    own = getattr(loaded, "Workload", None)
    if isinstance(own, type) and issubclass(own, BaseWorkload):
        return own
    return type(f"Functions_{name}", (Functions,), {"module": loaded, "source": module})


def same(result, expected) -> bool:
    """The default check: arrays and floats within RTOL, containers element by element, anything else by ==."""
    if isinstance(result, np.ndarray) or isinstance(expected, np.ndarray):
        return _arrays_close(result, expected)
    if isinstance(result, float | np.floating) and isinstance(expected, float | np.floating):
        return (math.isnan(result) and math.isnan(expected)) or math.isclose(result, expected, rel_tol=RTOL, abs_tol=ATOL)
    if isinstance(result, dict) and isinstance(expected, dict):
        return result.keys() == expected.keys() and all(same(result[k], expected[k]) for k in result)
    if isinstance(result, list | tuple) and type(result) is type(expected):
        return len(result) == len(expected) and all(same(r, e) for r, e in zip(result, expected))
    if dataclasses.is_dataclass(result) and type(result) is type(expected):  # field by field: a float field may be NaN
        return all(same(getattr(result, f.name), getattr(expected, f.name)) for f in dataclasses.fields(result))
    if hasattr(result, "equals"):  # pandas objects: == compares element-wise
        return bool(result.equals(expected))
    equal = result == expected
    return bool(np.all(equal)) if not isinstance(equal, bool) else equal


def _arrays_close(a, b) -> bool:
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.shape != b.shape:
        return False
    if not (np.issubdtype(a.dtype, np.inexact) and np.issubdtype(b.dtype, np.inexact)):
        return bool(np.array_equal(a, b))
    finite = np.isfinite(b)
    if not np.array_equal(np.isfinite(a), finite) or not np.array_equal(a[~finite], b[~finite], equal_nan=True):
        return False
    return bool(np.linalg.norm(a[finite] - b[finite]) <= RTOL * np.linalg.norm(b[finite]) + ATOL)


def _pickle_digest(value) -> str | None:
    """sha256 of value's pickle, streamed (the pickle's bytes are never held: a batch's items may be large,
    and the driver's memory is measured); None where it cannot be pickled (then nothing is compared)."""
    digest = hashlib.sha256()
    try:
        pickle.Pickler(_Writer(digest.update), protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except Exception:  # noqa: BLE001  (items only an in-driver backend can take)
        return None
    return digest.hexdigest()


class _Writer:
    """A file-like `write` for pickle.Pickler."""

    def __init__(self, write):
        self.write = write


class Functions(BaseWorkload):
    """A module of plain functions as a workload. Results are pickled to a temporary file as they
    arrive and read back for verification, so the driver does not hold them during the run."""

    module: ModuleType
    source: str

    def __init__(self, params: dict, trial: int):
        super().__init__(params, trial)
        self._spill = tempfile.TemporaryFile(prefix="parbench-results-")
        self._unpicklable = {}
        self._items = {}  # (batch, n) -> a digest of the items first made

    def _call(self, what: str, fn, /, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            from parbench.worker import describe_error

            traceback.print_exception(error, file=sys.stderr)  # the whole of it, in the run's log: the record holds one line
            raise WorkloadError(describe_error(what, error, fn)) from None

    def _data(self, what: str = "data(params)") -> dict:
        data = self._call(what, self.module.data, self.params)
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise WorkloadError(f"{what} returned {type(data).__name__}, not a dict with str keys")
        return data

    def work(self) -> Work:
        m = self.module
        return Work(task=m.task, build=getattr(m, "build", data_as_state), data=self._data(), stateful=bool(getattr(m, "STATEFUL", False)))

    def items(self, batch: int, n: int) -> list:
        what = f"items(params, {batch}, {n})"
        items = list(self._call(what, self.module.items, self.params, batch, n))
        if len(items) != n:
            raise WorkloadError(f"{what} returned {len(items)} items, not {n}")
        # The check makes the items again: if they differ, say so rather than blame the results.
        digest = _pickle_digest(items)
        if self._items.setdefault((batch, n), digest) != digest:
            raise WorkloadError(
                f"{what} gave other items when called again for the check (their pickles differ): the same arguments "
                "must give the same items; seed any randomness from batch"
            )
        return items

    def digest(self, result):
        position = self._spill.tell()
        try:
            pickle.dump(result, self._spill, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001  (a result only an in-driver backend can return: kept as it is)
            self._spill.seek(position)
            self._unpicklable[position] = result
        return position

    def _result(self, position):
        if position in self._unpicklable:
            return self._unpicklable[position]
        self._spill.seek(position)
        return pickle.load(self._spill)

    def verify(self, batch: int, items: list, digests: list) -> list[str]:
        m = self.module
        if not hasattr(self, "_reference"):  # after teardown: the data made again (the driver let go of it), the state built in the driver
            data = self._data("data(params), called again after teardown for the check")
            self._reference = self._call("building the state", getattr(m, "build", data_as_state), **data)
        check = getattr(m, "check", None)
        problems = []
        for i, (item, position) in enumerate(pairs(items, digests)):
            result = self._result(position)
            expected = self._call("task (the serial reference)", m.task, self._reference, item)
            ok = self._call("check(item, result, expected)", check, item, result, expected) if check else same(result, expected)
            if not ok:
                how = "check(item, result, expected) returned False" if check else "differs from the same task run serially"
                problems.append(f"batch {batch} task {i}: result {how}")
        self._spill.seek(0, os.SEEK_END)
        return problems

    def describe(self) -> dict:
        _, _, path = locate(self.source)
        return {"module": {"source": self.source, "file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}}

    def close(self) -> None:
        self._spill.close()


# ---------------------------------------------------------------------------------------------
# Checks before any job: the module imports, has its functions, and accepts its parameters


def problems(name: str, params: dict, cwd: Path | None = None) -> list[str]:
    """What is wrong with user workload `name` (config `params`), as messages naming its config key.

    The import and the calls of `data` and `items` run in a fresh process (the user's code must
    not run inside Snakemake), once per content of the module and parameters: a passed check is
    remembered under .snakemake/parbench/checked/."""
    key = f"config key workloads.{name}"
    module = params.get("module")
    try:
        _, _, path = locate(module, cwd)
    except LookupError as error:
        return [f"{key}.module: {error}"]
    user = {k: v for k, v in params.items() if k not in RUN_KEYS}
    stamp = hashlib.sha256(path.read_bytes() + json.dumps([name, module, user], sort_keys=True, default=str).encode()).hexdigest()
    done = Path(cwd or Path.cwd(), CHECKED, stamp)
    if done.exists():
        return []
    command = [sys.executable, "-m", "parbench.workloads._user", name, json.dumps(params, default=str)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH")]))}
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=CHECK_TIMEOUT_S + 10)
    except subprocess.TimeoutExpired as expired:  # the check's own faulthandler did not end it
        result = subprocess.CompletedProcess(command, -9, expired.stdout or "", expired.stderr or "")
    if STUCK in (result.stderr or "") or result.returncode == -9:
        return [
            f"{key}: checking {module} (its import, data(params) and items(params, 0, 2)) did not end within "
            f"{CHECK_TIMEOUT_S} s{_stuck_at(result.stderr or '', path)}"
        ]
    try:
        found = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = " ".join((result.stderr or result.stdout).split())[-300:]
        return [f"{key}: checking {module} failed with exit code {result.returncode}: {tail}"]
    if not found:
        done.parent.mkdir(parents=True, exist_ok=True)
        done.touch()
    return [f"{key}{p}" for p in found]


# The check before any job is bounded: a module that blocks at import (or in data or items) must not hang the sweep.
CHECK_TIMEOUT_S = float(os.environ.get("PARBENCH_CHECK_TIMEOUT_S", 60))  # the variable: for the tests
STUCK = "Timeout ("  # how faulthandler.dump_traceback_later begins its dump


def _stuck_at(stderr: str, path: Path) -> str:
    """'; it was waiting in mine.py, line 5, in loop': the frame faulthandler saw, the module's own first."""
    from parbench.worker import FAULT_FRAME

    frames = FAULT_FRAME.findall(stderr.split(STUCK, 1)[-1])
    if not frames:
        return ""
    file, line, fn = next((f for f in frames if Path(f[0]).resolve() == path.resolve()), frames[0])
    return f"; it was waiting in {os.path.basename(file)}, line {line}, in {fn}"


def _check_here(name: str, params: dict) -> list[str]:
    """The checks themselves, in this (fresh) process: messages starting with the config sub-key."""
    from parbench.worker import describe_error, threads_left

    module = params["module"]
    try:
        workload = load(module)
    except Exception as error:  # noqa: BLE001  (the user's import error, shown as theirs)
        return [f".module: importing {module} failed: {describe_error('it', error).removeprefix('it raised ')}"]
    user = {k: v for k, v in params.items() if k not in RUN_KEYS}
    if not issubclass(workload, Functions):
        return [f": {p}" for p in workload.check_params(user, f"workloads.{name}")]
    m, found = workload.module, []
    for fn, count in {**REQUIRED, **OPTIONAL}.items():
        if not hasattr(m, fn):
            if fn in REQUIRED:
                found.append(f".module: {module} has no function {fn}(); it needs data(params), items(params, batch, n), task(state, item)")
            continue
        if not callable(getattr(m, fn)):
            found.append(f".module: {module}: {fn} is not a function")
        elif count is not None and not _accepts(getattr(m, fn), count):
            found.append(f".module: {module}: {fn}() must take {count} positional arguments")
    if not isinstance(getattr(m, "STATEFUL", False), bool):
        found.append(f".module: {module}: STATEFUL must be True or False")
    if found:
        return found
    instance = workload(user, trial=1)
    try:
        data = instance._data()
        build = getattr(m, "build", None)
        if build is not None and not _accepts(build, 0, data):
            found.append(f": build(**data) does not accept the keys of data(params): {', '.join(data)}")
        instance.items(0, 2)
    except WorkloadError as error:
        found.append(f": the parameters are rejected: {error}")
    finally:
        instance.close()
    if left := threads_left():  # each worker imports the module: such a thread would keep it from ending
        why = "make them daemon threads, or start none"
        found.append(f".module: importing {module}, data(params) or items() left threads running: {'; '.join(left)} ({why})")
    return found


def _accepts(fn, count: int, keywords: dict | None = None) -> bool:
    try:
        inspect.signature(fn).bind(*range(count), **(keywords or {}))
        return True
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): assume it fits
        return True


if __name__ == "__main__":
    faulthandler.dump_traceback_later(CHECK_TIMEOUT_S, exit=True)  # every thread's stack, then exit: the caller says where
    print(json.dumps(_check_here(sys.argv[1], json.loads(sys.argv[2]))), flush=True)
    os._exit(0)  # without waiting for threads the user's module left running (reported above)
