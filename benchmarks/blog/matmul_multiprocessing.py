"""The blog's multiprocessing matmul script, parametrised by size (benchmarks/README.md).

Unchanged in substance: a Pool created at import, x passed into every starmap task, 10 trials
timed together with perf_counter; prints the mean seconds per trial.
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
    start = time.perf_counter()
    for i in range(args.trials):
        np.random.seed(i)
        y_s = [np.random.rand(args.n, args.k) for _ in range(num_workers)]
        pool.starmap(task, zip([x] * len(y_s), y_s))
    print(f"seconds_per_trial {(time.perf_counter() - start) / args.trials:.4f}")
