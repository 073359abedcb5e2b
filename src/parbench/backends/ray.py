"""ray: shared arrays go once into Ray's object store (ray.put) and tasks get references;
stateful work runs in actors that build their state once, as in the blog."""

import uuid

import ray

from parbench import worker
from parbench.backends.base import BaseBackend, WorkersDied


@ray.remote
def _call(task, build, keys, item, blas_threads, *values):
    # Top-level ObjectRef arguments arrive resolved: numpy arrays as read-only views of the store.
    return worker.call(task, build, dict(zip(keys, values)), item, blas_threads)


@ray.remote
class _Keeper:
    """An actor that builds the state once and runs tasks on it."""

    def __init__(self, key, build, data, blas_threads):
        worker.keep(key, build, data, blas_threads)

    def ready(self):
        return True

    def call(self, task, key, item, blas_threads):
        return worker.call_kept(task, key, item, blas_threads)


class Backend(BaseBackend):
    failures = (WorkersDied, ray.exceptions.RayError)

    def start(self):
        address = self.options.get("address")
        local = {} if address else {"num_cpus": self.workers, "include_dashboard": False}
        ray.init(address=address, log_to_driver=False, configure_logging=False, **local)

    def place(self, work):
        self.task, self.key = work.task, uuid.uuid4().hex
        if work.stateful:
            self.actors = [_Keeper.remote(self.key, work.build, work.data, self.blas_threads) for _ in range(self.workers)]
            ray.get([a.ready.remote() for a in self.actors])  # setup ends when every actor holds its state
        else:
            self.actors = None
            self.build, self.keys = work.build, list(work.data)
            self.refs = [ray.put(v) for v in work.data.values()]

    def run(self, items):
        if self.actors:
            futures = [
                self.actors[i % self.workers].call.remote(self.task, self.key, item, self.blas_threads)
                for i, item in enumerate(items)
            ]
        else:
            futures = [_call.remote(self.task, self.build, self.keys, item, self.blas_threads, *self.refs) for item in items]
        return ray.get(futures)

    def stop(self):
        self.actors = self.refs = None
        ray.shutdown()

    def describe(self):
        return {"ray": ray.__version__}
