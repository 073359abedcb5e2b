"""The report's decisions: which cells a claim may rest on, the recommended cell of a workload (`choose`),
its kind of work (`kind_of`), where scaling stops, memory ranges, the machine's busy runs and each interpreter's
cells against the first variant's serial (`interpreter_cells`). Pure functions of the stats and runs tables,
returning rows, numbers and parbench.decide's words; parbench.report.claims puts them in sentences
(tests/test_method.py measures their error rates on synthetic sweeps)."""

import math
from typing import NamedTuple

import pandas as pd

from parbench import decide, plugins
from parbench.stats import KEYS, REFERENCE, clean, paired_cells, round_logs

# The backends whose workers share one interpreter's GIL (SHARES_ONE_GIL in their module): their busy cores say whether it is released.
ONE_GIL = [b for b, yes in plugins.declared("backends", "SHARES_ONE_GIL").items() if yes]


# The least data an interval needs: two clean rounds (fresh processes), so that it sees how much one
# process differs from another.
MIN_TRIALS = 2


# Memory peaks closer than this share are no clear difference, whatever their ranges (one trial has no range).
MEMORY_TOLERANCE = 0.05


# The sentinel's throughput may vary this much over a sweep before the report warns (docs/measurement.md).
DRIFT_WARN = 0.05

# Cores one process kept busy: above BUSY_MANY it ran on several cores by itself (BLAS threads);
# below BUSY_WAITS it mostly waited; threads above BUSY_THREADS ran Python in parallel (GIL released).
BUSY_MANY, BUSY_WAITS, BUSY_THREADS = 1.5, 0.5, 1.25
# The kinds of work kind_of tells apart (parbench.report.claims words them).
NOT_MEASURED, NATIVE_THREADS, WAITS, GIL_NOT_MEASURED, GIL_RELEASED, GIL_HELD = (
    "not measured", "native threads", "waits", "GIL not measured", "GIL released", "GIL held"
)  # fmt: skip


def kind_of(serial_busy, threads_busy) -> str:
    """What kind of parallel work this is, from the cores serial and threads (at 2 or more workers) kept busy."""
    if pd.isna(serial_busy):
        return NOT_MEASURED
    if serial_busy >= BUSY_MANY:
        return NATIVE_THREADS
    if serial_busy < BUSY_WAITS:
        return WAITS
    if pd.isna(threads_busy):
        return GIL_NOT_MEASURED
    return GIL_RELEASED if threads_busy >= BUSY_THREADS else GIL_HELD


def claimable(stats: pd.DataFrame) -> pd.DataFrame:
    """Cells a claim may rest on: every run ok and verified, at least MIN_TRIALS of them, with a throughput interval."""
    ok = stats.all_clean.astype(bool) & stats[["throughput_median", "throughput_ci_low", "throughput_ci_high"]].notna().all(axis=1)
    return stats[ok & (stats.n_clean >= MIN_TRIALS)]


def overlaps(a, b, low="throughput_ci_low", high="throughput_ci_high") -> bool:
    return bool(a[low] <= b[high] and b[low] <= a[high])


def ratio_interval(a, b) -> tuple[float, float]:
    """A conservative interval for throughput(a) / throughput(b) from the two cells' 90 % intervals."""
    return a.throughput_ci_low / b.throughput_ci_high, a.throughput_ci_high / b.throughput_ci_low


def ranked(cells: pd.DataFrame) -> list:
    return [row for _, row in cells.sort_values("throughput_median", ascending=False).iterrows()]


def best_per_backend(cells: pd.DataFrame) -> list:
    """Each backend's best cell (highest median throughput over worker counts), best first."""
    return ranked(cells.sort_values("throughput_median", ascending=False).drop_duplicates("backend"))


def margin_of(stats: pd.DataFrame) -> float:
    """The margin the stats table was judged with (config `margin`), else decide's default."""
    if "margin" in stats and stats.margin.notna().any():
        return float(stats.margin.dropna().iloc[0])
    return decide.DEFAULT_MARGIN


def family_of(stats: pd.DataFrame) -> int:
    """How many comparisons with serial the workload's verdicts were judged among (Holm's family)."""
    if "family" in stats and stats.family.notna().any():
        return int(stats.family.max())
    return int((stats.backend != REFERENCE).sum())


def word_of(row) -> str:
    """A cell's verdict against serial (cannot tell where the table has none)."""
    word = row.get("verdict_vs_serial") if hasattr(row, "get") else None
    return word if isinstance(word, str) and word in decide.WORDS else decide.CANNOT_TELL


class Choice(NamedTuple):
    """The answer for one workload: the recommended cell; the runner-up (the next cell faster than
    serial, None if there is none) with the paired ratio best / runner-up and its word (`faster`: the
    best is ahead; otherwise the two cannot be told apart); every cell faster than serial (best first);
    the other parallel cells; serial's best cell; the family's size and the margin."""

    best: pd.Series
    runner_up: pd.Series | None
    versus_runner_up: decide.Ratio | None
    runner_up_word: str | None
    faster: list
    others: list
    serial: pd.Series | None
    family: int
    margin: float


def cell_key(row) -> tuple:
    return (row.workload, row.backend, row.workers, row.get("variant", "") if not pd.isna(row.get("variant", "")) else "")


def paired(runs: pd.DataFrame | None, a, b, logs: pd.DataFrame | None = None) -> decide.Ratio | None:
    """Cell a over cell b, paired within rounds from the runs table; None without runs. logs: round_logs(runs), if
    already at hand."""
    if not _pairable(runs):
        return None
    r = paired_cells(round_logs(runs) if logs is None else logs, cell_key(a), cell_key(b))
    return r if r.n else None


def _pairable(runs: pd.DataFrame | None) -> bool:
    return runs is not None and not runs.empty and {"status", "verified", "trial"} <= set(runs)


def choose(stats: pd.DataFrame, runs: pd.DataFrame | None = None, margin: float | None = None) -> Choice | None:
    """The backend and worker count to use for one workload, None if no cell can be claimed or serial
    ran no claimable cell. A parallel cell is chosen only where its verdict against serial is `faster`
    (Holm over the workload's family, beyond the margin); among several, the highest throughput, and it
    is told apart from the runner-up only where their paired ratio over the rounds says `faster`.
    Otherwise serial is (the simplest thing, and nothing is faster)."""
    cells = claimable(stats)
    serials = ranked(cells[cells.backend == REFERENCE])
    if cells.empty or not serials:
        return None
    margin = margin_of(stats) if margin is None else margin
    parallel = ranked(cells[cells.backend != REFERENCE])
    faster = [r for r in parallel if word_of(r) == decide.FASTER]
    others = [r for r in parallel if word_of(r) != decide.FASTER]
    best, runner, ratio, word = serials[0], None, None, None
    if faster:
        best = faster[0]
        if len(faster) > 1:
            runner = faster[1]
            ratio = paired(runs, best, runner)
            word = decide.verdict(ratio, margin) if ratio is not None else decide.CANNOT_TELL
    return Choice(best, runner, ratio, word, faster, others, serials[0], family_of(stats), margin)


def log_sd(row) -> float:
    """The spread (sd of log) of one run's throughput in a cell: stats' throughput_log_sd, else from its 90 % interval."""
    sd = row.get("throughput_log_sd") if hasattr(row, "get") else None
    if sd is not None and not pd.isna(sd):
        return float(sd)
    n = int(row.n_clean)
    if n < 2 or not row.throughput_ci_low > 0:
        return math.nan
    return math.log(row.throughput_ci_high / row.throughput_ci_low) / (2 * decide.t_quantile(1 - decide.ALPHA, n - 1)) * math.sqrt(n)


def step(more, fewer) -> decide.Ratio:
    """Throughput at more workers over fewer (Welch on the cells' runs: the two are different cells)."""
    return decide.welch(
        math.log(more.throughput_median),
        log_sd(more),
        int(more.n_clean),
        math.log(fewer.throughput_median),
        log_sd(fewer),
        int(fewer.n_clean),
    )


def scaling_stop(cells: pd.DataFrame, margin: float = decide.DEFAULT_MARGIN):
    """The worker count after which more workers are no longer faster: the first count whose next count's
    verdict (Holm over the backend's steps, with the margin) is not `faster`. `cells`: one backend, clean.
    Returns the stop's row and the word and ratio of the step after it (None, None if it never stops)."""
    rows = [r for _, r in cells.sort_values("workers").iterrows()]
    steps = [step(b, a) for a, b in zip(rows, rows[1:])]
    words = decide.verdicts(steps, margin)
    for i, word in enumerate(words):
        if word != decide.FASTER:
            return rows[i], word, steps[i]
    return rows[-1], None, None


def memory_ranges(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell, the lowest and highest peak tree PSS over its clean runs (the interval memory claims use)."""
    return (
        clean(runs)
        .groupby(KEYS)
        .peak_tree_pss_bytes.agg(["min", "max"])
        .rename(columns={"min": "peak_tree_pss_bytes_low", "max": "peak_tree_pss_bytes_high"})
        .reset_index()
    )


def serial_at(stats: pd.DataFrame, workers):
    """Serial's claimable cell at `workers` (the batch size it ran), or None."""
    cells = claimable(stats)
    cells = cells[(cells.backend == REFERENCE) & (cells.workers == workers)]
    return cells.iloc[0] if len(cells) else None


def busy_count(runs: pd.DataFrame) -> int | None:
    """How many runs were made on a busy machine; None where no run was judged."""
    if "busy_machine" not in runs or runs.busy_machine.isna().all():
        return None
    return int((runs.busy_machine == True).sum())  # noqa: E712 (a column of True, False and missing)


class Interpreter(NamedTuple):
    """One variant's interpreter in one workload, against the first variant's serial (`base`), paired within rounds
    (every variant runs in the same rounds): each backend's fastest clean cell (serial first) with its ratio over
    `base` (None for `base` itself), the backends without a clean cell (their cells), its own serial, that serial
    over `base` (`tax`), and its fastest parallel cell with its ratio over `base`."""

    variant: str
    cells: list
    missing: dict
    serial: pd.Series | None
    tax: decide.Ratio | None
    fastest: pd.Series | None
    fastest_over_base: decide.Ratio | None


def interpreter_cells(stats: pd.DataFrame, runs: pd.DataFrame, variants: list[str]) -> dict[str, list[Interpreter]]:
    """Per workload, one Interpreter per variant in `variants` (the first is what the others are compared with)."""
    out, logs = {}, round_logs(runs) if _pairable(runs) else None  # once: every pair below reads it
    for workload in dict.fromkeys(stats.workload):
        cells = stats[(stats.workload == workload) & stats.variant.isin(variants)]
        ok = claimable(cells)
        serials = {v: _fewest_workers(ok[(ok.variant == v) & (ok.backend == REFERENCE)]) for v in variants}
        base = serials[variants[0]]
        sides = []
        for variant in variants:
            mine, good = cells[cells.variant == variant], ok[ok.variant == variant]
            rows, missing = [], {}
            for backend in sorted(set(mine.backend), key=lambda b: (b != REFERENCE, b)):
                clean_cells = good[good.backend == backend]
                if clean_cells.empty:
                    missing[backend] = mine[mine.backend == backend]
                    continue
                row = clean_cells.loc[clean_cells.throughput_median.idxmax()]
                rows.append((row, _over(runs, logs, row, base)))
            serial, parallel = serials[variant], good[good.backend != REFERENCE]
            fastest = parallel.loc[parallel.throughput_median.idxmax()] if len(parallel) else None
            tax, fastest_over_base = _over(runs, logs, serial, base), _over(runs, logs, fastest, base)
            sides.append(Interpreter(variant, rows, missing, serial, tax, fastest, fastest_over_base))
        out[workload] = sides
    return out


def _over(runs, logs, row, base) -> decide.Ratio | None:
    """Cell `row` over `base`, paired within rounds; None for `base` itself or where either is missing."""
    if row is None or base is None or cell_key(row) == cell_key(base):
        return None
    return paired(runs, row, base, logs)


def _fewest_workers(cells: pd.DataFrame):
    return cells.sort_values("workers").iloc[0] if len(cells) else None
