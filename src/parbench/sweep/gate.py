"""The regression gate: the comparison's verdicts as a small machine-readable file, and whether the
config's `fail_on` trips on them (CI fails the sweep after everything is written)."""

import json
from pathlib import Path

import pandas as pd

from parbench import decide
from parbench.compare import judge

# What `fail_on` may name, and the comparison verdict each one trips on (judge's words, beyond the margin).
TRIPS = {"slower": ("verdict", decide.SLOWER), "more-memory": ("memory_verdict", judge.MEMORY_WORDS[decide.FASTER])}
CELL = ["baseline", "variant", "workload", "backend", "workers"]


def verdicts(table: pd.DataFrame, fail_on: list[str], margin: float) -> dict:
    """{"fail_on", "margin", "tripped": cells whose verdict `fail_on` names (with their ratio and interval),
    "cells": how many were compared, "passed"}."""
    tripped = []
    for kind in fail_on:
        column, word = TRIPS[kind]
        ratio = "throughput_ratio" if column == "verdict" else "memory_ratio"
        for row in table[table[column] == word].itertuples(index=False):
            row = row._asdict()
            tripped.append(
                {
                    **{k: (int(row[k]) if k == "workers" else row[k]) for k in CELL},
                    "fail_on": kind,
                    "verdict": word,
                    "ratio": _number(row[ratio]),
                    "ci": [_number(row[f"{ratio}_ci_low"]), _number(row[f"{ratio}_ci_high"])],
                    "kind": row["kind"],
                }
            )
    return {"fail_on": list(fail_on), "margin": margin, "cells": int(len(table)), "tripped": tripped, "passed": not tripped}


def _number(value):
    return None if pd.isna(value) else float(value)


def write(table_path, out, fail_on: list[str], margin: float) -> dict:
    found = verdicts(pd.read_csv(table_path), fail_on, margin)
    Path(out).write_text(json.dumps(found, indent=2) + "\n")
    return found


def explain(found: dict) -> str:
    """What tripped, one line per cell, for the terminal."""
    lines = [
        f"{t['workload']} {t['backend']} at {t['workers']} workers ({t['variant'] or 'this sweep'} against {t['baseline']}): "
        f"{t['verdict']}, {t['ratio']:.3g}x [{t['ci'][0]:.3g}-{t['ci'][1]:.3g}] beyond the {found['margin']:.0%} margin"
        for t in found["tripped"]
    ]
    return f"parbench: fail_on {found['fail_on']} tripped on {len(lines)} of {found['cells']} cells:\n  " + "\n  ".join(lines)
