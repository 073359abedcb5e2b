"""The backend interface: bring workers up, place shared state, run batches, tear down."""

import os
import socket
from abc import ABC, abstractmethod

from parbench.worker import Seen
from parbench.workloads.base import Work


class BackendError(RuntimeError):
    """The backend could not do its part (start its cluster, keep its workers): a result, not a parbench bug."""


class WorkersDied(BackendError):
    """A worker process ended while the run needed it."""


def check_reachable(what: str, address: str, timeout_s: float = 10.0) -> None:
    """Raise BackendError at once if nothing accepts connections at `address` ([scheme://]host:port),
    where the library itself would retry for minutes (Ray) or as if parbench had a bug (Dask)."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return  # no host:port here (Ray's `auto`): the library finds the cluster itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise BackendError(f"could not connect to the {what} at {address}: {error}") from error


class BaseBackend(ABC):
    """How tasks and their shared state reach workers.

    The runner times each method as its own phase: `start` (startup), `setup` (setup), each
    `run` (one batch), `stop` (teardown). After `setup` the runner drops its own reference to
    the work's data, so a backend that keeps no driver-side copy of it holds none.
    """

    #: Exceptions that mean the backend (not parbench) failed: they become `status: failed`.
    failures: tuple[type[BaseException], ...] = (BackendError,)
    #: Those among them that mean a worker process died running a task (the user's os._exit, an abort, a
    #: crash, the OOM killer): every backend's run then gets the same cause.
    died: tuple[type[BaseException], ...] = (WorkersDied,)
    #: True if tasks run one at a time in the driver: under `blas_threads: auto` it gets every core.
    in_driver = False

    def __init__(self, workers: int, blas_threads: int | None, options: dict):
        self.workers = workers
        self.blas_threads = blas_threads  # per worker; None leaves each library's own choice
        self.options = options  # the backend's section of the config, plus `start_method`

    def start(self) -> None:
        """Bring the workers up, ready to take tasks."""

    @abstractmethod
    def setup(self, work: Work) -> None:
        """Make the work's shared state available to the workers."""

    @abstractmethod
    def run(self, items: list) -> list[tuple[object, Seen | int]]:
        """Run one batch, one task per item, each through `worker.call` or `worker.call_kept`: results in
        item order, each with its worker's mark (`worker.mark`: what the worker saw)."""

    def worker_count(self) -> int:
        """How many distinct workers (node, process, thread) can run this run's tasks: one where every
        task runs in the driver's own thread. The runner warms up until each has run a task."""
        return 1 if self.in_driver else self.workers

    def stop(self) -> None:
        """Release every worker and shared resource."""

    def describe(self) -> dict:
        """Facts for the record: start method, library versions in use."""
        return {}

    def cluster(self) -> dict:
        """Where the workers run: started by this run in the driver's process tree, or an external
        cluster named by the backend's `address` option."""
        address = self.options.get("address")
        # Set by SLURM in every job: which job ran this run (null outside SLURM).
        return {"kind": "external" if address else "local", "address": address, "slurm_job_id": os.environ.get("SLURM_JOB_ID")}

    def cluster_memory(self) -> dict | None:
        """What an external cluster reports about its memory, read after the timed batches (None: nothing)."""
        return None
