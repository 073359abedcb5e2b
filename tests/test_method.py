"""The method's error rates, measured (issue 25, docs/method.md): synthetic sweeps of known truth
(tests/synthetic.py, the issue's realistic noise) through the real stats.tables, stats.stats,
stats.aa and decisions.choose, 200 seeds each (50 for the default rounds of (c), which must fail), every rate printed
with its 95 % Clopper–Pearson interval.

(a) an A/A twin gets a false verdict (faster or slower) in at most 5 % of workloads;
(b) a sweep where every backend equals serial recommends a parallel backend in at most 5 % of sweeps;
(c) a true 10 % difference is found (recommended, verdict faster) in at least 80 % of workloads at the
    default sweep's rounds (config/config.yaml `trials`);
and the method before issue 25 (tests/old_method.py) fails (a) and (b) in the same tests: a test of
the test. A last test measures the coverage of the 90 % interval, t against a bootstrap over rounds,
at 3-10 rounds (the choice written in decide's docstring).
"""

import functools

import numpy as np
import old_method
import pytest
import synthetic
import yaml
from conftest import REPO, at_default_and_needed_rounds
from scipy import stats as st

from parbench import decide, stats
from parbench.report import decisions

SEEDS = 200
ROUNDS = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["trials"]  # the default sweep's rounds
OLD_TRIALS = 3  # the default before issue 25, its runs in one free shuffle
NULL = synthetic.grid()  # 2 workloads x serial, p, q at 2 workers, all equally fast
TRUE_10 = synthetic.grid(speedups={"p": 1.10})  # p is 1.10x serial, q equals it
TWIN = "twin"  # the old method had no twin: its A/A is a cell named so, judged like any other


def rate(name: str, k: int, n: int) -> str:
    """'name: k/n = r [low–high] (95 % Clopper–Pearson)'."""
    low = st.beta.ppf(0.025, k, n - k + 1) if k else 0.0
    high = st.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return f"{name}: {k}/{n} = {k / n:.1%} [{low:.1%}–{high:.1%}] (95 % Clopper–Pearson)"


def low_bound(k: int, n: int) -> float:
    return float(st.beta.ppf(0.025, k, n - k + 1)) if k else 0.0


def new_method(records: list[dict]):
    """The real code on one sweep: each workload's recommended cell, and the runs table (for stats.aa)."""
    runs, batches = stats.tables(records)
    table = stats.stats(runs, batches)
    chosen = {w: decisions.choose(s, runs[runs.workload == w]) for w, s in table.groupby("workload")}
    return chosen, runs


def old_records(records: list[dict]) -> list[dict]:
    """A sweep as the old method saw it: twins as a cell of their own."""
    return [{**r, "backend": TWIN} if r.get("twin") else r for r in records]


def null_sweep(seed: int) -> dict:
    """One sweep where every backend equals serial: the new method at the default rounds, the old at its 3 trials."""
    records, _ = synthetic.split(synthetic.sweep(NULL, rounds=ROUNDS, rng=np.random.default_rng(seed)))
    chosen, runs = new_method(records)
    aa = stats.aa(runs)
    old_recs, _ = synthetic.split(synthetic.sweep(NULL, rounds=OLD_TRIALS, rng=np.random.default_rng(10_000 + seed), free=True))
    table = old_method.stats(old_records(old_recs), seed=seed)
    picks = [old_method.choose(s[s.backend != TWIN]) for _, s in table.groupby("workload")]
    return dict(
        new_parallel=int(any(c is not None and c.best.backend != stats.REFERENCE for c in chosen.values())),
        new_aa_false=int(aa.false_verdict.sum()),
        aa_n=len(aa),
        old_parallel=int(any(p is not None and p.backend != stats.REFERENCE for p in picks)),
        old_aa_false=int(sum(old_method.different(r) for _, r in table[table.backend == TWIN].iterrows())),
    )


@pytest.fixture(scope="module")
def null_sweeps() -> dict:
    """Each count of null_sweep summed over SEEDS sweeps."""
    sweeps = synthetic.over_seeds(null_sweep, range(SEEDS))
    return {key: sum(s[key] for s in sweeps) for key in sweeps[0]}


def test_b_a_sweep_where_every_backend_equals_serial_recommends_serial(null_sweeps):
    new = rate(f"new method, {ROUNDS} rounds: sweeps recommending a parallel backend", null_sweeps["new_parallel"], SEEDS)
    old = rate(f"old method, {OLD_TRIALS} trials: sweeps recommending a parallel backend", null_sweeps["old_parallel"], SEEDS)
    print(f"\n{new}\n{old}")
    assert null_sweeps["new_parallel"] / SEEDS <= 0.05, new
    # The test of the test: the old method must fail it (its interval excludes 5 %).
    assert low_bound(null_sweeps["old_parallel"], SEEDS) > 0.05, old


def test_a_the_aa_twin_gets_a_false_verdict_in_at_most_5_percent_of_workloads(null_sweeps):
    n = null_sweeps["aa_n"]
    assert n == SEEDS * 2, "every workload has an A/A row"
    new = rate(f"new method, {ROUNDS} rounds: A/A twins called faster or slower", null_sweeps["new_aa_false"], n)
    old = rate(f"old method, {OLD_TRIALS} trials: A/A twins called different (interval excludes 1)", null_sweeps["old_aa_false"], n)
    print(f"\n{new}\n{old}")
    assert null_sweeps["new_aa_false"] / n <= 0.05, new
    assert low_bound(null_sweeps["old_aa_false"], n) > 0.05, old


# What the noise model says is enough for (c): one round's log ratio carries two processes' spread.
ROUNDS_FOR_10 = next(
    r
    for r in range(2, decide.MAX_ROUNDS)
    if decide.detectable(np.sqrt(2) * synthetic.PROCESS_SD, r, decide.DEFAULT_MARGIN, family=2) <= 0.10
)


def true_10_found(rounds: int, seed: int) -> list[bool]:
    """For each workload of one sweep where p is 1.10x serial: whether p is recommended, faster."""
    records, _ = synthetic.split(synthetic.sweep(TRUE_10, rounds=rounds, rng=np.random.default_rng(20_000 + seed)))
    chosen, _ = new_method(records)
    return [c is not None and c.best.backend == "p" and c.best.verdict_vs_serial == decide.FASTER for c in chosen.values()]


@pytest.mark.parametrize("rounds", at_default_and_needed_rounds(ROUNDS, ROUNDS_FOR_10))
def test_c_a_true_10_percent_difference_is_found(rounds):
    # Short of the rounds the noise needs, the rate is far below 80 % (12.5 % of 200 workloads at 5 rounds, on
    # 2026-12-06): a quarter of the seeds shows it; the rounds that should just suffice take every seed.
    seeds = SEEDS if rounds >= ROUNDS_FOR_10 else SEEDS // 4
    hits = [hit for sweep in synthetic.over_seeds(functools.partial(true_10_found, rounds), range(seeds)) for hit in sweep]
    found, n = sum(hits), len(hits)
    text = rate(f"new method, {rounds} rounds: workloads where p (1.10x serial) is recommended, faster", found, n)
    print(f"\n{text}")
    assert found / n >= 0.80, text


def test_the_t_interval_covers_where_a_bootstrap_over_rounds_does_not():
    """90 % intervals of the mean log ratio from n rounds, 2000 seeds per n: Student's t (decide) holds
    its level from 3 rounds on; a percentile bootstrap over rounds covers far less with few rounds."""
    rng = np.random.default_rng(7)
    sims, boots, sd = 2000, 1000, 0.07
    cover_t, cover_boot = {}, {}
    for n in range(3, 11):
        logs = rng.normal(0, sd, (sims, n))
        intervals = [decide.from_logs(row).interval() for row in logs]
        cover_t[n] = np.mean([low <= 1 <= high for low, high in intervals])
        means = np.take_along_axis(logs[:, None, :], rng.integers(n, size=(sims, boots, n)), axis=2).mean(axis=2)
        low, high = np.percentile(means, [5, 95], axis=1)
        cover_boot[n] = np.mean((low <= 0) & (0 <= high))
    text = ", ".join(f"{n}: t {cover_t[n]:.1%}, bootstrap {cover_boot[n]:.1%}" for n in cover_t)
    print(f"\ncoverage of 90 % intervals ({sims} seeds per rounds): {text}")
    assert all(0.87 <= c <= 0.93 for c in cover_t.values()), text
    assert cover_boot[3] < 0.80 and cover_boot[5] < 0.86 and all(cover_boot[n] < cover_t[n] for n in cover_t), text
