"""The blog's matmul: many products x @ y_i with one large shared x (n x n float64)."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from parbench.workloads.base import BaseWorkload, Work

# Relative tolerance of the Freivalds check; float64 rounding at n = 10240 is ~1e-12.
RTOL = 1e-9


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
    defaults = {"n": 10240, "k": 128, "seed": 1234}

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
        for i, (y, got) in enumerate(zip(items, digests)):
            want = self._wx @ y
            if got is None:
                problems.append(f"batch {batch} task {i}: result is not an {self.params['n']}x{self.params['k']} array")
            elif not np.linalg.norm(got - want) <= RTOL * np.linalg.norm(want):
                problems.append(f"batch {batch} task {i}: x @ y fails the Freivalds check")
        return problems

    def flops_per_task(self) -> float:
        return 2.0 * self.params["n"] ** 2 * self.params["k"]

    def describe(self) -> dict:
        return {"x_bytes": 8 * self.params["n"] ** 2, "y_bytes": 8 * self.params["n"] * self.params["k"]}
