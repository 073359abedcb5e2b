"""parbench.compare.compare on hand-made records: verdicts, the interval's coverage on synthetic sweeps of
known ratio, cells that cannot be compared, mixed provenance within a sweep, what differs between
sweeps, bad baselines, and the page."""

import copy
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import synthetic as synth
from conftest import REPO, SCHEMA

from parbench import records, stats
from parbench.compare import baseline, compare, comparison_page, facts, judge
from parbench.compare.facts import Sweep
from parbench.report import provenance, report
from parbench.sweep import config

MIB = 2**20


def record(
    workload="matmul",
    backend="serial",
    workers=1,
    trial=1,
    batch_s=(1.0, 1.0, 1.0),
    pss=100 * MIB,
    status="ok",
    verified=True,
    params=None,
    blas_threads="auto",
    host="h1",
    cpu="EPYC",
    commit="a" * 40,
    numpy="2.0.0",
    schema_version=1,
):
    """A run record with the fields parbench.stats and parbench.compare.compare read."""
    params = params or ({"n": 1024, "k": 64, "seed": 1, "batches": len(batch_s), "warmup_batches": 1, "tasks_per_batch": None})
    return {
        "schema_version": schema_version,
        "workload": workload,
        "backend": backend,
        "workers": workers,
        "trial": trial,
        "status": status,
        "reason": None if status == "ok" else "made up",
        "verified": verified,
        "params": params,
        "settings": {"blas_threads": blas_threads, "options": {}, "limits": {"timeout_s": 60}, "sampler": {"period_s": 0.05}},
        "tasks_per_batch": workers,
        "timings": {"startup_s": 0.5, "setup_s": 0.1, "warmup_s": [1.0], "batch_s": [float(s) for s in batch_s], "teardown_s": 0.1},
        "memory": {"peak_tree_pss_bytes": pss, "peak_tree_rss_bytes": 2 * pss, "peak_shm_bytes": 0, "driver_peak_rss_bytes": pss},
        "blas_threads": 2,
        "started_at": 1000.0 * trial,
        "finished_at": 1000.0 * trial + 10,
        "cluster": {"kind": "local", "workers_in_memory_tree": True},
        "environment": {
            "host": host,
            "cpu_model": cpu,
            "physical_cores": 2,
            "logical_cores": 2,
            "memory_bytes": 24 * 2**30,
            "platform": "Linux",
            "python": "3.11.2",
            "packages": {"numpy": numpy, "ray": "2.9.0"},
            "blas": [{"internal_api": "openblas", "version": "0.3.27", "threading_layer": "pthreads", "architecture": "Zen"}],
            "git_commit": commit,
            "git_dirty": False,
            "code_hash": "c0de",
        },
    }


def synthetic(rng, speed=1.0, trials=3, batches=10, trial_sd=0.03, batch_sd=0.05, cells=(("matmul", "serial", 1),), pss=100 * MIB, **kw):
    """A sweep whose batch throughput is `speed` × a lognormal trial effect × lognormal batch noise."""
    recs = []
    for workload, backend, workers in cells:
        for t in range(1, trials + 1):
            effect = np.exp(rng.normal(0, trial_sd))
            throughput = speed * effect * np.exp(rng.normal(0, batch_sd, batches))
            recs.append(record(workload, backend, workers, t, batch_s=workers / throughput, pss=pss, **kw))
    return recs


def row(table, backend="serial", workers=1, workload="matmul"):
    found = table[(table.workload == workload) & (table.backend == backend) & (table.workers == workers)]
    assert len(found) == 1, table
    return found.iloc[0]


def versus(here, base, **kw):
    return compare.compare(Sweep("this sweep", here), [Sweep("base", base)], **kw)


# ---------------------------------------------------------------- the interval's coverage on synthetic sweeps of known ratio

# A cell of 3 trials x 10 batches; between processes 3 % (lognormal sd), between batches 5 %: the
# spread parbench's matmul and ner cells show on a quiet machine. The true ratio is 1.5 by construction.
COVERAGE_SEEDS = 200
TRUE_RATIO = 1.5


@pytest.fixture(scope="module")
def coverage():
    hits, wrong = 0, 0
    for seed in range(COVERAGE_SEEDS):
        rng = np.random.default_rng(seed)
        base, here = synthetic(rng, speed=1.0), synthetic(rng, speed=TRUE_RATIO)
        r = row(versus(here, base))
        hits += r.throughput_ratio_ci_low <= TRUE_RATIO <= r.throughput_ratio_ci_high
        wrong += r.verdict != "faster"
    return hits / COVERAGE_SEEDS, wrong


def test_the_ratio_interval_covers_the_true_ratio_about_90_percent_of_the_time(coverage):
    share, _ = coverage
    print(f"coverage of the 90 % throughput-ratio interval over {COVERAGE_SEEDS} synthetic comparisons: {share:.1%}")
    assert 0.85 <= share <= 0.95, share


def test_a_large_known_change_is_always_found(coverage):
    assert coverage[1] == 0


def test_only_the_touched_cell_is_called_different():
    """Specificity: sweeps drawn alike except one cell at half speed; that cell is slower every time,
    no untouched cell is called faster or slower (Holm over the workload's cells, and the margin)."""
    cells = [("matmul", b, w) for b in ("serial", "ray", "dask", "joblib") for w in (1, 2)]
    touched, untouched = [], []
    for seed in range(8):
        rng = np.random.default_rng(1000 + seed)
        base, here = synthetic(rng, cells=cells), synthetic(rng, cells=cells)
        for r in here:
            if r["backend"] == "ray" and r["workers"] == 2:
                r["timings"]["batch_s"] = [2 * s for s in r["timings"]["batch_s"]]
        table = versus(here, base)
        hit = (table.backend == "ray") & (table.workers == 2)
        touched += list(table[hit].verdict)
        untouched += list(table[~hit].verdict)
    assert touched == ["slower"] * 8
    assert not {"faster", "slower"} & set(untouched), untouched


# ---------------------------------------------------------------- verdicts between sessions (compare_with)


def test_a_sweep_against_itself_is_equivalent_everywhere():
    recs = synthetic(np.random.default_rng(0), cells=[("matmul", "serial", 1), ("matmul", "ray", 2), ("ner", "joblib", 2)])
    table = versus(recs, recs)
    # Welch's interval of two identical samples still holds their spread: equivalent where it is small enough.
    assert table.verdict.isin(["equivalent", "cannot tell"]).all() and (table.verdict == "equivalent").any()
    assert (table.memory_verdict == "equivalent").all()
    assert np.allclose(table.throughput_ratio, 1) and np.allclose(table.memory_ratio, 1)
    assert (table.throughput_ratio_ci_low < 1).all() and (table.throughput_ratio_ci_high > 1).all()
    assert (table.n_rounds == 3).all() and (table.baseline == "base").all() and (table.kind == judge.ACROSS).all()


def test_twice_as_fast_is_faster_and_half_as_fast_is_slower():
    rng = np.random.default_rng(1)
    base, quick = synthetic(rng, speed=1.0), synthetic(rng, speed=2.0)
    faster = row(versus(quick, base))
    assert faster.verdict == "faster" and 1.8 < faster.throughput_ratio < 2.2
    assert faster.throughput_ratio_ci_low < 2 < faster.throughput_ratio_ci_high
    slower = row(versus(base, quick))
    assert slower.verdict == "slower" and 0.45 < slower.throughput_ratio < 0.55
    assert slower.throughput_here < slower.throughput_baseline


def test_a_difference_inside_the_margin_is_no_finding():
    """2 % faster with almost no noise: the interval clears 1 but not the margin, and lies inside it: equivalent."""
    rng = np.random.default_rng(2)
    base, here = synthetic(rng, trial_sd=0.001, batch_sd=0.001), synthetic(rng, speed=1.02, trial_sd=0.001, batch_sd=0.001)
    r = row(versus(here, base))
    assert r.throughput_ratio_ci_low > 1 and r.verdict == "equivalent", r
    assert row(versus(here, base, margin=0.01)).verdict == "faster"


def test_few_rounds_of_a_noisy_cell_cannot_tell_and_say_what_would():
    rng = np.random.default_rng(3)
    base, here = synthetic(rng, trials=3, trial_sd=0.1), synthetic(rng, speed=1.15, trials=3, trial_sd=0.1)
    r = row(versus(here, base))
    assert r.verdict == "cannot tell" and r.n_rounds == 3 and r.rounds_needed > 3, r
    assert r.detectable_difference > 0.15


def test_memory_is_compared_on_peak_tree_pss():
    rng = np.random.default_rng(2)
    base = synthetic(rng, pss=100 * MIB)
    more = row(versus(synthetic(rng, pss=200 * MIB), base))
    assert more.memory_ratio == pytest.approx(2) and more.memory_verdict == "more memory"
    assert more.peak_tree_pss_bytes_here == 200 * MIB and more.peak_tree_pss_bytes_baseline == 100 * MIB
    assert row(versus(synthetic(rng, pss=50 * MIB), base)).memory_verdict == "less memory"
    assert row(versus(synthetic(rng, pss=103 * MIB), base)).memory_verdict == "equivalent"  # within the margin


def test_the_table_has_the_contract_columns():
    table = versus(synthetic(np.random.default_rng(3)), synthetic(np.random.default_rng(4)))
    contract = ["workload", "backend", "workers", "throughput_ratio", "throughput_ratio_ci_low", "throughput_ratio_ci_high", "memory_ratio"]
    method = ["verdict", "memory_verdict", "detectable_difference", "rounds_needed", "n_rounds", "baseline"]
    assert set(contract + method) <= set(table.columns)
    assert set(table.verdict) <= set(judge.THROUGHPUT_VERDICTS) == {"faster", "slower", "equivalent", "cannot tell"}


def sweep_of(rounds=4, session=1.0, start=0.0, sentinels=True, **kw):
    """A synthetic session (tests/synthetic.py) as a Sweep: runs, and its sentinels apart."""
    cells = {("matmul", "serial", 2): 10.0, ("matmul", "ray", 2): 15.0}
    runs, sent = synth.split(
        synth.sweep(cells, rounds, np.random.default_rng(kw.pop("seed", 0)), session_factor=session, start_time=start, **kw)
    )
    return Sweep("this sweep", runs, {}, sent if sentinels else [])


def test_sessions_are_normalised_by_their_sentinels_so_a_slower_machine_cancels():
    base = sweep_of(seed=1, process_sd=0.01, batch_sd=0.002, drift=0.0)
    here = sweep_of(seed=2, session=0.5, start=1e6, process_sd=0.01, batch_sd=0.002, drift=0.0)  # the same setup, a machine half as fast
    table = compare.compare(here, [Sweep("base", base.records, {}, base.sentinels)])
    assert (table.normalised == judge.NORMALISED).all()
    assert np.allclose(table.throughput_ratio, 1, atol=0.03) and (table.verdict == "equivalent").all(), table
    # The run's own throughputs still show the slower machine.
    assert np.allclose(table.throughput_here / table.throughput_baseline, 0.5, atol=0.03)


def test_a_baseline_without_a_sentinel_per_round_is_compared_raw_and_says_so():
    base = sweep_of(seed=1, process_sd=0.01, drift=0.0)
    for r in base.sentinels:  # an older parbench: sentinels at start, middle and end, no round
        del r["round"]
    here = sweep_of(seed=2, session=0.5, start=1e6, process_sd=0.01, drift=0.0)
    table = compare.compare(here, [Sweep("old", base.records, {}, base.sentinels)])
    assert table.normalised.str.startswith("no: old ran no sentinel per round").all(), table.normalised
    assert (table.verdict == "slower").all() and np.allclose(table.throughput_ratio, 0.5, atol=0.03)
    page = comparison_page.page(here, [Sweep("old", base.records, {}, base.sentinels)], table, {})
    assert "Against old: not normalised" in page.split("<nav>")[0]
    assert "Here each run is divided by its own sweep" not in page, "the opening claims a normalisation that was not made"
    # A cell run only here comes first in the table (no ratio, so no `normalised`): the note still names the baseline.
    only_here = table.iloc[:1].assign(verdict=judge.ONLY_HERE, normalised="", workload="aaa")
    page = comparison_page.page(here, [Sweep("old", base.records, {}, base.sentinels)], pd.concat([only_here, table]), {})
    assert "Against old: not normalised" in page.split("<nav>")[0]


def test_a_round_without_its_sentinel_is_normalised_by_the_series_in_time():
    sentinels = sweep_of(seed=3).sentinels
    s = judge.series([r for r in sentinels if r["round"] != 2])  # round 2's sentinel failed
    start = next(r["started_at"] for r in sentinels if r["round"] == 2)
    before, after = s.by_round[1], s.by_round[3]
    assert 2 not in s.by_round and min(before, after) <= s.at(2, start) <= max(before, after)
    assert s.at(3, 0.0) == after  # a round's own sentinel wins


# ---------------------------------------------------------------- variants of one sweep


def test_variants_are_compared_with_the_first_paired_within_rounds():
    cells = {("matmul", "serial", 2): 10.0, ("matmul", "ray", 2): 15.0, ("ner", "serial", 2): 5.0}
    recs = synth.sweep(cells, 4, np.random.default_rng(4), variants={"old": 1.0, "new": 2.0, "same": 1.0}, process_sd=0.01)
    runs, sent = synth.split(recs)
    table = compare.compare(Sweep("this sweep", runs, {}, sent), [], variants=["old", "new", "same"])
    assert (table.baseline == "old").all() and list(dict.fromkeys(table.variant)) == ["new", "same"] and len(table) == 6
    assert (table.kind == judge.WITHIN).all() and (table.n_rounds == 4).all() and (table.family.dropna() <= 2).all()
    new, same = table[table.variant == "new"], table[table.variant == "same"]
    assert (new.verdict == "faster").all() and np.allclose(new.throughput_ratio, 2, rtol=0.05)
    assert same.verdict.isin(["equivalent", "cannot tell"]).all() and (same.memory_verdict == "equivalent").all()
    # The config's order decides which variant is the baseline.
    flipped = compare.compare(Sweep("this sweep", runs, {}, sent), [], variants=["new", "old"])
    assert (flipped.baseline == "new").all() and (flipped.verdict == "slower").all()


def test_a_round_one_variant_lacks_is_left_out_of_the_pairs():
    cells = {("matmul", "serial", 2): 10.0, ("matmul", "ray", 2): 15.0}
    runs, _ = synth.split(synth.sweep(cells, 4, np.random.default_rng(5), variants={"a": 1.0, "b": 1.0}))
    for r in runs:
        if r["variant"] == "b" and r["backend"] == "ray" and r["round"] == 2:
            r.update(status="timeout")
    table = compare.compare(Sweep("this sweep", runs), [], variants=["a", "b"])
    assert row(table, "ray", 2).n_rounds == 3 and row(table, "serial", 2).n_rounds == 4


def test_without_variants_there_is_nothing_to_compare_within():
    runs, _ = synth.split(synth.sweep({("matmul", "serial", 2): 10.0}, 3, np.random.default_rng(6)))
    assert compare.compare(Sweep("this sweep", runs), []).empty
    assert judge.variants(runs) == [] and judge.variants(runs, ["x", "y"]) == []


def test_the_twin_and_the_sentinels_are_no_cells():
    recs = synth.sweep({("matmul", "serial", 2): 10.0}, 3, np.random.default_rng(7))
    assert sorted(judge.cells(recs)) == [("matmul", "serial", 2, "")]
    assert sorted(judge.cells(recs)[("matmul", "serial", 2, "")].throughput) == [1, 2, 3]


# ---------------------------------------------------------------- cells that cannot be compared


def test_cells_in_one_sweep_only_unclean_or_doing_another_task_are_not_compared():
    rng = np.random.default_rng(5)
    base = synthetic(rng, cells=[("matmul", "serial", 1), ("matmul", "ray", 2), ("matmul", "dask", 2), ("ner", "serial", 1)])
    here = synthetic(rng, cells=[("matmul", "serial", 1), ("matmul", "ray", 2), ("matmul", "dask", 2), ("matmul", "joblib", 2)])
    for r in here:
        if r["backend"] == "ray":
            r.update(status="timeout")
        if r["backend"] == "dask":
            r["params"] = {**r["params"], "n": 2048}
        if r["backend"] == "serial":  # run keys, the seed and a key the baseline's parbench lacked do not change what a task is
            r["params"] = {**r["params"], "batches": 7, "seed": 99, "items_per_task": 1}
    table = versus(here, base)
    assert row(table).verdict in judge.THROUGHPUT_VERDICTS
    assert row(table, "joblib", 2).verdict == "only here"
    assert row(table, "serial", 1, "ner").verdict == "only in baseline"
    ray, dask = row(table, "ray", 2), row(table, "dask", 2)
    assert ray.verdict == "not comparable" and "no clean run here" in ray.reason and "timeout" in ray.reason
    assert dask.verdict == "not comparable" and "not the same task: n 2048 here, 1024 in the baseline" == dask.reason
    skipped = judge.not_comparable(table)
    assert set(skipped.backend) == {"joblib", "ray", "dask", "serial"} and len(skipped) == 4
    assert skipped.reason.str.len().gt(0).all()


def test_memory_of_an_external_cluster_is_not_compared_with_a_local_one():
    rng = np.random.default_rng(6)
    base, here = synthetic(rng), synthetic(rng)
    for r in here:
        r["cluster"] = {"kind": "external", "workers_in_memory_tree": False}
    r = row(versus(here, base))
    assert r.verdict in judge.THROUGHPUT_VERDICTS and r.memory_verdict == "not comparable" and "driver only" in r.reason


def test_several_baselines_give_one_row_each():
    rng = np.random.default_rng(7)
    here = synthetic(rng, speed=2.0)
    table = compare.compare(Sweep("this sweep", here), [Sweep("old", synthetic(rng)), Sweep("same", synthetic(rng, speed=2.0))])
    assert list(table.baseline) == ["old", "same"]
    assert table.verdict.iloc[0] == "faster" and table.verdict.iloc[1] in ("equivalent", "cannot tell")


# ---------------------------------------------------------------- provenance within one sweep


def runs_of(recs):
    return stats.tables(recs)[0]


def test_a_uniform_sweep_is_not_mixed():
    recs = synthetic(np.random.default_rng(8), cells=[("matmul", "serial", 1), ("matmul", "ray", 2)])
    assert provenance.mixed_provenance(runs_of(recs)).empty
    assert provenance.mixed_provenance_text(runs_of(recs)) == ""


def test_cells_from_another_host_or_code_are_named():
    recs = synthetic(np.random.default_rng(9), cells=[("matmul", "serial", 1), ("matmul", "ray", 2), ("ner", "dask", 4)])
    for r in recs:
        if r["backend"] == "ray":
            r["environment"]["host"] = "h2"
        if r["backend"] == "dask" and r["trial"] == 3:
            r["environment"]["code_hash"] = "d1ff"
    mixed = provenance.mixed_provenance(runs_of(recs))
    assert set(map(tuple, mixed[["backend", "field"]].values.tolist())) == {("ray", "host"), ("dask", "run code")}
    assert mixed.set_index("backend").loc["dask", "values"] == "c0de ×2, d1ff ×1"
    text = provenance.mixed_provenance_text(runs_of(recs))
    assert "matmul ray at 2 workers (h2 ×3)" in text and "ner dask at 4 workers" in text and "serial" not in text


def test_a_commit_that_changes_no_run_code_is_not_a_mix():
    """A commit of docs or tests made during a sweep: the runs after it name another commit, the same code."""
    recs = synthetic(np.random.default_rng(10), cells=[("matmul", "serial", 1), ("matmul", "ray", 2), ("ner", "serial", 1)])
    for r in recs:
        if r["backend"] == "ray" or r["trial"] == 2:
            r["environment"]["git_commit"] = "b" * 40 if r["backend"] == "ray" else None
    assert provenance.mixed_provenance(runs_of(recs)).empty
    # Different code in cells of their own is no mix either: each backend and workload has its own hash.
    for r in recs:
        r["environment"]["code_hash"] = r["backend"]
    assert provenance.mixed_provenance(runs_of(recs)).empty


def test_the_report_says_so_at_the_top():
    recs = synthetic(np.random.default_rng(11), cells=[("matmul", "serial", 1), ("matmul", "ray", 2)])
    recs[-1]["environment"]["cpu_model"] = "Xeon"
    runs, batches = stats.tables(recs)
    (warning,) = report.context(runs, stats.stats(runs, batches), {"environment": {}}, [], {})["warnings"]
    assert "Not one machine" in warning and "matmul ray at 2 workers" in warning and "Xeon" in warning
    uniform, uniform_batches = stats.tables(synthetic(np.random.default_rng(11)))
    assert report.context(uniform, stats.stats(uniform, uniform_batches), {}, [], {})["warnings"] == []


# ---------------------------------------------------------------- what differs between two sweeps


def test_what_differs_lists_machine_software_config_and_commit_first():
    rng = np.random.default_rng(12)
    base = Sweep("base", synthetic(rng), {"blas_gflops_single": 53.0, "blas_gflops_all": 105.0})
    here = Sweep("this sweep", synthetic(rng, host="h2", numpy="2.1.0", blas_threads=1, commit="b" * 40), {"blas_gflops_all": 193.0})
    diff = facts.differences([base, here])
    differing = list(diff[diff.differs].fact)
    assert {"host", "numpy", "blas_threads", "commit", "GEMM GFLOP/s, 1 core / all cores (machine.json)"} <= set(differing)
    assert {"CPU model", "Python", "BLAS", "ray"}.isdisjoint(differing)
    assert diff.differs.iloc[: len(differing)].all(), "differing facts come first"
    text = facts.framing(diff, here, base)
    assert text.startswith("Different machines (host differ)") and "mixes the machine" in text and "numpy" in text
    assert "105 GFLOP/s there and 193 here" in text


def test_same_machine_framing_names_what_else_differs():
    rng = np.random.default_rng(13)
    base, here = Sweep("base", synthetic(rng)), Sweep("this sweep", synthetic(rng, blas_threads=1))
    for load, r in enumerate(here.records):  # a newer record field: shown, but a measurement, not a setting
        r["system"] = {"loadavg_1m_start": float(load)}
    diff = facts.differences([base, here])
    text = facts.framing(diff, here, base)
    assert text.startswith("Same machine") and "What differs: blas_threads." in text and "do not cover" in text
    assert diff.set_index("fact").loc["load average at run starts, median (records)", "this sweep"] == "1.00"


def test_a_baselines_aa_twins_are_no_difference_in_trials_per_cell():
    recs = synthetic(np.random.default_rng(15), trials=2)
    twin = {**copy.deepcopy(recs[0]), "twin": True}  # a baseline read from its runs.csv lists its A/A twins too
    diff = facts.differences([Sweep("base", [*recs, twin]), Sweep("this sweep", recs)])
    assert not diff.set_index("fact").loc["trials per cell", "differs"]


def test_a_mixed_sweep_shows_its_values_with_counts():
    recs = synthetic(np.random.default_rng(14), trials=3)
    recs[0]["environment"]["packages"]["numpy"] = "1.26.4"
    assert facts.facts(Sweep("s", recs))[("software", "numpy")] == "2.0.0 (2 runs) | 1.26.4 (1 runs) (mixed)"


# ---------------------------------------------------------------- baselines on disk


def finished_sweep(folder, recs, machine=True):
    """A results/ folder as the pipeline leaves it: records, tables, machine.json."""
    for r in recs:
        records.write(records.path(folder, r["workload"], r["backend"], r["workers"], r["trial"]), r)
    runs, batches = stats.tables(recs)
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    runs.to_csv(folder / "tables" / "runs.csv", index=False)
    batches.to_csv(folder / "tables" / "batches.csv", index=False)
    if machine:
        (folder / "machine.json").write_text(json.dumps({"blas_gflops_all": 100.0}))
    return folder


@pytest.fixture
def good(tmp_path):
    return finished_sweep(tmp_path / "good", synthetic(np.random.default_rng(15), cells=[("matmul", "serial", 1), ("ner", "ray", 2)]))


def test_a_finished_sweep_is_a_baseline(good, tmp_path):
    assert baseline.baseline_problems(good, here=tmp_path / "results") == []
    files = baseline.baseline_files(good)
    assert len(files) == 6 + 2 and all(f.is_file() for f in files)
    assert len(facts.load_baseline(good).records) == 6


def test_bad_baselines_are_named_with_what_is_wrong(good, tmp_path):
    here = tmp_path / "results"
    assert "is not a folder" in baseline.baseline_problems(tmp_path / "nowhere", here)[0]
    (tmp_path / "empty").mkdir()
    (msg,) = baseline.baseline_problems(tmp_path / "empty", here)
    assert str(tmp_path / "empty") in msg and "not a parbench results folder" in msg and "tables/runs.csv" in msg
    assert "own results folder" in baseline.baseline_problems(good, here=good)[0]


def test_a_baseline_missing_records_is_refused(good):
    next((good / "runs" / "ner").rglob("trial-2.json")).unlink()
    (msg,) = baseline.baseline_problems(good)
    assert str(good) in msg and "misses 1 of the 6 records" in msg and "runs/ner/ray/workers-2/trial-2.json" in msg


def test_a_baseline_of_a_newer_schema_is_refused(good):
    path = records.path(good, "matmul", "serial", 1, 1)
    records.write(path, {**records.read(path), "schema_version": records.SCHEMA_VERSION + 1})
    (msg,) = baseline.baseline_problems(good)
    assert str(good) in msg and f"schema_version {records.SCHEMA_VERSION + 1}" in msg and "newer" in msg


def test_a_baseline_with_a_broken_record_is_refused(good):
    records.path(good, "matmul", "serial", 1, 1).write_text("{not json")
    (msg,) = baseline.baseline_problems(good)
    assert "runs/matmul/serial/workers-1/trial-1.json is not a readable run record" in msg


def test_every_bad_folder_of_a_list_is_named(good, tmp_path):
    with pytest.raises(baseline.BaselineError) as error:
        baseline.baselines([str(good), str(tmp_path / "a"), str(tmp_path / "b")], here=tmp_path / "results")
    assert str(tmp_path / "a") in str(error.value) and str(tmp_path / "b") in str(error.value) and str(good) not in str(error.value)
    assert list(baseline.baselines(str(good), here=tmp_path / "results")) == [str(good)]


# ---------------------------------------------------------------- the config key

MINIMAL = {"backends": ["serial"], "workers": [1], "trials": 1, "workloads": {"matmul": {"n": 256, "k": 8}}}


@pytest.mark.parametrize("value", [None, "old/results", ["a/results", "b/results"]], ids=["null", "folder", "list"])
def test_compare_with_takes_a_folder_or_a_list(value):
    assert config.validate({**MINIMAL, "compare_with": value}, SCHEMA)["compare_with"] == value


def test_compare_with_defaults_to_no_comparison():
    assert config.validate(MINIMAL, SCHEMA)["compare_with"] is None


@pytest.mark.parametrize("value", [3, "", [], ["a", "a"]], ids=["number", "empty-string", "empty-list", "repeated"])
def test_compare_with_refuses_anything_else(value):
    with pytest.raises(config.ConfigError, match=r"config key compare_with: .*allowed: null, or another sweep's results/ folder"):
        config.validate({**MINIMAL, "compare_with": value}, SCHEMA)


# ---------------------------------------------------------------- the page


def test_write_makes_the_table_figures_and_a_self_contained_page(tmp_path):
    rng = np.random.default_rng(16)
    cells = [("matmul", b, w) for b in ("serial", "ray", "multiprocessing-shared") for w in (1, 2, 4, 8)] + [("ner", "serial", 1)]
    base = Sweep("old/results", synthetic(rng, cells=cells), {"blas_gflops_all": 105.0})
    here_recs = synthetic(rng, speed=1.3, cells=cells[:-1] + [("ner", "dask", 2)], host="h2")
    here_recs[0]["environment"]["code_hash"] = "d1ff"  # one run of serial at 1 worker ran other code
    here = Sweep("this sweep", here_recs, {"blas_gflops_all": 193.0})
    png = [tmp_path / "comparison_matmul.png", tmp_path / "comparison_ner.png"]
    table = compare.write(
        tmp_path / "comparison.csv", tmp_path / "comparison.html", png, [p.with_suffix(".svg") for p in png], here, [base]
    )
    assert pd.read_csv(tmp_path / "comparison.csv").shape == table.shape
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in png)
    page = (tmp_path / "comparison.html").read_text()
    sections = [page.index(f'id="{s}"') for s in comparison_page.SECTIONS]
    assert sections == sorted(sections)
    assert page.count("data:image/png;base64,") == 2
    assert "src='http" not in page and 'src="http' not in page and "<link" not in page
    assert "Different machines" in page and "only here" in page and "only in baseline" in page
    assert "Not one machine" in page and "matmul serial at 1 worker (" in page
    assert page.index("What differs") < page.index("Verdicts") < page.index("Cells not compared")


def test_the_page_renders_offline_in_chromium(tmp_path):
    """Every figure loads and nothing is fetched from outside the page (as tests/test_browser.py does for the report)."""
    from test_browser import CHROMIUM, offline_page, unavailable

    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: install Debian's chromium (make browser)")

    rng = np.random.default_rng(17)
    cells = [("matmul", "serial", 1), ("matmul", "ray", 2), ("ner", "ray", 2)]
    png = [tmp_path / "comparison_matmul.png", tmp_path / "comparison_ner.png"]
    here, base = Sweep("this sweep", synthetic(rng, speed=0.5, cells=cells)), Sweep("old", synthetic(rng, cells=cells))
    compare.write(tmp_path / "c.csv", tmp_path / "comparison.html", png, [p.with_suffix(".svg") for p in png], here, [base])
    outside = []
    with offline_page(outside) as page:
        page.goto((tmp_path / "comparison.html").as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
        sections = page.eval_on_selector_all("section", "ss => ss.map(s => s.id)")
        slower = page.locator("td.v-slower").count()
    assert len(images) == 2 and all(done and width > 0 for done, width in images), images
    assert sections == list(comparison_page.SECTIONS) and slower == 3 and outside == []


def test_a_page_against_another_session_says_first_that_it_is_confounded(tmp_path):
    here, base = sweep_of(seed=8), sweep_of(seed=9, start=1e6)
    base.name = "old/results"
    table = compare.compare(here, [base])
    page = comparison_page.page(here, [base], table, {})
    opening = page.split("<nav>")[0]
    assert "confounded with the machine" in opening and "`variants`" in opening
    assert opening.index("confounded") < opening.index("runs here")  # before anything else but the title


def test_a_page_of_variants_says_they_are_paired_and_what_differs(tmp_path):
    runs, sent = synth.split(synth.sweep({("matmul", "serial", 2): 10.0}, 3, np.random.default_rng(10), variants={"a": 1.0, "b": 1.0}))
    for r in runs:
        r["environment"]["python"] = "3.13.0" if r["variant"] == "b" else "3.11.2"
    here = Sweep("this sweep", runs, {}, sent)
    png = [tmp_path / "comparison_matmul.png"]
    table = compare.write(tmp_path / "c.csv", tmp_path / "c.html", png, [p.with_suffix(".svg") for p in png], here, [], variants=["a", "b"])
    page = (tmp_path / "c.html").read_text()
    opening = page.split("<nav>")[0]
    assert "Variants of one sweep" in opening and "paired within a round" in opening and "confounded" not in opening
    assert "variant a (baseline) → variant b" in page and "What differs: Python" in page
    assert list(table.baseline) == ["a"] and pd.read_csv(tmp_path / "c.csv").variant.tolist() == ["b"]
    assert png[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_baseline_finds_its_variants_and_twins_records_wherever_they_are(tmp_path):
    runs, sent = synth.split(synth.sweep({("matmul", "serial", 2): 10.0}, 2, np.random.default_rng(11), variants={"a": 1.0, "b": 1.0}))
    folder = tmp_path / "base"
    for i, r in enumerate(runs):  # another layout than the plain one: what the pipeline does with variants is its own
        records.write(folder / "runs" / "elsewhere" / f"{i}.json", r)
    for r in sent:
        records.write(folder / "sentinels" / f"round-{r['round']}.json", r)
    table = pd.DataFrame([{"workload": r["workload"], "backend": r["backend"], "workers": r["workers"], "trial": r["trial"],
                           "variant": r["variant"], "twin": r["twin"]} for r in runs])  # fmt: skip
    (folder / "tables").mkdir()
    table.to_csv(folder / "tables" / "runs.csv", index=False)
    (folder / "machine.json").write_text("{}")
    assert baseline.baseline_problems(folder, here=tmp_path / "results") == []
    loaded = facts.load_baseline(folder)
    assert len(loaded.records) == len(runs) == 8 and len(loaded.sentinels) == 2
    assert sorted((r["variant"], r["round"], r["twin"]) for r in loaded.records) == sorted(
        (r["variant"], r["round"], r["twin"]) for r in runs
    )


def test_each_variant_is_compared_with_a_baseline_that_had_none():
    base = sweep_of(seed=12)
    runs, sent = synth.split(
        synth.sweep({("matmul", "serial", 2): 10.0, ("matmul", "ray", 2): 15.0}, 4, np.random.default_rng(13), variants={"a": 1, "b": 1})
    )
    table = compare.compare(Sweep("this sweep", runs, {}, sent), [Sweep("old", base.records, {}, base.sentinels)], variants=["a", "b"])
    across = table[table.kind == judge.ACROSS]
    assert sorted(across.variant) == ["a", "a", "b", "b"] and across.verdict.isin(judge.THROUGHPUT_VERDICTS).all()


def test_snakemakes_own_process_imports_no_pandas_to_check_a_baseline():
    """Checking compare_with at parse time once imported parbench.compare.compare (pandas, scipy) into Snakemake's
    process, which then shared pages with every run's driver: a serial ner run's PSS was 2.7 % lower beside it."""
    smk = (REPO / "workflow" / "rules" / "common.smk").read_text()
    imports = sorted(set(re.findall(r"from parbench(?:\.\w+)? import \w+", smk)))
    assert "from parbench.compare import baseline" in imports, imports
    code = (
        f"import sys, yaml; {'; '.join(imports)}; "
        f"config.validate(yaml.safe_load(open({str(REPO / 'config' / 'config.yaml')!r})), {str(REPO / 'config' / 'schema.yaml')!r}); "
        "print(sorted(m for m in ('pandas', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out


def test_the_gate_trips_only_on_what_fail_on_names():
    from parbench.sweep import gate

    table = pd.DataFrame(
        [
            {"baseline": "base", "variant": "new", "workload": "w", "backend": "serial", "workers": 1, "verdict": "slower",
             "throughput_ratio": 0.8, "throughput_ratio_ci_low": 0.7, "throughput_ratio_ci_high": 0.9, "memory_verdict": "equivalent",
             "memory_ratio": 1.0, "memory_ratio_ci_low": 0.99, "memory_ratio_ci_high": 1.01, "kind": "variants, paired within rounds"},
            {"baseline": "base", "variant": "new", "workload": "w", "backend": "threads", "workers": 2, "verdict": "cannot tell",
             "throughput_ratio": 0.9, "throughput_ratio_ci_low": 0.6, "throughput_ratio_ci_high": 1.2, "memory_verdict": "more memory",
             "memory_ratio": 1.3, "memory_ratio_ci_low": 1.2, "memory_ratio_ci_high": 1.4, "kind": "variants, paired within rounds"},
        ]
    )  # fmt: skip
    assert gate.verdicts(table, [], 0.05)["passed"]
    slower = gate.verdicts(table, ["slower"], 0.05)
    assert not slower["passed"] and [(t["backend"], t["fail_on"]) for t in slower["tripped"]] == [("serial", "slower")]
    assert slower["tripped"][0]["ci"] == [0.7, 0.9] and slower["cells"] == 2
    both = gate.verdicts(table, ["slower", "more-memory"], 0.05)
    assert [(t["backend"], t["verdict"]) for t in both["tripped"]] == [("serial", "slower"), ("threads", "more memory")]
    assert gate.explain(both).startswith("parbench: fail_on ['slower', 'more-memory'] tripped on 2 of 2 cells:")
