"""How numbers read in the report, the figures and the comparison: one place for units,
intervals and worker counts."""

import numpy as np

MIB = 1024**2
UNIT = "items/s"  # throughput: items of the timed batches per second (an item is one task's input unless chunked)


def num(v) -> str:
    """A number to about three significant digits, without exponent for everyday sizes."""
    if v is None or not np.isfinite(v):
        return "–"
    a = abs(v)
    return f"{v:,.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:#.2g}"


def workers_text(n) -> str:
    return f"{int(n)} worker" if int(n) == 1 else f"{int(n)} workers"


def interval_text(low, high, unit="") -> str:
    """A 95 % interval, in brackets: the report says once what brackets mean."""
    return f"[{num(low)}–{num(high)}{unit}]"


def mib(v) -> str:
    return f"{num(v / MIB)} MiB"


def size_text(n) -> str:
    """Bytes in the largest unit that keeps the number at 1 or more: '800 MiB', '24 B'."""
    if n is None or not np.isfinite(n):
        return "–"
    for unit, factor in (("GiB", 1024**3), ("MiB", MIB), ("KiB", 1024)):
        if n >= factor:
            return f"{num(n / factor)} {unit}"
    return f"{int(n)} B"


def seconds_text(s) -> str:
    """A duration in s, ms or µs: '1.2 s', '4.1 ms', '38 µs'."""
    if s is None or not np.isfinite(s):
        return "–"
    if s >= 1:
        return f"{num(s)} s"
    return f"{num(s * 1e3)} ms" if s >= 1e-3 else f"{num(s * 1e6)} µs"


def gib_text(n) -> str:
    """Memory as the machine facts give it: '23.4 GiB'."""
    return f"{(n or 0) / 2**30:.1f} GiB"


def blas_text(libraries) -> str:
    """The BLAS libraries threadpoolctl found, as 'openblas 0.3.27 (pthreads, Haswell)', comma-separated."""
    return ", ".join(
        f"{b.get('internal_api')} {b.get('version')} ({b.get('threading_layer')}, {b.get('architecture')})" for b in libraries or []
    )


def commit_text(env: dict, digits: int | None = None) -> str:
    """The git commit of a record's or machine.json's environment, and whether the tree had uncommitted changes."""
    return f"{(env.get('git_commit') or 'unknown')[:digits]}{' (uncommitted changes)' if env.get('git_dirty') else ''}"
