"""joblib: loky worker processes that live across batches. Arrays over 1 MB are memory-mapped
(dumped once to a file in /dev/shm that workers map); stateful work is built once per worker
process and kept (loky reuses its workers).

Start ends when `workers` loky workers have each run a task at once (held until all have arrived, see
`_one_each`); setup dumps the shared arrays and, for stateful work, builds the state, in every worker the same way."""

import os
import tempfile
import time
import uuid
from pathlib import Path

import joblib
from joblib import Parallel, delayed
from joblib.externals.loky.process_executor import TerminatedWorkerError

from parbench import cleanup, worker
from parbench.backends.base import BackendError, BaseBackend

# The distributions whose versions can change this backend's results: every run's record names them (parbench.environment).
DISTRIBUTIONS = ("joblib",)

START_TIMEOUT_S = 300  # for every worker to come up and take its task


class Backend(BaseBackend):
    failures = (BackendError, TerminatedWorkerError)
    died = (TerminatedWorkerError,)

    def start(self):
        # With n_jobs=1 joblib runs tasks in the driver itself; that is joblib's behaviour, so it is kept.
        self.parallel = Parallel(n_jobs=self.workers, backend="loky", max_nbytes="1M", mmap_mode="r")
        self.parallel.__enter__()  # one pool (and one set of memory maps) for the whole run
        self.scratch = cleanup.driver_temp_dir()  # where `_one_each` counts its workers; removed even if the driver is killed
        self._one_each(worker.prepare, self.blas_threads)

    def setup(self, work):
        self.work, self.key = work, uuid.uuid4().hex
        # joblib dumps an array at its first call and then reuses the file (by the array's identity): the first call is here.
        if work.stateful:
            self._one_each(worker.keep, self.key, work.build, work.data, self.blas_threads)
        else:
            self._one_each(_receive, work.data)

    def _one_each(self, fn, *args):
        """`fn(*args)` once in each worker: with n_jobs=1, once in the driver."""
        if self.workers == 1:
            return self.parallel([delayed(fn)(*args)])
        with tempfile.TemporaryDirectory(prefix="workers-", dir=self.scratch) as folder:
            pids = self.parallel(delayed(_at_once)(folder, self.workers, fn, *args) for _ in range(self.workers))
        if len(set(pids)) != self.workers:
            raise BackendError(f"joblib ran {self.workers} tasks in {len(set(pids))} workers")

    def run(self, items):
        w, blas = self.work, self.blas_threads
        if w.stateful:
            return self.parallel(delayed(worker.call_kept)(w.task, self.key, i, blas, w.build, w.data) for i in items)
        return self.parallel(delayed(worker.call)(w.task, w.build, w.data, i, blas) for i in items)

    def stop(self):
        self.work = None
        # loky keeps its workers for reuse until an idle timeout; a run must not leave them behind.
        executor = getattr(self.parallel._backend, "_workers", None)
        self.parallel.__exit__(None, None, None)
        if executor is not None:
            executor.shutdown(wait=True, kill_workers=True)

    def describe(self):
        return {"joblib": joblib.__version__}


def _receive(data):
    """Nothing: the arrays in `data` arrive memory-mapped (joblib dumped them for this call)."""


def _at_once(folder, count, fn, *args):
    """`fn(*args)`, then wait until `count` tasks have got here: a waiting task holds its worker, so each runs in its own."""
    fn(*args)
    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + START_TIMEOUT_S
    while len(os.listdir(folder)) < count:
        if time.monotonic() > deadline:
            raise BackendError(f"only {len(os.listdir(folder))} of {count} joblib workers came up in {START_TIMEOUT_S} s")
        time.sleep(0.001)
    return os.getpid()
