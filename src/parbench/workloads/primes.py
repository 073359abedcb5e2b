"""Pure-Python CPU work that holds the GIL: count the primes in a range of integers by trial
division. Threads cannot run it in parallel on a CPython with the GIL; processes can."""

import functools

from parbench.workloads.base import BaseWorkload, Work, pairs


def no_state():
    """Nothing is shared: each item carries its own range."""
    return None


def count_primes(state, bounds) -> int:
    """Primes in [low, high) by trial division with odd divisors, in plain Python."""
    low, high = bounds
    count = 0
    for n in range(max(low, 2), high):
        if n % 2 == 0:
            count += n == 2
            continue
        d = 3
        while d * d <= n:
            if n % d == 0:
                break
            d += 2
        else:
            count += 1
    return count


@functools.cache
def sieve_count(low: int, high: int) -> int:
    """The same count by a numpy sieve of Eratosthenes: an independent reference for verification."""
    import numpy as np  # here, not at the top: a subinterpreter worker imports this module and cannot import numpy

    if high <= 2:
        return 0
    is_prime = np.ones(high, dtype=bool)
    is_prime[:2] = False
    for p in range(2, int(high**0.5) + 1):
        if is_prime[p]:
            is_prime[p * p :: p] = False
    return int(is_prime[max(low, 0) :].sum())


class Workload(BaseWorkload):
    params_schema = {
        "start": {"type": "integer", "minimum": 0, "default": 1_000_000, "description": "a non-negative integer (where ranges begin)"},
        "span": {"type": "integer", "minimum": 1, "default": 10_000, "description": "a positive integer (integers per item)"},
    }
    run_defaults = {"batches": 5}

    def work(self) -> Work:
        return Work(task=count_primes, build=no_state, data={}, stateful=False)

    def items(self, batch: int, n: int) -> list:
        # Every item the same range: trial division costs more for larger integers, so ranges that
        # moved with the trial or the batch made trials (and worker counts) do different work.
        start, span = self.params["start"], self.params["span"]
        return [(start, start + span)] * n

    def verify(self, batch: int, items: list, digests: list) -> list[str]:
        return [
            f"batch {batch} task {i}: {got} primes in [{low}, {high}), the sieve finds {want}"
            for i, ((low, high), got) in enumerate(pairs(items, digests))
            if got != (want := sieve_count(low, high))
        ]
