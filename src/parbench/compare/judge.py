"""The comparison's verdicts (issue 25): per cell, a throughput ratio and a memory ratio with their
90 % intervals and one word each, by the method's rule (parbench.decide): beyond the margin after
Holm's correction over the workload's cells, equivalent inside it, otherwise cannot tell.

Two kinds of comparison:
- `within`: variants of one sweep. Their runs are interleaved in the same rounds, so each cell's
  ratio is paired: per round, the run of a variant over the run of the first variant in the same
  cell and round (`decide.paired`). The machine's drift and its state on the day cancel.
- `across`: this sweep against another sweep's results (compare_with). Each run's throughput is
  divided by its own sweep's sentinel of the same round (or, where that sentinel is missing, by the
  sentinel series interpolated to the run's start), so a machine that is faster or slower on one
  day than on the other cancels; the ratio of the two sweeps' normalised runs is Welch's
  (`decide.unpaired`), whose interval holds the sentinels' own noise. A sweep without a sentinel per
  round (`sentinel: null`, or an older parbench) cannot be normalised: its ratios are raw Welch, and the table says so.

Pure functions of records; compare.py draws the page.
"""

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from parbench import decide, stats

KEYS = stats.KEYS
# Workload parameters that change how many batches run, or the random data, but not what one task costs.
SAME_TASK_KEYS = ("batches", "warmup_batches", "min_timed_s", "seed")
MEMORY_WORDS = {
    decide.FASTER: "more memory",
    decide.SLOWER: "less memory",
    decide.EQUIVALENT: "equivalent",
    decide.CANNOT_TELL: "cannot tell",
}
THROUGHPUT_VERDICTS = decide.WORDS
MEMORY_VERDICTS = tuple(MEMORY_WORDS.values())
ONLY_HERE, ONLY_BASELINE, NOT_COMPARABLE = "only here", "only in baseline", "not comparable"
MARGIN = decide.DEFAULT_MARGIN
NORMALISED = "by each sweep's sentinel of the same round"


def is_sentinel(r: dict) -> bool:
    return bool((r.get("order") or {}).get("sentinel"))


@dataclass
class Cell:
    n_runs: int = 0
    n_clean: int = 0  # the runs used: clean, and not made on a busy machine (stats.used)
    statuses: dict = field(default_factory=dict)
    throughput: dict = field(default_factory=dict)  # round -> the run's throughput (items/s; stats' run_throughput)
    peaks: dict = field(default_factory=dict)  # round -> the run's peak tree PSS, bytes
    started: dict = field(default_factory=dict)  # round -> the run's start (s since the epoch)
    task: dict = field(default_factory=dict)  # what one task is: workload parameters beyond SAME_TASK_KEYS, and tasks per batch
    memory_scope: str = "local"  # what the tree PSS covers: 'local' or 'driver only' (an external cluster)

    @property
    def status_text(self) -> str:
        return ", ".join(f"{s} ×{n}" for s, n in sorted(self.statuses.items()))


def _rows(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([stats.run_row(r) for r in records])


def cell_runs(records: list[dict]) -> list[dict]:
    """The records that are runs of cells: sentinels and the A/A twins (the reference's second run of a round, the
    sweep's own noise check) are no cells."""
    return [r for r in records if not is_sentinel(r) and not r.get("twin")]


def cells(records: list[dict]) -> dict[tuple, Cell]:
    """Every cell (workload, backend, workers, variant) of a sweep's run records (cell_runs), with the runs the
    method uses (stats.used: clean, busy ones left out unless too few are quiet)."""
    recs = cell_runs(records)
    if not recs:
        return {}
    rows = _rows(recs)
    out: dict[tuple, Cell] = {}
    for r, row, use in zip(recs, rows.itertuples(index=False), stats.used(rows).to_numpy()):
        key = (row.workload, row.backend, int(row.workers), row.variant)
        cell = out.get(key)
        if cell is None:
            params = {k: v for k, v in (r.get("params") or {}).items() if k not in SAME_TASK_KEYS}
            cell = out[key] = Cell(task={**params, "tasks_per_batch": r.get("tasks_per_batch")})
        cell.n_runs += 1
        cell.statuses[str(row.status)] = cell.statuses.get(str(row.status), 0) + 1
        if not (r.get("cluster") or {}).get("workers_in_memory_tree", True):
            cell.memory_scope = "driver only"
        if not use or int(row.round) in cell.throughput:
            continue
        cell.n_clean += 1
        cell.throughput[int(row.round)] = float(row.run_throughput)
        cell.started[int(row.round)] = float(r.get("started_at") or math.nan)
        if row.peak_tree_pss_bytes and row.peak_tree_pss_bytes == row.peak_tree_pss_bytes:
            cell.peaks[int(row.round)] = float(row.peak_tree_pss_bytes)
    return out


def variants(records: list[dict], order=None) -> list[str]:
    """The sweep's variants, the first being what the others are compared with: `order` (the
    config's) where given, else as they first appear in the records; [] without named variants."""
    seen = list(dict.fromkeys(r.get("variant") or "" for r in records if not is_sentinel(r)))
    named = [v for v in (order or seen) if v in seen and v]
    return named if len(named) >= 2 else []


# ---------------------------------------------------------------- the sentinel series


@dataclass
class Series:
    """A sweep's clean sentinel runs: throughput by round, and (start, throughput) in time order."""

    by_round: dict
    times: np.ndarray
    logs: np.ndarray
    per_round: bool  # every sentinel record names its round (a sweep run in rounds)

    def at(self, rnd: int, started: float) -> float:
        """The sentinel's throughput in round `rnd`, or the series interpolated (log-linear) to `started`."""
        if rnd in self.by_round:
            return self.by_round[rnd]
        if not len(self.times) or not math.isfinite(started):
            return math.nan
        return float(np.exp(np.interp(started, self.times, self.logs)))


def series(sentinels: list[dict]) -> Series:
    per_round = bool(sentinels) and all("round" in r for r in sentinels)
    if not sentinels:
        return Series({}, np.array([]), np.array([]), False)
    rows = _rows(sentinels)
    rows = rows[stats.is_clean(rows) & (rows.run_throughput > 0)].sort_values("started_at")
    by_round = dict(zip(rows["round"].astype(int), rows.run_throughput.astype(float))) if per_round else {}
    timed = rows[rows.started_at.notna()]
    return Series(by_round, timed.started_at.to_numpy(float), np.log(timed.run_throughput.to_numpy(float)), per_round)


def normalised(cell: Cell, s: Series) -> list[float]:
    """The cell's run throughputs, each over its own sweep's sentinel (of the same round, else interpolated in time)."""
    values = [t / s.at(rnd, cell.started.get(rnd, math.nan)) for rnd, t in sorted(cell.throughput.items())]
    return [v for v in values if math.isfinite(v)]


# ---------------------------------------------------------------- rows

COLUMNS = [
    "baseline",
    "variant",
    *KEYS,
    "throughput_ratio",
    "throughput_ratio_ci_low",
    "throughput_ratio_ci_high",
    "verdict",
    "detectable_difference",
    "rounds_needed",
    "n_rounds",
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
    "kind",
    "normalised",
    "margin",
    "family",
    "reason",
]
WITHIN, ACROSS = "variants, paired within rounds", "separate sessions"


def why_not(here: Cell, base: Cell) -> str | None:
    if not here.throughput:
        return f"no clean run here ({here.status_text})"
    if not base.throughput:
        return f"no clean run in the baseline ({base.status_text})"
    # A key only one side has is a parameter one parbench version lacks: not a difference of task.
    differ = [k for k in sorted(here.task.keys() & base.task.keys()) if here.task[k] != base.task[k]]
    if differ:
        return "not the same task: " + "; ".join(
            f"{k} {json.dumps(here.task[k])} here, {json.dumps(base.task[k])} in the baseline" for k in differ
        )
    return None


def geometric(values) -> tuple[float, float, float]:
    """Geometric mean of runs' figures with its 90 % t interval (nan bounds with one run)."""
    r = decide.from_logs(np.log(np.asarray(list(values), float)))
    return (r.estimate, *r.interval()) if r.n else (math.nan, math.nan, math.nan)


@dataclass
class Pair:
    """One cell to judge: the row so far, its throughput ratio and (if comparable) its memory ratio."""

    row: dict
    ratio: decide.Ratio | None = None
    memory: decide.Ratio | None = None


def _blank(baseline: str, variant: str, key: tuple, kind: str, margin: float) -> dict:
    return {c: math.nan for c in COLUMNS} | {
        "baseline": baseline,
        "variant": variant,
        **dict(zip(KEYS, key)),
        "kind": kind,
        "normalised": "",
        "margin": margin,
        "reason": "",
    }


def _pair(row: dict, here: Cell | None, base: Cell | None) -> Pair:
    """The row's parts that do not depend on pairing; a Pair without ratio where the cell is not compared."""
    if here is None or base is None:
        verdict = ONLY_BASELINE if here is None else ONLY_HERE
        row.update(verdict=verdict, memory_verdict=verdict, reason="not run here" if here is None else "not run in the baseline")
        return Pair(row)
    row.update(n_clean_here=here.n_clean, n_clean_baseline=base.n_clean)
    why = why_not(here, base)
    if why:
        row.update(verdict=NOT_COMPARABLE, memory_verdict=NOT_COMPARABLE, reason=why)
        return Pair(row)
    h, b = geometric(here.throughput.values()), geometric(base.throughput.values())
    row.update(zip(("throughput_here", "throughput_here_ci_low", "throughput_here_ci_high"), h))
    row.update(zip(("throughput_baseline", "throughput_baseline_ci_low", "throughput_baseline_ci_high"), b))
    if here.peaks and base.peaks:
        row.update(
            peak_tree_pss_bytes_here=float(np.median(list(here.peaks.values()))),
            peak_tree_pss_bytes_baseline=float(np.median(list(base.peaks.values()))),
        )
    if not (here.peaks and base.peaks) or here.memory_scope != base.memory_scope:
        row.update(
            memory_verdict=NOT_COMPARABLE,
            reason=f"memory: the tree covers {here.memory_scope} here, {base.memory_scope} in the baseline"
            if here.peaks and base.peaks
            else "memory: no peak recorded",
        )
    return Pair(row)


def _judge(pairs: list[Pair], margin: float) -> list[dict]:
    """Verdicts over each workload's family (its judged cells), Holm within it; the rows, in order."""
    for workload in dict.fromkeys(p.row["workload"] for p in pairs):
        family = [p for p in pairs if p.row["workload"] == workload and p.ratio is not None]
        for p, word in zip(family, decide.verdicts([p.ratio for p in family], margin)):
            r = p.ratio
            low, high = r.interval()
            p.row.update(
                throughput_ratio=r.estimate,
                throughput_ratio_ci_low=low,
                throughput_ratio_ci_high=high,
                verdict=word,
                n_rounds=r.n,
                family=len(family),
                detectable_difference=decide.detectable(r.sd, r.n, margin, family=len(family)),
                rounds_needed=decide.rounds_needed(r, margin, family=len(family)),
            )
        memory = [p for p in family if p.memory is not None]
        for p, word in zip(memory, decide.verdicts([p.memory for p in memory], margin)):
            low, high = p.memory.interval()
            p.row.update(
                memory_ratio=p.memory.estimate, memory_ratio_ci_low=low, memory_ratio_ci_high=high, memory_verdict=MEMORY_WORDS[word]
            )
    return [p.row for p in pairs]


def within(records: list[dict], order=None, margin: float = MARGIN) -> list[dict]:
    """Every other variant of one sweep against its first, cell by cell, paired within rounds."""
    names = variants(records, order)
    if not names:
        return []
    found, first = cells(records), names[0]
    rows = []
    for other in names[1:]:
        pairs = []
        for key in sorted({k[:3] for k in found if k[3] in (first, other)}):
            here, base = found.get((*key, other)), found.get((*key, first))
            p = _pair(_blank(first, other, key, WITHIN, margin), here, base)
            if here is not None and base is not None and "verdict" not in _decided(p.row):
                rounds = sorted(here.throughput.keys() & base.throughput.keys())
                if not rounds:
                    p.row.update(verdict=NOT_COMPARABLE, memory_verdict=NOT_COMPARABLE, reason="no round with a clean run of both")
                else:
                    p.ratio = decide.paired([here.throughput[r] for r in rounds], [base.throughput[r] for r in rounds])
                    both = sorted(here.peaks.keys() & base.peaks.keys())
                    if "memory_verdict" not in _decided(p.row) and both:
                        p.memory = decide.paired([here.peaks[r] for r in both], [base.peaks[r] for r in both])
            pairs.append(p)
        rows += _judge(pairs, margin)
    return rows


def _decided(row: dict) -> dict:
    """The verdict columns already set (a string, not nan)."""
    return {k: v for k, v in row.items() if k in ("verdict", "memory_verdict") and isinstance(v, str)}


def across(here: list[dict], here_sentinels: list[dict], base: list[dict], base_sentinels: list[dict], name: str, margin: float = MARGIN):
    """This sweep against another session's: per cell (and variant), Welch's ratio of the runs'
    throughputs normalised by each sweep's sentinel series; raw where either sweep has none per round."""
    mine, theirs = cells(here), cells(base)
    named = sorted({k[3] for k in mine} - {""})
    if named and {k[3] for k in theirs} == {""}:  # a baseline without variants: each of this sweep's variants against it
        theirs = {(*k[:3], v): c for k, c in theirs.items() for v in named}
    s_here, s_base = series(here_sentinels), series(base_sentinels)
    lacking = [who for who, s in (("this sweep", s_here), (name, s_base)) if not (s.per_round and len(s.times))]
    how = NORMALISED if not lacking else f"no: {' and '.join(lacking)} ran no sentinel per round; raw throughputs, Welch"
    pairs = []
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key), theirs.get(key)
        p = _pair(_blank(name, key[3], key[:3], ACROSS, margin), a, b)
        if a is not None and b is not None and "verdict" not in _decided(p.row):
            values = (
                (normalised(a, s_here), normalised(b, s_base))
                if not lacking
                else (list(a.throughput.values()), list(b.throughput.values()))
            )
            p.row["normalised"] = how
            p.ratio = decide.unpaired(*values)
            if "memory_verdict" not in _decided(p.row):
                p.memory = decide.unpaired(list(a.peaks.values()), list(b.peaks.values()))
        pairs.append(p)
    return _judge(pairs, margin)


def not_comparable(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of comparison.csv without a throughput or memory verdict from intervals, with why."""
    judged = table.verdict.isin(THROUGHPUT_VERDICTS) & table.memory_verdict.isin(MEMORY_VERDICTS)
    return table.loc[~judged, ["baseline", "variant", *KEYS, "verdict", "memory_verdict", "reason"]]
