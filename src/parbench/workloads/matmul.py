"""The blog's matmul: many products x @ y_i with one large shared x (n x n float64)."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from parbench.workloads.base import BaseWorkload, Work, pairs

# Relative tolerance of the Freivalds check; float64 rounding at n = 10240 is ~1e-12.
RTOL = 1e-9
# The sweep's sentinel (parbench.sweep.order): a small serial matmul in every round, whose speed tracks the machine's.
SENTINEL = True


def random_matrix(n: int, seed: int, chunks: int = 16) -> np.ndarray:
    """Standard-normal n x n matrix, filled by threads in fixed chunks (same bytes on any core count)."""
    x = np.empty((n, n))
    streams = np.random.SeedSequence(seed).spawn(chunks)
    edges = np.linspace(0, n, chunks + 1).astype(int)

    def fill(i):
        np.random.default_rng(streams[i]).standard_normal(out=x[edges[i] : edges[i + 1]])

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(fill, range(chunks)))
    return x


def as_state(x):
    """The state of a matmul task is x itself."""
    return x


def multiply(x, y):
    return np.matmul(x, y)


class Workload(BaseWorkload):
    params_schema = {
        "n": {"type": "integer", "minimum": 1, "default": 10240, "description": "a positive integer (x is n x n float64)"},
        "k": {"type": "integer", "minimum": 1, "default": 128, "description": "a positive integer (each y_i is n x k)"},
        "seed": {"type": "integer", "minimum": 0, "default": 1234, "description": "a non-negative integer"},
    }

    # The blog's published figures: 4 workers on 8 cores; memory by tracemalloc in the parent only.
    blog = [
        {"measure": "time", "what": "seconds per trial", "multiprocessing": 7.31, "ray": 0.95},
        {"measure": "memory", "what": "peak memory, MB", "multiprocessing": 1770.71, "ray": 44.38},
    ]

    @classmethod
    def explain(cls, stats, runs, machine: dict, params: dict) -> list[str]:
        n = params.get("n") or cls.defaults()["n"]
        size_mib = 8 * n**2 / 2**20
        per_mib = (machine.get("pickle_100mib_dumps_s", 0) + machine.get("pickle_100mib_loads_s", 0)) / 100
        return [
            f"How x reaches the workers decides the blog's gap: its pattern pickles x ({n}×{n} float64, {size_mib:,.0f} MiB) into "
            f"every task, which at this machine's measured pickling speed costs about {per_mib * size_mib * 1000:,.0f} ms per task "
            "before any arithmetic; multiprocessing-shared places x once in shared memory, Ray once in its object store, "
            "threads share it by reference.",
            "The blog's clock ran over all its trials, the first included, after x was placed (its ray.put came before the "
            "clock): the blog's timer here covers every batch, warm-up ones included, but not making the y_i, which the blog's "
            "loop also timed (a few per cent of a trial: benchmarks/README.md). The median timed batch leaves the first batch "
            "out, so the two framings differ by that batch (for Ray, the one whose workers first map x) and those inputs.",
        ]

    def work(self) -> Work:
        n, seed = self.params["n"], self.params["seed"]
        x = random_matrix(n, seed)
        # Freivalds: keep only w @ x (one n-vector); each result r is checked as w @ r == (w @ x) @ y.
        self._w = np.random.default_rng([seed, 1]).standard_normal(n)
        self._wx = self._w @ x
        return Work(task=multiply, build=as_state, data={"x": x}, stateful=False)

    def items(self, batch: int, n: int) -> list:
        size = (self.params["n"], self.params["k"])
        seed = self.params["seed"]
        return [np.random.default_rng([seed, self.trial, batch, i]).random(size) for i in range(n)]

    def digest(self, result):
        ok = isinstance(result, np.ndarray) and result.shape == (self.params["n"], self.params["k"])
        return self._w @ result if ok else None

    def verify(self, batch: int, items: list, digests: list) -> list[str]:
        problems = []
        for i, (y, got) in enumerate(pairs(items, digests)):
            want = self._wx @ y
            if got is None:
                problems.append(f"batch {batch} task {i}: result is not an {self.params['n']}x{self.params['k']} array")
            elif not np.linalg.norm(got - want) <= RTOL * np.linalg.norm(want):
                problems.append(f"batch {batch} task {i}: x @ y fails the Freivalds check")
        return problems

    def flops_per_item(self) -> float:
        return 2.0 * self.params["n"] ** 2 * self.params["k"]

    def describe(self) -> dict:
        return {"x_bytes": 8 * self.params["n"] ** 2, "y_bytes": 8 * self.params["n"] * self.params["k"]}
