"""The comparison's decision before issue 25 (parbench.compare.compare.compare up to 8c4b57c), kept to show
that the simulation tests can fail: each sweep on its own, a two-level bootstrap of the cell's median
batch throughput (trials with replacement, then batches within each chosen trial), the ratio of the two
sweeps' replicates, and `faster` / `slower` where its 95 % percentile interval lies above / below 1.

Self-contained (it reads records, not parbench's tables) so that it stays the old method whatever
parbench becomes. Vectorised where every trial has as many batches; the same resampling either way.
"""

import numpy as np

N_BOOT = 2000
CONFIDENCE = 0.95


def groups(records) -> dict[tuple, list[np.ndarray]]:
    """Per cell, one array per clean trial: its timed batches' throughputs (items / seconds). Sentinels
    and A/A twins are left out: the old pipeline had neither."""
    out = {}
    for r in records:
        if (r.get("order") or {}).get("sentinel") or r.get("twin") or r.get("status") != "ok" or not r.get("verified"):
            continue
        items = r.get("items_per_batch") or r.get("tasks_per_batch") or r["workers"]
        batches = np.array([items / s for s in r["timings"]["batch_s"] if s > 0])
        if len(batches):
            out.setdefault((r["workload"], r["backend"], int(r["workers"])), []).append(batches)
    return out


def bootstrap_medians(groups: list[np.ndarray], rng: np.random.Generator, n_boot: int = N_BOOT) -> np.ndarray:
    """stats.bootstrap_medians as it was."""
    if len({len(g) for g in groups}) == 1:
        data = np.stack(groups)  # trials x batches
        trials = rng.integers(len(groups), size=(n_boot, len(groups)))
        batches = rng.integers(data.shape[1], size=(n_boot, len(groups), data.shape[1]))
        return np.median(data[trials[..., None], batches].reshape(n_boot, -1), axis=1)
    out = np.empty(n_boot)
    for b in range(n_boot):
        chosen = rng.integers(len(groups), size=len(groups))
        out[b] = np.median(np.concatenate([rng.choice(groups[i], size=len(groups[i])) for i in chosen]))
    return out


def throughput_verdict(low: float, high: float) -> str:
    if low > 1:
        return "faster"
    if high < 1:
        return "slower"
    return "no clear difference"


def compare(here: list[dict], base: list[dict], seed: int = 0, n_boot: int = 1000) -> dict[tuple, str]:
    """The old verdict of every cell both sweeps ran: this sweep (here) over the baseline."""
    rng = np.random.default_rng(seed)
    mine, theirs = groups(here), groups(base)
    tail = (1 - CONFIDENCE) / 2 * 100
    out = {}
    for key in sorted(mine.keys() & theirs.keys()):
        ratio = bootstrap_medians(mine[key], rng, n_boot) / bootstrap_medians(theirs[key], rng, n_boot)
        out[key] = throughput_verdict(*np.percentile(ratio, [tail, 100 - tail]))
    return out
