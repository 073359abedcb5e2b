"""multiprocessing-shared: the expert's Pool. Shared arrays go once into shared memory that
every worker maps without copying; each worker builds its state once, in its initializer.

Start ends when every worker's initializer has signalled it is up (_pool.start_pool); setup when each has
mapped the shared memory and built its state, in the second step of the same initializer."""

import multiprocessing
import uuid
from multiprocessing.shared_memory import SharedMemory
from typing import NamedTuple

import numpy as np

from parbench import worker
from parbench.backends import _pool
from parbench.backends.base import BaseBackend

_mapped = []  # shared-memory blocks this worker maps; kept open as long as the worker lives


class SharedArray(NamedTuple):
    name: str
    shape: tuple
    dtype: str


def _up(ready, blas_threads, recipes, placed, problems):
    """Worker initializer in two steps: ready for tasks (startup), then state built (setup). A build
    that fails is reported, not raised: a Pool replaces a worker whose initializer raises, forever."""
    worker.prepare(blas_threads)
    ready.release()
    key, build, spec = recipes.get()
    try:
        worker.keep(key, build, {k: _attach(v) for k, v in spec.items()}, blas_threads)
    except worker.TaskError as error:
        problems.put(str(error))
    placed.release()


def _attach(value):
    if not isinstance(value, SharedArray):
        return value
    block = SharedMemory(value.name)
    _mapped.append(block)
    array = np.ndarray(value.shape, np.dtype(value.dtype), buffer=block.buf)
    array.flags.writeable = False
    return array


class Backend(BaseBackend):
    def start(self):
        ctx = multiprocessing.get_context(self.options["start_method"])
        self.recipes, self.placed, self.problems = ctx.SimpleQueue(), ctx.Semaphore(0), ctx.SimpleQueue()
        self.pool = _pool.start_pool(ctx, self.workers, _up, (self.blas_threads, self.recipes, self.placed, self.problems))
        self.blocks = []

    def setup(self, work):
        self.task, self.key = work.task, uuid.uuid4().hex
        spec = {k: self._share(v) for k, v in work.data.items()}
        for _ in range(self.workers):
            self.recipes.put((self.key, work.build, spec))
        _pool.wait_for(self.placed, self.workers, self.pool)
        self.ready = True
        if not self.problems.empty():
            raise worker.TaskError(self.problems.get())

    def _share(self, value):
        """Copy an array into a new shared-memory block; anything else travels as it is."""
        if not isinstance(value, np.ndarray):
            return value
        block = SharedMemory(create=True, size=max(value.nbytes, 1))
        self.blocks.append(block)
        np.ndarray(value.shape, value.dtype, buffer=block.buf)[...] = value
        return SharedArray(block.name, value.shape, value.dtype.str)

    def run(self, items):
        return _pool.run(self.pool, worker.call_kept, [(self.task, self.key, item, self.blas_threads) for item in items])

    def stop(self):
        if getattr(self, "ready", False):
            self.terminated = _pool.finish(self.pool)
        else:  # workers still wait in their initializer for state that never came: join would wait forever
            self.pool.terminate()
        for block in self.blocks:
            block.close()
            block.unlink()

    def describe(self):
        return _pool.described(self)
