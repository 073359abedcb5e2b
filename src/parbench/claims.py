"""The report's claims: sentences and summary rows generated from the stats table, claiming only
what the 95 % intervals support. Pure functions of the tables, tested on hand-made ones."""

from typing import NamedTuple

import pandas as pd

from parbench.stats import BUSY_OTHER_CORES, clean, is_clean
from parbench.text import UNIT, interval_text, mib, num, seconds_text, size_text, workers_text

KEYS = ["workload", "backend", "workers"]
# The least data an interval needs: two clean trials (fresh processes), so that it sees how much one
# process differs from another; with one, a bootstrap over its batches alone would claim too much.
MIN_TRIALS = 2
# Memory peaks closer than this share are no clear difference, whatever their ranges (one trial has no range).
MEMORY_TOLERANCE = 0.05


# The busy-machine rule, said once for the report and the README (the threshold is stats.BUSY_OTHER_CORES).
BUSY_RULE = (
    f"a run was made on a busy machine when the rest of the machine used more than {BUSY_OTHER_CORES:g} of a core on average "
    "beside it: the machine's non-idle CPU time in /proc/stat (steal included: time other guests took) over the run, minus the "
    "CPU time of the run's own process tree (from its CPU cgroup: runs without one, and runs on an external cluster, are not "
    "judged), over the run's wall time"
)
BUSY_MARK = " [busy machine]"
# The sentinel's throughput may vary this much over a sweep before the report warns (README, "Drift").
DRIFT_WARN = 0.05


def busy_mark(row) -> str:
    """' [busy machine]' after a cell with a run made on a busy machine (stats' n_busy)."""
    n = row.get("n_busy") if hasattr(row, "get") else None
    return BUSY_MARK if n is not None and not pd.isna(n) and n > 0 else ""


def backend_text(row) -> str:
    return f"{row.backend}{busy_mark(row)}"


def cell_text(row) -> str:
    """'ray with 2 workers'; serial has no workers (its `workers` only sets the batch size)."""
    return ("serial" if row.backend == "serial" else f"{row.backend} with {workers_text(row.workers)}") + busy_mark(row)


def throughput_text(row) -> str:
    return f"{num(row.throughput_median)} {UNIT} {interval_text(row.throughput_ci_low, row.throughput_ci_high)}"


def claimable(stats: pd.DataFrame) -> pd.DataFrame:
    """Cells a claim may rest on: every run ok and verified, at least MIN_TRIALS of them, with a throughput interval."""
    ok = stats.all_clean.astype(bool) & stats[["throughput_median", "throughput_ci_low", "throughput_ci_high"]].notna().all(axis=1)
    return stats[ok & (stats.n_clean >= MIN_TRIALS)]


def overlaps(a, b, low="throughput_ci_low", high="throughput_ci_high") -> bool:
    return bool(a[low] <= b[high] and b[low] <= a[high])


def ratio_interval(a, b) -> tuple[float, float]:
    """A conservative interval for throughput(a) / throughput(b) from the two 95 % intervals."""
    return a.throughput_ci_low / b.throughput_ci_high, a.throughput_ci_high / b.throughput_ci_low


def ranked(cells: pd.DataFrame) -> list:
    return [row for _, row in cells.sort_values("throughput_median", ascending=False).iterrows()]


def best_per_backend(cells: pd.DataFrame) -> list:
    """Each backend's best cell (highest median throughput over worker counts), best first."""
    return ranked(cells.sort_values("throughput_median", ascending=False).drop_duplicates("backend"))


def ahead_text(a, b) -> str:
    """'2.1× (at least 1.3×) the next backend, ray with 2 workers: 40 items/s [35–44]'."""
    low, _ = ratio_interval(a, b)
    return (
        f"{num(a.throughput_median / b.throughput_median)}× (at least {num(low)}×) the next backend, {cell_text(b)}: {throughput_text(b)}"
    )


def versus_serial(row, name: str) -> str:
    """How a non-serial cell stands against serial at the same worker count, by the speedup interval."""
    if pd.isna(row.get("speedup_vs_serial")) or pd.isna(row.get("speedup_ci_low")):
        return f"serial did not run cleanly at {workers_text(row.workers)}, so {name} has no comparison with it"
    speedup = f"{num(row.speedup_vs_serial)}× serial's throughput {interval_text(row.speedup_ci_low, row.speedup_ci_high, '×')}"
    if row.speedup_ci_low > 1:
        return f"{name} is faster than serial: {speedup}"
    if row.speedup_ci_high < 1:
        return f"{name} is slower than serial: {speedup}"
    return f"{name} shows no clear difference from serial: {speedup}"


def short_text(row) -> str:
    """'ray (2 workers) 105 [36.3–127]': a cell in a list."""
    name = row.backend if row.backend == "serial" else f"{row.backend} ({workers_text(row.workers)})"
    return f"{name}{busy_mark(row)} {num(row.throughput_median)} {interval_text(row.throughput_ci_low, row.throughput_ci_high)}"


class Choice(NamedTuple):
    """The answer for one workload: the recommended cell, the cells not clearly different from it
    (best first), the clearly slower ones, and serial's best cell (None if serial did not run cleanly)."""

    best: pd.Series
    tied: list
    clear: list
    serial: pd.Series | None


def choose(stats: pd.DataFrame) -> Choice | None:
    """The best backend and worker count for one workload, None if no cell can be claimed. A parallel
    backend is chosen only if its speedup interval over serial lies above 1; otherwise serial is (the
    simplest thing that is not clearly slower)."""
    cells = claimable(stats)
    if cells.empty:
        return None
    order = best_per_backend(cells)
    serial = [r for r in order if r.backend == "serial"]
    if order[0].backend != "serial" and serial:
        # The fastest backend whose speedup interval lies above 1 (not only the fastest median), else serial.
        beats = [r for r in order if r.backend != "serial" and r.speedup_ci_low > 1]
        first = beats[0] if beats else serial[0]
        order = [first, *(r for r in order if r.backend != first.backend)]
    best, rest = order[0], order[1:]
    # Against a parallel choice, serial is the baseline it beat, not a rival.
    rivals = [r for r in rest if best.backend == "serial" or r.backend != "serial"]
    # Clearly slower: below the best with no overlap; a rival with a higher median is never called slower.
    clear = [r for r in rivals if not overlaps(best, r) and r.throughput_median < best.throughput_median]
    return Choice(best, [r for r in rivals if not any(r is c for c in clear)], clear, serial[0] if serial else None)


def recommendation(stats: pd.DataFrame) -> list[str]:
    """The first-screen answer for one workload: the best backend and worker count, then how sure that is."""
    choice = choose(stats)
    if choice is None:
        return [nothing_to_claim(stats)]
    best, tied, clear, serial = choice
    how = " (in the driver, no worker processes)" if best.backend == "serial" else ""
    out = [f"Use {cell_text(best)}{how}: {throughput_text(best)}."]
    if tied:
        out.append(
            f"How sure: not clearly faster than {', '.join(map(short_text, tied))} {UNIT}: the intervals overlap, "
            "so these data cannot rank them."
        )
        if clear:
            out.append(f"Clearly faster than the rest, the best of which is {short_text(clear[0])} {UNIT}.")
    elif clear:
        out.append(f"How sure: clearly ahead, at {ahead_text(best, clear[0])}.")
    else:
        out.append("How sure: it is the only backend that ran cleanly.")
    if best.backend != "serial":
        if serial is not None:
            out.append(f"Against serial at the same batch size: {versus_serial(best, best.backend)}.")
    else:
        parallel = [r for r in tied + clear if r.backend != "serial"]
        if parallel:
            out.append(
                f"No parallel backend is clearly faster; the best, {cell_text(parallel[0])}: "
                f"{versus_serial(parallel[0], parallel[0].backend)}."
            )
    return out


def nothing_to_claim(stats: pd.DataFrame) -> str:
    """Why no cell can carry a claim: none ran cleanly, or too few clean trials for an interval."""
    clean = stats[stats.all_clean.astype(bool)]
    if clean.empty:
        return "No cell ran cleanly: nothing to recommend."
    return (
        f"Not enough repeats to rank: every cell has fewer than {MIN_TRIALS} clean trials, and an interval from one "
        "process cannot show how much another process would differ. Run with trials: 2 or more."
    )


def per_workers(stats: pd.DataFrame) -> list[str]:
    """At each worker count: which backend has the highest throughput, and by how much over the next and over serial."""
    out = []
    for w, cells in claimable(stats).groupby("workers"):
        order = ranked(cells)
        best = order[0]
        head = f"At {workers_text(w)}: "
        if len(order) == 1:
            out.append(head + f"only {backend_text(best)} ran cleanly ({throughput_text(best)}).")
            continue
        tied = [r for r in order[1:] if overlaps(best, r)]
        if tied:
            names = ", ".join(backend_text(r) for r in [best, *tied])
            text = head + f"no clear difference between {names} (highest median: {best.backend}, {throughput_text(best)})"
        else:
            nxt = order[1]
            low, _ = ratio_interval(best, nxt)
            text = head + (
                f"{backend_text(best)} is fastest, {throughput_text(best)}: {num(best.throughput_median / nxt.throughput_median)}× "
                f"the next, {backend_text(nxt)} (at least {num(low)}×)"
            )
        if best.backend != "serial":
            text += f"; {versus_serial(best, best.backend)}"
        out.append(text + ".")
    return out


def scaling_stop(cells: pd.DataFrame):
    """The worker count after which throughput no longer improves beyond the intervals: the first count
    whose interval reaches the lower end of every larger count's interval. `cells`: one backend, clean."""
    rows = [r for _, r in cells.sort_values("workers").iterrows()]
    for i, row in enumerate(rows):
        if all(later.throughput_ci_low <= row.throughput_ci_high for later in rows[i + 1 :]):
            return row
    return rows[-1]


def scaling(stats: pd.DataFrame) -> list[str]:
    """Per parallel backend with at least two clean worker counts: where scaling stops."""
    out = []
    for backend, cells in claimable(stats).groupby("backend", sort=False):
        if backend == "serial" or cells.workers.nunique() < 2:
            continue
        stop, most = scaling_stop(cells), cells.workers.max()
        if stop.workers == most:
            out.append(f"{backend}: still improving at {workers_text(most)}, the most run ({throughput_text(stop)}).")
        else:
            top = cells.loc[cells.workers == most].iloc[0]
            where = f"scaling stops at {workers_text(stop.workers)}" if stop.workers != 1 else "no clear gain from more than 1 worker"
            out.append(f"{backend}: {where} ({throughput_text(stop)}); at {workers_text(most)}: {throughput_text(top)}.")
    return out


def memory_ranges(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell, the lowest and highest peak tree PSS over its clean runs (the interval memory claims use)."""
    return (
        clean(runs)
        .groupby(KEYS)
        .peak_tree_pss_bytes.agg(["min", "max"])
        .rename(columns={"min": "peak_tree_pss_bytes_low", "max": "peak_tree_pss_bytes_high"})
        .reset_index()
    )


def least_memory(stats: pd.DataFrame) -> list[str]:
    """At each worker count: which parallel backend needs least memory (peak tree PSS), against the next.
    Intervals: peak_tree_pss_bytes_low/_high (range over clean trials) where present, else the median alone;
    peaks within MEMORY_TOLERANCE of the least are no clear difference either."""
    cells = stats[stats.all_clean.astype(bool) & (stats.n_clean >= MIN_TRIALS) & stats.peak_tree_pss_bytes_median.notna()].copy()
    for side in ("low", "high"):
        column = f"peak_tree_pss_bytes_{side}"
        cells[column] = cells[column].fillna(cells.peak_tree_pss_bytes_median) if column in cells else cells.peak_tree_pss_bytes_median
    out = []
    for w, at in cells.groupby("workers"):
        serial = at[at.backend == "serial"]
        ref = f" (serial, one process: {mib(serial.peak_tree_pss_bytes_median.iloc[0])})" if len(serial) else ""
        order = [r for _, r in at[at.backend != "serial"].sort_values("peak_tree_pss_bytes_median").iterrows()]
        if not order:
            continue
        best, head = order[0], f"At {workers_text(w)}, "
        tied = [
            r
            for r in order[1:]
            if overlaps(best, r, "peak_tree_pss_bytes_low", "peak_tree_pss_bytes_high")
            or r.peak_tree_pss_bytes_median <= best.peak_tree_pss_bytes_median * (1 + MEMORY_TOLERANCE)
        ]
        if len(order) == 1:
            out.append(
                head + f"only {best.backend} ran cleanly among parallel backends: {mib(best.peak_tree_pss_bytes_median)} peak PSS{ref}."
            )
        elif tied:
            names = ", ".join(f"{r.backend} ({mib(r.peak_tree_pss_bytes_median)})" for r in [best, *tied])
            out.append(
                head + f"no clear difference in memory between {names}: their ranges over trials overlap "
                f"or they differ by less than {MEMORY_TOLERANCE:.0%}{ref}."
            )
        else:
            nxt = order[1]
            less = 1 - best.peak_tree_pss_bytes_median / nxt.peak_tree_pss_bytes_median
            out.append(
                head + f"{best.backend} needs least memory: {mib(best.peak_tree_pss_bytes_median)} peak PSS, "
                f"{less:.0%} less than the next, {nxt.backend} ({mib(nxt.peak_tree_pss_bytes_median)}){ref}."
            )
    return out


def excluded(stats: pd.DataFrame) -> list[str]:
    """The cells no claim rests on, and why."""
    out = []
    bad = stats[~stats.all_clean.astype(bool)]
    if len(bad):
        out.append(
            "Left out of every claim (not every run was ok and verified): "
            + "; ".join(f"{r.backend} at {workers_text(r.workers)} ({r.statuses})" for _, r in bad.iterrows())
            + "."
        )
    few = stats[stats.all_clean.astype(bool) & (stats.n_clean < MIN_TRIALS)]
    if len(few):
        out.append(
            f"Not enough repeats to rank (fewer than {MIN_TRIALS} clean trials): "
            + "; ".join(f"{r.backend} at {workers_text(r.workers)}" for _, r in few.iterrows())
            + "."
        )
    return out


def state_in_timed_batches(runs: pd.DataFrame) -> list[str]:
    """Cells whose timed batches include building state (a model load): by design where every task
    builds it (the blog's pattern), a distortion where only the first use did (no warm-up batch)."""
    if "state_builds_timed" not in runs:
        return []
    out = []
    built = clean(runs)[lambda r: r.state_builds_timed.fillna(0) > 0]
    for (backend, workers), cell in built.groupby(["backend", "workers"]):
        builds, tasks = int(cell.state_builds_timed.max()), int((cell.tasks_per_batch * cell.n_batches).max())
        if builds >= tasks:
            out.append(
                f"{backend} at {workers_text(workers)}: every task builds its state (by design), {builds} builds in a run's timed batches."
            )
        else:
            out.append(
                f"{backend} at {workers_text(workers)}: {builds} state builds fell in the timed batches (the first use on each "
                "worker), so its throughput includes them; set warmup_batches to 1 or more to keep them out."
            )
    return out


def cpu_figure(row, serial=None) -> str:
    """'12.0 ms (3.10× serial's)': CPU seconds the whole process tree spent per item in the timed batches."""
    cost = row.get("cpu_per_item_s_median")
    if cost is None or pd.isna(cost):
        return "not measured"
    base = serial.get("cpu_per_item_s_median") if serial is not None else None
    versus = f" ({num(cost / base)}× serial's)" if base and not pd.isna(base) and row.backend != "serial" else ""
    return f"{seconds_text(cost)}{versus}"


def serial_at(stats: pd.DataFrame, workers):
    """Serial's claimable cell at `workers` (the batch size it ran), or None."""
    cells = claimable(stats)
    cells = cells[(cells.backend == "serial") & (cells.workers == workers)]
    return cells.iloc[0] if len(cells) else None


def cpu_cost(stats: pd.DataFrame) -> list[str]:
    """Each backend's best cell: its throughput beside the CPU seconds the whole process tree spent per
    item in the timed batches, against serial's at the same worker count, so that "faster, but burns
    three times the CPU" shows."""
    cells = claimable(stats)
    if "cpu_per_item_s_median" not in cells or cells.cpu_per_item_s_median.isna().all():
        return []
    out = []
    for row in best_per_backend(cells):
        out.append(f"{cell_text(row)}: {throughput_text(row)}, CPU per item {cpu_figure(row, serial_at(stats, row.workers))}.")
    return out


def busy(stats: pd.DataFrame) -> list[str]:
    """The cells with runs made on a busy machine (marked in every claim that names them)."""
    if "n_busy" not in stats:
        return []
    cells = stats[stats.n_busy.fillna(0) > 0]
    if cells.empty:
        return []
    names = "; ".join(f"{r.backend} at {workers_text(r.workers)} ({int(r.n_busy)} of {int(r.n_runs)} runs)" for _, r in cells.iterrows())
    return [
        f"Made on a busy machine, marked{BUSY_MARK} wherever named: {names}. Other work beside a run takes cores and memory "
        "bandwidth from it, so these figures may be lower and noisier than this machine gives; rerun them on a quiet machine."
    ]


def busy_count(runs: pd.DataFrame) -> int | None:
    """How many runs were made on a busy machine; None where no run was judged."""
    if "busy_machine" not in runs or runs.busy_machine.isna().all():
        return None
    return int((runs.busy_machine == True).sum())  # noqa: E712 (a column of True, False and missing)


def busy_warning(runs: pd.DataFrame) -> str | None:
    """The report's warning when runs were made on a busy machine."""
    n = busy_count(runs)
    if not n:
        return None
    return (
        f"{n} of {len(runs)} runs were made on a busy machine ({BUSY_RULE}); the cells they belong to are marked{BUSY_MARK} "
        "in the findings. Their figures may be lower and noisier than this machine gives."
    )


def drift(sentinels: pd.DataFrame, runs: pd.DataFrame | None = None) -> tuple[str, bool]:
    """What the sentinel (the same serial run once in every round) says of the machine's drift over the
    sweep, and whether it passes DRIFT_WARN; `runs` made outside the sentinels' span (a later partial
    rerun) are said to be uncovered. Paired ratios compare runs of the same round, so drift between
    rounds cancels in them; drift within a round does not."""
    ok = sentinels[is_clean(sentinels)].dropna(subset=["throughput"]) if len(sentinels) else sentinels
    if len(ok) < 2:
        why = "the config has no sentinel (set sentinel: {} for one)" if sentinels.empty else "the sentinel did not run cleanly twice"
        return f"Drift not measured: {why}. The sentinel is the same small serial run once in every round.", False
    series = " → ".join(f"{num(r.throughput)}" for _, r in ok.iterrows())
    spread = ok.throughput.max() / ok.throughput.min() - 1
    busy_note = " (some sentinels ran on a busy machine)" if busy_count(ok) else ""
    text = (
        f"The sentinel, the same small serial matmul run once in each of {len(ok)} rounds, ran at {series} {UNIT}: "
        f"its fastest and slowest differ by {spread:.1%}{busy_note}."
    )
    if runs is not None and len(runs) and "started_at" in runs:
        # A sentinel runs somewhere in each round: a run more than a round's length away from all of them came later.
        pad = ok.started_at.diff().max()
        outside = int(((runs.started_at < ok.started_at.min() - pad) | (runs.finished_at > ok.finished_at.max() + pad)).sum())
        if outside:
            text += (
                f" {outside} of {len(runs)} runs ran more than a round away from every sentinel (a later rerun): "
                "the drift figure does not cover them."
            )
    if spread > DRIFT_WARN:
        why = (
            "the machine's speed changed during the sweep; ratios within a round cancel the change between rounds, "
            "but not the change within one"
        )
        return f"{text} That is more than {DRIFT_WARN:.0%}: {why}.", True
    return f"{text} Within {DRIFT_WARN:.0%}: no sign that the machine's speed changed during the sweep.", False


def findings(stats: pd.DataFrame, runs: pd.DataFrame | None = None) -> dict:
    """All findings of one workload's stats (and runs), by kind."""
    return {
        "advice": recommendation(stats),
        "per_workers": per_workers(stats),
        "scaling": scaling(stats),
        "cpu": cpu_cost(stats),
        "memory": least_memory(stats),
        "state": state_in_timed_batches(runs) if runs is not None else [],
        "busy": busy(stats),
        "excluded": excluded(stats),
    }


# ---------------------------------------------------------------- the summary: one row per kind of work

# Cores one process kept busy: above BUSY_MANY it ran on several cores by itself (BLAS threads);
# below BUSY_WAITS it mostly waited; threads above BUSY_THREADS ran Python in parallel (GIL released).
BUSY_MANY, BUSY_WAITS, BUSY_THREADS = 1.5, 0.5, 1.25


def kind(serial_busy, threads_busy) -> str:
    """What kind of parallel work this is, from the cores serial and threads (at 2 or more workers) kept busy."""
    if pd.isna(serial_busy):
        return "not measured (serial did not run cleanly)"
    if serial_busy >= BUSY_MANY:
        return "runs on several cores by itself (native threads, e.g. BLAS)"
    if serial_busy < BUSY_WAITS:
        return "mostly waits (I/O)"
    if pd.isna(threads_busy):
        return "one core; GIL not measured (threads not run)"
    if threads_busy >= BUSY_THREADS:
        return "one core; threads use several (the GIL is released)"
    return "one core; threads stay on one (the GIL is held, or per-task overhead)"


def summary(stats: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per workload: what characterises it (measured), the recommended cell with its speedup
    interval over serial and its memory, and the runner-up where the two are not clearly different."""
    rows = []
    for workload, s in stats.groupby("workload", sort=False):
        serial, threads = s[s.backend == "serial"], s[(s.backend == "threads") & (s.workers >= 2)]
        choice = choose(s)
        row = {
            "workload": workload,
            "items per task": int(s.items_per_task.iloc[0]) if "items_per_task" in s else 1,
            "shared input": size_text(serial.data_bytes_median.median()) if "data_bytes_median" in s and len(serial) else "–",
            "serial time per item": seconds_text(1 / serial.throughput_median.median()) if len(serial) else "–",
            "state build (serial)": seconds_text(serial.setup_s_median.median()) if len(serial) else "–",
            "kind": kind(
                serial.driver_cores_busy_median.median() if len(serial) and "driver_cores_busy_median" in s else float("nan"),
                threads.driver_cores_busy_median.max() if len(threads) and "driver_cores_busy_median" in s else float("nan"),
            ),
        }
        if choice is None:
            row.update(
                {
                    "recommended": nothing_to_claim(s),
                    "speedup over serial": "–",
                    "CPU per item": "–",
                    "peak memory": "–",
                    "not clearly different": "–",
                }
            )
        else:
            best = choice.best
            speedup = (
                "1 (is serial)"
                if best.backend == "serial"
                else f"{num(best.speedup_vs_serial)}× {interval_text(best.speedup_ci_low, best.speedup_ci_high, '×')}"
            )
            row.update(
                {
                    "recommended": cell_text(best),
                    "speedup over serial": speedup,
                    "CPU per item": cpu_figure(best, serial_at(s, best.workers)),
                    "peak memory": mib(best.peak_tree_pss_bytes_median),
                    "not clearly different": ", ".join(cell_text(r) for r in choice.tied) or "–",
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)
