"""results/report.html: one self-contained page (figures embedded as data URIs) from the tables.

Sections, one function each: findings (sentences generated from stats.csv, claiming only what
the 95 % intervals support), the blog replicated, figures, cells that did not run cleanly, and
method and environment. The finding functions are pure functions of the stats table.
"""

import base64
import html
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from parbench import compare

MIB = 1024**2
KEYS = ["workload", "backend", "workers"]
SECTIONS = {
    "findings": "Findings",
    "blog": "The blog, replicated",
    "figures": "Figures",
    "unclean": "Cells that did not run cleanly",
    "method": "Method and environment",
}
FIGURES = {
    "throughput": "Tasks per second in the timed batches (steady state), median with its 95 % bootstrap interval (band); "
    "both axes logarithmic. Dashed: ideal linear scaling up to the physical cores.",
    "speedup": "Throughput over serial's at the same worker count (the same batches, serial using every core for BLAS), "
    "with its 95 % interval. Above 1: faster than serial.",
    "memory": "Peak PSS summed over the driver and every worker process (median of clean trials, MiB). "
    "Hatched: growth of shared memory (Shmem), e.g. Ray's object store or shared arrays.",
    "time_breakdown": "Where a run's time goes (median of clean trials): start-up, setup, untimed warm-up, "
    "the timed batches that throughput is computed from, and teardown.",
}
# The blog's published figures: 4 workers on 8 cores; memory by tracemalloc in the parent only.
BLOG = [
    {"workload": "matmul", "measure": "time", "what": "seconds per trial", "multiprocessing": 7.31, "ray": 0.95},
    {"workload": "matmul", "measure": "memory", "what": "peak memory, MB", "multiprocessing": 1770.71, "ray": 44.38},
    {"workload": "ner", "measure": "time", "what": "seconds, 10 batches of 4 texts", "multiprocessing": 38.17, "ray": 8.73},
    {"workload": "ner", "measure": "memory", "what": "peak memory, MB", "multiprocessing": 143.63, "ray": 144.62},
]
BLOG_WORKERS = 4
NAIVE, EXPERT = "multiprocessing", "multiprocessing-shared"
# Memory peaks closer than this share are no clear difference, whatever their ranges (one trial has no range).
MEMORY_TOLERANCE = 0.05

CSS = (Path(__file__).parent / "templates" / "report.css").read_text()


# ---------------------------------------------------------------- formatting


def esc(value) -> str:
    return html.escape(str(value))


def num(v) -> str:
    """A number to about three significant digits, without exponent for everyday sizes."""
    if v is None or not np.isfinite(v):
        return "–"
    a = abs(v)
    return f"{v:,.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:#.2g}"


def workers_text(n) -> str:
    return f"{int(n)} worker" if int(n) == 1 else f"{int(n)} workers"


def cell_text(row) -> str:
    """'ray with 2 workers'; serial has no workers (its `workers` only sets the batch size)."""
    return "serial" if row.backend == "serial" else f"{row.backend} with {workers_text(row.workers)}"


def interval_text(low, high, unit="") -> str:
    """A 95 % interval, in brackets: the report says once what brackets mean."""
    return f"[{num(low)}–{num(high)}{unit}]"


def throughput_text(row) -> str:
    return f"{num(row.throughput_median)} tasks/s {interval_text(row.throughput_ci_low, row.throughput_ci_high)}"


def mib(v) -> str:
    return f"{num(v / MIB)} MiB"


# ---------------------------------------------------------------- findings: pure functions of stats


def claimable(stats: pd.DataFrame) -> pd.DataFrame:
    """Cells a claim may rest on: every run ok and verified, with a throughput interval."""
    ok = stats.all_clean.astype(bool) & stats[["throughput_median", "throughput_ci_low", "throughput_ci_high"]].notna().all(axis=1)
    return stats[ok]


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
    """'2.1× (at least 1.3×) the next backend, ray with 2 workers: 40 tasks/s [35–44]'."""
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
    return f"{name} {num(row.throughput_median)} {interval_text(row.throughput_ci_low, row.throughput_ci_high)}"


def recommendation(stats: pd.DataFrame) -> list[str]:
    """The first-screen answer for one workload: the best backend and worker count, then how sure
    that is. A parallel backend is recommended only if its speedup interval lies above 1;
    otherwise serial is (the simplest thing that is not clearly slower)."""
    cells = claimable(stats)
    if cells.empty:
        return ["No cell ran cleanly: nothing to recommend."]
    order = best_per_backend(cells)
    serial = [r for r in order if r.backend == "serial"]
    if order[0].backend != "serial" and serial and not order[0].speedup_ci_low > 1:
        order = serial + [r for r in order if r.backend != "serial"]
    best, rest = order[0], order[1:]
    how = " (in the driver, no worker processes; BLAS uses every core)" if best.backend == "serial" else ""
    out = [f"Use {cell_text(best)}{how}: {throughput_text(best)}."]
    tied = [r for r in rest if overlaps(best, r) and (best.backend == "serial" or r.backend != "serial")]
    clear = [r for r in rest if not overlaps(best, r) and (best.backend == "serial" or r.backend != "serial")]
    if tied:
        out.append(
            f"How sure: not clearly faster than {', '.join(map(short_text, tied))} tasks/s: the intervals overlap, "
            "so these data cannot rank them."
        )
        if clear:
            out.append(f"Clearly faster than the rest, the best of which is {short_text(clear[0])} tasks/s.")
    elif clear:
        out.append(f"How sure: clearly ahead, at {ahead_text(best, clear[0])}.")
    else:
        out.append("How sure: it is the only backend that ran cleanly.")
    if best.backend != "serial":
        if serial:
            out.append(f"Against serial at the same batch size: {versus_serial(best, best.backend)}.")
    else:
        parallel = [r for r in rest if r.backend != "serial"]
        if parallel:
            out.append(
                f"No parallel backend is clearly faster; the best, {cell_text(parallel[0])}: "
                f"{versus_serial(parallel[0], parallel[0].backend)}."
            )
    return out


def per_workers(stats: pd.DataFrame) -> list[str]:
    """At each worker count: which backend has the highest throughput, and by how much over the next and over serial."""
    out = []
    for w, cells in claimable(stats).groupby("workers"):
        order = ranked(cells)
        best = order[0]
        head = f"At {workers_text(w)}: "
        if len(order) == 1:
            out.append(head + f"only {best.backend} ran cleanly ({throughput_text(best)}).")
            continue
        tied = [r for r in order[1:] if overlaps(best, r)]
        if tied:
            names = ", ".join(r.backend for r in [best, *tied])
            text = head + f"no clear difference between {names} (highest median: {best.backend}, {throughput_text(best)})"
        else:
            nxt = order[1]
            low, _ = ratio_interval(best, nxt)
            text = head + (
                f"{best.backend} is fastest, {throughput_text(best)}: {num(best.throughput_median / nxt.throughput_median)}× "
                f"the next, {nxt.backend} (at least {num(low)}×)"
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
    clean = runs[(runs.status == "ok") & runs.verified.astype(bool)]
    return (
        clean.groupby(KEYS)
        .peak_tree_pss_bytes.agg(["min", "max"])
        .rename(columns={"min": "peak_tree_pss_bytes_low", "max": "peak_tree_pss_bytes_high"})
        .reset_index()
    )


def least_memory(stats: pd.DataFrame) -> list[str]:
    """At each worker count: which parallel backend needs least memory (peak tree PSS), against the next.
    Intervals: peak_tree_pss_bytes_low/_high (range over clean trials) where present, else the median alone;
    peaks within MEMORY_TOLERANCE of the least are no clear difference either."""
    cells = stats[stats.all_clean.astype(bool) & stats.peak_tree_pss_bytes_median.notna()].copy()
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
    bad = stats[~stats.all_clean.astype(bool)]
    if bad.empty:
        return []
    return [
        "Left out of every claim (not every run was ok and verified): "
        + "; ".join(f"{r.backend} at {workers_text(r.workers)} ({r.statuses})" for _, r in bad.iterrows())
        + "."
    ]


def findings(stats: pd.DataFrame) -> dict:
    """All findings of one workload's stats, by kind."""
    return {
        "advice": recommendation(stats),
        "per_workers": per_workers(stats),
        "scaling": scaling(stats),
        "memory": least_memory(stats),
        "excluded": excluded(stats),
    }


# ---------------------------------------------------------------- the blog, replicated


def closest_workers(stats: pd.DataFrame, target: int = BLOG_WORKERS):
    workers = sorted(stats.workers.unique())
    return min(workers, key=lambda w: (abs(w - target), -w)) if workers else None


def _cell(stats: pd.DataFrame, backend: str, workers):
    found = stats[(stats.backend == backend) & (stats.workers == workers)]
    return found.iloc[0] if len(found) else None


def _missing(row, backend: str) -> str | None:
    if row is None:
        return f"{backend}: not run"
    if not bool(row.all_clean) or pd.isna(row.throughput_median):
        return f"{backend}: not clean ({row.statuses})"
    return None


def measured_ratio(stats: pd.DataFrame, a: str, b: str, workers, measure: str) -> str:
    """'a vs b → ratio' for time (batch time median; interval from the throughput intervals) or memory (peak tree PSS)."""
    ra, rb = _cell(stats, a, workers), _cell(stats, b, workers)
    missing = [m for m in (_missing(ra, a), _missing(rb, b)) if m]
    if missing:
        return "; ".join(missing)
    if measure == "time":
        low, high = ratio_interval(rb, ra)  # same tasks per batch: time ratio a/b = throughput ratio b/a
        return (
            f"{num(ra.batch_s_median)} s vs {num(rb.batch_s_median)} s per batch → "
            f"{num(ra.batch_s_median / rb.batch_s_median)}× {interval_text(low, high, '×')}"
        )
    return (
        f"{mib(ra.peak_tree_pss_bytes_median)} vs {mib(rb.peak_tree_pss_bytes_median)} → "
        f"{num(ra.peak_tree_pss_bytes_median / rb.peak_tree_pss_bytes_median)}×"
    )


def blog_table(stats: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for blog in BLOG:
        s = stats[stats.workload == blog["workload"]]
        w = closest_workers(s)
        rows.append(
            {
                "workload": blog["workload"],
                "measure (blog)": blog["what"],
                "blog: multiprocessing vs Ray": f"{blog['multiprocessing']:g} vs {blog['ray']:g}",
                "blog ratio (mp / Ray)": f"{blog['multiprocessing'] / blog['ray']:.2f}×",
                "here, blog's framing: multiprocessing vs ray": measured_ratio(s, NAIVE, "ray", w, blog["measure"]) if w else "not run",
                "here, fair framing: multiprocessing-shared vs ray": measured_ratio(s, EXPERT, "ray", w, blog["measure"])
                if w
                else "not run",
                "workers here": workers_text(w) if w else "–",
            }
        )
    return pd.DataFrame(rows)


def _time_ratio(stats, a, b, w):
    ra, rb = _cell(stats, a, w), _cell(stats, b, w)
    if _missing(ra, a) or _missing(rb, b):
        return None
    return ra.batch_s_median / rb.batch_s_median, ratio_interval(rb, ra)


def _ratio_claim(ratio) -> str:
    value, (low, high) = ratio
    if low > 1:
        return f"slower than ray: {num(value)}× its batch time {interval_text(low, high, '×')}"
    if high < 1:
        return f"faster than ray: {num(value)}× its batch time {interval_text(low, high, '×')}"
    return f"not clearly different from ray: {num(value)}× its batch time {interval_text(low, high, '×')}"


def blog_explanation(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, config: dict, workload: str) -> str:
    """One generated paragraph: what explains the gap between the blog's framing and the fair one."""
    s, r = stats[stats.workload == workload], runs[runs.workload == workload]
    w = closest_workers(s)
    if w is None:
        return f"{workload}: not run."
    naive, fair = _time_ratio(s, NAIVE, "ray", w), _time_ratio(s, EXPERT, "ray", w)
    parts = [
        f"{workload}, {workers_text(w)}: as the blog wrote it, multiprocessing is "
        + (_ratio_claim(naive) if naive else "not measured (not run or not clean)")
        + "; written as an expert would (multiprocessing-shared), it is "
        + (_ratio_claim(fair) if fair else "not measured (not run or not clean)")
        + "."
    ]
    a, b = _cell(s, NAIVE, w), _cell(s, EXPERT, w)
    gap = naive and fair and not overlaps(a, b)
    lead = (
        "The gap between the two framings comes from" if gap and b.throughput_median > a.throughput_median else "The two framings differ in"
    )
    params = (config.get("workloads") or {}).get(workload) or {}
    if workload == "matmul" and params.get("n"):
        size = params["n"] ** 2 * 8
        per_mib = (machine.get("pickle_100mib_dumps_s", 0) + machine.get("pickle_100mib_loads_s", 0)) / 100
        parts.append(
            f"{lead} how x reaches the workers: the blog's pattern pickles x ({params['n']}×{params['n']} float64, "
            f"{num(size / MIB)} MiB) into every task, which at this machine's measured pickling speed costs about "
            f"{num(per_mib * size / MIB * 1000)} ms per task before any arithmetic; multiprocessing-shared places x once "
            "in shared memory and Ray once in its object store."
        )
        threads = {name: row.blas_threads for name, row in ((EXPERT, b), ("ray", _cell(s, "ray", w))) if row is not None}
        if threads:
            parts.append(
                "BLAS threads per worker, as read inside the workers: "
                + ", ".join(f"{k} {v:g}" if pd.notna(v) else f"{k} unknown" for k, v in threads.items())
                + "."
            )
    elif workload == "ner":
        naive_runs = r[(r.backend == NAIVE) & (r.workers == w) & (r.status == "ok")]
        builds = naive_runs.state_builds_timed.median() if "state_builds_timed" in r else np.nan
        loads = f" ({builds:g} model loads inside the timed batches of one run here)" if pd.notna(builds) else ""
        once = f" during setup ({num(b.setup_s_median)} s, not in the batch times)" if b is not None and pd.notna(b.setup_s_median) else ""
        parts.append(
            f"{lead} where the spaCy model is loaded: the blog's pattern loads it inside every task{loads}; "
            f"Ray's actors and multiprocessing-shared load it once per worker{once}."
        )
    parts.append(
        "The blog's memory figures are tracemalloc in the parent alone, which sees neither the workers nor shared memory; "
        "here memory is the peak PSS of the whole process tree."
    )
    return " ".join(parts)


# ---------------------------------------------------------------- HTML pieces


def image(path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{esc(Path(path).stem)}">'


def table(frame: pd.DataFrame, cls: str = "") -> str:
    return frame.to_html(index=False, border=0, classes=cls or None, float_format=num, na_rep="–")


def items(sentences: list[str]) -> str:
    return "".join(f"<li>{esc(s)}</li>" for s in sentences)


def section(key: str, body: str) -> str:
    return f'<section id="{key}"><h2>{esc(SECTIONS[key])}</h2>{body}</section>'


def findings_section(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict) -> str:
    stats = stats.merge(memory_ranges(runs), on=KEYS, how="left") if len(runs) else stats
    parts = [
        f"<p class=note>Throughput: tasks per second in the timed batches (steady state), median over batches and trials; "
        "numbers in brackets are 95 % bootstrap intervals (for memory: the range over trials). A claim is made only where "
        f"intervals do not overlap; cells with any run not ok or not verified are left out. This machine has "
        f"{esc(machine.get('physical_cores', '?'))} physical cores.</p>"
    ]
    found = {workload: findings(s) for workload, s in stats.groupby("workload")}
    cards = "".join(
        f"<div class=advice><h3>{esc(w)}</h3>"
        + "".join(f"<p>{'<strong>' + esc(x) + '</strong>' if i == 0 else esc(x)}</p>" for i, x in enumerate(f["advice"]))
        + "</div>"
        for w, f in found.items()
    )
    parts.insert(0, f"<div class=cards>{cards}</div>")
    for w, f in found.items():
        parts.append(f"<h3>{esc(w)} in detail</h3>")
        for kind, title in (("per_workers", "By worker count"), ("scaling", "Scaling"), ("memory", "Memory"), ("excluded", "Left out")):
            if f[kind]:
                parts.append(f"<p class=kind>{esc(title)}</p><ul>{items(f[kind])}</ul>")
    cols = [
        "workload",
        "backend",
        "workers",
        "throughput_median",
        "throughput_ci_low",
        "throughput_ci_high",
        "speedup_vs_serial",
        "speedup_ci_low",
        "speedup_ci_high",
        "efficiency",
        "peak_tree_pss_bytes_median",
        "peak_shm_bytes_median",
        "startup_s_median",
        "setup_s_median",
        "end_to_end_s_median",
        "gflops_median",
        "blas_threads",
        "n_runs",
        "n_clean",
        "statuses",
    ]
    shown = stats[[c for c in cols if c in stats]].copy()
    for c in ("peak_tree_pss_bytes_median", "peak_shm_bytes_median"):
        if c in shown:
            shown[c.replace("_bytes", "_mib")] = shown.pop(c) / MIB
    parts.append(f"<details><summary>Every cell (stats.csv)</summary>{table(shown, 'num')}</details>")
    return section("findings", "".join(parts))


def blog_section(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, config: dict) -> str:
    intro = (
        "<p class=note>The blog ran 4 workers on 8 cores. Here: the worker count closest to 4 that was run. Time ratios use the "
        "median batch time, with an interval from the two throughput intervals; memory is peak PSS of the whole process tree. "
        "Blog's framing: <code>multiprocessing</code> (x pickled per task, model loaded per task) vs <code>ray</code>. Fair framing: "
        "<code>multiprocessing-shared</code> (shared memory, model loaded once per worker) vs <code>ray</code>, both with the "
        "same BLAS thread policy.</p>"
    )
    text = "".join(f"<p>{esc(blog_explanation(stats, runs, machine, config, w))}</p>" for w in sorted(stats.workload.unique()))
    return section("blog", intro + table(blog_table(stats)) + text)


def split_name(path) -> tuple[str, str]:
    """'results/figures/ner_time_breakdown.png' -> ('ner', 'time_breakdown')."""
    stem = Path(path).stem
    name = next((f for f in FIGURES if stem.endswith("_" + f)), stem.partition("_")[2])
    return stem.removesuffix("_" + name), name


def figures_section(paths: list) -> str:
    by_workload = {}
    for path in sorted(paths, key=str):
        workload, name = split_name(path)
        by_workload.setdefault(workload, {})[name] = path
    parts = []
    for workload, figs in by_workload.items():
        names = [n for n in FIGURES if n in figs] + [n for n in figs if n not in FIGURES]
        cells = "".join(f"<figure>{image(figs[n])}<figcaption>{esc(FIGURES.get(n, n))}</figcaption></figure>" for n in names)
        parts.append(f"<h3>{esc(workload)}</h3><div class=grid>{cells}</div>")
    return section("figures", "".join(parts) or "<p>No figures.</p>")


def unclean_section(runs: pd.DataFrame) -> str:
    bad = runs[(runs.status != "ok") | ~runs.verified.astype(bool)]
    if bad.empty:
        return section("unclean", "<p>None: every run finished and every result was verified.</p>")
    cols = ["workload", "backend", "workers", "trial", "status", "verified", "reason"]
    note = "<p class=note>These runs are left out of the statistics; a cell with any of them is left out of the findings.</p>"
    shown = bad[cols].fillna({"reason": "result did not match the serial reference"})
    shown["reason"] = shown.reason.astype(str).str.replace(r"\s+", " ", regex=True)  # tracebacks' newlines
    return section("unclean", note + table(shown))


DEFINITIONS = {
    "startup_s": "bringing the backend up: pool, ray.init, cluster, worker processes ready",
    "setup_s": "placing shared state: ray.put, shared memory, model load in stateful workers",
    "warm-up": "the first batches, run but untimed in throughput (imports, first touches, lazy starts)",
    "throughput": "tasks per second over the timed batches only (steady state); median over every timed batch of every clean trial, "
    "95 % interval by a two-level bootstrap (trials, then batches)",
    "speedup_vs_serial": "throughput over serial's at the same worker count; serial runs in-process with BLAS on every core",
    "end_to_end_s": "start-up to teardown, excluding the harness's own input generation and result digests",
    "memory": "peak PSS summed over the driver and all its descendants, sampled every {period} ms; shared pages counted once. "
    "Shared memory: growth of Shmem in /proc/meminfo (Ray's object store, shm segments, memmaps)",
    "verified": "every timed result checked against a serial reference after the run",
}


BLAS_POLICY = {
    "auto": "the physical cores are shared among the workers (serial, in the driver, gets them all)",
    "library-default": "each library's own choice, uncontrolled (as in the blog)",
}


def environment_section(stats: pd.DataFrame, machine: dict, config: dict) -> str:
    env = machine.get("environment", {})
    spawn = machine.get("process_spawn_s") or {}
    value = lambda key: num(machine.get(key) if machine.get(key) is not None else np.nan)  # noqa: E731
    facts = {
        "host": env.get("host"),
        "CPU": env.get("cpu_model"),
        "cores (physical / logical)": f"{machine.get('physical_cores')} / {machine.get('logical_cores')}",
        "memory": f"{(env.get('memory_bytes') or 0) / 2**30:.1f} GiB",
        "Python": env.get("python"),
        "platform": env.get("platform"),
        "git commit": f"{env.get('git_commit') or 'unknown'}{' (uncommitted changes)' if env.get('git_dirty') else ''}",
        "BLAS": ", ".join(
            f"{b.get('internal_api')} {b.get('version')} ({b.get('threading_layer')}, {b.get('architecture')})" for b in env.get("blas", [])
        ),
        "BLAS GFLOP/s, 1 core / all cores": f"{value('blas_gflops_single')} / {value('blas_gflops_all')}",
        "pickle 100 MiB, dumps / loads": f"{value('pickle_100mib_dumps_s')} s / {value('pickle_100mib_loads_s')} s",
        "process start": ", ".join(f"{m} {num(v)} s" for m, v in spawn.items()) or "not measured",
        "ray.init": f"{num(machine['ray_init_s'])} s" if machine.get("ray_init_s") is not None else "not measured",
    }
    policy = config.get("blas_threads", "auto")
    period = 1000 * ((config.get("sampler") or {}).get("period_s") or 0.05)
    definitions = {**DEFINITIONS, "memory": DEFINITIONS["memory"].format(period=f"{period:g}")}
    threads = (
        stats.pivot_table(index="backend", columns="workers", values="blas_threads", aggfunc="first")
        if "blas_threads" in stats and stats.blas_threads.notna().any()
        else pd.DataFrame()
    )
    packages = pd.DataFrame([{"package": k, "version": v} for k, v in (env.get("packages") or {}).items() if v])
    rows = lambda d: "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in d.items())  # noqa: E731
    return section(
        "method",
        (
            f"<h3>What each number includes</h3><table class=facts>{rows(definitions)}</table>"
            f"<h3>Machine</h3><table class=facts>{rows(facts)}</table>"
            f"<h3>BLAS policy</h3><p><code>blas_threads: {esc(policy)}</code>: "
            f"{esc(BLAS_POLICY.get(policy, f'{policy} BLAS threads in every worker'))}. "
            "The table shows the BLAS threads each backend's workers reported from inside, per worker count.</p>"
            + (threads.reset_index().rename_axis(columns=None).pipe(table) if len(threads) else "<p>Not recorded.</p>")
            + f"<h3>Packages</h3>{table(packages) if len(packages) else '<p>Not recorded.</p>'}"
            f"<h3>Configuration</h3><pre>{esc(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))}</pre>"
        ),
    )


def header(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict) -> str:
    env = machine.get("environment", {})
    clean = int(((runs.status == "ok") & runs.verified.astype(bool)).sum())
    sweep = (
        f"{runs.workload.nunique()} workloads × {runs.backend.nunique()} backends × worker counts "
        f"{', '.join(map(str, sorted(runs.workers.unique())))}; {len(runs)} runs, {clean} clean"
    )
    where = f"{env.get('host')}, {env.get('cpu_model')}, {machine.get('physical_cores')} physical cores"
    nav = "".join(f'<a href="#{k}">{esc(v)}</a>' for k, v in SECTIONS.items())
    mixed = compare.mixed_provenance_text(runs)  # records of several hosts, CPU models or commits: say so first
    return (
        f"<h1>parbench: which parallel backend, how many workers?</h1>"
        f"<p class=sub>{esc(where)} · {esc(sweep)} · generated {esc(time.strftime('%Y-%m-%d %H:%M'))}</p><nav>{nav}</nav>"
        + (f"<p class=note><strong>{esc(mixed)}</strong></p>" if mixed else "")
    )


def write(out, runs, stats, machine, figures: list, config: dict) -> None:
    """Write the report to `out` from runs.csv, stats.csv, machine.json, the PNG figures and the config."""
    runs, stats = pd.read_csv(runs), pd.read_csv(stats)
    machine = json.loads(Path(machine).read_text())
    body = "".join(
        [
            header(stats, runs, machine),
            findings_section(stats, runs, machine),
            blog_section(stats, runs, machine, config),
            figures_section(figures),
            unclean_section(runs),
            environment_section(stats, machine, config),
        ]
    )
    page = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>parbench report</title><style>{CSS}</style></head><body>{body}</body></html>"
    )
    Path(out).write_text(page, encoding="utf-8")
