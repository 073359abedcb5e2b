"""Compare this sweep with finished sweeps (baselines): per cell, the throughput ratio and the memory
ratio (this sweep over the baseline) with 95 % intervals and verdicts, what differs between the
sweeps, and the cells that cannot be compared. Also: the cells of one sweep whose records mix hosts,
CPU models or commits.

A baseline is a finished sweep's results/ folder, copied anywhere: tables/runs.csv names the runs
that make the sweep, runs/ holds their records, machine.json the machine's limits. Both sweeps are
tabulated from their records by this parbench's stats.tables, and both intervals come from
stats.bootstrap_medians (trials, then batches), so the two sides are treated alike.
"""

import base64
import csv
import html
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from parbench import records, stats
from parbench.claims import MEMORY_TOLERANCE
from parbench.stats import KEYS

THROUGHPUT_VERDICTS = ("faster", "slower", "no clear difference")
MEMORY_VERDICTS = ("less memory", "more memory", "no clear difference")
ONLY_HERE, ONLY_BASELINE, NOT_COMPARABLE = "only here", "only in baseline", "not comparable"
# Workload parameters that change how many batches run, or the random data, but not what one task costs.
SAME_TASK_KEYS = ("batches", "warmup_batches", "min_timed_s", "seed")
FINISHED = ("runs/", "tables/runs.csv", "machine.json")
CSS = (Path(__file__).parent / "templates" / "report.css").read_text()


class BaselineError(ValueError):
    """A compare_with folder that cannot serve as a baseline; the message names the folder."""


# ---------------------------------------------------------------- a finished sweep on disk


def record_path(folder, workload, backend, workers, trial) -> Path:
    return Path(folder) / "runs" / str(workload) / str(backend) / f"workers-{int(float(workers))}" / f"trial-{int(float(trial))}.json"


def baseline_problems(folder, here="results") -> list[str]:
    """Why `folder` cannot serve as a baseline (empty if it can): not there, this sweep's own results,
    not a finished parbench results folder, records missing or unreadable, or of a newer schema_version."""
    name = f"compare_with: {folder}"
    path = Path(folder).expanduser()
    if not path.is_dir():
        where = f" (looked for {path.resolve()})" if str(path.resolve()) != str(folder) else ""
        return [f"{name} is not a folder{where}"]
    if path.resolve() == Path(here).resolve():
        return [f"{name} is this sweep's own results folder; copy a finished sweep's results/ elsewhere and name the copy"]
    absent = [part for part in FINISHED if not (path / part).exists()]
    if absent:
        return [
            f"{name} is not a parbench results folder: it has no {', '.join(absent)} "
            f"(a finished sweep's results/ folder holds {', '.join(FINISHED)}; copy the whole folder)"
        ]
    with open(path / "tables" / "runs.csv", newline="") as f:
        listed = list(csv.DictReader(f))
    if not listed or not {"workload", "backend", "workers", "trial"} <= set(listed[0]):
        return [f"{name} is not a parbench results folder: its tables/runs.csv lists no runs (workload, backend, workers, trial)"]
    paths = [record_path(path, r["workload"], r["backend"], r["workers"], r["trial"]) for r in listed]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        return [
            f"{name} misses {len(missing)} of the {len(paths)} records its tables/runs.csv lists, "
            f"e.g. {missing[0].relative_to(path)}; copy the whole results/ folder of that sweep"
        ]
    problems = []
    for p in paths:
        try:
            version = records.read(p).get("schema_version")
        except (OSError, ValueError) as error:
            problems.append(f"{name}: {p.relative_to(path)} is not a readable run record ({error})")
            continue
        if not isinstance(version, int):
            problems.append(f"{name}: {p.relative_to(path)} is not a parbench run record (no schema_version)")
        elif version > records.SCHEMA_VERSION:
            problems.append(
                f"{name} holds records of schema_version {version} (e.g. {p.relative_to(path)}), newer than this "
                f"parbench reads ({records.SCHEMA_VERSION}); compare with the parbench that wrote them"
            )
        if len(problems) >= 3:  # enough to say what is wrong
            break
    return problems


def baseline_files(folder) -> list[Path]:
    """Every file of a checked baseline that the comparison reads: its listed records, runs.csv and machine.json."""
    path = Path(folder).expanduser().resolve()
    with open(path / "tables" / "runs.csv", newline="") as f:
        runs = [record_path(path, r["workload"], r["backend"], r["workers"], r["trial"]) for r in csv.DictReader(f)]
    return [*runs, path / "tables" / "runs.csv", path / "machine.json"]


def baselines(value, here="results") -> dict[str, list[Path]]:
    """compare_with (a folder or a list of folders) as {folder as given: its files}, or BaselineError naming every problem."""
    folders = [value] if isinstance(value, str) else list(value or [])
    problems = [p for folder in folders for p in baseline_problems(folder, here)]
    if problems:
        raise BaselineError("cannot compare with a baseline:\n  " + "\n  ".join(problems))
    return {folder: baseline_files(folder) for folder in folders}


@dataclass
class Sweep:
    """One sweep: its name (a folder, or 'this sweep'), its records and machine.json."""

    name: str
    records: list[dict]
    machine: dict = field(default_factory=dict)


def load(name: str, record_paths, machine_path) -> Sweep:
    machine = json.loads(Path(machine_path).read_text()) if machine_path and Path(machine_path).exists() else {}
    return Sweep(name, [records.read(p) for p in record_paths], machine)


def load_baseline(folder) -> Sweep:
    *runs, _, machine = baseline_files(folder)
    return load(str(folder), runs, machine)


# ---------------------------------------------------------------- provenance within one sweep

# What a whole sweep should share. The code is judged per cell (each backend and workload has its own
# run code hash), not by the commit: a commit of docs or tests during a sweep changes no run.
PROVENANCE = {"host": "host", "cpu_model": "CPU model"}
CODE = ("code_hash", "run code")


def _short(field_name: str, value) -> str:
    return str(value)[:12] if field_name == CODE[0] and value != "unknown" else str(value)


def mixed_provenance(runs: pd.DataFrame) -> pd.DataFrame:
    """The cells of one sweep (runs.csv) whose records do not all share the sweep's most common host and
    CPU model, or whose runs ran different code (run code hash): one row per cell and field, with the
    values its runs had. Empty if the sweep is uniform. A missing value counts as 'unknown'."""
    rows = []

    def add(key, column, label, cell, usual):
        counts = cell.value_counts()
        values = ", ".join(f"{_short(column, v)} ×{n}" for v, n in counts.items())
        rows.append({**dict(zip(KEYS, key)), "field": label, "values": values, "usual": usual})

    for column, label in [*PROVENANCE.items(), CODE]:
        if column not in runs or runs.empty:
            continue
        values = runs[column].astype(object).where(runs[column].notna(), "unknown")
        usual = values.value_counts().index[0]
        for key, cell in values.groupby([runs[k] for k in KEYS], sort=True):
            if column == CODE[0] and cell.nunique() > 1:
                add(key, column, label, cell, "one code per cell")
            elif column != CODE[0] and (cell != usual).any():
                add(key, column, label, cell, _short(column, usual))
    return pd.DataFrame(rows, columns=[*KEYS, "field", "values", "usual"])


def _workers(n) -> str:
    return f"{int(n)} worker" if int(n) == 1 else f"{int(n)} workers"


def mixed_provenance_text(runs: pd.DataFrame) -> str:
    """One sentence for the top of a page naming the cells of mixed provenance, or '' if there are none."""
    mixed = mixed_provenance(runs)
    if mixed.empty:
        return ""
    parts = []
    for (label, usual), rows in mixed.groupby(["field", "usual"], sort=False):
        cells = "; ".join(f"{r.workload} {r.backend} at {_workers(r.workers)} ({r['values']})" for _, r in rows.iterrows())
        parts.append(f"{label}: most runs {usual}, but {cells}")
    return (
        "Not one machine and one code: this sweep's records mix " + ". ".join(parts) + ". Comparisons between these cells and "
        "the rest mix machines or code; delete their records and rerun to make the sweep uniform."
    )


# ---------------------------------------------------------------- what differs between sweeps

MACHINE_FACTS = ("host", "CPU model", "cores (physical / logical)", "memory")


def _distinct(values) -> str:
    """One value, or each distinct value with its number of runs: a mixed sweep shows as such."""
    values = ["–" if v is None or v == "" else str(v) for v in values]
    counts = pd.Series(values, dtype=object).value_counts()
    if len(counts) <= 1:
        return counts.index[0] if len(counts) else "–"
    return " | ".join(f"{v} ({n} runs)" for v, n in counts.items()) + " (mixed)"


def _num(v, digits=3) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}g}"


def facts(sweep: Sweep) -> dict[tuple[str, str], str]:
    """What a sweep ran on and with, as {(group, fact): text}, from its records and machine.json."""
    recs, machine = sweep.records, sweep.machine
    env = [r.get("environment") or {} for r in recs]
    settings = [r.get("settings") or {} for r in recs]
    out = {
        ("machine", "host"): _distinct(e.get("host") for e in env),
        ("machine", "CPU model"): _distinct(e.get("cpu_model") for e in env),
        ("machine", "cores (physical / logical)"): _distinct(f"{e.get('physical_cores')} / {e.get('logical_cores')}" for e in env),
        ("machine", "memory"): _distinct(f"{(e.get('memory_bytes') or 0) / 2**30:.1f} GiB" for e in env),
        ("machine", "platform"): _distinct(e.get("platform") for e in env),
        ("machine", "GEMM GFLOP/s, 1 core / all cores (machine.json)"): (
            f"{_num(machine.get('blas_gflops_single'))} / {_num(machine.get('blas_gflops_all'))}" if machine else "–"
        ),
        ("machine", "pickle 100 MiB, dumps / loads s (machine.json)"): (
            f"{_num(machine.get('pickle_100mib_dumps_s'), 2)} / {_num(machine.get('pickle_100mib_loads_s'), 2)}" if machine else "–"
        ),
        ("software", "Python"): _distinct(f"{e.get('python_implementation') or ''} {e.get('python')}".strip() for e in env),
        ("software", "BLAS"): _distinct(
            ", ".join(
                f"{b.get('internal_api')} {b.get('version')} ({b.get('threading_layer')}, {b.get('architecture')})"
                for b in e.get("blas") or []
            )
            for e in env
        ),
        ("software", "thread variables"): _distinct(
            " ".join(f"{k}={v}" for k, v in sorted((e.get("env") or {}).items())) or "none set" for e in env
        ),
    }
    packages = sorted({p for e in env for p in e.get("packages") or {}})
    for p in packages:
        out[("software", p)] = _distinct((e.get("packages") or {}).get(p) or "not installed" for e in env)
    out[("software", "record schema_version")] = _distinct(r.get("schema_version") for r in recs)
    out[("config", "backends")] = ", ".join(sorted({r["backend"] for r in recs}))
    out[("config", "worker counts")] = ", ".join(map(str, sorted({int(r["workers"]) for r in recs})))
    out[("config", "trials per cell")] = _distinct(
        pd.Series([(r["workload"], r["backend"], r["workers"]) for r in recs]).value_counts().sort_index().to_list()
    )
    out[("config", "blas_threads")] = _distinct(s.get("blas_threads") for s in settings)
    out[("config", "limits")] = _distinct(json.dumps(s.get("limits"), sort_keys=True) for s in settings)
    out[("config", "sampler")] = _distinct(json.dumps(s.get("sampler"), sort_keys=True) for s in settings)
    for workload in sorted({r["workload"] for r in recs}):
        out[("config", f"{workload} parameters")] = _distinct(
            json.dumps(r.get("params"), sort_keys=True) for r in recs if r["workload"] == workload
        )
    for backend in sorted({r["backend"] for r in recs}):
        options = [json.dumps(s.get("options"), sort_keys=True) for r, s in zip(recs, settings) if r["backend"] == backend]
        if any(o not in ("{}", "null") for o in options):
            out[("config", f"{backend} options")] = _distinct(options)
    out[("code", "commit")] = _distinct(
        f"{(e.get('git_commit') or 'unknown')[:12]}{' (uncommitted changes)' if e.get('git_dirty') else ''}" for e in env
    )
    out[("code", "run code hashes")] = ", ".join(sorted({str(e.get("code_hash"))[:8] for e in env}))
    load = [(r.get("system") or {}).get("loadavg_1m_start") for r in recs]
    if any(v is not None for v in load):  # recorded by newer parbench: how busy the machine was
        out[("machine", "load average at run starts, median (records)")] = _num(float(np.median([v for v in load if v is not None])), 2)
    return out


def differences(sweeps: list[Sweep]) -> pd.DataFrame:
    """Every fact of every sweep side by side (columns: group, fact, one per sweep, differs), differing facts first."""
    found = [facts(s) for s in sweeps]
    keys = list(dict.fromkeys(k for f in found for k in f))
    rows = []
    for group, name in keys:
        values = [f.get((group, name), "–") for f in found]
        rows.append({"group": group, "fact": name, **{s.name: v for s, v in zip(sweeps, values)}, "differs": len(set(values)) > 1})
    out = pd.DataFrame(rows)
    return out.sort_values("differs", ascending=False, kind="stable").reset_index(drop=True)


def framing(diff: pd.DataFrame, here: Sweep, base: Sweep) -> str:
    """What a ratio between `here` and `base` can mean, given what differs between them."""
    differs = diff[diff.differs]
    machine = [f for f in MACHINE_FACTS if f in set(differs.fact)]
    # Measurements (machine.json) differ between any two sweeps; settings, versions and code are what a ratio is about.
    other = [f for f in differs.fact if f not in MACHINE_FACTS and not f.endswith(("(machine.json)", "(records)"))]
    other_text = ", ".join(other)
    gemm = [_gemm_all(s) for s in (base, here)]
    gemm_text = (
        f" The machine's measured GEMM peak (all cores) was {_num(gemm[0])} GFLOP/s there and {_num(gemm[1])} here." if all(gemm) else ""
    )
    if machine and not other:
        return (
            f"Different machines ({', '.join(machine)} differ) and nothing else recorded differs: the ratios compare the machines, "
            "for this code and config." + gemm_text
        )
    if machine:
        return (
            f"Different machines ({', '.join(machine)} differ). A ratio here mixes the machine with everything else that differs "
            f"({other_text}): it says how this sweep's whole setup compares with the baseline's, not which difference caused it."
            + gemm_text
        )
    moved = all(gemm) and abs(gemm[1] / gemm[0] - 1) > 0.1
    moved_text = " That peak moved by more than 10 %: the machine itself was not the same." if moved else ""
    if not other:
        return (
            "Same machine, and nothing recorded differs (an A/A comparison): a verdict other than no clear difference is a false "
            "positive or a change of the machine's state between the sweeps (other load, temperature)." + gemm_text + moved_text
        )
    return (
        f"Same machine (host, CPU model, cores and memory agree). What differs: {other_text}. Ratios reflect those differences "
        "plus any change of the machine's state between the sweeps (other load, temperature, kernel), which the intervals do not "
        "cover: they cover the variation between runs within each sweep." + gemm_text + moved_text
    )


def _gemm_all(sweep: Sweep):
    return sweep.machine.get("blas_gflops_all")


# ---------------------------------------------------------------- cells and verdicts


@dataclass
class Cell:
    n_runs: int
    n_clean: int
    statuses: str
    groups: list  # per clean trial: its batches' throughputs (what bootstrap_medians resamples)
    peaks: np.ndarray  # per clean trial: peak tree PSS, bytes
    task: dict  # what one task is: workload parameters beyond SAME_TASK_KEYS, and tasks per batch
    memory_scope: str  # what the tree PSS covers: 'local' or 'driver only' (an external cluster)


def cells(sweep: Sweep) -> dict[tuple, Cell]:
    """Every cell of a sweep with what a comparison needs."""
    if not sweep.records:
        return {}
    runs, batches = stats.tables(sweep.records)
    clean = runs[(runs.status == "ok") & runs.verified.astype(bool)]
    by_cell = {}
    for r in sweep.records:
        by_cell.setdefault((r["workload"], r["backend"], int(r["workers"])), []).append(r)
    out = {}
    for key, cell in runs.groupby(KEYS, sort=True):
        key = (key[0], key[1], int(key[2]))
        ok = clean[(clean.workload == key[0]) & (clean.backend == key[1]) & (clean.workers == key[2])]
        good = batches[(batches.workload == key[0]) & (batches.backend == key[1]) & (batches.workers == key[2])]
        good = good[good.trial.isin(ok.trial)]
        first = by_cell[key][0]
        params = {k: v for k, v in (first.get("params") or {}).items() if k not in SAME_TASK_KEYS}
        in_tree = all((r.get("cluster") or {}).get("workers_in_memory_tree", True) for r in by_cell[key])
        out[key] = Cell(
            n_runs=len(cell),
            n_clean=len(ok),
            statuses=", ".join(f"{s} ×{n}" for s, n in cell.status.value_counts().sort_index().items()),
            groups=[g.throughput.to_numpy() for _, g in good.groupby("trial") if len(g)],
            peaks=ok.peak_tree_pss_bytes.dropna().to_numpy(dtype=float),
            task={**params, "tasks_per_batch": first.get("tasks_per_batch")},
            memory_scope="local" if in_tree else "driver only",
        )
    return out


def throughput_verdict(low: float, high: float) -> str:
    """From the ratio's 95 % interval: faster if it lies above 1, slower if below, else no clear difference."""
    if low > 1:
        return "faster"
    if high < 1:
        return "slower"
    return "no clear difference"


def memory_verdict(ratio: float, low: float, high: float) -> str:
    """More or less memory only where the interval excludes 1 and the ratio is beyond MEMORY_TOLERANCE."""
    if low > 1 and ratio > 1 + MEMORY_TOLERANCE:
        return "more memory"
    if high < 1 and ratio < 1 - MEMORY_TOLERANCE:
        return "less memory"
    return "no clear difference"


def _interval(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - stats.CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _resampled_medians(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Medians of trials resampled with replacement (a peak is one number per trial: one level)."""
    return np.median(rng.choice(values, size=(n_boot, len(values))), axis=1)


def _why_not(here: Cell, base: Cell) -> str | None:
    if not here.groups:
        return f"no clean run here ({here.statuses})"
    if not base.groups:
        return f"no clean run in the baseline ({base.statuses})"
    # A key only one side has is a parameter one parbench version lacks: not a difference of task.
    differ = [k for k in sorted(here.task.keys() & base.task.keys()) if here.task[k] != base.task[k]]
    if differ:
        return "not the same task: " + "; ".join(
            f"{k} {json.dumps(here.task[k])} here, {json.dumps(base.task[k])} in the baseline" for k in differ
        )
    return None


COLUMNS = [
    "baseline",
    *KEYS,
    "throughput_ratio",
    "throughput_ratio_ci_low",
    "throughput_ratio_ci_high",
    "verdict",
    "memory_ratio",
    "memory_ratio_ci_low",
    "memory_ratio_ci_high",
    "memory_verdict",
    "throughput_here",
    "throughput_here_ci_low",
    "throughput_here_ci_high",
    "throughput_baseline",
    "throughput_baseline_ci_low",
    "throughput_baseline_ci_high",
    "peak_tree_pss_bytes_here",
    "peak_tree_pss_bytes_baseline",
    "n_clean_here",
    "n_clean_baseline",
    "reason",
]


def compare(here: Sweep, bases: list[Sweep], seed: int = 0, n_boot: int = stats.N_BOOT) -> pd.DataFrame:
    """comparison.csv: one row per baseline × cell present in either sweep. Ratios are this sweep over the
    baseline (throughput above 1: faster now; memory above 1: more memory now); intervals are percentiles
    of the ratio of independent two-level bootstrap medians of the two sweeps."""
    rng = np.random.default_rng(seed)
    mine, boots = cells(here), {}

    def medians(sweep_name: str, key, cell: Cell):
        if (sweep_name, key) not in boots:
            boots[(sweep_name, key)] = (stats.bootstrap_medians(cell.groups, rng, n_boot), _resampled_medians(cell.peaks, rng, n_boot))
        return boots[(sweep_name, key)]

    rows = []
    for base in bases:
        theirs = cells(base)
        for key in sorted(set(mine) | set(theirs)):
            row = {c: np.nan for c in COLUMNS} | {"baseline": base.name, **dict(zip(KEYS, key)), "reason": ""}
            a, b = mine.get(key), theirs.get(key)
            if a is None or b is None:
                verdict = ONLY_BASELINE if a is None else ONLY_HERE
                row.update(verdict=verdict, memory_verdict=verdict, reason="not run here" if a is None else "not run in the baseline")
                rows.append(row)
                continue
            row.update(n_clean_here=a.n_clean, n_clean_baseline=b.n_clean)
            why = _why_not(a, b)
            if why:
                row.update(verdict=NOT_COMPARABLE, memory_verdict=NOT_COMPARABLE, reason=why)
                rows.append(row)
                continue
            (ta, ma), (tb, mb) = medians("here", key, a), medians(base.name, key, b)
            here_median, base_median = np.median(np.concatenate(a.groups)), np.median(np.concatenate(b.groups))
            low, high = _interval(ta / tb)
            row.update(
                throughput_ratio=here_median / base_median,
                throughput_ratio_ci_low=low,
                throughput_ratio_ci_high=high,
                verdict=throughput_verdict(low, high),
                throughput_here=here_median,
                throughput_baseline=base_median,
            )
            row["throughput_here_ci_low"], row["throughput_here_ci_high"] = _interval(ta)
            row["throughput_baseline_ci_low"], row["throughput_baseline_ci_high"] = _interval(tb)
            if len(a.peaks) and len(b.peaks) and a.memory_scope == b.memory_scope:
                ratio = float(np.median(a.peaks) / np.median(b.peaks))
                mlow, mhigh = _interval(ma / mb)
                row.update(
                    memory_ratio=ratio,
                    memory_ratio_ci_low=mlow,
                    memory_ratio_ci_high=mhigh,
                    memory_verdict=memory_verdict(ratio, mlow, mhigh),
                    peak_tree_pss_bytes_here=float(np.median(a.peaks)),
                    peak_tree_pss_bytes_baseline=float(np.median(b.peaks)),
                )
            else:
                row.update(
                    memory_verdict=NOT_COMPARABLE,
                    reason=f"memory: the tree covers {a.memory_scope} here, {b.memory_scope} in the baseline"
                    if len(a.peaks) and len(b.peaks)
                    else "memory: no peak recorded",
                )
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def not_comparable(table: pd.DataFrame) -> pd.DataFrame:
    """The rows without a throughput or memory verdict from intervals, with why."""
    judged = table.verdict.isin(THROUGHPUT_VERDICTS) & table.memory_verdict.isin(MEMORY_VERDICTS)
    return table.loc[~judged, ["baseline", *KEYS, "verdict", "memory_verdict", "reason"]]


# ---------------------------------------------------------------- the figure

COLOURS = {
    "faster": "#0173b2",
    "less memory": "#0173b2",
    "slower": "#d55e00",
    "more memory": "#d55e00",
    "no clear difference": "#7f7f7f",
}
MARKERS = ["o", "s", "^", "D", "v"]
TICKS = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 5, 10, 20, 50]


def ticks(reach: float, count: int = 9) -> list[float]:
    """Ticks of a log ratio axis from 1/reach to reach: 1 and others at least 1/count of the axis apart, so labels never touch."""
    gap = 2 * np.log(reach) / count
    kept = [1.0]
    for side in (sorted(t for t in TICKS if 1 < t <= reach), sorted((t for t in TICKS if 1 / reach <= t < 1), reverse=True)):
        last = 1.0
        for t in side:
            if abs(np.log(t / last)) >= gap:
                kept.append(t)
                last = t
    return sorted(kept)


def _rows(table: pd.DataFrame) -> list[tuple]:
    """Cells top to bottom: serial first, then backends by name, each by worker count."""
    cells_ = table[["backend", "workers"]].drop_duplicates()
    return sorted(map(tuple, cells_.values.tolist()), key=lambda c: (c[0] != "serial", c[0], int(c[1])))


def figure(table: pd.DataFrame, workload: str):
    """Forest plot of one workload: per cell, the throughput ratio and the memory ratio with their 95 %
    intervals, a line at 1, colour by verdict; one marker per baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    data = table[table.workload == workload]
    rows, names = _rows(data), list(dict.fromkeys(data.baseline))
    backends_ = list(dict.fromkeys(b for b, _ in rows))
    height = 1.4 + 0.24 * max(1, len(rows)) * max(1, len(names) * 0.7)
    fig, axes = plt.subplots(1, 2, figsize=(7.2, height), sharey=True)
    panels = (
        ("throughput_ratio", "verdict", "throughput, this sweep ÷ baseline\n(above 1: faster now)"),
        ("memory_ratio", "memory_verdict", "peak tree PSS, this sweep ÷ baseline\n(above 1: more memory now)"),
    )
    offsets = np.linspace(-0.22, 0.22, len(names)) if len(names) > 1 else [0.0]
    for ax, (column, verdict, label) in zip(axes, panels):
        values = data[[column, f"{column}_ci_low", f"{column}_ci_high"]].to_numpy(dtype=float)
        finite = values[np.isfinite(values) & (values > 0)]
        reach = max(1.25, float(np.max(np.maximum(finite, 1 / finite))) * 1.15) if finite.size else 1.25
        ax.axvline(1, color="0.2", lw=0.9)
        for y, (backend, workers) in enumerate(rows):
            if backends_.index(backend) % 2:  # a light band for every other backend, to read across
                ax.axhspan(y - 0.5, y + 0.5, color="0.95", lw=0, zorder=0)
            for offset, name, marker in zip(offsets, names, MARKERS):
                found = data[(data.backend == backend) & (data.workers == workers) & (data.baseline == name)]
                if found.empty:
                    continue
                r = found.iloc[0]
                if not np.isfinite(r[column]):
                    ax.text(1, y + offset, f" {r[verdict]}", va="center", ha="left", fontsize=6.5, color="0.35", style="italic")
                    continue
                colour = COLOURS.get(r[verdict], "0.5")
                ax.plot([r[f"{column}_ci_low"], r[f"{column}_ci_high"]], [y + offset] * 2, color=colour, lw=1.6, solid_capstyle="butt")
                ax.plot(r[column], y + offset, marker=marker, color=colour, ms=4.5, ls="")
        ax.set_xscale("log")
        ax.set_xlim(1 / reach, reach)
        ax.xaxis.set_major_locator(FixedLocator(ticks(reach)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.set_xlabel(label, fontsize=7.5)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", color="0.88", lw=0.6)
        ax.grid(axis="y", visible=False)
        ax.set_axisbelow(True)
    axes[0].set_yticks(range(len(rows)), labels=[f"{b} · {_workers(w)}" for b, w in rows])
    axes[0].set_ylim(max(len(rows), 1) - 0.5, -0.5)
    line = {"marker": "o", "ms": 4, "lw": 1.6}
    handles = [
        Line2D([], [], color=COLOURS["faster"], label="faster / less memory", **line),
        Line2D([], [], color=COLOURS["slower"], label="slower / more memory", **line),
        Line2D([], [], color=COLOURS["no clear difference"], label="no clear difference", **line),
    ]
    if len(names) > 1:
        handles += [Line2D([], [], color="0.3", marker=m, ls="", ms=4.5, label=f"against {n}") for n, m in zip(names, MARKERS)]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False, fontsize=7)
    against = "the baseline" if len(names) < 2 else "each baseline"
    fig.suptitle(f"{workload}: this sweep against {against}, ratios with 95 % intervals", fontsize=9, x=0.02, ha="left")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the page


def _esc(value) -> str:
    return html.escape(str(value))


def _fmt(v, unit="") -> str:
    if v is None or not np.isfinite(v):
        return "–"
    a = abs(v)
    text = f"{v:,.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:#.2g}"
    return text + unit


def _with_interval(v, low, high, unit="") -> str:
    return "–" if not np.isfinite(v) else f"{_fmt(v, unit)} [{_fmt(low)}–{_fmt(high, unit)}]"


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=200, bbox_inches="tight")
    return buffer.getvalue()


def verdict_table(table: pd.DataFrame) -> pd.DataFrame:
    """The verdicts as the page shows them: one row per cell (serial first, as in the figure), values with their intervals."""
    mib = 2**20
    order = {cell: i for i, cell in enumerate(_rows(table))}
    table = table.iloc[
        sorted(range(len(table)), key=lambda i: (order[(table.backend.iloc[i], table.workers.iloc[i])], table.baseline.iloc[i]))
    ]
    out = pd.DataFrame(
        {
            "baseline": table.baseline,
            "backend": table.backend,
            "workers": table.workers.astype(int),
            "throughput here": [
                _with_interval(*v) for v in table[["throughput_here", "throughput_here_ci_low", "throughput_here_ci_high"]].to_numpy()
            ],
            "throughput baseline": [
                _with_interval(*v)
                for v in table[["throughput_baseline", "throughput_baseline_ci_low", "throughput_baseline_ci_high"]].to_numpy()
            ],
            "throughput ratio": [
                _with_interval(*v, "×")
                for v in table[["throughput_ratio", "throughput_ratio_ci_low", "throughput_ratio_ci_high"]].to_numpy()
            ],
            "verdict": table.verdict,
            "peak PSS here / baseline, MiB": [
                f"{_fmt(h / mib)} / {_fmt(b / mib)}" if np.isfinite(h) else "–"
                for h, b in table[["peak_tree_pss_bytes_here", "peak_tree_pss_bytes_baseline"]].to_numpy()
            ],
            "memory ratio": [
                _with_interval(*v, "×") for v in table[["memory_ratio", "memory_ratio_ci_low", "memory_ratio_ci_high"]].to_numpy()
            ],
            "memory verdict": table.memory_verdict,
        }
    )
    return out if table.baseline.nunique() > 1 else out.drop(columns="baseline")


def _html_table(frame: pd.DataFrame, classes: str = "") -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    body = ""
    for _, row in frame.iterrows():
        cls = row.get("verdict", "")
        cells_ = "".join(
            f"<td class='v-{_esc(str(v).replace(' ', '-'))}'>{_esc(v)}</td>"
            if c in ("verdict", "memory verdict")
            else f"<td>{_esc(v)}</td>"
            for c, v in row.items()
        )
        body += f"<tr data-verdict='{_esc(cls)}'>{cells_}</tr>"
    return f"<table class='{classes}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _counts(table: pd.DataFrame, column: str) -> str:
    counts = table[column].value_counts()
    order = [*THROUGHPUT_VERDICTS, *MEMORY_VERDICTS, ONLY_HERE, ONLY_BASELINE, NOT_COMPARABLE]
    return ", ".join(f"{counts[v]} {v}" for v in dict.fromkeys(order) if v in counts)


EXTRA_CSS = (
    ".banner{background:#fdf3e7;border-left:4px solid #d55e00;padding:.5em .8em;margin:.8em 0}"
    "tr.differs td{background:#fff6df}td.v-faster,td.v-less-memory{color:#0173b2;font-weight:600}"
    "td.v-slower,td.v-more-memory{color:#d55e00;font-weight:600}td.v-no-clear-difference{color:#555}"
    "figure img{max-width:900px}table.cmp{font-size:.8em}"
    "table.cmp td{white-space:nowrap}"
)
SECTIONS = {"differs": "What differs", "verdicts": "Verdicts", "not-comparable": "Cells not compared", "method": "How to read this"}


def _facts_table(diff: pd.DataFrame, names: list[str]) -> str:
    head = "<tr><th>group</th><th>fact</th>" + "".join(f"<th>{_esc(n)}</th>" for n in names) + "</tr>"
    rows = "".join(
        f"<tr class='{'differs' if r.differs else 'same'}'><td>{_esc(r.group)}</td><td>{_esc(r.fact)}</td>"
        + "".join(f"<td>{_esc(r[n])}</td>" for n in names)
        + "</tr>"
        for _, r in diff.iterrows()
    )
    return f"<table class=facts>{head}{rows}</table>"


def page(here: Sweep, bases: list[Sweep], table: pd.DataFrame, figures: dict[str, bytes]) -> str:
    """comparison.html: what differs, the verdicts as tables and figures, the cells not compared, and how to read them."""
    parts = []
    for base in bases:
        diff = differences([base, here])
        names = [base.name, here.name]
        changed, same = diff[diff.differs], diff[~diff.differs]
        parts.append(
            f"<h3>{_esc(base.name)} (baseline) → this sweep</h3><p class=banner>{_esc(framing(diff, here, base))}</p>"
            + (_facts_table(changed, names) if len(changed) else "<p>Nothing recorded differs.</p>")
            + f"<details><summary>The {len(same)} recorded facts that agree</summary>{_facts_table(same, names)}</details>"
        )
    mixed = [(s.name, mixed_provenance_text(stats.tables(s.records)[0])) for s in [here, *bases] if s.records]
    parts += [f"<p class=banner><strong>{_esc(n)}:</strong> {_esc(t)}</p>" for n, t in mixed if t]
    differs = f'<section id="differs"><h2>{SECTIONS["differs"]}</h2>{"".join(parts)}</section>'

    verdicts = [
        "<p class=note>A ratio is this sweep over the baseline, median over timed batches of all clean trials on each side; "
        "brackets hold its 95 % interval. Verdicts: <em>faster</em> or <em>slower</em> where the whole interval lies above or below 1, "
        f"else <em>no clear difference</em>; memory (peak PSS of the process tree, median over trials) is called different only "
        f"where its interval excludes 1 and the ratio is more than {MEMORY_TOLERANCE:.0%} from 1.</p>"
    ]
    for workload, part in table.groupby("workload", sort=True):
        verdicts.append(
            f"<h3>{_esc(workload)}</h3><p>Throughput: {_esc(_counts(part, 'verdict'))}. "
            f"Memory: {_esc(_counts(part, 'memory_verdict'))}.</p>"
        )
        if workload in figures:
            data = base64.b64encode(figures[workload]).decode()
            verdicts.append(
                f"<figure><img src='data:image/png;base64,{data}' alt='{_esc(workload)} comparison'><figcaption>Per cell, the ratio "
                "(point) and its 95 % interval (bar); the vertical line is 1 (no change); cells without a ratio are named at 1."
                "</figcaption></figure>"
            )
        verdicts.append(_html_table(verdict_table(part), "num cmp"))
    verdicts = f'<section id="verdicts"><h2>{SECTIONS["verdicts"]}</h2>{"".join(verdicts)}</section>'

    skipped = not_comparable(table)
    if skipped.empty:
        body = "<p>None: every cell ran cleanly in both sweeps and did the same task.</p>"
    else:
        shown = skipped.assign(workers=skipped.workers.astype(int))
        body = _html_table(shown if table.baseline.nunique() > 1 else shown.drop(columns="baseline"))
    skipped = f'<section id="not-comparable"><h2>{SECTIONS["not-comparable"]}</h2>{body}</section>'

    method = (
        f'<section id="method"><h2>{SECTIONS["method"]}</h2><ul>'
        "<li>Both sweeps are tabulated from their run records by the same code; a run counts if it is ok and verified.</li>"
        "<li>Throughput interval: each sweep is resampled on its own, trials with replacement and then batches within each "
        f"chosen trial ({stats.N_BOOT} times); the ratio of the two resampled medians gives the percentile interval. It covers "
        "the variation between runs and batches within each sweep, not a change of the machine's state between the sweeps.</li>"
        "<li>How far to trust it: on synthetic sweeps of known ratio (3 trials of 10 batches) it held the true ratio 87–99.5 % of "
        "the time, more than 95 % when runs differ little from each other, less when the spread between processes is larger "
        "than the noise between batches (three trials show little of it). A cell with one trial has no variation between "
        "processes in its interval at all. More trials, and sweeps run back to back on a quiet machine, make verdicts safer.</li>"
        "<li>Memory: one peak per trial; trials are resampled (one level).</li>"
        "<li>Not compared: a cell run in one sweep only, without a clean run on one side, or whose task differs (workload "
        f"parameters other than {', '.join(SAME_TASK_KEYS)}, or tasks per batch).</li>"
        "<li>The full table, with both sweeps' medians and intervals: <code>results/tables/comparison.csv</code>.</li></ul></section>"
    )
    nav = "".join(f'<a href="#{k}">{_esc(v)}</a>' for k, v in SECTIONS.items())
    names = ", ".join(b.name for b in bases)
    head = (
        f"<h1>parbench: this sweep against {_esc(names)}</h1><p class=sub>{len(here.records)} runs here, "
        + ", ".join(f"{len(b.records)} in {_esc(b.name)}" for b in bases)
        + f" · generated {_esc(time.strftime('%Y-%m-%d %H:%M'))}</p><nav>{nav}</nav>"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>parbench comparison</title><style>{CSS}{EXTRA_CSS}</style></head>"
        f"<body>{head}{differs}{verdicts}{skipped}{method}</body></html>"
    )


def write(table_csv, page_html, png: list, svg: list, here: Sweep, bases: list[Sweep], seed: int = 0) -> pd.DataFrame:
    """Write comparison.csv, the figures (paths end in `comparison_{workload}.png|svg`) and comparison.html."""
    import matplotlib.pyplot as plt

    table = compare(here, bases, seed=seed)
    table.to_csv(table_csv, index=False)
    figures = {}
    for png_path, svg_path in zip(png, svg):
        workload = Path(png_path).stem.removeprefix("comparison_")
        fig = figure(table, workload)
        figures[workload] = _png(fig)
        Path(png_path).write_bytes(figures[workload])
        fig.savefig(svg_path, bbox_inches="tight")
        plt.close(fig)
    Path(page_html).write_text(page(here, bases, table, figures), encoding="utf-8")
    return table
