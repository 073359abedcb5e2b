"""Provenance within one sweep: the cells whose records mix hosts, CPU models or run code. The report
and the comparison page say it first."""

import pandas as pd

from parbench.stats import KEYS
from parbench.text import workers_text

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


def mixed_provenance_text(runs: pd.DataFrame) -> str:
    """One sentence for the top of a page naming the cells of mixed provenance, or '' if there are none."""
    mixed = mixed_provenance(runs)
    if mixed.empty:
        return ""
    parts = []
    for (label, usual), rows in mixed.groupby(["field", "usual"], sort=False):
        cells = "; ".join(f"{r.workload} {r.backend} at {workers_text(r.workers)} ({r['values']})" for _, r in rows.iterrows())
        parts.append(f"{label}: most runs {usual}, but {cells}")
    return (
        "Not one machine and one code: this sweep's records mix " + ". ".join(parts) + ". Comparisons between these cells and "
        "the rest mix machines or code; delete their records and rerun to make the sweep uniform."
    )
