"""results/comparison.html: what kind of comparison, what differs between the sides, the verdicts
(figures and tables), the cells not compared and how to read it, rendered from
templates/comparison.html.j2 by parbench.report.pages (autoescaping) with the report's stylesheet."""

import base64
import time

import numpy as np
import pandas as pd

from parbench import stats
from parbench.compare import judge
from parbench.compare.comparison_figure import against, cells
from parbench.compare.facts import Sweep, differences, framing, variant_framing, variant_sweeps
from parbench.compare.judge import MEMORY_VERDICTS, NOT_COMPARABLE, ONLY_BASELINE, ONLY_HERE, SAME_TASK_KEYS, THROUGHPUT_VERDICTS
from parbench.report import pages
from parbench.report.decisions import margin_of
from parbench.report.provenance import mixed_provenance_text
from parbench.text import MIB, interval_text, num

SECTIONS = {"differs": "What differs", "verdicts": "Verdicts", "not-comparable": "Cells not compared", "method": "How to read this"}
CONFOUNDED = (
    "A comparison of two separate sessions is confounded with the machine's state: its load, temperature and "
    "everything else that changed between the two days moves every ratio, and no interval made within a session "
    "covers that. {normalised}To compare two setups, make them `variants` of one sweep instead: their runs "
    "interleave in the same rounds and each ratio is paired within a round."
)
# Said in CONFOUNDED only where every baseline was normalised (each sweep ran a sentinel in every round).
NORMALISED_NOTE = (
    "Here each run is divided by its own sweep's sentinel of the same round, which cancels a machine uniformly "
    "faster or slower, not a change that affects one workload more than another. "
)


def _with_interval(v, low, high, unit="") -> str:
    return "–" if not np.isfinite(v) else f"{num(v)}{unit} {interval_text(low, high, unit)}"


def _count(v) -> str:
    return "–" if v is None or not v == v else str(int(v))


def _detectable(v) -> str:
    """The smallest difference these rounds would find; beyond tenfold the figure says only that they cannot."""
    return "–" if not np.isfinite(v) else "over 1000 %" if v > 10 else f"{num(100 * v)} %"


def _needed(n, rounds, verdict) -> str:
    """The rounds a cell's observed spread says would decide it, for cells that cannot tell yet."""
    if verdict != judge.decide.CANNOT_TELL:
        return "–"
    if not rounds >= 2:
        return "unknown (one round)"
    return _count(n) if n == n and n is not None else "over 1000"


def verdict_table(table: pd.DataFrame) -> pd.DataFrame:
    """The verdicts as the page shows them: one row per cell (serial first, as in the figure), values with their intervals."""
    order = {cell: i for i, cell in enumerate(cells(table))}
    labels = against(table)
    table = table.iloc[sorted(range(len(table)), key=lambda i: (order[(table.backend.iloc[i], table.workers.iloc[i])], labels.iloc[i]))]
    labels = against(table)

    def shown(prefix, unit=""):
        return [_with_interval(*v, unit) for v in table[[prefix, f"{prefix}_ci_low", f"{prefix}_ci_high"]].to_numpy()]

    out = pd.DataFrame(
        {
            "compared": labels,
            "backend": table.backend,
            "workers": table.workers.astype(int),
            "throughput": shown("throughput_here"),
            "throughput baseline": shown("throughput_baseline"),
            "throughput ratio": shown("throughput_ratio", "×"),
            "verdict": table.verdict,
            "rounds": [_count(v) for v in table.n_rounds],
            "detectable": [_detectable(v) for v in table.detectable_difference],
            "rounds needed": [_needed(n, r, v) for n, r, v in zip(table.rounds_needed, table.n_rounds, table.verdict)],
            "peak PSS / baseline, MiB": [
                f"{num(h / MIB)} / {num(b / MIB)}" if np.isfinite(h) else "–"
                for h, b in table[["peak_tree_pss_bytes_here", "peak_tree_pss_bytes_baseline"]].to_numpy()
            ],
            "memory ratio": shown("memory_ratio", "×"),
            "memory verdict": table.memory_verdict,
        }
    )
    return out if labels.nunique() > 1 else out.drop(columns="compared")


def _counts(table: pd.DataFrame, column: str) -> str:
    counts = table[column].value_counts()
    order = [*THROUGHPUT_VERDICTS, *MEMORY_VERDICTS, ONLY_HERE, ONLY_BASELINE, NOT_COMPARABLE]
    return ", ".join(f"{counts[v]} {v}" for v in dict.fromkeys(order) if v in counts)


def opening(table: pd.DataFrame, bases: list[Sweep]) -> list[str]:
    """The page's first lines: what kind of comparison this is and how far it can be trusted."""
    lines = []
    if (table.kind == judge.WITHIN).any():
        first = table[table.kind == judge.WITHIN].baseline.iloc[0]
        lines.append(
            f"Variants of one sweep: every other variant against the first ({first}), cell by cell. Their runs were "
            "interleaved in the same rounds, so each ratio is paired within a round and the machine's drift cancels."
        )
    # How each baseline was compared, from its cells that have a ratio (a cell run on one side only has none).
    compared = table[(table.kind == judge.ACROSS) & (table.normalised.fillna("") != "")]
    hows = compared.groupby("baseline", sort=False).normalised.first()
    if bases:
        lines.append(CONFOUNDED.format(normalised=NORMALISED_NOTE if (hows == judge.NORMALISED).all() else ""))
    for name, how in hows.items():
        if how != judge.NORMALISED:
            lines.append(
                f"Against {name}: not normalised ({how.removeprefix('no: ')}): without a sentinel in every round "
                "(`sentinel: null`, or a parbench before it), the ratios also carry the whole change of the machine between the sessions."
            )
    return lines


def _rows(frame: pd.DataFrame) -> dict:
    """A table for the template's own table macros: its columns and its rows as dicts (the template escapes every cell)."""
    return {"columns": list(frame.columns), "rows": frame.to_dict("records")}


def _sides(first: Sweep, other: Sweep, title: str, framing_of) -> dict:
    """One comparison's 'what differs': what a ratio can mean (`framing_of` the facts), the facts that differ, those that agree."""
    diff = differences([first, other])
    return {
        "title": title,
        "framing": framing_of(diff),
        "names": [first.name, other.name],
        "changed": diff[diff.differs].to_dict("records"),
        "same": diff[~diff.differs].to_dict("records"),
    }


def context(here: Sweep, bases: list[Sweep], table: pd.DataFrame, figures: dict[str, bytes]) -> dict:
    """Everything comparison.html.j2 shows."""
    sides = [
        _sides(first, other, f"variant {first.name} (baseline) → variant {other.name}", variant_framing)
        for first, other in variant_sweeps(here, table)
    ]
    sides += [_sides(base, here, f"{base.name} (baseline) → this sweep", lambda diff, b=base: framing(diff, here, b)) for base in bases]
    workloads = []
    for workload, part in table.groupby("workload", sort=True):
        family = part.family.dropna()
        workloads.append(
            {
                "name": workload,
                "throughput": _counts(part, "verdict"),
                "memory": _counts(part, "memory_verdict"),
                "family": int(family.max()) if len(family) else None,
                "figure": base64.b64encode(figures[workload]).decode() if workload in figures else None,
                "table": _rows(verdict_table(part)),
            }
        )
    skipped = judge.not_comparable(table)
    single = [c for c in ("baseline", "variant") if table[c].fillna("").nunique() <= 1]
    within = (table.kind == judge.WITHIN).any()
    return {
        "css": pages.css(),
        "sections": SECTIONS,
        "title": "; ".join([*(["its variants against the first"] if within else []), *(f"against {b.name}" for b in bases)]),
        "opening": opening(table, bases),
        # Runs of cells on both sides: a baseline read from its runs.csv lists its A/A twins, this sweep's rule does not.
        "counts": ", ".join(
            [f"{len(judge.cell_runs(here.records))} runs here", *(f"{len(judge.cell_runs(b.records))} in {b.name}" for b in bases)]
        ),
        "generated": time.strftime("%Y-%m-%d %H:%M"),
        "sides": sides,
        "mixed": [(s.name, t) for s in [here, *bases] if s.records and (t := mixed_provenance_text(stats.tables(s.records)[0]))],
        "margin": f"{margin_of(table):.0%}",
        "workloads": workloads,
        "skipped": _rows(skipped.assign(workers=skipped.workers.astype(int)).drop(columns=single)) if len(skipped) else None,
        "same_task_keys": ", ".join(SAME_TASK_KEYS),
    }


def page(here: Sweep, bases: list[Sweep], table: pd.DataFrame, figures: dict[str, bytes]) -> str:
    """comparison.html."""
    return pages.render("comparison.html.j2", **context(here, bases, table, figures))
