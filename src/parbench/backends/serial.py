"""serial: every task in the driver, one after another; only BLAS threads run in parallel.

Start has no worker to wait for: the driver applies the BLAS policy to itself."""

import uuid

from parbench import worker
from parbench.backends.base import BaseBackend


class Backend(BaseBackend):
    in_driver = True

    def start(self):
        worker.begin(self.blas_threads)

    def setup(self, work):
        self.task, self.key = work.task, uuid.uuid4().hex
        worker.keep(self.key, work.build, work.data, self.blas_threads)

    def run(self, items):
        # Each task through worker.call_kept, as on every other backend: the same per-task bookkeeping.
        return [worker.call_kept(self.task, self.key, item, self.blas_threads) for item in items]

    def stop(self):
        worker.drop(getattr(self, "key", None))
