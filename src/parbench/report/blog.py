"""The blog, replicated: its published figures beside the same comparison measured here, first in the
blog's own framing (what its clock covered: every batch, and the state built in stateful workers,
see stats.blog_timer), then in steady state (the median timed batch) as the blog wrote
multiprocessing and as an expert writes it. The blog's figures and what explains each gap belong to
the workloads that replicate it (a `blog` attribute, `explain`, and `blog_framing` given the cells compared)."""

import pandas as pd

from parbench import workloads
from parbench.report.decisions import ratio_interval
from parbench.stats import is_clean
from parbench.text import interval_text, mib, num, workers_text

BLOG_WORKERS = 4
NAIVE, EXPERT, RAY = "multiprocessing", "multiprocessing-shared", "ray"


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


def blog_timer_ratio(stats: pd.DataFrame, runs: pd.DataFrame, a: str, b: str, workers) -> str:
    """'38 s vs 8.7 s over 10 batches → 4.37× [4.1–4.6×]': the blog's timer of a against b, medians over
    trials, in brackets the range over trials (a's lowest over b's highest, and the reverse)."""
    ra, rb = _cell(stats, a, workers), _cell(stats, b, workers)
    missing = [m for m in (_missing(ra, a), _missing(rb, b)) if m]
    if missing:
        return "; ".join(missing)
    if "blog_timer_s" not in runs or pd.isna(ra.get("blog_timer_s_median")) or pd.isna(rb.get("blog_timer_s_median")):
        return "not recorded"
    clean = runs[is_clean(runs) & (runs.workers == workers)]
    ta, tb = (clean[clean.backend == x].blog_timer_s.dropna() for x in (a, b))
    n = int(clean.blog_timer_batches.median())
    ratio = ra.blog_timer_s_median / rb.blog_timer_s_median
    return (
        f"{num(ra.blog_timer_s_median)} s vs {num(rb.blog_timer_s_median)} s over {n} batches → "
        f"{num(ratio)}× {interval_text(ta.min() / tb.max(), ta.max() / tb.min(), '×')}"
    )


def replicating(names) -> dict:
    """The workloads of a sweep that replicate the blog: name -> class with its `blog` figures."""
    found = {}
    for name in names:
        if name in workloads.names() and getattr(cls := workloads.load(name), "blog", None):
            found[name] = cls
    return found


def blog_table(stats: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per figure the blog published: its ratio, the same ratio measured here by the blog's
    timer (time only), then in steady state as the blog wrote multiprocessing and as an expert does."""
    runs = pd.DataFrame() if runs is None else runs
    rows = []
    for workload, cls in replicating(stats.workload.unique()).items():
        s, r = stats[stats.workload == workload], runs[runs.workload == workload] if len(runs) else runs
        w = closest_workers(s)
        for blog in cls.blog:
            timed = blog["measure"] == "time"
            rows.append(
                {
                    "workload": workload,
                    "measure (blog)": blog["what"],
                    "blog: multiprocessing vs Ray": f"{blog['multiprocessing']:g} vs {blog['ray']:g}",
                    "blog ratio (mp / Ray)": f"{blog['multiprocessing'] / blog['ray']:.2f}×",
                    "here, the blog's timer: multiprocessing vs ray": blog_timer_ratio(s, r, NAIVE, RAY, w) if timed else "–",
                    "here, steady state: multiprocessing vs ray": measured_ratio(s, NAIVE, RAY, w, blog["measure"]),
                    "here, steady state: multiprocessing-shared vs ray": measured_ratio(s, EXPERT, RAY, w, blog["measure"]),
                    "workers here": workers_text(w),
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


def blog_explanation(stats: pd.DataFrame, runs: pd.DataFrame, workload: str, explained: list[str]) -> str:
    """One generated paragraph: the two framings measured here, and what explains the gap between them
    (`explained`: the workload's own account, made once by the report for its findings too)."""
    s, r = stats[stats.workload == workload], runs[runs.workload == workload]
    w = closest_workers(s)
    if w is None:
        return f"{workload}: not run."
    naive, fair = _time_ratio(s, NAIVE, RAY, w), _time_ratio(s, EXPERT, RAY, w)
    cls = workloads.load(workload)
    timer = next((b for b in getattr(cls, "blog", []) if b["measure"] == "time"), None)
    ratio = blog_timer_ratio(s, r, NAIVE, RAY, w)
    parts = [
        f"{workload}, {workers_text(w)}: timed as the blog timed it (every batch, and the state built in the workers for "
        f"stateful work), multiprocessing vs ray: {ratio}"
        + (
            f" (the blog: {timer['multiprocessing']:g} s vs {timer['ray']:g} s, {timer['multiprocessing'] / timer['ray']:.2f}×)"
            if timer
            else ""
        )
        + ". In steady state (the median timed batch), as the blog wrote it, multiprocessing is "
        + (_ratio_claim(naive) if naive else "not measured (not run or not clean)")
        + "; written as an expert would (multiprocessing-shared), it is "
        + (_ratio_claim(fair) if fair else "not measured (not run or not clean)")
        + "."
    ]
    parts += explained
    # A workload's own account of the gap between the framings, from the two cells they compare.
    naive_row, ray_row = _cell(s, NAIVE, w), _cell(s, RAY, w)
    if (framing := getattr(cls, "blog_framing", None)) and naive_row is not None and ray_row is not None and "blog_timer_s_median" in s:
        parts += framing(naive_row, ray_row, w)
    parts.append(
        "The blog's memory figures are tracemalloc in the parent alone, which sees neither the workers nor shared memory; "
        "here memory is the peak PSS of the whole process tree."
    )
    return " ".join(parts)
