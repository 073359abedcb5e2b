"""serial: every task in the driver, one after another; only BLAS threads run in parallel.

Start has no worker to wait for: the driver applies the BLAS policy to itself."""

from parbench import worker
from parbench.backends.base import BaseBackend


class Backend(BaseBackend):
    in_driver = True

    def start(self):
        worker.prepare(self.blas_threads)

    def setup(self, work):
        self.task = work.task
        self.state = worker.guarded("building the state", work.build, **work.data)

    def run(self, items):
        seen = worker.seen(worker.prepare(self.blas_threads), False)
        return [(worker.guarded("task", self.task, self.state, item), seen) for item in items]

    def stop(self):
        self.state = None
