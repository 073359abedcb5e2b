"""The workload interface, and `Work`: what a backend needs to run a workload's tasks."""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Config keys of a workload that shape the run, not the tasks: never passed to the workload itself.
# `workers` overrides the sweep's worker counts for this workload (it names runs, it does not shape one).
RUN_KEYS = ("batches", "warmup_batches", "min_timed_s", "tasks_per_batch", "items_per_task", "module", "workers")


class WorkloadError(Exception):
    """The workload's own code failed in the driver (making its data or items, checking a result):
    the run failed, parbench did not."""


def pairs(items: list, digests: list) -> zip:
    """(item, digest) pairs for `verify`; WorkloadError if the counts differ (zip alone would stop at the shorter)."""
    if len(items) != len(digests):
        raise WorkloadError(f"{len(digests)} results for {len(items)} items")
    return zip(items, digests)


def data_as_state(**data) -> dict:
    """A user workload's default `build`: a task's state is the data dict itself. Here, not in _user.py, which
    imports numpy: a worker unpickles it by reference, and a subinterpreter cannot import numpy."""
    return data


@dataclass(frozen=True)
class Work:
    """Everything a backend needs to run one workload's tasks.

    Inside a worker, `state = build(**data)` and each task returns `task(state, item)`.
    `data` may hold large arrays; how it reaches workers (per task, once per worker, shared
    memory, object store) is the backend's choice. `stateful` marks a build that is too costly
    to repeat per task (a model load): backends that can keep state build it once per worker.
    `many(state, items)`, where given, does the work of several tasks at once (spaCy's
    `nlp.pipe`): a chunked run (`items_per_task` above 1) uses it instead of a loop over `task`.
    All callables are module-level functions, so they pickle by reference.
    """

    task: Callable[[Any, Any], Any]
    build: Callable[..., Any]
    data: dict
    stateful: bool
    many: Callable[[Any, list], list] | None = None


class BaseWorkload(ABC):
    """One workload, set up for one trial.

    The runner calls, in order: `work()` (inputs generated outside any timed region),
    `items(batch, n)` before each batch, `digest(result)` after each batch (outside its timer),
    `verify(batch, items, digests)` after teardown, when the driver may hold references, and
    `close()` at the very end.
    """

    #: JSON Schema of each parameter (with its `default` and a `description` shown in errors); the
    #: config schema takes them from here, so a new workload is one file.
    params_schema: dict = {}
    #: Run keys this workload sets differently from the sweep's defaults (e.g. more tasks per batch).
    run_defaults: dict = {}
    #: Packages its tasks import only when they run: one missing on a run's interpreter makes the run `skipped`.
    packages: tuple[str, ...] = ()

    def __init__(self, params: dict, trial: int):
        self.params = {**self.defaults(), **params}
        self.trial = trial

    @classmethod
    def defaults(cls) -> dict:
        return {k: v["default"] for k, v in cls.params_schema.items() if "default" in v}

    @classmethod
    def check_params(cls, params: dict, key: str) -> list[str]:
        """Problems with `params` that a JSON schema cannot see, as messages naming the config key
        (`key` is the workload's own, e.g. 'workloads.ner'). Called before any job starts."""
        return []

    @abstractmethod
    def work(self) -> Work:
        """The task, its shared state and how workers build it."""

    @abstractmethod
    def items(self, batch: int, n: int) -> list:
        """The `n` inputs of batch `batch` (batches count from 0, warm-up batches first); the same
        arguments give the same items, so that verification can make them again."""

    def digest(self, result):
        """A small stand-in for `result` kept until verification (default: the result itself)."""
        return result

    @abstractmethod
    def verify(self, batch: int, items: list, digests: list) -> list[str]:
        """Compare a batch's digests with a serial reference; return one message per mismatch."""

    def flops_per_item(self) -> float | None:
        """Floating-point operations in one item (a chunked task does several), where that is meaningful."""
        return None

    def describe(self) -> dict:
        """Facts about what actually ran (for example the model loaded), for the record."""
        return {}

    def service_cpu_s(self) -> float | None:
        """CPU seconds so far of a service of the workload's own outside the run's process tree (a local
        server): what the busy flag must not count as other work beside the run. None: it has none."""
        return None

    @classmethod
    def explain(cls, stats, runs, machine: dict, params: dict) -> list[str]:
        """Sentences for the report that explain this workload's results: what decides them, from
        the workload's stats and runs (pandas tables of its cells and runs), the machine's limits
        and its parameters. The report's generic claims come first; this adds what only the
        workload knows."""
        return []

    def close(self) -> None:
        """Release what `work()` started (a local service), after verification."""
