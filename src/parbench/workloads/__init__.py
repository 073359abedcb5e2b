"""Workloads: what is computed and how a result is checked. One module per workload."""

from parbench import plugins


def names() -> list[str]:
    return plugins.names(__name__)


def load(name: str):
    """The Workload class of workload `name`."""
    return plugins.load(__name__, name, "Workload")
