"""interpreters: subinterpreters of the driver's process, each with its own GIL (PEP 684, PEP 734), run by
the standard library's InterpreterPoolExecutor (Python 3.14+) or by PyPI's interpreters-pep-734 backport
on 3.13 (`make interpreters` installs it). Each worker interpreter gets the work's data once, pickled,
and builds the state once, as the expert's multiprocessing does; every task and result is pickled
between interpreters. No BLAS runs in a subinterpreter: the policy is not applied there.

An isolated subinterpreter imports only extension modules that support it: numpy, psutil, spaCy and
faulthandler do not (numpy#24755), so a workload whose tasks or state need them is `skipped` with the
import error as its reason. The backport waits forever for a function defined in `__main__` (it cannot be
pickled into an interpreter): such a task or build is refused first.

Start ends when `workers` interpreters have each run a task at once (each holds its thread until all have
arrived); setup ends when each of them has built the state."""

import os
import pickle
import select
import sys
import uuid

try:
    from concurrent.futures import InterpreterPoolExecutor
except ImportError:  # before 3.14: the backport (3.13 only)
    from interpreters_backport.concurrent.futures import InterpreterPoolExecutor

from parbench import worker
from parbench.backends.base import BackendError, BaseBackend
from parbench.plugins import Unavailable

# The distributions whose versions can change this backend's results: every run's record names them (parbench.environment).
DISTRIBUTIONS = ("interpreters-pep-734",)

START_TIMEOUT_S = 120


def _enter(path: list[str]) -> None:
    """In each new worker interpreter: the driver's import path (a new interpreter's default path is the one this
    process started with, which misses the user's folder put on it since)."""
    sys.path[:] = path


def _arrive(arrived: int, release: int, then=None, *args):
    """Say this interpreter has arrived, wait until all have, then run `then(*args)`."""
    os.write(arrived, b"x")
    os.read(release, 1)
    return then(*args) if then else None


def _keep(key, pickled: bytes) -> None:
    """Build the state in this interpreter from the work's build and data, pickled once in the driver (with
    the task, so that its module is imported here first: an import error is caught here, not in every task)."""
    try:
        build, data, _ = pickle.loads(pickled)
    except ImportError as error:  # the workload's module imports a package this interpreter cannot load
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        last = lines[-1].removeprefix("Original error was: ")  # numpy's long advice ends with the cause
        raise worker.TaskError(f"cannot be loaded in a subinterpreter: {last[: worker.MESSAGE_LIMIT]}") from None
    worker.keep(key, build, data, None)


def _call(task, key, item):
    return worker.call_kept(task, key, item, None)


class Backend(BaseBackend):
    def start(self):
        self.pool = InterpreterPoolExecutor(
            self.workers, thread_name_prefix="parbench-interpreter", initializer=_enter, initargs=(sys.path,)
        )
        self._each()

    def _each(self, then=None, *args) -> list:
        """`then(*args)` in each of the `workers` interpreters at once: a task holds its thread (and interpreter)
        until every one has arrived, so no interpreter runs two of them."""
        arrived_r, arrived_w = os.pipe()
        release_r, release_w = os.pipe()
        try:
            futures = [self.pool.submit(_arrive, arrived_w, release_r, then, *args) for _ in range(self.workers)]
            got = 0
            while got < self.workers:
                if not select.select([arrived_r], [], [], START_TIMEOUT_S)[0]:
                    raise BackendError(f"{self.workers} interpreters did not come up in {START_TIMEOUT_S} s")
                got += len(os.read(arrived_r, self.workers - got))
            os.write(release_w, b"x" * self.workers)
            return [f.result() for f in futures]
        finally:
            for fd in (arrived_r, arrived_w, release_r, release_w):
                os.close(fd)

    def setup(self, work):
        for fn in (work.task, work.build):
            if getattr(fn, "__module__", None) == "__main__":
                raise Unavailable(f"{fn.__qualname__} is defined in __main__, which a subinterpreter cannot import")
        self.task, self.key = work.task, uuid.uuid4().hex
        try:
            self._each(_keep, self.key, pickle.dumps((work.build, work.data, work.task)))
        except worker.TaskError as error:
            if str(error).startswith("cannot be loaded in a subinterpreter"):
                raise Unavailable(f"the workload's state {error}") from None
            raise

    def run(self, items):
        return list(self.pool.map(_call, [self.task] * len(items), [self.key] * len(items), items))

    def stop(self):
        pool, self.pool = getattr(self, "pool", None), None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def describe(self):
        return {"interpreters": InterpreterPoolExecutor.__module__, "blas": "none: numpy cannot be imported in a subinterpreter"}
