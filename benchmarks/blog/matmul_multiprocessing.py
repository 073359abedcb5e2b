"""The blog's multiprocessing matmul script, parametrised by size (benchmarks/README.md).

Unchanged in substance: a Pool created at import, x passed into every starmap task, 10 trials
timed together with perf_counter; prints the mean seconds per trial. The two additions: a
second clock around the y generation (inside the blog's timed loop) and each trial's own time (for
the steady-state framing), each printed on its own line.
"""

import argparse
import time
from multiprocessing import Pool

import numpy as np
import psutil

parser = argparse.ArgumentParser()
parser.add_argument("--n", type=int, default=10240)
parser.add_argument("--k", type=int, default=128)
parser.add_argument("--trials", type=int, default=10)
parser.add_argument("--workers", type=int, default=psutil.cpu_count(logical=False) // 2)
args = parser.parse_args()

num_workers = max(1, args.workers)


def task(x, y):
    return np.matmul(x, y)


pool = Pool(num_workers)


if __name__ == "__main__":
    np.random.seed(1234)
    x = np.random.randn(args.n, args.n)
    generating, each = 0.0, []  # not in the blog: the part of its timed loop that makes inputs, each trial's time
    start = time.perf_counter()
    for i in range(args.trials):
        np.random.seed(i)
        t0 = trial0 = time.perf_counter()
        y_s = [np.random.rand(args.n, args.k) for _ in range(num_workers)]
        generating += time.perf_counter() - t0
        pool.starmap(task, zip([x] * len(y_s), y_s))
        each.append(time.perf_counter() - trial0)
    print(f"seconds_per_trial {(time.perf_counter() - start) / args.trials:.4f}")
    print(f"seconds_generating_y_per_trial {generating / args.trials:.4f}")
    print("seconds_each_trial", *(f"{s:.4f}" for s in each))
