"""The machine's limits, measured once per sweep: BLAS peak on one and on all cores, the cost of
pickling 100 MiB and of starting a process. Figures draw ideal lines from it. (Ray's start-up is
in every Ray run's own record, `timings.startup_s`.)"""

import multiprocessing
import os
import pickle
import time

import numpy as np
import psutil
from threadpoolctl import threadpool_limits

from parbench import environment

GEMM_N = 2048  # square float64 GEMM: within a few per cent of 3072's single-core GFLOP/s here, in a third of the time
REPEATS = 3


def _best(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_gflops(threads: int, n: int = GEMM_N) -> float:
    a, b = np.random.default_rng(0).random((2, n, n))
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b  # first touch and thread start outside the timing
        return 2 * n**3 / _best(lambda: a @ b) / 1e9


def pickle_costs(mib: int = 100) -> dict:
    x = np.random.default_rng(0).random(mib * 2**20 // 8)
    blob = pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "pickle_100mib_dumps_s": _best(lambda: pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL)),
        "pickle_100mib_loads_s": _best(lambda: pickle.loads(blob)),
    }


def _nothing():
    pass


def spawn_s(method: str) -> float:
    ctx = multiprocessing.get_context(method)

    def once():
        p = ctx.Process(target=_nothing)
        p.start()
        p.join()

    return _best(once)


def measure() -> dict:
    cores = psutil.cpu_count(logical=False)
    return {
        "physical_cores": cores,
        "logical_cores": psutil.cpu_count(logical=True),
        "gemm_n": GEMM_N,
        "blas_gflops_single": gemm_gflops(1),
        "blas_gflops_all": gemm_gflops(cores),
        **pickle_costs(),
        "process_spawn_s": {m: spawn_s(m) for m in ("fork", "forkserver", "spawn")},
        "environment": environment.collect(),
        "measured_at": time.time(),
    }


if __name__ == "__main__":
    import sys

    from parbench import records
    from parbench.run.driver import SUPERVISOR, die_with_parent

    die_with_parent(int(os.environ[SUPERVISOR]))  # the rule's script: if the sweep dies, so does this (and its Ray)
    records.write(sys.argv[1], measure())
