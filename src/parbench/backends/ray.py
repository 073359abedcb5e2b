"""ray: shared arrays go once into Ray's object store (ray.put) and tasks get references;
stateful work runs in actors that build their state once, as in the blog."""

import os
import uuid
from pathlib import Path

# Ray >= 2.59's `ray start --head` turns token auth on when ~/.ray/auth_token exists, but a driver
# joining with ray.init(address=...) sends the token only if RAY_AUTH_MODE=token is set before ray
# is imported (ray-project/ray#64755). A local instance turns it on by itself anyway.
if (Path.home() / ".ray" / "auth_token").exists():
    os.environ.setdefault("RAY_AUTH_MODE", "token")

import ray  # noqa: E402

from parbench import worker  # noqa: E402
from parbench.backends.base import BackendError, BaseBackend, check_reachable  # noqa: E402


def _node() -> str:
    """The Ray node this worker runs on (nodes can share a host and its address); asked once per worker."""
    return ray.get_runtime_context().get_node_id()


@ray.remote
def _call(task, build, keys, item, blas_threads, *values):
    # Top-level ObjectRef arguments arrive resolved: numpy arrays as read-only views of the store.
    return worker.call(task, build, dict(zip(keys, values)), item, blas_threads, node=_node)


# One CPU each, held while the actor lives: otherwise every actor lands on the driver's node, which
# never looks busy (a default actor holds no CPU), and a cluster of several nodes runs on one.
@ray.remote(num_cpus=1, scheduling_strategy="SPREAD")
class _Keeper:
    """An actor that builds the state once and runs tasks on it."""

    def __init__(self, key, build, data, blas_threads):
        self.problem = None
        try:
            worker.keep(key, build, data, blas_threads)
        except worker.TaskError as error:  # raised from ready(): Ray reports a failed creation only as a dead actor
            self.problem = error

    def ready(self):
        if self.problem is not None:
            raise self.problem
        return True

    def call(self, task, key, item, blas_threads):
        return worker.call_kept(task, key, item, blas_threads, node=_node)


class Backend(BaseBackend):
    failures = (BackendError, ray.exceptions.RayError)

    def start(self):
        address = self.options.get("address")
        if address:
            check_reachable("Ray cluster", address)  # else ray.init retries until the run's time limit
        # "local" starts a fresh instance even when a `ray start` cluster runs on this machine.
        where = {"address": address} if address else {"address": "local", "num_cpus": self.workers, "include_dashboard": False}
        try:
            ray.init(**where, log_to_driver=False, configure_logging=False)
        except TypeError:
            raise  # a wrong argument is parbench's bug
        except Exception as error:  # Ray raises bare Exception when its node times out at start-up
            raise BackendError(f"ray.init failed: {error}") from error

    def setup(self, work):
        self.task, self.key = work.task, uuid.uuid4().hex
        if work.stateful:
            cpus = ray.cluster_resources().get("CPU", 0)
            if cpus < self.workers:  # the surplus actors would wait for a CPU until the time limit
                raise BackendError(f"{self.workers} actors need {self.workers} CPUs; the Ray cluster has {cpus:g}")
            self.actors = [_Keeper.remote(self.key, work.build, work.data, self.blas_threads) for _ in range(self.workers)]
            ray.get([a.ready.remote() for a in self.actors])  # setup ends when every actor holds its state
        else:
            self.actors = None
            self.build, self.keys = work.build, list(work.data)
            self.refs = [ray.put(v) for v in work.data.values()]

    def run(self, items):
        if self.actors:
            futures = [
                self.actors[i % self.workers].call.remote(self.task, self.key, item, self.blas_threads) for i, item in enumerate(items)
            ]
        else:
            futures = [_call.remote(self.task, self.build, self.keys, item, self.blas_threads, *self.refs) for item in items]
        return ray.get(futures)

    def stop(self):
        self.actors = self.refs = None
        ray.shutdown()

    def describe(self):
        return {"ray": ray.__version__}

    def cluster_memory(self):
        """Object-store bytes in use across the cluster (capacity minus available)."""
        if not self.options.get("address"):
            return None
        total = ray.cluster_resources().get("object_store_memory", 0)
        free = ray.available_resources().get("object_store_memory", 0)
        return {"object_store_used_bytes": int(total - free), "object_store_capacity_bytes": int(total)}
