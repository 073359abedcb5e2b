"""Many tiny tasks, each a few microseconds of Python: per-task overhead decides. The shape of
Ray's "too fine-grained tasks" example (10,000 items of about 16 µs each); `items_per_task`
batches them as its documentation recommends."""

from parbench.plugins import REFERENCE
from parbench.workloads.base import BaseWorkload, Work, pairs

MASK = 0x7FFFFFFF


def no_state():
    return None


def step(state, number: int, rounds: int) -> int:
    """`rounds` steps of a linear congruential generator from `number`: a tiny, exact Python loop."""
    x = number
    for _ in range(rounds):
        x = (x * 1103515245 + 12345) & MASK
    return x


def jump(number: int, rounds: int) -> int:
    """The same value by composing the affine step with itself (square and multiply): a check that
    does not repeat the task's loop."""
    a, c, x = 1103515245, 12345, number
    while rounds:
        if rounds & 1:
            x = (a * x + c) & MASK
        a, c, rounds = (a * a) & MASK, (c * (a + 1)) & MASK, rounds >> 1
    return x


class Workload(BaseWorkload):
    params_schema = {
        "rounds": {"type": "integer", "minimum": 1, "default": 100, "description": "a positive integer (loop steps per item)"},
    }
    run_defaults = {"batches": 5, "tasks_per_batch": 2000}

    # Ray's documentation ("Anti-pattern: Over-parallelizing with too fine-grained tasks harms
    # speedup"): 10,000 items of a 10 µs sleep each, on its authors' machine.
    RAY_DOCS = {"serial_s": 0.165, "one_task_per_item_s": 1.606, "batched_s": 0.030, "items": 10_000, "items_per_task": 1000}

    @classmethod
    def explain(cls, stats, runs, machine: dict, params: dict) -> list[str]:
        d = cls.RAY_DOCS
        cited = (
            f"Ray's documentation measured the same shape (10,000 items of a 10 µs sleep): serial {d['serial_s']} s, one Ray task "
            f"per item {d['one_task_per_item_s']} s ({d['one_task_per_item_s'] / d['serial_s']:.1f}× serial's time), "
            f"{d['items_per_task']:,} items per task {d['batched_s']} s ({d['batched_s'] / d['serial_s']:.2f}×, on a machine "
            "with more cores; a sleep needs no core)."
        )
        serial, ray = stats[stats.backend == REFERENCE], stats[stats.backend == "ray"]
        if not len(serial) or not len(ray) or serial.throughput_median.isna().all() or ray.throughput_median.isna().all():
            return [cited]
        chunk = int(stats.items_per_task.iloc[0]) if "items_per_task" in stats else 1
        per_item = 1 / serial.throughput_median.median()
        best = ray.loc[ray.throughput_median.idxmax()]
        return [
            cited,
            f"Here, with {chunk:,} item{'s' if chunk > 1 else ''} per task: serial takes {per_item * 1e6:,.1f} µs per item, Ray at "
            f"its best ({int(best.workers)} workers) {1e6 / best.throughput_median:,.1f} µs per item "
            f"({serial.throughput_median.median() / best.throughput_median:.2g}× serial's time).",
        ]

    def work(self) -> Work:
        return Work(task=step_task, build=no_state, data={}, stateful=False)

    def items(self, batch: int, n: int) -> list:
        base = (self.trial * 1000 + batch) * n
        return [(base + i, self.params["rounds"]) for i in range(n)]

    def verify(self, batch: int, items: list, digests: list) -> list[str]:
        return [
            f"batch {batch} task {i}: {got} after {rounds} steps from {number}, expected {want}"
            for i, ((number, rounds), got) in enumerate(pairs(items, digests))
            if got != (want := jump(number, rounds))
        ]


def step_task(state, item) -> int:
    number, rounds = item
    return step(state, number, rounds)
