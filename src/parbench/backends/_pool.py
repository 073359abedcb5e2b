"""What the two multiprocessing.Pool backends share: a pool that is really up, and a batch that notices dead workers."""

from parbench import cleanup
from parbench.backends.base import WorkersDied

POLL_S = 0.1  # how often a waiting driver checks that the pool's workers are alive


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
