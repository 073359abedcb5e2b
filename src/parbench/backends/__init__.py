"""Backends: how tasks and their shared state reach workers. One module per backend."""

from parbench import plugins


def names() -> list[str]:
    return plugins.names(__name__)


def load(name: str):
    """The Backend class of backend `name` ('multiprocessing-shared' lives in multiprocessing_shared.py)."""
    return plugins.load(__name__, name, "Backend")
