"""From run records to tables: runs (one row per run), batches (one row per timed batch) and
stats (one row per workload x backend x workers, with bootstrap intervals)."""

import numpy as np
import pandas as pd

KEYS = ["workload", "backend", "workers"]
N_BOOT = 2000
CONFIDENCE = 0.95
# A run was made on a busy machine when the rest of the machine (other processes, and other guests
# through steal) used more than this many cores on average beside it (README, "A busy machine").
BUSY_OTHER_CORES = 0.25


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
    judged = other_cores_batches if other_cores_batches is not None else other_cores  # records made before the per-batch figure
    return {
        **{k: r[k] for k in ("workload", "backend", "workers", "trial")},
        "status": r.get("status"),
        "reason": r.get("reason"),
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
        "exact_source": m.get("exact_source"),
        "blas_threads": r.get("blas_threads"),
        "workers_seen": timed_phase(r.get("workers_seen")),
        "state_builds_timed": timed_phase(r.get("state_builds")),
        "model": f"{model['pipeline']} {model['version']}" if model else None,
        "module": module.get("source"),
        "module_sha256": module.get("sha256"),
        "gil_enabled": r.get("gil_enabled"),
        "loadavg_1m_start": system.get("loadavg_1m_start"),
        "loadavg_1m_end": system.get("loadavg_1m_end"),
        "cpu_steal_s": system.get("cpu_steal_s"),
        "other_cpu_s": other,
        "tree_totals_source": cpu.get("tree_totals_source"),
        "other_cores": other_cores,
        "other_cores_batches": other_cores_batches,
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
    return runs.sort_values([*KEYS, "trial"]).reset_index(drop=True), batches


def bootstrap_medians(groups: list[np.ndarray], rng: np.random.Generator, n_boot: int = N_BOOT) -> np.ndarray:
    """Medians of two-level resamples: trials with replacement, then batches within each chosen trial,
    so that variance between processes counts as well as variance between batches."""
    out = np.empty(n_boot)
    for b in range(n_boot):
        chosen = rng.integers(len(groups), size=len(groups))
        out[b] = np.median(np.concatenate([rng.choice(groups[i], size=len(groups[i])) for i in chosen]))
    return out


def _interval(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def stats(runs: pd.DataFrame, batches: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per workload x backend x workers over its clean runs (ok and verified).

    throughput_*: items/s, median over all timed batches of all clean trials, with a 95 %
    two-level bootstrap interval. speedup_vs_serial: against serial at the same worker count
    (the same batches, serial using every core for BLAS), so serial's own speedup is 1.
    """
    rng = np.random.default_rng(seed)
    ok_runs = clean(runs)
    good = batches.merge(ok_runs[[*KEYS, "trial"]], on=[*KEYS, "trial"])
    rows, boots = [], {}
    for key, cell in runs.groupby(KEYS, sort=True):
        ok = ok_runs.merge(pd.DataFrame([dict(zip(KEYS, key))]), on=KEYS)
        groups = [g.throughput.to_numpy() for _, g in good.merge(ok[[*KEYS, "trial"]]).groupby("trial")]
        row = dict(zip(KEYS, key))
        row.update(
            n_runs=len(cell),
            n_clean=len(ok),
            all_clean=len(ok) == len(cell),
            statuses=", ".join(f"{s} x{n}" for s, n in cell.status.value_counts().sort_index().items()),
        )
        if groups:
            boots[key] = bootstrap_medians(groups, rng)
            low, high = _interval(boots[key])
            row.update(
                throughput_median=float(np.median(np.concatenate(groups))),
                throughput_ci_low=low,
                throughput_ci_high=high,
                batch_s_median=float(np.median(1 / np.concatenate(groups) * ok.items_per_batch.iloc[0])),
            )
        for column in (
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
            "blog_timer_s",
        ):
            row[f"{column}_median"] = ok[column].median() if len(ok) and column in ok else np.nan
        # Runs made on a busy machine (all of the cell's runs, clean or not).
        row["n_busy"] = int((cell.busy_machine == True).sum()) if "busy_machine" in cell else 0  # noqa: E712 (True, False or missing)
        row["items_per_task"] = cell.items_per_task.iloc[0]
        row["gil_enabled"] = bool(ok.gil_enabled.all()) if len(ok) and ok.gil_enabled.notna().all() else np.nan
        row["blas_threads"] = ok.blas_threads.mode().iloc[0] if len(ok) and ok.blas_threads.notna().any() else np.nan
        row["physical_cores"] = cell.physical_cores.dropna().iloc[0] if cell.physical_cores.notna().any() else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    for column in ("throughput_median", "throughput_ci_low", "throughput_ci_high"):
        if column not in out:
            out[column] = np.nan
    out["speedup_vs_serial"] = out["speedup_ci_low"] = out["speedup_ci_high"] = np.nan
    for i, row in out.iterrows():
        base = (row.workload, "serial", row.workers)
        if tuple(row[KEYS]) in boots and base in boots:
            serial = out[(out.workload == row.workload) & (out.backend == "serial") & (out.workers == row.workers)].iloc[0]
            out.loc[i, "speedup_vs_serial"] = row.throughput_median / serial.throughput_median
            ratio = boots[tuple(row[KEYS])] / rng.permutation(boots[base])
            out.loc[i, ["speedup_ci_low", "speedup_ci_high"]] = _interval(ratio) if row.backend != "serial" else (1.0, 1.0)
    out["efficiency"] = out.speedup_vs_serial / np.minimum(out.workers, out.physical_cores)
    return out


def sentinels(records: list[dict]) -> pd.DataFrame:
    """One row per sentinel run (one per round), in the order they ran."""
    if not records:
        columns = ["round", "status", "verified", "throughput", "started_at", "finished_at", "other_cores", "busy_machine"]
        return pd.DataFrame(columns=columns)
    rows = [{**run_row(r), "round": r.get("round", r["trial"])} for r in records]
    return pd.DataFrame(rows).sort_values("started_at").reset_index(drop=True)
