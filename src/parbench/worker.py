"""Code that runs inside worker processes, shared by every backend.

Every task goes through `call` (state built per task) or `call_kept` (state built once per
process and kept), so every backend applies the BLAS policy the same way and reports the same
facts from inside its workers: process id, BLAS threads seen, and whether the task built state.
"""

import os
import socket
from typing import NamedTuple

from threadpoolctl import threadpool_info, threadpool_limits

_prepared = False
_blas_threads = None  # threads seen in this process after applying the policy
_kept = {}  # state built once per process, by key


class Seen(NamedTuple):
    """What a task saw inside its worker."""

    pid: int
    blas_threads: int | None
    built_state: bool
    node: str = socket.gethostname()  # a backend whose nodes can share a host (Ray) names them itself


def blas_threads_now() -> int | None:
    """Threads of the BLAS library numpy uses in this process (None if threadpoolctl sees none)."""
    counts = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return max(counts) if counts else None


def prepare(blas_threads: int | None) -> int | None:
    """Apply the BLAS policy once per process (None leaves the library's own choice)."""
    global _prepared, _blas_threads
    if not _prepared:
        import numpy  # noqa: F401  (load BLAS so threadpoolctl can see and limit it)

        if blas_threads is not None:
            threadpool_limits(limits=blas_threads, user_api="blas")
        _blas_threads = blas_threads_now()
        _prepared = True
    return _blas_threads


def call(task, build, data: dict, item, blas_threads):
    """Build the state from `data`, then run one task: the state lives only as long as the task."""
    threads = prepare(blas_threads)
    return task(build(**data), item), Seen(os.getpid(), threads, True)


def keep(key, build, data: dict, blas_threads) -> bool:
    """Build the state once in this process and keep it under `key`; True if it was built now."""
    prepare(blas_threads)
    if key in _kept:
        return False
    _kept[key] = build(**data)
    return True


def call_kept(task, key, item, blas_threads, build=None, data=None):
    """Run one task on the state kept under `key` (built here first if `build` is given and it is missing)."""
    threads = prepare(blas_threads)
    built = keep(key, build, data, blas_threads) if build is not None else False
    return task(_kept[key], item), Seen(os.getpid(), threads, built)


def drop(key) -> None:
    _kept.pop(key, None)
