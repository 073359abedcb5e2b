"""joblib: loky worker processes that live across batches. Arrays over 1 MB are memory-mapped
automatically (dumped once to a file in /dev/shm that workers map); stateful work is built
once per worker process, on its first task, and kept (loky reuses its workers)."""

import uuid

import joblib
from joblib import Parallel, delayed
from joblib.externals.loky.process_executor import TerminatedWorkerError

from parbench import worker
from parbench.backends.base import BackendError, BaseBackend


class Backend(BaseBackend):
    failures = (BackendError, TerminatedWorkerError)

    def start(self):
        # With n_jobs=1 joblib runs tasks in the driver itself; that is joblib's behaviour, so it is kept.
        self.parallel = Parallel(n_jobs=self.workers, backend="loky", max_nbytes="1M", mmap_mode="r")
        self.parallel.__enter__()  # one pool (and one set of memory maps) for the whole run
        self.parallel(delayed(worker.prepare)(self.blas_threads) for _ in range(self.workers))

    def setup(self, work):
        self.work, self.key = work, uuid.uuid4().hex  # nothing moves yet: joblib maps arrays at first use

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
