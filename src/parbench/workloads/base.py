"""The workload interface, and `Work`: what a backend needs to run a workload's tasks."""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Work:
    """Everything a backend needs to run one workload's tasks.

    Inside a worker, `state = build(**data)` and each task returns `task(state, item)`.
    `data` may hold large arrays; how it reaches workers (per task, once per worker, shared
    memory, object store) is the backend's choice. `stateful` marks a build that is too costly
    to repeat per task (a model load): backends that can keep state build it once per worker.
    All callables are module-level functions, so they pickle by reference.
    """

    task: Callable[[Any, Any], Any]
    build: Callable[..., Any]
    data: dict
    stateful: bool


class BaseWorkload(ABC):
    """One workload, set up for one trial.

    The runner calls, in order: `work()` (inputs generated outside any timed region),
    `items(batch, n)` before each batch, `digest(result)` after each batch (outside its timer),
    and `verify(batch, items, digests)` after teardown, when the driver may hold references.
    """

    #: Default parameters; the config schema holds the same defaults for the pipeline.
    defaults: dict = {}

    def __init__(self, params: dict, trial: int):
        self.params = {**self.defaults, **params}
        self.trial = trial

    @classmethod
    def check_params(cls, params: dict) -> list[str]:
        """Problems with `params` that a JSON schema cannot see, as messages naming the key."""
        return []

    @abstractmethod
    def work(self) -> Work:
        """The task, its shared state and how workers build it."""

    @abstractmethod
    def items(self, batch: int, n: int) -> list:
        """The `n` per-task inputs of batch `batch` (warm-up batches are negative)."""

    def digest(self, result):
        """A small stand-in for `result` kept until verification (default: the result itself)."""
        return result

    @abstractmethod
    def verify(self, batch: int, items: list, digests: list) -> list[str]:
        """Compare a batch's digests with a serial reference; return one message per mismatch."""

    def flops_per_task(self) -> float | None:
        """Floating-point operations in one task, where that is meaningful."""
        return None

    def describe(self) -> dict:
        """Facts about what actually ran (for example the model loaded), for the record."""
        return {}
