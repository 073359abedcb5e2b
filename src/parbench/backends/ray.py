"""ray: shared arrays go once into Ray's object store (ray.put) and tasks get references;
stateful work runs in actors that build their state once, as in the blog.

Start ends when `workers` worker processes have each run a task at once (held at a gate actor until all
have arrived), so none is still starting when the batches come; setup ends when every worker has mapped the
shared arrays from the store (the same way) or every actor holds its state."""

import asyncio
import os
import uuid
from pathlib import Path

# Ray >= 2.59's `ray start --head` turns token auth on when ~/.ray/auth_token exists, but a driver
# joining with ray.init(address=...) sends the token only if RAY_AUTH_MODE=token is set before ray
# is imported (ray-project/ray#64755). A local instance turns it on by itself anyway.
if (Path.home() / ".ray" / "auth_token").exists():
    os.environ.setdefault("RAY_AUTH_MODE", "token")

import ray  # noqa: E402

from parbench import cleanup, worker  # noqa: E402
from parbench.backends.base import BackendError, BaseBackend, check_reachable  # noqa: E402

# The distributions whose versions can change this backend's results: every run's record names them (parbench.environment).
DISTRIBUTIONS = ("ray",)


def _node() -> str:
    """The Ray node this worker runs on (nodes can share a host and its address); asked once per worker."""
    return ray.get_runtime_context().get_node_id()


@ray.remote
def _call(task, build, keys, item, blas_threads, *values):
    # Top-level ObjectRef arguments arrive resolved: numpy arrays as read-only views of the store.
    return worker.call(task, build, dict(zip(keys, values)), item, blas_threads, node=_node)


START_TIMEOUT_S = 300  # for every worker to come up; a worker that cannot start is a failed run, not a hang


@ray.remote(num_cpus=0)
class _Gate:
    """Holds each task that arrives until `count` have: then `count` tasks run at once, each in a worker of its own."""

    def __init__(self, count):
        self.count, self.arrived, self.open = count, 0, asyncio.Event()

    async def arrive(self):
        self.arrived += 1
        if self.arrived >= self.count:
            self.open.set()
        await self.open.wait()


@ray.remote
def _up(gate, blas_threads, *values):
    # Top-level ObjectRef arguments arrive resolved: this worker has mapped them from the store.
    worker.prepare(blas_threads)
    ray.get(gate.arrive.remote())  # a task blocked in ray.get holds its worker: the next task needs another
    return ray.get_runtime_context().get_worker_id()


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
    died = (ray.exceptions.WorkerCrashedError, ray.exceptions.ActorDiedError)

    def start(self):
        address = self.options.get("address")
        if address:
            check_reachable("Ray cluster", address)  # else ray.init retries until the run's time limit
        # "local" starts a fresh instance even when a `ray start` cluster runs on this machine.
        where = {"address": address} if address else {"address": "local", "num_cpus": self.workers, "include_dashboard": False}
        if not address and (folder := cleanup.library_folder("ray")):  # else each run leaves a session_* folder in /tmp/ray
            where["_temp_dir"] = folder
        try:
            ray.init(**where, log_to_driver=False, configure_logging=False)
        except TypeError:
            raise  # a wrong argument is parbench's bug
        except Exception as error:  # Ray raises bare Exception when its node times out at start-up
            raise BackendError(f"ray.init failed: {error}") from error
        self._one_each()  # ray.init returns before its workers exist: the first batches paid for their start

    def _one_each(self, *values):
        """One task in each of `workers` worker processes at once, given `values`."""
        gate = _Gate.remote(self.workers)
        try:
            up = ray.get([_up.remote(gate, self.blas_threads, *values) for _ in range(self.workers)], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise BackendError(f"Ray did not bring up {self.workers} workers in {START_TIMEOUT_S} s") from None
        finally:
            ray.kill(gate)
        if len(set(up)) != self.workers:
            raise BackendError(f"Ray ran {self.workers} tasks in {len(set(up))} workers")

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
            self._one_each(*self.refs)

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
