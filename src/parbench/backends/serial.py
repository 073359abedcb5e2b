"""serial: every task in the driver, one after another; only BLAS threads run in parallel."""

import os

from parbench import worker
from parbench.backends.base import BaseBackend


class Backend(BaseBackend):
    in_driver = True

    def start(self):
        worker.prepare(self.blas_threads)

    def place(self, work):
        self.task = work.task
        self.state = work.build(**work.data)

    def run(self, items):
        seen = worker.Seen(os.getpid(), worker.prepare(self.blas_threads), False)
        return [(self.task(self.state, item), seen) for item in items]

    def stop(self):
        self.state = None
