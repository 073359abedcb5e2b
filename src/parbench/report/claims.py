"""The report's claims: sentences and summary rows generated from the stats table (and, for a paired
comparison of two cells, the runs table), claiming only what parbench.decide's verdicts support, in its
four words: faster, slower, equivalent, cannot tell (docs/method.md). Pure functions of the tables,
tested on hand-made ones and on synthetic sweeps (tests/test_method.py)."""

import math

import pandas as pd

from parbench import decide
from parbench.report.decisions import (
    DRIFT_WARN,
    GIL_HELD,
    GIL_NOT_MEASURED,
    GIL_RELEASED,
    MEMORY_TOLERANCE,
    MIN_TRIALS,
    NATIVE_THREADS,
    NOT_MEASURED,
    ONE_GIL,
    WAITS,
    Choice,
    best_per_backend,
    busy_count,
    choose,
    claimable,
    interpreter_cells,
    kind_of,
    margin_of,
    overlaps,
    ranked,
    scaling_stop,
    serial_at,
    word_of,
)
from parbench.stats import BUSY_OTHER_CORES, REFERENCE, clean, is_clean
from parbench.text import UNIT, interval_text, mib, num, seconds_text, size_text, workers_text

# The busy-machine rule, said once for the report and docs/measurement.md (the threshold is stats.BUSY_OTHER_CORES).
BUSY_RULE = (
    f"a run was made on a busy machine when the rest of the machine used more than {BUSY_OTHER_CORES:g} of a core on average "
    "beside its timed batches: the machine's non-idle CPU time in /proc/stat (steal included: time other guests took) during "
    "them, minus the CPU time of the run's own process tree (from its CPU cgroup: runs without one, and runs on an external "
    "cluster, are not judged), over their wall time. /proc/stat counts in 10 ms ticks, so a run whose timed batches are too "
    "short for the ticks to tell other work from none (tick noise over a quarter of the threshold) is not judged either"
)
BUSY_MARK = " [busy machine]"


def busy_mark(row) -> str:
    """' [busy machine]' after a cell with a run made on a busy machine (stats' n_busy)."""
    n = row.get("n_busy") if hasattr(row, "get") else None
    return BUSY_MARK if n is not None and not pd.isna(n) and n > 0 else ""


def backend_text(row) -> str:
    return f"{row.backend}{busy_mark(row)}"


def cell_text(row) -> str:
    """'ray with 2 workers'; serial has no workers (its `workers` only sets the batch size)."""
    return (REFERENCE if row.backend == REFERENCE else f"{row.backend} with {workers_text(row.workers)}") + busy_mark(row)


def throughput_text(row) -> str:
    return f"{num(row.throughput_median)} {UNIT} {interval_text(row.throughput_ci_low, row.throughput_ci_high)}"


def ratio_text(estimate, low, high, rounds=None) -> str:
    """'1.20× [1.10–1.31×] over 5 rounds'."""
    over = f" over {int(rounds)} rounds" if rounds is not None and not pd.isna(rounds) and rounds > 0 else ""
    return f"{num(estimate)}× {interval_text(low, high, '×')}{over}"


def paired_text(r: decide.Ratio) -> str:
    """'1.98× [1.96–2.01×] paired over 5 rounds': a ratio of two cells' runs of the same rounds."""
    return f"{_times(r)} paired over {r.n} rounds"


def speedup_text(row) -> str:
    """'1.20× serial's throughput [1.10–1.31×] over 5 rounds' (90 % interval of the paired ratio)."""
    rounds = row.get("n_rounds") if hasattr(row, "get") else None
    return f"{num(row.speedup_vs_serial)}× serial's throughput {interval_text(row.speedup_ci_low, row.speedup_ci_high, '×')}" + (
        f" over {int(rounds)} rounds" if rounds is not None and not pd.isna(rounds) and rounds > 0 else ""
    )


def rounds_text(needed) -> str:
    """What more rounds would do for a `cannot tell`."""
    if needed is None or pd.isna(needed):
        return "no affordable number of rounds would decide it at this spread"
    return f"about {int(needed)} rounds would decide it"


def versus_serial(row, name: str, margin: float | None = None) -> str:
    """How a non-serial cell stands against serial at the same worker count: its verdict and paired ratio."""
    if pd.isna(row.get("speedup_vs_serial")) or pd.isna(row.get("speedup_ci_low")):
        return f"serial did not run cleanly at {workers_text(row.workers)}, so {name} has no comparison with it"
    m = margin if margin is not None else (row.get("margin") if not pd.isna(row.get("margin", math.nan)) else decide.DEFAULT_MARGIN)
    word, speedup = word_of(row), speedup_text(row)
    if word in (decide.FASTER, decide.SLOWER):
        return f"{name} is {word} than serial: {speedup}, beyond the {m:.0%} margin"
    if word == decide.EQUIVALENT:
        return f"{name} is equivalent to serial: {speedup}, within ±{m:.0%}"
    return f"cannot tell {name} from serial: {speedup}; {rounds_text(row.get('rounds_needed'))}"


def short_text(row) -> str:
    """'ray (2 workers) 105 [36.3–127]': a cell in a list."""
    name = row.backend if row.backend == REFERENCE else f"{row.backend} ({workers_text(row.workers)})"
    return f"{name}{busy_mark(row)} {num(row.throughput_median)} {interval_text(row.throughput_ci_low, row.throughput_ci_high)}"


def cannot_tell_from(choice: Choice) -> list:
    """The cells the recommended one cannot be told from: a parallel choice's runner-up where their paired
    ratio is not `faster`; serial's, every parallel cell that cannot be told from serial."""
    if choice.best.backend == REFERENCE:
        return [r for r in choice.others if word_of(r) == decide.CANNOT_TELL]
    return [choice.runner_up] if choice.runner_up is not None and choice.runner_up_word != decide.FASTER else []


def counts_text(rows: list) -> str:
    """'2 equivalent, 1 slower, 3 cannot tell': the verdicts of some cells against serial."""
    words = [word_of(r) for r in rows]
    return ", ".join(f"{words.count(w)} {w}" for w in (decide.FASTER, decide.EQUIVALENT, decide.SLOWER, decide.CANNOT_TELL) if w in words)


def recommendation(stats: pd.DataFrame, runs: pd.DataFrame | None = None) -> list[str]:
    """The first-screen answer for one workload: the backend and worker count, then how sure that is, in
    decide's words, with how many comparisons it was chosen from and the margin."""
    choice = choose(stats, runs)
    if choice is None:
        return [nothing_to_claim(stats)]
    best, m = choice.best, f"{choice.margin:.0%}"
    if best.backend != REFERENCE:
        # A runner-up it cannot be told from is named in the answer itself: two sweeps may rank them either way.
        tied = cannot_tell_from(choice)
        names = " or ".join(cell_text(r) for r in [best, *tied]) + (" (cannot be told apart; the first ran faster here)" if tied else "")
        out = [
            f"Use {names}: {throughput_text(best)}.",
            f"How sure: faster than serial at the same batch size, {speedup_text(best)}, beyond the {m} margin; "
            f"chosen from {choice.family} comparisons with serial (Holm's correction over them).",
        ]
        runner = choice.runner_up
        if runner is None:
            out.append("No other cell is faster than serial.")
        elif choice.runner_up_word == decide.FASTER:
            r = choice.versus_runner_up
            out.append(
                f"Faster than the runner-up, {cell_text(runner)} (also faster than serial): {paired_text(r)}, beyond the {m} margin."
            )
        else:
            r = choice.versus_runner_up
            how = (
                f"{paired_text(r)}; {rounds_text(decide.rounds_needed(r, choice.margin))}"
                if r is not None
                else "no paired comparison of their runs is at hand"
            )
            out.append(f"Cannot tell it from the runner-up, {cell_text(runner)}, also faster than serial: {how}.")
        return out
    out = [f"Use {cell_text(best)} (in the driver, no worker processes): {throughput_text(best)}."]
    judged = [r for _, r in stats[stats.backend != REFERENCE].iterrows()]
    if not judged:
        out.append("How sure: no parallel backend ran.")
        return out
    out.append(
        f"How sure: no parallel cell is faster than serial beyond the {m} margin, of {choice.family} compared "
        f"(Holm's correction over them): {counts_text(judged)}."
    )
    unsure = [r for r in choice.others if word_of(r) == decide.CANNOT_TELL]
    if unsure:
        top = max(unsure, key=lambda r: r.speedup_vs_serial if not pd.isna(r.speedup_vs_serial) else -math.inf)
        out.append(f"The closest: {versus_serial(top, cell_text(top), choice.margin)}.")
    elif choice.others and all(word_of(r) == decide.EQUIVALENT for r in choice.others):
        out.append(f"Every parallel cell is equivalent to serial within ±{m}: serial is the simpler choice.")
    return out


def nothing_to_claim(stats: pd.DataFrame) -> str:
    """Why no cell can carry a claim: none ran cleanly, too few clean rounds, or serial has no claimable cell."""
    clean = stats[stats.all_clean.astype(bool)]
    if clean.empty:
        return "No cell ran cleanly: nothing to recommend."
    if (clean.n_clean >= MIN_TRIALS).any() and not claimable(stats).backend.eq(REFERENCE).any():
        return "Serial did not run cleanly in enough rounds: no cell can be compared with it, so nothing is recommended."
    return (
        f"Not enough repeats to rank: every cell has fewer than {MIN_TRIALS} clean rounds, and an interval from one "
        "process cannot show how much another process would differ. Run with trials: 2 or more."
    )


def per_workers(stats: pd.DataFrame) -> list[str]:
    """At each worker count: every parallel backend's verdict against serial, faster first, with its paired ratio."""
    out = []
    margin = margin_of(stats)
    for w, cells in claimable(stats).groupby("workers"):
        order = ranked(cells[cells.backend != REFERENCE])
        head = f"At {workers_text(w)}"
        if not order:
            continue
        if pd.isna(order[0].get("speedup_vs_serial")) and not (cells.backend == REFERENCE).any():
            out.append(f"{head}: serial did not run cleanly, so no backend has a comparison with it.")
            continue
        parts = []
        for word in (decide.FASTER, decide.EQUIVALENT, decide.CANNOT_TELL, decide.SLOWER):
            named = [r for r in order if word_of(r) == word]
            if named:
                label = {decide.FASTER: "faster", decide.SLOWER: "slower", decide.EQUIVALENT: "equivalent"}.get(word, "cannot tell")
                parts.append(
                    f"{label}: "
                    + ", ".join(f"{backend_text(r)} {ratio_text(r.speedup_vs_serial, r.speedup_ci_low, r.speedup_ci_high)}" for r in named)
                )
        out.append(f"{head}, against serial (margin {margin:.0%}): " + "; ".join(parts) + ".")
    return out


def scaling(stats: pd.DataFrame) -> list[str]:
    """Per parallel backend with at least two clean worker counts: where more workers stop being faster."""
    out = []
    margin = margin_of(stats)
    for backend, cells in claimable(stats).groupby("backend", sort=False):
        if backend == REFERENCE or cells.workers.nunique() < 2:
            continue
        (stop, word, r), most = scaling_stop(cells, margin), cells.workers.max()
        if word is None:
            out.append(f"{backend}: faster at every step up to {workers_text(most)}, the most run ({throughput_text(stop)}).")
            continue
        nxt = cells[cells.workers > stop.workers].sort_values("workers").iloc[0]
        top = cells.loc[cells.workers == most].iloc[0]
        said = word if word == decide.SLOWER else f"not faster: {word}"
        how = f"{workers_text(nxt.workers)} is {said}, {ratio_text(r.estimate, *r.interval())}"
        out.append(
            f"{backend}: scaling stops at {workers_text(stop.workers)} ({throughput_text(stop)}): {how}; "
            f"at {workers_text(most)}: {throughput_text(top)}."
        )
    return out


def least_memory(stats: pd.DataFrame) -> list[str]:
    """At each worker count: which parallel backend needs least memory (peak tree PSS), against the next.
    Intervals: stats' 90 % interval over runs (peak_tree_pss_ci_low/_high) where present, else
    peak_tree_pss_bytes_low/_high (range over clean runs, memory_ranges), else the median alone; peaks
    within MEMORY_TOLERANCE of the least are no clear difference either."""
    cells = stats[stats.all_clean.astype(bool) & (stats.n_clean >= MIN_TRIALS) & stats.peak_tree_pss_bytes_median.notna()].copy()
    for side in ("low", "high"):
        column, interval = f"peak_tree_pss_bytes_{side}", f"peak_tree_pss_ci_{side}"
        found = cells[interval] if interval in cells else pd.Series(float("nan"), index=cells.index)
        found = found.fillna(cells[column]) if column in cells else found
        cells[column] = found.fillna(cells.peak_tree_pss_bytes_median)
    out = []
    for w, at in cells.groupby("workers"):
        serial = at[at.backend == REFERENCE]
        ref = f" (serial, one process: {mib(serial.peak_tree_pss_bytes_median.iloc[0])})" if len(serial) else ""
        order = [r for _, r in at[at.backend != REFERENCE].sort_values("peak_tree_pss_bytes_median").iterrows()]
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


def cause_text(row) -> str:
    """': <why its runs are unclean>' where the stats row has it."""
    cause = getattr(row, "causes", None)
    return f": {cause}" if isinstance(cause, str) and cause else ""


def excluded(stats: pd.DataFrame) -> list[str]:
    """The cells no claim rests on, and why."""
    out = []
    bad = stats[~stats.all_clean.astype(bool)]
    if len(bad):
        out.append(
            "Left out of every claim (not every run was ok and verified): "
            + "; ".join(f"{r.backend} at {workers_text(r.workers)} ({r.statuses}{cause_text(r)})" for _, r in bad.iterrows())
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
    versus = f" ({num(cost / base)}× serial's)" if base and not pd.isna(base) and row.backend != REFERENCE else ""
    return f"{seconds_text(cost)}{versus}"


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


def busy_warning(runs: pd.DataFrame) -> str | None:
    """The report's warning when runs were made on a busy machine."""
    n = busy_count(runs)
    if not n:
        return None
    return (
        f"{n} of {len(runs)} runs were made on a busy machine ({BUSY_RULE}); the cells they belong to are marked{BUSY_MARK} "
        "in the findings. Their figures may be lower and noisier than this machine gives."
    )


def gil_warning(runs: pd.DataFrame) -> str | None:
    """The report's warning when a free-threaded build ran with its GIL on: an extension imported by the run
    that does not declare itself free-threading safe turns it on for the whole process (spaCy's thinc does)."""
    if not {"python_build", "gil_enabled"} <= set(runs):
        return None
    on = runs[(runs.python_build == "free-threaded") & (runs.gil_enabled == True)]  # noqa: E712 (True, False or missing)
    if on.empty:
        return None
    where = ", ".join(f"{w} on {b}" for w, b in on[["workload", "backend"]].drop_duplicates().itertuples(index=False))
    return (
        f"The GIL was ON in {len(on)} runs on a free-threaded build ({where}): an extension module they imported turned it "
        "back on, so their threads did not run Python in parallel. They measure a GIL interpreter, not free threading."
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
        "advice": recommendation(stats, runs),
        "per_workers": per_workers(stats),
        "scaling": scaling(stats),
        "cpu": cpu_cost(stats),
        "memory": least_memory(stats),
        "state": state_in_timed_batches(runs) if runs is not None else [],
        "busy": busy(stats),
        "excluded": excluded(stats),
    }


# ---------------------------------------------------------------- the summary: one row per kind of work

KIND_WORDS = {
    NOT_MEASURED: "not measured (serial did not run cleanly)",
    NATIVE_THREADS: "runs on several cores by itself (native threads, e.g. BLAS)",
    WAITS: "mostly waits (I/O)",
    GIL_NOT_MEASURED: "one core; GIL not measured (threads not run)",
    GIL_RELEASED: "one core; threads use several (the GIL is released)",
    GIL_HELD: "one core; threads stay on one (the GIL is held, or per-task overhead)",
}


def kind(serial_busy, threads_busy) -> str:
    """decisions.kind_of in words."""
    return KIND_WORDS[kind_of(serial_busy, threads_busy)]


def summary(stats: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per workload: what characterises it (measured), the recommended cell with its speedup
    interval and verdict over serial and its memory, and the runner-up where the two cannot be told apart."""
    rows = []
    for workload, s in stats.groupby("workload", sort=False):
        serial, threads = s[s.backend == REFERENCE], s[s.backend.isin(ONE_GIL) & (s.workers >= 2)]
        choice = choose(s, runs[runs.workload == workload] if runs is not None and "workload" in runs else None)
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
                    "cannot tell from": "–",
                }
            )
        else:
            best = choice.best
            speedup = (
                "1 (is serial)"
                if best.backend == REFERENCE
                else f"{word_of(best)}: {num(best.speedup_vs_serial)}× {interval_text(best.speedup_ci_low, best.speedup_ci_high, '×')}"
            )
            row.update(
                {
                    "recommended": cell_text(best),
                    "speedup over serial": speedup,
                    "CPU per item": cpu_figure(best, serial_at(s, best.workers)),
                    "peak memory": mib(best.peak_tree_pss_bytes_median),
                    "cannot tell from": ", ".join(cell_text(r) for r in cannot_tell_from(choice)) or "–",
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def noise_floor(aa: pd.DataFrame) -> list[str]:
    """The first screen's A/A lines, one per workload: the reference's twin over the reference, paired within
    rounds (the truth is 1), its verdict, the noise it shows and the smallest difference the sweep can see."""
    out = []
    for _, r in aa.iterrows():
        if not r.n_rounds or pd.isna(r.estimate):
            out.append(f"{r.workload}: the A/A twin has no round paired with its reference: this sweep's noise is not known.")
            continue
        ratio = ratio_text(r.estimate, r.ci_low, r.ci_high, r.n_rounds)
        noise = f"run-to-run noise {r.noise_sd:.1%} (sd of the per-round log ratio)" if r.noise_sd == r.noise_sd else "no spread yet"
        d = r.detectable_difference
        see = (
            "no difference can be decided at these rounds"
            if not d == d or d >= 10
            else f"differences smaller than {d:.0%} cannot be told from noise at these rounds"
            if d < 1
            else f"only a ratio beyond {num(1 + d)}× could be told from noise at these rounds"  # a share past 100 % reads badly
        )
        called = f"called {r.verdict}" + (" — a false verdict: treat this workload's verdicts as doubtful" if r.false_verdict else "")
        out.append(f"{r.workload}: {REFERENCE} at {workers_text(r.workers)} against itself, {ratio}, {called}; {noise}; {see}.")
    return out


def noise_warning(aa: pd.DataFrame) -> str | None:
    """The report's warning when the decision rule called an A/A twin different from its reference."""
    false = aa[aa.false_verdict.astype(bool)] if len(aa) else aa
    if not len(false):
        return None
    names = ", ".join(false.workload)
    return (
        f"The A/A twin (a second {REFERENCE} run in each round) was called different from its reference in {names}: "
        "on those workloads this sweep's noise exceeds what its intervals assume, and their verdicts are doubtful."
    )


# ---------------------------------------------------------------------------------------------
# GIL or free-threaded: a sweep whose variants run on different interpreters


def interpreters_of(runs: pd.DataFrame, order: list[str] | None = None) -> dict[str, str]:
    """Each variant's interpreter, 'Python 3.13.5 free-threaded' (most common among its runs), in `order` (the
    config's: the first is what the others are compared with); {} when the variants do not differ in interpreter."""
    if not {"python", "python_build", "variant"} <= set(runs) or runs.python.isna().all():
        return {}
    label = "Python " + runs.python.astype(str) + runs.python_build.map(lambda b: " free-threaded" if b == "free-threaded" else "")
    named = label[runs.python.notna()].groupby(runs.variant[runs.python.notna()]).agg(lambda x: x.mode().iat[0])
    order = [*(order or []), *dict.fromkeys(runs.variant)]
    named = {v: named[v] for v in dict.fromkeys(order) if v in named}
    return named if len(set(named.values())) > 1 else {}


def _memory_text(row) -> str:
    exact = row.get("exact_peak_bytes_median")
    if exact is not None and not pd.isna(exact):
        return f"{size_text(exact)} exact peak"
    pss = row.get("peak_tree_pss_bytes_median")
    return f"{size_text(pss)} tree PSS" if pss is not None and not pd.isna(pss) else "–"


def interpreters(stats: pd.DataFrame, runs: pd.DataFrame, order: list[str] | None = None, margin: float | None = None) -> list[dict]:
    """Per workload, each interpreter's cells side by side (decisions.interpreter_cells: the fastest worker count of
    each backend, against serial on the same interpreter and on the first variant's), with one sentence per other
    interpreter. [] unless the variants differ in interpreter."""
    names = interpreters_of(runs, order)
    if not names:
        return []
    first = next(iter(names))
    m = margin if margin is not None else margin_of(stats)
    out = []
    for workload, sides in interpreter_cells(stats, runs, list(names)).items():
        rows, missing = [], []
        for side in sides:
            label = names[side.variant]
            missing += [f"{backend}: {_not_run_text(cells, label)}" for backend, cells in side.missing.items()]
            for row, versus_base in side.cells:
                rows.append(
                    {
                        "interpreter": label,
                        "backend": row.backend if row.backend == REFERENCE else f"{row.backend} ({workers_text(row.workers)})",
                        f"{UNIT} [90 % interval]": short_throughput(row),
                        "× serial, same interpreter": speedup_cell(row) if row.backend != REFERENCE else "–",
                        f"× serial on {names[first]}": _times(versus_base) if versus_base else "–",
                        "memory": _memory_text(row),
                    }
                )
        base = sides[0].serial
        sentences = [_interpreter_sentence(side, names[side.variant], names[first], base, m) for side in sides[1:]]
        out.append({"name": workload, "rows": pd.DataFrame(rows), "sentences": [s for s in sentences if s], "missing": missing})
    return out


def short_throughput(row) -> str:
    return f"{num(row.throughput_median)} {interval_text(row.throughput_ci_low, row.throughput_ci_high)}"


def speedup_cell(row) -> str:
    if pd.isna(row.get("speedup_vs_serial")):
        return "–"
    return f"{num(row.speedup_vs_serial)}× {interval_text(row.speedup_ci_low, row.speedup_ci_high, '×')} ({word_of(row)})"


def verdict_words(word: str, margin: float) -> str:
    """'slower, beyond the 5 % margin', 'equivalent, within ±5 %', 'cannot tell'."""
    if word in (decide.FASTER, decide.SLOWER):
        return f"{word}, beyond the {margin:.0%} margin"
    return f"{word}, within ±{margin:.0%}" if word == decide.EQUIVALENT else word


def _not_run_text(cells: pd.DataFrame, label: str) -> str:
    """Why a backend has no clean cell on this interpreter: 'not available on Python 3.13.5 free-threaded (ray is not …)'."""
    row = cells.iloc[0]
    cause = row.get("causes") if isinstance(row.get("causes"), str) else ""
    statuses = str(row.get("statuses") or "")
    if statuses.startswith("skipped"):
        return f"not available on {label} ({cause})" if cause else f"not available on {label}"
    return f"left out on {label} ({statuses}{': ' + cause if cause else ''})"


def _interpreter_sentence(side, label, base_label, base, margin) -> str | None:
    """'Python 3.13.5 free-threaded: serial gives 0.79× [0.76–0.83×] the items/s of serial on Python 3.13.5,
    paired over 5 rounds (slower, beyond the 5% margin); its fastest parallel cell, threads at 2 workers, gives
    1.54× […] its own serial's (faster) and 1.22× […] serial's on Python 3.13.5.'"""
    if side.serial is None or base is None:
        return f"On {label} serial did not run cleanly, so nothing on it is compared with {base_label}."
    if (tax := side.tax) is None:
        return None
    words = f"{label}: serial gives {_times(tax)} the {UNIT} of serial on {base_label}, paired over {tax.n} rounds"
    if tax.n >= 2:
        words += f" ({verdict_words(decide.verdict(tax, margin), margin)})"
    if (best := side.fastest) is not None:
        words += f"; its fastest parallel cell, {best.backend} at {workers_text(best.workers)}, gives "
        interval = interval_text(best.speedup_ci_low, best.speedup_ci_high, "×")
        words += f"{num(best.speedup_vs_serial)}× {interval} its own serial's ({word_of(best)})"
        if side.fastest_over_base is not None:
            words += f" and {_times(side.fastest_over_base)} serial's on {base_label}"
    return words + "."


def _times(r: decide.Ratio) -> str:
    return f"{num(r.estimate)}× {interval_text(*r.interval(), '×')}"
