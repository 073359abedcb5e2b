"""From run records to tables: runs (one row per run), batches (one row per timed batch), stats (one
row per workload x backend x workers x variant) and the A/A table (one row per workload), by the
method of docs/method.md: the run is the unit, a cell's speedup is the geometric mean over rounds of
its run's throughput over the reference run of the same round, judged by parbench.decide."""

import hashlib

import numpy as np
import pandas as pd

from parbench import decide
from parbench.plugins import REFERENCE  # every cell's reference (its workers only set the batch size)

KEYS = ["workload", "backend", "workers"]
CELL = [*KEYS, "variant"]  # a stats row: a cell of one variant ("" when the config has no variants)
N_BOOT = 2000  # compare.py's bootstrap (cross-session comparisons)
CONFIDENCE = 0.95  # compare.py's bootstrap percentiles; stats' own intervals are decide's 90 % ones
# A run was made on a busy machine when the rest of the machine (other processes, and other guests
# through steal) used more than this many cores on average beside it (docs/measurement.md, "A busy machine").
BUSY_OTHER_CORES = 0.25
# /proc/stat counts in ticks of this many seconds (USER_HZ): each timed batch reads it twice, so the
# other work summed over n batches on c CPUs carries tick noise of sd TICK_S * sqrt(n * c / 6) (two
# readings per CPU, each off by up to a tick). A run is judged only where that noise is at most this
# share of the threshold (4 sd: a quiet run is not flagged by ticks alone).
TICK_S = 0.01
TICK_NOISE_SHARE = 0.25


def is_clean(runs: pd.DataFrame) -> pd.Series:
    """Runs a statistic may use: status ok and every result verified."""
    return (runs.status == "ok") & runs.verified.astype(bool)


def clean(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[is_clean(runs)]


def run_row(r: dict) -> dict:
    """One run record as one flat row."""
    t, m, env = r.get("timings") or {}, r.get("memory") or {}, r.get("environment") or {}
    batch_s = t.get("batch_s") or []
    items = items_per_batch(r)
    info = r.get("workload_info") or {}
    flops, model, module = info.get("flops_per_item"), info.get("model") or {}, info.get("module") or {}
    busy = sum(batch_s)
    cpu, system, order = r.get("cpu") or {}, r.get("system") or {}, r.get("order") or {}
    driver_cpu = sum(cpu.get("driver_batch_s") or [])
    tree_batch_cpu = sum(cpu["tree_batch_s"]) if cpu.get("tree_batch_s") else None
    tree_cpu = cpu["tree_user_s"] + cpu["tree_system_s"] if cpu.get("tree_user_s") is not None else None
    # Workers of an external cluster are outside the tree: its CPU is then the driver's alone.
    in_tree = (r.get("cluster") or {}).get("workers_in_memory_tree", True)
    tree_batch_cpu = tree_batch_cpu if in_tree else None
    window, other = system.get("window_s"), system.get("other_cpu_s")
    # What others took is the machine's CPU minus the tree's: only where the tree's is complete (the
    # run's CPU cgroup; getrusage misses processes reaped automatically, such as Ray's workers).
    exact_tree = in_tree and str(cpu.get("tree_totals_source", "")).startswith("cgroup")
    other_cores = other / window if window and other is not None and exact_tree else None
    # The same over the timed batches alone (a run's start-up, often seconds, must not dilute them); summed over
    # every timed batch, not judged per batch: /proc/stat's 10 ms ticks make one short batch's figure noise.
    other_batches = system.get("other_cpu_batch_s")
    whole = bool(other_batches) and len(other_batches) == len(batch_s) and busy > 0 and exact_tree
    other_cores_batches = sum(other_batches) / busy if whole else None
    tick_noise = tick_noise_cores(len(batch_s), env.get("logical_cores") or env.get("physical_cores") or 1, busy) if whole else None
    # Judged on the timed batches where the ticks allow it, else not judged; records made before the per-batch
    # figure are judged on the whole run.
    if whole:
        judged = other_cores_batches if tick_noise <= TICK_NOISE_SHARE * BUSY_OTHER_CORES else None
    else:
        judged = other_cores
    return {
        **{k: r[k] for k in ("workload", "backend", "workers", "trial")},
        "round": r.get("round") or order.get("round") or r["trial"],
        "place": order.get("place"),
        "twin": bool(r.get("twin")),
        "variant": r.get("variant") or "",
        # The run's one figure (the unit of analysis): its items over the median of its timed batches.
        "run_throughput": items / float(np.median(batch_s)) if batch_s and np.median(batch_s) > 0 else None,
        "status": r.get("status"),
        "reason": r.get("reason"),
        "verification_problem": next(iter((r.get("verification") or {}).get("problems") or []), None),
        "verified": bool(r.get("verified")),
        "tasks_per_batch": r.get("tasks_per_batch") or r["workers"],
        "items_per_task": r.get("items_per_task") or 1,
        "items_per_batch": items,
        "n_batches": len(batch_s),
        "startup_s": t.get("startup_s"),
        "setup_s": t.get("setup_s"),
        "warmup_s": sum(t.get("warmup_s") or []),
        "batch_s_total": busy,
        "batch_s_median": float(np.median(batch_s)) if batch_s else None,
        "teardown_s": t.get("teardown_s"),
        "end_to_end_s": t.get("end_to_end_s"),
        "throughput": items * len(batch_s) / busy if busy else None,
        "flops_per_item": flops,
        "gflops": flops * items * len(batch_s) / busy / 1e9 if busy and flops else None,
        # CPU cores the driver kept busy in the timed batches: all the work of serial and threads.
        "driver_cores_busy": driver_cpu / busy if busy else None,
        # CPU seconds of the whole tree per item in the timed batches: what the throughput costs.
        "cpu_per_item_s": tree_batch_cpu / (items * len(batch_s)) if tree_batch_cpu is not None and batch_s else None,
        "tree_cores_busy": tree_batch_cpu / busy if tree_batch_cpu is not None and busy else None,
        "tree_cpu_s": tree_cpu,
        # What the blog's clock covered: every batch, and the state's build where it is built in the workers (stateful work).
        "blog_timer_s": blog_timer(t, info),
        "blog_timer_batches": len(t.get("warmup_s") or []) + len(batch_s),
        "data_bytes": info.get("data_bytes"),
        "peak_tree_pss_bytes": m.get("peak_tree_pss_bytes"),
        "peak_tree_rss_bytes": m.get("peak_tree_rss_bytes"),
        "peak_shm_bytes": m.get("peak_shm_bytes"),
        "driver_peak_rss_bytes": m.get("driver_peak_rss_bytes"),
        "steady_tree_pss_bytes": (timed_phase(m.get("phases")) or {}).get("peak_pss_bytes"),
        "exact_peak_bytes": m.get("exact_peak_bytes"),
        # The exact peak less the page cache of files the run read first (which depends on what earlier runs cached): a lower bound.
        "exact_peak_less_cache_bytes": (
            m["exact_peak_bytes"] - m["exact_file_cache_bytes"]
            if m.get("exact_peak_bytes") and m.get("exact_file_cache_bytes") is not None
            else None
        ),
        "exact_source": m.get("exact_source"),
        "blas_threads": r.get("blas_threads"),
        "workers_seen": timed_phase(r.get("workers_seen")),
        "state_builds_timed": timed_phase(r.get("state_builds")),
        "model": f"{model['pipeline']} {model['version']}" if model else None,
        "module": module.get("source"),
        "module_sha256": module.get("sha256"),
        "gil_enabled": r.get("gil_enabled"),
        # The driver's interpreter: a variant's `python` may be another version or build (free-threaded).
        "python": env.get("python"),
        # Which installed set ran it (results/installed.txt lists the sweep's own): a short hash, None before it was recorded.
        "installed_sha": hashlib.sha256("\n".join(env["installed"]).encode()).hexdigest()[:12] if env.get("installed") else None,
        "python_build": env.get("python_build") or ("GIL" if env.get("python") else None),
        "loadavg_1m_start": system.get("loadavg_1m_start"),
        "loadavg_1m_end": system.get("loadavg_1m_end"),
        "cpu_steal_s": system.get("cpu_steal_s"),
        "other_cpu_s": other,
        "tree_totals_source": cpu.get("tree_totals_source"),
        "other_cores": other_cores,
        "other_cores_batches": other_cores_batches,
        "other_cores_tick_noise": tick_noise,
        "busy_machine": judged > BUSY_OTHER_CORES if judged is not None else None,
        "tree_involuntary_switches": system.get("tree_involuntary_switches"),
        "planned_position": order.get("position"),
        "started_at": r.get("started_at"),
        "finished_at": r.get("finished_at"),
        "host": env.get("host"),
        "cpu_model": env.get("cpu_model"),
        "physical_cores": env.get("physical_cores"),
        "git_commit": env.get("git_commit"),
        "code_hash": env.get("code_hash"),
        "config_hash": env.get("config_hash"),
    }


def causes(runs: pd.DataFrame, most: int = 2) -> str:
    """The distinct causes of a cell's unclean runs (a failed run's reason, else its first verification problem)."""
    column = runs.verification_problem if "verification_problem" in runs else pd.Series(None, index=runs.index)
    found = runs.reason.where(runs.reason.notna(), column).dropna().astype(str).unique()
    more = f" (and {len(found) - most} more)" if len(found) > most else ""
    return "; ".join(found[:most]) + more


def tick_noise_cores(n_batches: int, cpus: int, window_s: float) -> float:
    """The sd, in cores, that /proc/stat's ticks alone put on other work summed over n timed batches."""
    return TICK_S * (n_batches * cpus / 6) ** 0.5 / window_s


def blog_timer(timings: dict, info: dict) -> float | None:
    """Seconds the blog's clock would have covered: it started after the workers and the shared data
    were placed but before stateful workers had built their state (Ray's actor creation returns at
    once, and the blog's Pool loads the model in every task), so the state build and every batch."""
    batches = (timings.get("warmup_s") or []) + (timings.get("batch_s") or [])
    if not batches or info.get("stateful") is None:
        return None
    return sum(batches) + ((timings.get("setup_s") or 0) if info["stateful"] else 0)


def timed_phase(by_phase: dict | None):
    """The timed batches' entry of a per-phase mapping ('batch'; records of schema 1 said 'batches')."""
    by_phase = by_phase or {}
    return by_phase.get("batch", by_phase.get("batches"))


def items_per_batch(r: dict) -> int:
    """Items of one timed batch: tasks per batch times items per task (one task per worker by default)."""
    return r.get("items_per_batch") or r.get("tasks_per_batch") or r["workers"]


def batch_rows(r: dict) -> list[dict]:
    """One row per timed batch of a run (long form, for intervals and plots)."""
    items = items_per_batch(r)
    return [
        {
            **{k: r[k] for k in ("workload", "backend", "workers", "trial")},
            "batch": i,
            "seconds": s,
            "items": items,
            "throughput": items / s,
        }
        for i, s in enumerate((r.get("timings") or {}).get("batch_s") or [])
        if s > 0
    ]


def tables(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.DataFrame([run_row(r) for r in records])
    batches = pd.DataFrame(
        [row for r in records for row in batch_rows(r)], columns=[*KEYS, "trial", "batch", "seconds", "items", "throughput"]
    )
    return runs.sort_values([*KEYS, "variant", "trial", "twin"]).reset_index(drop=True), batches


def bootstrap_medians(groups: list[np.ndarray], rng: np.random.Generator, n_boot: int = N_BOOT) -> np.ndarray:
    """Medians of two-level resamples: trials with replacement, then batches within each chosen trial,
    so that variance between processes counts as well as variance between batches."""
    out = np.empty(n_boot)
    for b in range(n_boot):
        chosen = rng.integers(len(groups), size=len(groups))
        out[b] = np.median(np.concatenate([rng.choice(groups[i], size=len(groups[i])) for i in chosen]))
    return out


MEDIANS = (
    "startup_s",
    "setup_s",
    "teardown_s",
    "end_to_end_s",
    "gflops",
    "peak_tree_pss_bytes",
    "peak_tree_rss_bytes",
    "peak_shm_bytes",
    "steady_tree_pss_bytes",
    "driver_peak_rss_bytes",
    "driver_cores_busy",
    "data_bytes",
    "cpu_per_item_s",
    "tree_cores_busy",
    "exact_peak_bytes",
    "exact_peak_less_cache_bytes",
    "blog_timer_s",
)


def _with_method_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """runs.csv of before the method (no round, twin, variant or run_throughput): the same, with them."""
    runs = runs.copy()
    for column, default in (("variant", ""), ("twin", False), ("busy_machine", None)):
        if column not in runs:
            runs[column] = default
    runs["variant"] = runs.variant.fillna("").astype(str)
    runs["twin"] = runs.twin.fillna(False).astype(bool)
    if "round" not in runs:
        runs["round"] = runs.trial
    if "run_throughput" not in runs:
        runs["run_throughput"] = runs.throughput if "throughput" in runs else np.nan
    return runs


def used(runs: pd.DataFrame) -> pd.Series:
    """The runs a cell's estimates and intervals rest on: clean, with a figure, and not made on a busy
    machine, unless fewer than two of its clean runs were quiet (then all its clean runs, and the cell
    keeps its busy mark)."""
    runs = _with_method_columns(runs)
    ok = is_clean(runs) & (runs.run_throughput > 0)
    quiet = ok & (runs.busy_machine != True)  # noqa: E712 (True, False or missing)
    cell = [runs[k] for k in [*CELL, "twin"]]
    enough = quiet.groupby(cell).transform("sum") >= 2
    return (quiet & enough) | (ok & ~enough)


def round_logs(runs: pd.DataFrame, twin: bool = False, use: pd.Series | None = None) -> pd.DataFrame:
    """log run_throughput, one row per cell (CELL), one column per round: the runs used (twins, or not).
    use: used(runs), if already at hand."""
    runs = _with_method_columns(runs)
    use = runs[(used(runs) if use is None else use) & (runs.twin == twin)]
    if use.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=CELL))
    return use.assign(log=np.log(use.run_throughput.to_numpy(float))).groupby([*CELL, "round"]).log.mean().unstack("round")


def reference_of(key: tuple) -> tuple:
    """A cell's reference cell: serial at the same worker count, in the same variant."""
    workload, _, workers, variant = key
    return (workload, REFERENCE, workers, variant)


def paired_cells(logs: pd.DataFrame, a: tuple, b: tuple) -> decide.Ratio:
    """Cell a over cell b, paired within rounds (rounds where both have a run used); logs: round_logs."""
    if a not in logs.index or b not in logs.index:
        return decide.from_logs([])
    return decide.from_logs((logs.loc[a] - logs.loc[b]).to_numpy())


def stats(runs: pd.DataFrame, batches: pd.DataFrame | None = None, seed: int = 0, margin: float = decide.DEFAULT_MARGIN) -> pd.DataFrame:
    """One row per workload x backend x workers x variant over its clean runs (ok and verified; the
    reference's A/A twins are in aa(), not here). `batches` and `seed` are no longer used (kept for callers).

    throughput_median: the geometric mean over runs of run_throughput (items/s; the run is the unit),
    throughput_ci_low/high its 90 % t interval over runs (on logs). speedup_vs_serial: the geometric mean
    over rounds of the cell's run over the reference run of the same round (serial at the same worker
    count), speedup_ci_low/high its 90 % interval (decide.paired); verdict_vs_serial: decide's word for it
    with Holm over the workload's `family` (its every non-reference cell) and `margin`;
    detectable_difference: the smallest true difference (a share) those rounds and that spread find
    faster with 80 % power (for a reference cell: the A/A twin's spread); rounds_needed: the rounds the
    observed spread says would decide a `cannot tell`. Runs on a busy machine are left out (used()) and
    counted in n_busy.
    """
    runs = _with_method_columns(runs)
    cells = runs[~runs.twin]
    use = used(runs)
    logs = round_logs(runs, use=use)
    aa_table = aa(runs, margin=margin, logs=logs, use=use)
    use = use & ~runs.twin
    ok_mask = is_clean(cells)
    ok_all, quiet = cells[ok_mask], cells[use.loc[cells.index]]
    by = cells.groupby(CELL, sort=True)
    out = pd.DataFrame({"n_runs": by.size(), "n_clean": ok_mask.groupby([cells[k] for k in CELL]).sum()})
    out["all_clean"] = out.n_clean == out.n_runs
    # What each run ended as, an ok run that failed its check said so, and why the unclean ones are left out.
    ended = cells.status.where(~((cells.status == "ok") & ~cells.verified.astype(bool)), "ok but not verified")
    tally = cells.groupby([*[cells[k] for k in CELL], ended.rename("ended")]).size()
    out["statuses"] = pd.Series({k: ", ".join(f"{s} x{n}" for s, n in g.droplevel(CELL).items()) for k, g in tally.groupby(level=CELL)})
    out["causes"] = pd.Series({k: causes(g) for k, g in cells[~ok_mask].groupby(CELL)}, dtype=object)
    # Throughput: the geometric mean over the runs used, and its t interval over them.
    logs_used = np.log(quiet.run_throughput.astype(float)).groupby([quiet[k] for k in CELL])
    n, mean, sd = logs_used.count(), logs_used.mean(), logs_used.std(ddof=1)
    half = np.array([decide.t_quantile(1 - decide.ALPHA, k - 1) if k > 1 else 0.0 for k in n]) * sd.fillna(0) / np.sqrt(n)
    out["throughput_median"] = np.exp(mean)
    out["throughput_ci_low"], out["throughput_ci_high"] = np.exp(mean - half), np.exp(mean + half)
    out["throughput_log_sd"] = sd
    out["batch_s_median"] = quiet.groupby([quiet[k] for k in CELL]).items_per_batch.first() / out.throughput_median
    numbers = ok_all[[c for c in MEDIANS if c in ok_all]].apply(pd.to_numeric, errors="coerce").astype(float)
    medians = numbers.groupby([ok_all[k] for k in CELL]).median().add_suffix("_median")
    out = out.join(medians.reindex(columns=[f"{c}_median" for c in MEDIANS]))
    # Memory: the median above and a 90 % t interval over runs (on logs).
    pss = ok_all[ok_all.peak_tree_pss_bytes > 0] if "peak_tree_pss_bytes" in ok_all else ok_all.iloc[:0]
    logs_pss = np.log(pss.peak_tree_pss_bytes.astype(float)).groupby([pss[k] for k in CELL]) if len(pss) else None
    if logs_pss is not None:
        n, mean, sd = logs_pss.count(), logs_pss.mean(), logs_pss.std(ddof=1)
        half = np.array([decide.t_quantile(1 - decide.ALPHA, k - 1) if k > 1 else np.nan for k in n]) * sd / np.sqrt(n)
        out["peak_tree_pss_ci_low"], out["peak_tree_pss_ci_high"] = np.exp(mean - half), np.exp(mean + half)
    else:
        out["peak_tree_pss_ci_low"] = out["peak_tree_pss_ci_high"] = np.nan
    # Runs made on a busy machine (all of the cell's runs, clean or not).
    out["n_busy"] = (cells.busy_machine == True).groupby([cells[k] for k in CELL]).sum()  # noqa: E712 (True, False or missing)
    out["items_per_task"] = by.items_per_task.first()
    at = [ok_all[k] for k in CELL]
    if "gil_enabled" in ok_all:  # True only where every clean run says so; unknown where one does not say
        known = ok_all.gil_enabled.notna().groupby(at).all()
        out["gil_enabled"] = ok_all.gil_enabled.eq(True).groupby(at).all().astype(object).where(known, np.nan)
    else:
        out["gil_enabled"] = np.nan
    if "blas_threads" in ok_all and ok_all.blas_threads.notna().any():  # the mode over clean runs (the smallest of ties)
        counts = ok_all.groupby([*CELL, "blas_threads"]).size().rename("k").reset_index()
        mode = counts.sort_values(["k", "blas_threads"], ascending=[False, True]).drop_duplicates(CELL).set_index(CELL).blas_threads
        out["blas_threads"] = mode
    else:
        out["blas_threads"] = np.nan
    out["physical_cores"] = by.physical_cores.first() if "physical_cores" in cells else np.nan
    out = out.reset_index()
    if out.empty:
        return out
    out["margin"] = margin
    judged = {}  # row index -> the speedup columns
    for (workload, variant), family in out.groupby(["workload", "variant"], sort=False):
        members = family[family.backend != REFERENCE]
        ratios = [paired_cells(logs, k, reference_of(k)) for k in map(tuple, members[CELL].to_numpy())]
        for i, r, word in zip(members.index, ratios, decide.verdicts(ratios, margin)):
            low, high = r.interval()
            judged[i] = {
                "speedup_vs_serial": r.estimate,
                "speedup_ci_low": low,
                "speedup_ci_high": high,
                "verdict_vs_serial": word,
                "n_rounds": r.n,
                "detectable_difference": decide.detectable(r.sd, r.n, margin, family=len(members)),
                "rounds_needed": decide.rounds_needed(r, margin, family=len(members)) if word == decide.CANNOT_TELL else None,
            }
        twin = aa_table[(aa_table.workload == workload) & (aa_table.variant == variant)]
        for i in family.index[(family.backend == REFERENCE) & family.throughput_median.notna()]:
            judged[i] = {"speedup_vs_serial": 1.0, "speedup_ci_low": 1.0, "speedup_ci_high": 1.0}
            if len(twin):  # the reference's own precision: the A/A twin's spread
                judged[i].update(detectable_difference=twin.detectable_difference.iloc[0], n_rounds=twin.n_rounds.iloc[0])
        for i in family.index:
            judged.setdefault(i, {})["family"] = len(members)
    columns = ["speedup_vs_serial", "speedup_ci_low", "speedup_ci_high", "verdict_vs_serial", "family", "n_rounds"]
    columns += ["detectable_difference", "rounds_needed"]
    out = out.join(pd.DataFrame.from_dict(judged, orient="index").reindex(index=out.index, columns=columns))
    out["rounds_needed"] = out.rounds_needed.astype("Int64")
    return out


AA_COLUMNS = [
    "workload", "variant", "workers", "n_rounds", "estimate", "ci_low", "ci_high", "noise_sd", "verdict", "family",
    "detectable_difference", "false_verdict",
]  # fmt: skip


def aa(
    runs: pd.DataFrame, margin: float = decide.DEFAULT_MARGIN, logs: pd.DataFrame | None = None, use: pd.Series | None = None
) -> pd.DataFrame:
    """The A/A arm: one row per workload (and variant) whose reference cell has twins, the twin over its
    reference paired within rounds, judged by the rule of every cell.

    workers: the reference's; n_rounds: rounds with both runs used; estimate, ci_low, ci_high: the
    ratio's geometric mean and 90 % interval (1 is the truth); noise_sd: the sd of the per-round log
    ratios, the sweep's measured noise floor (about sqrt(2) x one run's own spread); verdict: decide's
    word, as a member of a family of the workload's size (its non-reference cells); false_verdict: the
    verdict is faster or slower (equivalent and cannot tell are not false); detectable_difference: the
    smallest true difference (a share) those rounds with that spread find with 80 % power in that family.
    """
    runs = _with_method_columns(runs)
    use = used(runs) if use is None else use
    twins, logs = round_logs(runs, twin=True, use=use), round_logs(runs, use=use) if logs is None else logs
    cells = runs[~runs.twin]
    # Each workload's family: its non-reference cells.
    families = cells[cells.backend != REFERENCE].drop_duplicates(CELL).groupby(["workload", "variant"]).size()
    rows = []
    for key in twins.index:
        workload, _, workers, variant = key
        family = int(families.get((workload, variant), 0))
        r = decide.from_logs((twins.loc[key] - logs.loc[key]).to_numpy() if key in logs.index else [])
        low, high = r.interval()
        word = decide.verdict(r, margin, family=max(family, 1))
        rows.append(
            {
                "workload": workload,
                "variant": variant,
                "workers": workers,
                "n_rounds": r.n,
                "estimate": r.estimate,
                "ci_low": low,
                "ci_high": high,
                "noise_sd": r.sd,
                "verdict": word,
                "family": family,
                "detectable_difference": decide.detectable(r.sd, r.n, margin, family=max(family, 1)),
                "false_verdict": word in (decide.FASTER, decide.SLOWER),
            }
        )
    return pd.DataFrame(rows, columns=AA_COLUMNS)


def sentinels(records: list[dict]) -> pd.DataFrame:
    """One row per sentinel run (one per round), in the order they ran."""
    if not records:
        columns = ["round", "status", "verified", "throughput", "started_at", "finished_at", "other_cores", "busy_machine"]
        return pd.DataFrame(columns=columns)
    rows = [{**run_row(r), "round": r.get("round", r["trial"])} for r in records]
    return pd.DataFrame(rows).sort_values("started_at").reset_index(drop=True)


def first_variant(frame: pd.DataFrame, name: str | None) -> pd.DataFrame:
    """The rows of the sweep's own runs, the first variant's (`name`, from the config; None: a sweep
    without variants): the report and its figures show them, the comparison page the others against them."""
    if name is None or "variant" not in frame:
        return frame
    return frame[frame.variant.fillna("").astype(str) == name]
