"""threads: a ThreadPoolExecutor in the driver. The state is built once and shared by reference
by every thread: nothing is copied or pickled. Threads run Python in parallel only where the GIL
is released (numpy's BLAS, waiting on I/O) or absent (a free-threaded CPython); the record's
`gil_enabled` says which interpreter ran.

Start ends when `workers` threads have each run a task at once (held at a barrier until all have arrived)."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from parbench import worker
from parbench.backends.base import BaseBackend

START_TIMEOUT_S = 60
# Its workers are threads of one interpreter: where they keep several cores busy, the GIL is released
# (the report's "kind" of a workload reads this backend's runs for that).
SHARES_ONE_GIL = True


class Backend(BaseBackend):
    def start(self):
        # One process: the BLAS policy holds for every thread (under auto, physical cores // workers each).
        worker.begin(self.blas_threads)
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="parbench-worker")
        # A task waiting at the barrier holds its thread, so the pool starts a thread for each.
        barrier = threading.Barrier(self.workers)
        list(self.pool.map(lambda _: barrier.wait(START_TIMEOUT_S), range(self.workers)))

    def setup(self, work):
        self.task, self.key = work.task, uuid.uuid4().hex
        worker.keep(self.key, work.build, work.data, self.blas_threads)  # once, shared by reference by every thread

    def run(self, items):
        return list(self.pool.map(self._call, items))

    def _call(self, item):
        return worker.call_kept(self.task, self.key, item, self.blas_threads)

    def stop(self):
        self.pool.shutdown(wait=True, cancel_futures=True)
        worker.drop(getattr(self, "key", None))
