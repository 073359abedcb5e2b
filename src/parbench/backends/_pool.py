"""What the two multiprocessing.Pool backends share: a pool that is really up, and a batch that notices dead workers."""

import time

from parbench import cleanup
from parbench.backends.base import WorkersDied

POLL_S = 0.1  # how often a waiting driver checks that the pool's workers are alive
# How long closed workers may take to exit before they are terminated: a thread a task left running keeps
# a worker from exiting (multiprocessing joins non-daemon threads at a process's end), and join() forever.
EXIT_GRACE_S = 5.0


def start_pool(ctx, workers: int, initializer, initargs: tuple):
    """A Pool whose every worker has signalled readiness: `initializer(ready, *initargs)` must release `ready`."""
    cleanup.driver_temp_dir()  # made now, so that the supervisor knows the folder a killed driver leaves
    ready = ctx.Semaphore(0)
    pool = ctx.Pool(workers, initializer, (ready, *initargs))
    wait_for(ready, workers, pool)
    return pool


def wait_for(semaphore, count: int, pool) -> None:
    """Acquire `semaphore` `count` times, failing if a worker dies meanwhile."""
    alive = _pids(pool)
    for _ in range(count):
        while not semaphore.acquire(timeout=POLL_S):
            _check(pool, alive)


def run(pool, fn, args: list) -> list:
    """`pool.starmap(fn, args)` one task per chunk, as the blog's code runs; fails if a worker dies."""
    alive = _pids(pool)
    result = pool.starmap_async(fn, args, chunksize=1)
    while not result.ready():
        result.wait(POLL_S)
        _check(pool, alive)
    return result.get()


def _pids(pool) -> set:
    return {p.pid for p in pool._pool}  # Pool keeps its processes in _pool; it silently replaces dead ones


def _check(pool, alive: set) -> None:
    dead = [p for p in pool._pool if p.exitcode is not None]
    if dead or _pids(pool) != alive:
        codes = ", ".join(f"pid {p.pid} exit code {p.exitcode}" for p in dead) or "a worker was replaced"
        pool.terminate()  # the dead worker's task never returns: close()+join() would wait for it forever
        raise WorkersDied(f"a multiprocessing worker died ({codes})")


def finish(pool) -> int:
    """close() and join() the pool, terminating workers that have not exited within EXIT_GRACE_S (a task's
    thread still runs in them); returns how many were terminated."""
    pool.close()
    deadline = time.monotonic() + EXIT_GRACE_S
    while any(p.exitcode is None for p in pool._pool) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    stuck = sum(p.exitcode is None for p in pool._pool)
    if stuck:
        pool.terminate()
    pool.join()
    return stuck


def described(backend) -> dict:
    """A Pool backend's describe(): its start method, and workers that had not exited EXIT_GRACE_S after their
    work (a thread a task left running in them), where there were any."""
    stuck = getattr(backend, "terminated", 0)
    return {"start_method": backend.options["start_method"], **({"workers_terminated_at_stop": stuck} if stuck else {})}
