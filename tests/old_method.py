"""The method before issue 25, copied from src/parbench/stats.py and claims.py at 8c4b57c, for the
simulation tests' test of the test (tests/test_method.py): the old method must fail where the new
one holds. Only the decision code: a cell's median over every timed batch of every trial, a 95 %
two-level bootstrap (trials, then batches within each chosen trial), the speedup interval as the
ratio of the cell's resampled medians over serial's (permuted), and claims.choose: each backend's best
worker count by its median, then the first whose own speedup interval lies above 1, else serial.
The bootstrap is vectorised (the same resampling as the old loop, drawn in one go) so 200 sweeps fit
in seconds."""

import numpy as np
import pandas as pd

KEYS = ["workload", "backend", "workers"]
N_BOOT = 2000
CONFIDENCE = 0.95
MIN_TRIALS = 2


def bootstrap_medians(groups: list[np.ndarray], rng: np.random.Generator, n_boot: int = N_BOOT) -> np.ndarray:
    """Medians of two-level resamples: trials with replacement, then batches within each chosen trial."""
    sizes = {len(g) for g in groups}
    if len(sizes) == 1:  # every trial has as many batches: one array draw
        values, (size,) = np.stack(groups), sizes
        chosen = rng.integers(len(groups), size=(n_boot, len(groups), 1))
        within = rng.integers(size, size=(n_boot, len(groups), size))
        return np.median(values[chosen, within].reshape(n_boot, -1), axis=1)
    out = np.empty(n_boot)
    for b in range(n_boot):
        chosen = rng.integers(len(groups), size=len(groups))
        out[b] = np.median(np.concatenate([rng.choice(groups[i], size=len(groups[i])) for i in chosen]))
    return out


def _interval(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def stats(records: list[dict], seed: int = 0) -> pd.DataFrame:
    """The old stats table's decision columns from run records (every record a clean run; twins, if
    any, must have been given another backend name first: the old method had none)."""
    rng = np.random.default_rng(seed)
    groups = {}
    for r in records:
        key = (r["workload"], r["backend"], r["workers"])
        items = r.get("items_per_batch") or r["workers"]
        groups.setdefault(key, []).append(items / np.asarray(r["timings"]["batch_s"], float))
    rows, boots = [], {}
    for key in sorted(groups):
        g = groups[key]
        boots[key] = bootstrap_medians(g, rng)
        low, high = _interval(boots[key])
        rows.append(
            {
                **dict(zip(KEYS, key)),
                "n_clean": len(g),
                "all_clean": True,
                "throughput_median": float(np.median(np.concatenate(g))),
                "throughput_ci_low": low,
                "throughput_ci_high": high,
            }
        )
    out = pd.DataFrame(rows)
    out["speedup_vs_serial"] = out["speedup_ci_low"] = out["speedup_ci_high"] = np.nan
    for i, row in out.iterrows():
        base = (row.workload, "serial", row.workers)
        if base in boots:
            serial = out[(out.workload == row.workload) & (out.backend == "serial") & (out.workers == row.workers)].iloc[0]
            out.loc[i, "speedup_vs_serial"] = row.throughput_median / serial.throughput_median
            ratio = boots[tuple(row[KEYS])] / rng.permutation(boots[base])
            out.loc[i, ["speedup_ci_low", "speedup_ci_high"]] = _interval(ratio) if row.backend != "serial" else (1.0, 1.0)
    return out


def claimable(stats: pd.DataFrame) -> pd.DataFrame:
    ok = stats.all_clean.astype(bool) & stats[["throughput_median", "throughput_ci_low", "throughput_ci_high"]].notna().all(axis=1)
    return stats[ok & (stats.n_clean >= MIN_TRIALS)]


def ranked(cells: pd.DataFrame) -> list:
    return [row for _, row in cells.sort_values("throughput_median", ascending=False).iterrows()]


def best_per_backend(cells: pd.DataFrame) -> list:
    return ranked(cells.sort_values("throughput_median", ascending=False).drop_duplicates("backend"))


def choose(stats: pd.DataFrame):
    """The old claims.choose's pick for one workload: the recommended cell (a row), None if none can be claimed."""
    cells = claimable(stats)
    if cells.empty:
        return None
    order = best_per_backend(cells)
    serial = [r for r in order if r.backend == "serial"]
    if order[0].backend != "serial" and serial:
        beats = [r for r in order if r.backend != "serial" and r.speedup_ci_low > 1]
        first = beats[0] if beats else serial[0]
        order = [first, *(r for r in order if r.backend != first.backend)]
    return order[0]


def different(row) -> bool:
    """What the old report called different from serial: a speedup interval that excludes 1."""
    return bool(row.speedup_ci_low > 1 or row.speedup_ci_high < 1)
