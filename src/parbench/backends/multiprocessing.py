"""multiprocessing: the blog's pattern. A Pool whose every task carries the shared data
(x pickled into each task) and builds its state itself (the model loaded in each task).

Start ends when every worker's initializer has run and signalled (_pool.start_pool); setup places nothing, by design."""

import multiprocessing

from parbench import worker
from parbench.backends import _pool
from parbench.backends.base import BaseBackend


def _up(ready, blas_threads):
    worker.prepare(blas_threads)
    ready.release()


class Backend(BaseBackend):
    def start(self):
        ctx = multiprocessing.get_context(self.options["start_method"])
        self.pool = _pool.start_pool(ctx, self.workers, _up, (self.blas_threads,))

    def setup(self, work):
        self.work = work  # nothing is placed: every task carries the shared data, as in the blog

    def run(self, items):
        w = self.work
        return _pool.run(self.pool, worker.call, [(w.task, w.build, w.data, item, self.blas_threads) for item in items])

    def stop(self):
        self.work = None
        self.terminated = _pool.finish(self.pool)

    def describe(self):
        return _pool.described(self)
