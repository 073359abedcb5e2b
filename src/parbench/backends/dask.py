"""dask: a dask.distributed cluster of single-threaded worker processes. Shared arrays are
scattered once to every worker (each holds its own copy); stateful work is built once on
every worker and kept there.

Start ends when the scheduler knows `workers` workers (wait_for_workers) and each has answered a call
(client.run runs on every worker itself, not as a scheduled task)."""

import tempfile
import uuid
from pathlib import Path

import dask.config
import dask.sizeof
import distributed
import psutil
from distributed import Client, LocalCluster
from distributed.comm import get_address_host

from parbench import cleanup, worker
from parbench.backends.base import BackendError, BaseBackend, check_reachable

# The distributions whose versions can change this backend's results: every run's record names them (parbench.environment).
DISTRIBUTIONS = ("dask", "distributed")


class Backend(BaseBackend):
    failures = (BackendError, distributed.scheduler.KilledWorker, distributed.comm.CommClosedError)
    died = (distributed.scheduler.KilledWorker,)  # after Dask's retries on other workers

    def start(self):
        address = self.options.get("address")
        if not address:  # where the local workers put their folders (distributed.core.Server), left behind if they are killed
            scratch = Path(dask.config.get("temporary-directory") or tempfile.gettempdir(), "dask-scratch-space")
            cleanup.note_leaves("dask", scratch, created=not scratch.exists())
        self.local = None if address else LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        if address:
            check_reachable("Dask scheduler", address)  # else Client retries for 30 s, then raises OSError
        try:
            self.client = Client(address or self.local)
        except OSError as error:  # reachable, but not a Dask scheduler that answers
            raise BackendError(f"could not connect to the Dask scheduler at {address or 'its local cluster'}: {error}") from error
        self.client.wait_for_workers(self.workers)
        self.client.run(worker.begin, self.blas_threads)  # an external cluster's workers outlive runs

    def setup(self, work):
        self.task, self.key, self.stateful = work.task, uuid.uuid4().hex, work.stateful
        if work.stateful:
            self.client.run(_keep, self.key, work.build, _Whole(work.data), self.blas_threads)
        else:
            self.build, self.keys = work.build, list(work.data)
            # Each value as one future of one pickle (see _Whole).
            self.futures = [self.client.scatter(_Whole(v), broadcast=True) for v in work.data.values()]

    def run(self, items):
        if self.stateful:
            futures = [self.client.submit(_call_kept, self.task, self.key, i, self.blas_threads, pure=False) for i in items]
        else:
            futures = [
                self.client.submit(_call, self.task, self.build, self.keys, i, self.blas_threads, *self.futures, pure=False) for i in items
            ]
        return self.client.gather(futures)

    def stop(self):
        if self.stateful:
            self.client.run(worker.drop, self.key)
        self.futures = None
        self.client.close()
        if self.local:
            self.local.close()

    def describe(self):
        return {"dask": distributed.__version__}

    def cluster_memory(self):
        """PSS and RSS of every worker process, as the workers report them."""
        if not self.options.get("address"):
            return None
        per_worker = self.client.run(_own_memory)
        return {
            "workers_pss_bytes": sum(m["pss"] for m in per_worker.values()),
            "workers_rss_bytes": sum(m["rss"] for m in per_worker.values()),
            "workers": len(per_worker),
        }


def _own_memory() -> dict:
    info = psutil.Process().memory_full_info()
    return {"pss": info.pss, "rss": info.rss}


def _node() -> str:
    """The host of the Dask worker this task runs on; asked once per worker."""
    return get_address_host(distributed.get_worker().address)


class _Whole:
    """A value Dask sends as one pickle. Given a list, tuple, set or dict, scatter() makes a future per
    element, and Dask serializes collections element by element: a user's list of 300,000 words took
    40 s to scatter to two workers, and 50 s per batch when its elements were futures."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


@dask.sizeof.sizeof.register(_Whole)
def _sizeof(whole: _Whole) -> int:
    return dask.sizeof.sizeof(whole.value)  # the scheduler places tasks and weighs transfers by it


def _keep(key, build, data: _Whole, blas_threads):
    return worker.keep(key, build, data.value, blas_threads)


def _call(task, build, keys, item, blas_threads, *values):
    return worker.call(task, build, dict(zip(keys, (v.value for v in values))), item, blas_threads, node=_node)


def _call_kept(task, key, item, blas_threads):
    return worker.call_kept(task, key, item, blas_threads, node=_node)
