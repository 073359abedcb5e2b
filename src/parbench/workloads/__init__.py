"""Workloads: what is computed and how a result is checked. One module per workload, or a user's
own module named by `module:` in the config."""

from parbench import plugins


def names() -> list[str]:
    """The built-in workloads."""
    return plugins.names(__name__)


def load(name: str, module: str | None = None):
    """The Workload class of built-in workload `name`, or of the user's `module` (a .py file or dotted name)."""
    if module:
        from parbench.workloads import _user

        with plugins.needing(module):
            return _user.load(module)
    return plugins.load(__name__, name, "Workload")
