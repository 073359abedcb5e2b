"""Compare runs: every other variant of this sweep with its first variant (paired within rounds,
the method's way), and this sweep with finished sweeps of other sessions (baselines, compare_with,
normalised by both sweeps' sentinels). Per cell, the throughput ratio and the memory ratio with
90 % intervals and the method's words (parbench.judge holds that logic), what differs between the
sides, and the cells that cannot be compared. Also: the cells of one sweep whose records mix hosts,
CPU models or commits.

A baseline is a finished sweep's results/ folder, copied anywhere: tables/runs.csv names the runs
that make the sweep, runs/ holds their records, sentinels/ its sentinel runs, machine.json the
machine's limits. Both sides are read from their records by this parbench, so they are treated alike.
"""

import base64
import html
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from parbench import judge, records, stats
from parbench.baseline import BaselineError, baseline_files, baseline_problems, baselines, listed_records, sentinel_files
from parbench.judge import MEMORY_VERDICTS, NOT_COMPARABLE, ONLY_BASELINE, ONLY_HERE, SAME_TASK_KEYS, THROUGHPUT_VERDICTS
from parbench.stats import KEYS

__all__ = [
    "MEMORY_VERDICTS", "NOT_COMPARABLE", "ONLY_BASELINE", "ONLY_HERE", "SAME_TASK_KEYS", "THROUGHPUT_VERDICTS",
    "BaselineError", "baseline_files", "baseline_problems", "baselines", "listed_records", "sentinel_files",
]  # fmt: skip
CSS = (Path(__file__).parent / "templates" / "report.css").read_text()


@dataclass
class Sweep:
    """One sweep: its name (a folder, or 'this sweep'), its run records, machine.json and its sentinel runs."""

    name: str
    records: list[dict]
    machine: dict = field(default_factory=dict)
    sentinels: list[dict] = field(default_factory=list)


def load(name: str, record_paths, machine_path, sentinel_paths=()) -> Sweep:
    machine = json.loads(Path(machine_path).read_text()) if machine_path and Path(machine_path).exists() else {}
    return Sweep(name, [records.read(p) for p in record_paths], machine, [records.read(p) for p in sentinel_paths])


def load_baseline(folder) -> Sweep:
    path = Path(folder).expanduser().resolve()
    return load(str(folder), listed_records(path), path / "machine.json", sentinel_files(path))


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
        # A/A twins are no cells (judge.cells): a baseline read from its runs.csv lists them, this sweep's rule does not.
        pd.Series([(r["workload"], r["backend"], r["workers"]) for r in recs if not r.get("twin")]).value_counts().sort_index().to_list()
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
            "Same machine, and nothing recorded differs (an A/A comparison): a verdict of faster or slower is a false "
            "positive or a change of the machine's state between the sweeps (other load, temperature)." + gemm_text + moved_text
        )
    return (
        f"Same machine (host, CPU model, cores and memory agree). What differs: {other_text}. Ratios reflect those differences "
        "plus any change of the machine's state between the sweeps (other load, temperature, kernel) that the sentinels do not "
        "cancel (one that slows some workloads more than others), which the intervals do not cover." + gemm_text + moved_text
    )


def _gemm_all(sweep: Sweep):
    return sweep.machine.get("blas_gflops_all")


# ---------------------------------------------------------------- cells and verdicts


def compare(here: Sweep, bases: list[Sweep], margin: float = judge.MARGIN, variants=None) -> pd.DataFrame:
    """comparison.csv: one row per comparison x cell. First every other variant of this sweep against
    its first variant (paired within rounds), then this sweep against each baseline (normalised by the
    sentinels). Ratios are the compared side over the baseline (throughput above 1: faster; memory
    above 1: more memory), with 90 % intervals and the method's words (parbench.judge)."""
    rows = judge.within(here.records, variants, margin)
    for base in bases:
        rows += judge.across(here.records, here.sentinels, base.records, base.sentinels, base.name, margin)
    return pd.DataFrame(rows, columns=judge.COLUMNS)


def not_comparable(table: pd.DataFrame) -> pd.DataFrame:
    """The rows without a throughput or memory verdict from intervals, with why."""
    judged = table.verdict.isin(THROUGHPUT_VERDICTS) & table.memory_verdict.isin(MEMORY_VERDICTS)
    return table.loc[~judged, ["baseline", "variant", *KEYS, "verdict", "memory_verdict", "reason"]]


# ---------------------------------------------------------------- the figure

COLOURS = {
    "faster": "#0173b2",
    "less memory": "#0173b2",
    "slower": "#d55e00",
    "more memory": "#d55e00",
    "equivalent": "#029e73",
    "cannot tell": "#7f7f7f",
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


def against(table: pd.DataFrame) -> pd.Series:
    """What each row compares, as a label: 'B ÷ A' for variants, 'this sweep ÷ folder' for a baseline."""
    here = [
        f"{v} ÷ {b}" if k == judge.WITHIN else f"this sweep{f' ({v})' if isinstance(v, str) and v else ''} ÷ {b}"
        for v, b, k in zip(table.variant, table.baseline, table.kind)
    ]
    return pd.Series(here, index=table.index, dtype=object)


def _margin(table: pd.DataFrame) -> float:
    return float(table.margin.dropna().iloc[0]) if table.margin.notna().any() else judge.MARGIN


def _rows(table: pd.DataFrame) -> list[tuple]:
    """Cells top to bottom: serial first, then backends by name, each by worker count."""
    cells_ = table[["backend", "workers"]].drop_duplicates()
    return sorted(map(tuple, cells_.values.tolist()), key=lambda c: (c[0] != "serial", c[0], int(c[1])))


def figure(table: pd.DataFrame, workload: str):
    """Forest plot of one workload: per cell, the throughput ratio and the memory ratio with their 90 %
    intervals, a line at 1 and the margin's band around it, colour by verdict; one marker per comparison."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    data = table[table.workload == workload]
    labels = against(data)
    rows, names, margin = _rows(data), list(dict.fromkeys(labels)), _margin(table)
    backends_ = list(dict.fromkeys(b for b, _ in rows))
    height = 1.4 + 0.24 * max(1, len(rows)) * max(1, len(names) * 0.7)
    fig, axes = plt.subplots(1, 2, figsize=(7.2, height), sharey=True)
    panels = (
        ("throughput_ratio", "verdict", "throughput ratio\n(above 1: faster than the baseline)"),
        ("memory_ratio", "memory_verdict", "peak tree PSS ratio\n(above 1: more memory than the baseline)"),
    )
    offsets = np.linspace(-0.22, 0.22, len(names)) if len(names) > 1 else [0.0]
    for ax, (column, verdict, label) in zip(axes, panels):
        values = data[[column, f"{column}_ci_low", f"{column}_ci_high"]].to_numpy(dtype=float)
        finite = values[np.isfinite(values) & (values > 0)]
        reach = max(1.25, float(np.max(np.maximum(finite, 1 / finite))) * 1.15) if finite.size else 1.25
        ax.axvspan(1 / (1 + margin), 1 + margin, color="#029e73", alpha=0.12, lw=0)  # the margin: inside it, equivalent
        ax.axvline(1, color="0.2", lw=0.9)
        for y, (backend, workers) in enumerate(rows):
            if backends_.index(backend) % 2:  # a light band for every other backend, to read across
                ax.axhspan(y - 0.5, y + 0.5, color="0.95", lw=0, zorder=0)
            for offset, name, marker in zip(offsets, names, MARKERS):
                found = data[(data.backend == backend) & (data.workers == workers) & (labels == name)]
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
        Line2D([], [], color=COLOURS["equivalent"], label=f"equivalent (within ±{margin:.0%})", **line),
        Line2D([], [], color=COLOURS["cannot tell"], label="cannot tell", **line),
    ]
    if len(names) > 1:
        handles += [Line2D([], [], color="0.3", marker=m, ls="", ms=4.5, label=n) for n, m in zip(names, MARKERS)]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False, fontsize=7)
    title = names[0] if len(names) == 1 else "each comparison"
    fig.suptitle(f"{workload}: {title}, ratios with 90 % intervals", fontsize=9, x=0.02, ha="left")
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


def _count(v) -> str:
    return "–" if v is None or not v == v else str(int(v))


def _needed(n, rounds, verdict) -> str:
    """The rounds a cell's observed spread says would decide it, for cells that cannot tell yet."""
    if verdict != judge.decide.CANNOT_TELL:
        return "–"
    if not rounds >= 2:
        return "unknown (one round)"
    return _count(n) if n == n and n is not None else "over 1000"


def verdict_table(table: pd.DataFrame) -> pd.DataFrame:
    """The verdicts as the page shows them: one row per cell (serial first, as in the figure), values with their intervals."""
    mib = 2**20
    order = {cell: i for i, cell in enumerate(_rows(table))}
    labels = against(table)
    table = table.iloc[sorted(range(len(table)), key=lambda i: (order[(table.backend.iloc[i], table.workers.iloc[i])], labels.iloc[i]))]
    labels = against(table)
    out = pd.DataFrame(
        {
            "compared": labels,
            "backend": table.backend,
            "workers": table.workers.astype(int),
            "throughput": [
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
            "rounds": [_count(v) for v in table.n_rounds],
            "detectable": [_fmt(100 * v, " %") for v in table.detectable_difference],
            "rounds needed": [_needed(n, r, v) for n, r, v in zip(table.rounds_needed, table.n_rounds, table.verdict)],
            "peak PSS / baseline, MiB": [
                f"{_fmt(h / mib)} / {_fmt(b / mib)}" if np.isfinite(h) else "–"
                for h, b in table[["peak_tree_pss_bytes_here", "peak_tree_pss_bytes_baseline"]].to_numpy()
            ],
            "memory ratio": [
                _with_interval(*v, "×") for v in table[["memory_ratio", "memory_ratio_ci_low", "memory_ratio_ci_high"]].to_numpy()
            ],
            "memory verdict": table.memory_verdict,
        }
    )
    return out if labels.nunique() > 1 else out.drop(columns="compared")


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
    "td.v-slower,td.v-more-memory{color:#d55e00;font-weight:600}td.v-equivalent{color:#027a5a}td.v-cannot-tell{color:#555}"
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


CONFOUNDED = (
    "A comparison of two separate sessions is confounded with the machine's state: its load, temperature and "
    "everything else that changed between the two days moves every ratio, and no interval made within a session "
    "covers that. Here each run is divided by its own sweep's sentinel of the same round, which cancels a machine "
    "uniformly faster or slower, not a change that affects one workload more than another. To compare two setups, "
    "make them `variants` of one sweep instead: their runs interleave in the same rounds and each ratio is paired "
    "within a round."
)


def opening(table: pd.DataFrame, bases: list[Sweep]) -> list[str]:
    """The page's first lines: what kind of comparison this is and how far it can be trusted."""
    lines = []
    if (table.kind == judge.WITHIN).any():
        first = table[table.kind == judge.WITHIN].baseline.iloc[0]
        lines.append(
            f"Variants of one sweep: every other variant against the first ({first}), cell by cell. Their runs were "
            "interleaved in the same rounds, so each ratio is paired within a round and the machine's drift cancels."
        )
    if bases:
        lines.append(CONFOUNDED)
    for name, how in table[table.kind == judge.ACROSS].groupby("baseline", sort=False).normalised.first().items():
        if how and how != judge.NORMALISED:
            lines.append(
                f"Against {name}: not normalised ({how.removeprefix('no: ')}): an older parbench ran no sentinel per round, "
                "so the ratios also carry the whole change of the machine between the sessions."
            )
    return lines


def variant_sweeps(here: Sweep, table: pd.DataFrame) -> list[tuple[Sweep, Sweep]]:
    """(first variant, other variant) as sweeps of their records, for what differs between them."""
    within = table[table.kind == judge.WITHIN]
    pairs = within[["baseline", "variant"]].drop_duplicates().itertuples(index=False)

    def part(name):
        return Sweep(name, [r for r in here.records if (r.get("variant") or "") == name], here.machine)

    return [(part(first), part(other)) for first, other in pairs]


def variant_framing(diff: pd.DataFrame) -> str:
    other = [f for f in diff[diff.differs].fact if not f.endswith(("(machine.json)", "(records)"))]
    if not other:
        return (
            "Nothing recorded differs between these variants (an A/A comparison): a verdict of faster or slower is a false "
            "positive; equivalent or cannot tell is what it should say."
        )
    return f"Same session, same machine. What differs: {', '.join(other)}. Paired within rounds, the ratios measure those differences."


def page(here: Sweep, bases: list[Sweep], table: pd.DataFrame, figures: dict[str, bytes]) -> str:
    """comparison.html: what kind of comparison, what differs, the verdicts (tables, figures), the cells not compared, how to read it."""
    margin = _margin(table)
    parts = []
    for first, other in variant_sweeps(here, table):
        diff = differences([first, other])
        changed, same = diff[diff.differs], diff[~diff.differs]
        names = [first.name, other.name]
        parts.append(
            f"<h3>variant {_esc(first.name)} (baseline) → variant {_esc(other.name)}</h3><p class=banner>{_esc(variant_framing(diff))}</p>"
            + (_facts_table(changed, names) if len(changed) else "<p>Nothing recorded differs.</p>")
            + f"<details><summary>The {len(same)} recorded facts that agree</summary>{_facts_table(same, names)}</details>"
        )
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
        "<p class=note>A ratio is the compared side over the baseline: the geometric mean over rounds of one figure per run "
        "(items per batch over the run's median timed batch); brackets hold its 90 % interval. Verdicts: <em>faster</em> or "
        f"<em>slower</em> where a one-sided test says the ratio lies beyond ±{margin:.0%} (the margin), after Holm's correction "
        "over the workload's cells; <em>equivalent</em> where the whole interval lies inside ±"
        f"{margin:.0%}; else <em>cannot tell</em>, with the rounds the observed spread says would decide it. "
        "<em>Detectable</em>: the smallest true difference these rounds find with 80 % power. Memory (peak PSS of the "
        "process tree, one per run) is judged the same way: more memory, less memory, equivalent or cannot tell.</p>"
    ]
    for workload, part in table.groupby("workload", sort=True):
        family = part.family.dropna()
        verdicts.append(
            f"<h3>{_esc(workload)}</h3><p>Throughput: {_esc(_counts(part, 'verdict'))}. "
            f"Memory: {_esc(_counts(part, 'memory_verdict'))}."
            + (f" Each verdict is one of a family of {int(family.max())} comparisons." if len(family) else "")
            + "</p>"
        )
        if workload in figures:
            data = base64.b64encode(figures[workload]).decode()
            verdicts.append(
                f"<figure><img src='data:image/png;base64,{data}' alt='{_esc(workload)} comparison'><figcaption>Per cell, the ratio "
                f"(point) and its 90 % interval (bar); the vertical line is 1 (no change), the band ±{margin:.0%} (the margin); "
                "cells without a ratio are named at 1.</figcaption></figure>"
            )
        verdicts.append(_html_table(verdict_table(part), "num cmp"))
    verdicts = f'<section id="verdicts"><h2>{SECTIONS["verdicts"]}</h2>{"".join(verdicts)}</section>'

    skipped = not_comparable(table)
    if skipped.empty:
        body = "<p>None: every cell ran cleanly on both sides and did the same task.</p>"
    else:
        shown = skipped.assign(workers=skipped.workers.astype(int))
        single = [c for c in ("baseline", "variant") if table[c].fillna("").nunique() <= 1]
        body = _html_table(shown.drop(columns=single))
    skipped = f'<section id="not-comparable"><h2>{SECTIONS["not-comparable"]}</h2>{body}</section>'

    method = (
        f'<section id="method"><h2>{SECTIONS["method"]}</h2><ul>'
        "<li>Both sides are read from their run records by the same code; a run counts if it is ok and verified. The A/A "
        "twin runs and the sentinels are no cells.</li>"
        "<li>Variants of one sweep: per round, the run of a cell in one variant over the run of the same cell in the first "
        "variant; the interval is Student's t on the log ratios over the rounds (the rounds are the sample).</li>"
        "<li>Separate sessions: each run's throughput over its own sweep's sentinel of the same round (interpolated in time "
        "where that sentinel failed), then Welch's t on the logs of the two sweeps' normalised runs: the interval holds the "
        "sentinels' own noise. A sweep without a sentinel per round is compared unnormalised, and says so.</li>"
        f"<li>The margin ({margin:.0%}, config key <code>margin</code>): a difference inside it is no finding. Each test is one-sided "
        "at 5 %, with Holm's correction over the workload's cells; the interval shown is the matching 90 % one, so a "
        "cell whose interval clears the margin can still be <em>cannot tell</em> after the correction.</li>"
        "<li>Simulated on synthetic sweeps of known truth (tests/test_compare_method.py): an A/A comparison gives faster or "
        "slower in under 5 % of cells, within one sweep and across two sessions with the machine 10 % slower in the second.</li>"
        "<li>Not compared: a cell run on one side only, without a clean run on one side, or whose task differs (workload "
        f"parameters other than {', '.join(SAME_TASK_KEYS)}, or tasks per batch).</li>"
        "<li>The full table: <code>results/tables/comparison.csv</code>.</li></ul></section>"
    )
    nav = "".join(f'<a href="#{k}">{_esc(v)}</a>' for k, v in SECTIONS.items())
    within = (table.kind == judge.WITHIN).any()
    title = "; ".join([*(["its variants against the first"] if within else []), *(f"against {b.name}" for b in bases)])
    lead = "".join(f"<p class=banner>{_esc(line)}</p>" for line in opening(table, bases))
    head = (
        f"<h1>parbench: this sweep, {_esc(title)}</h1>{lead}<p class=sub>"
        + ", ".join([f"{len(here.records)} runs here", *(f"{len(b.records)} in {_esc(b.name)}" for b in bases)])
        + f" · generated {_esc(time.strftime('%Y-%m-%d %H:%M'))}</p><nav>{nav}</nav>"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>parbench comparison</title><style>{CSS}{EXTRA_CSS}</style></head>"
        f"<body>{head}{differs}{verdicts}{skipped}{method}</body></html>"
    )


def write(
    table_csv, page_html, png: list, svg: list, here: Sweep, bases: list[Sweep], margin: float = judge.MARGIN, variants=None
) -> pd.DataFrame:
    """Write comparison.csv, the figures (paths end in `comparison_{workload}.png|svg`) and comparison.html."""
    import matplotlib.pyplot as plt

    table = compare(here, bases, margin=margin, variants=variants)
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
