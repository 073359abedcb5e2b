"""parbench.stats on hand-made records: the run as the unit, the paired speedup, intervals, the A/A
table, busy and unclean runs."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parbench import decide, records, stats

CORES = 2


def record(
    backend="serial",
    workers=1,
    trial=1,
    batch_s=(1.0, 1.0),
    workload="matmul",
    status="ok",
    verified=True,
    cores=CORES,
    tasks=None,
    chunk=1,
    twin=False,
    variant=None,
    busy=None,
):
    """A run record with the fields parbench.stats reads."""
    tasks = tasks or workers
    batch_s = [float(s) for s in batch_s]
    return {
        "schema_version": 1,
        "workload": workload,
        "backend": backend,
        "workers": workers,
        "trial": trial,
        "round": trial,
        "twin": twin,
        "variant": variant,
        "order": {"round": trial, "place": 1, "of": 1, "position": trial, "sentinel": False},
        "status": status,
        "reason": None if status == "ok" else "made up",
        "verified": verified,
        "params": {},
        "tasks_per_batch": tasks,
        "items_per_task": chunk,
        "items_per_batch": tasks * chunk,
        "cpu": {"driver_batch_s": [0.5 * s for s in batch_s]},
        "gil_enabled": True,
        "timings": {
            "startup_s": 0.5,
            "setup_s": 0.25,
            "warmup_s": [1.0],
            "batch_s": batch_s,
            "teardown_s": 0.125,
            "end_to_end_s": 1.875 + sum(batch_s),
        },
        "memory": {
            "peak_tree_pss_bytes": 100 * workers,
            "peak_tree_rss_bytes": 200 * workers,
            "peak_shm_bytes": 0,
            "driver_peak_rss_bytes": 50,
            "phases": {"batch": {"peak_pss_bytes": 90 * workers}},
        },
        "blas_threads": cores if backend == "serial" else max(1, cores // workers),
        "started_at": 1000.0 * trial,
        "finished_at": 1000.0 * trial + 10,
        "environment": {"host": "h", "cpu_model": "c", "physical_cores": cores, "git_commit": "0" * 40, "config_hash": "x"},
        "workload_info": {"flops_per_item": 1e9, "data_bytes": 1000},
        # other_cpu_s over window_s: other cores busy beside the run (stats.BUSY_OTHER_CORES)
        **({"system": {"window_s": 1.0, "other_cpu_s": 1.0 if busy else 0.0}} if busy is not None else {}),
        **({"cpu": {"driver_batch_s": [0.5 * s for s in batch_s], "tree_totals_source": "cgroup v2"}} if busy is not None else {}),
    }


def table(records, seed=0):
    runs, batches = stats.tables(records)
    return runs, batches, stats.stats(runs, batches, seed=seed)


def row(out, backend, workers, workload="matmul"):
    found = out[(out.workload == workload) & (out.backend == backend) & (out.workers == workers)]
    assert len(found) == 1
    return found.iloc[0]


@pytest.fixture(scope="module")
def sweep():
    """serial, ray and dask at 1, 2 and 4 workers, two trials each; ray is twice as fast as serial."""
    rng = np.random.default_rng(1)
    recs = []
    for workers in (1, 2, 4):
        for backend, speed in (("serial", 1.0), ("ray", 2.0), ("dask", 0.5)):
            for trial in (1, 2):
                recs.append(record(backend, workers, trial, rng.uniform(0.9, 1.1, 5) / speed))
    return table(recs)


def test_tables_have_a_row_per_run_and_per_batch(sweep):
    runs, batches, out = sweep
    assert len(runs) == 18 and len(batches) == 18 * 5 and len(out) == 9
    assert np.allclose(batches.throughput, batches["items"] / batches.seconds)


def test_throughput_counts_items_when_tasks_are_chunked():
    """Chunked runs are compared with unchunked ones by items per second, not tasks per second."""
    runs, batches, out = table([record("ray", 2, t, (2.0, 2.0), tasks=2, chunk=8) for t in (1, 2)])
    assert (batches["items"] == 16).all() and np.allclose(batches.throughput, 8.0)
    assert runs.items_per_task.eq(8).all() and runs.throughput.eq(8.0).all()
    assert row(out, "ray", 2).throughput_median == pytest.approx(8.0) and row(out, "ray", 2).items_per_task == 8
    assert row(out, "ray", 2).batch_s_median == pytest.approx(2.0)
    assert row(out, "ray", 2).driver_cores_busy_median == pytest.approx(0.5)


def test_serial_speedup_is_exactly_one(sweep):
    out = sweep[2]
    serial = out[out.backend == "serial"]
    assert (serial.speedup_vs_serial == 1.0).all()
    assert (serial.speedup_ci_low == 1.0).all() and (serial.speedup_ci_high == 1.0).all()


def test_speedup_is_the_ratio_of_median_throughputs(sweep):
    out = sweep[2]
    for _, r in out.iterrows():
        base = row(out, "serial", r.workers)
        assert r.speedup_vs_serial == pytest.approx(r.throughput_median / base.throughput_median, rel=1e-12)
    # ray's batches are twice as fast with as many tasks: about 2x
    assert row(out, "ray", 2).speedup_vs_serial == pytest.approx(2.0, rel=0.25)


def test_throughput_is_the_geometric_mean_of_one_figure_per_run(sweep):
    """The run is the unit: each run's items over the median of its timed batches, then the geometric mean over runs."""
    runs, batches, out = sweep
    for _, r in out.iterrows():
        mine = runs[(runs.backend == r.backend) & (runs.workers == r.workers)]
        per_run = [b["items"].iloc[0] / b.seconds.median() for _, b in batches.merge(mine[[*stats.KEYS, "trial"]]).groupby("trial")]
        assert np.allclose(sorted(mine.run_throughput), sorted(per_run))
        assert r.throughput_median == pytest.approx(np.exp(np.mean(np.log(per_run))), rel=1e-12)


def test_speedup_is_paired_within_rounds():
    """The machine halves its speed in round 2: a paired ratio sees ray at exactly 2x in both rounds,
    so a zero-width interval, while each cell's own throughput interval is wide; an unpaired round counts not."""
    recs = [record("serial", 2, 1, [1.0, 1.0]), record("ray", 2, 1, [0.5, 0.5]), record("serial", 2, 2, [2.0, 2.0])]
    recs += [record("ray", 2, 2, [1.0, 1.0]), record("ray", 2, 3, [0.1, 0.1])]  # round 3: no serial run to pair with
    out = table(recs)[2]
    ray = row(out, "ray", 2)
    assert ray.speedup_vs_serial == pytest.approx(2.0) and ray.n_rounds == 2
    assert (ray.speedup_ci_low, ray.speedup_ci_high) == pytest.approx((2.0, 2.0))
    assert ray.throughput_ci_high / ray.throughput_ci_low > 2, "across rounds the drift is in the cell's own interval"
    assert ray.verdict_vs_serial == "faster" and ray.family == 1 and "efficiency" not in out


def test_verdicts_are_judged_over_the_workloads_family_with_the_margin():
    rng = np.random.default_rng(3)
    recs = [
        record(b, 2, t, [2.0 / speed * rng.lognormal(0, 0.01)] * 2, workload=w)
        for w in ("matmul", "primes")
        for b, speed in (("serial", 1.0), ("ray", 1.5), ("dask", 1.0), ("threads", 1.04))
        for t in range(1, 7)
    ]
    runs, batches = stats.tables(recs)
    out = stats.stats(runs, batches)
    assert (out.family == 3).all(), "every non-reference cell of a workload"
    assert row(out, "ray", 2).verdict_vs_serial == "faster" and row(out, "dask", 2).verdict_vs_serial == "equivalent"
    assert pd.isna(row(out, "serial", 2).verdict_vs_serial) and row(out, "serial", 2).speedup_vs_serial == 1.0
    wide = stats.stats(runs, batches, margin=0.6)
    assert row(wide, "ray", 2).verdict_vs_serial == "equivalent" and (wide.margin == 0.6).all()
    assert (out[out.backend != "serial"].detectable_difference > 0.05).all(), "never below the margin"


def test_a_twin_is_left_out_of_its_cell_and_judged_in_the_aa_table():
    recs = [record("serial", 2, t, [1.0, 1.0]) for t in (1, 2, 3)] + [record("ray", 2, t, [0.5, 0.5]) for t in (1, 2, 3)]
    recs += [record("serial", 2, t, [s, s], twin=True) for t, s in ((1, 0.9), (2, 1.0), (3, 1.1))]
    runs, batches = stats.tables(recs)
    assert runs.twin.sum() == 3 and set(runs.columns) >= {"round", "place", "twin", "variant", "run_throughput"}
    out = stats.stats(runs, batches)
    serial = row(out, "serial", 2)
    assert serial.n_runs == 3 and serial.throughput_median == pytest.approx(2.0), "the twins are not the reference's runs"
    (aa,) = stats.aa(runs).to_dict("records")
    assert aa["workload"] == "matmul" and aa["n_rounds"] == 3 and aa["family"] == 1
    assert aa["estimate"] == pytest.approx(np.exp(-np.mean(np.log([0.9, 1.0, 1.1]))))
    assert aa["noise_sd"] == pytest.approx(np.std(np.log([0.9, 1.0, 1.1]), ddof=1))
    assert aa["ci_low"] < 1 < aa["ci_high"] and aa["verdict"] == "cannot tell" and not aa["false_verdict"]
    assert serial.detectable_difference == pytest.approx(aa["detectable_difference"]), "the reference's precision is the twin's"


def test_runs_on_a_busy_machine_are_left_out_while_two_quiet_ones_remain():
    recs = [record("serial", 2, t, [1.0, 1.0], busy=False) for t in (1, 2, 3)]
    recs += [
        record("ray", 2, 1, [0.5, 0.5], busy=False),
        record("ray", 2, 2, [0.5, 0.5], busy=False),
        record("ray", 2, 3, [5.0, 5.0], busy=True),
    ]
    out = table(recs)[2]
    ray = row(out, "ray", 2)
    assert ray.n_busy == 1 and ray.throughput_median == pytest.approx(4.0) and ray.n_rounds == 2
    # Fewer than two quiet runs: the cell rests on every clean run (and keeps its busy mark).
    out = table([record("serial", 2, t, [1.0, 1.0], busy=True) for t in (1, 2)])[2]
    assert row(out, "serial", 2).n_busy == 2 and row(out, "serial", 2).throughput_median == pytest.approx(2.0)


def test_variants_are_cells_of_their_own_judged_against_their_own_serial():
    recs = [
        record(b, 2, t, [1.0 / f / s] * 2, variant=v)
        for v, f in (("a", 1.0), ("b", 2.0))
        for b, s in (("serial", 1), ("ray", 1.5))
        for t in (1, 2, 3)
    ]
    out = table(recs)[2]
    assert len(out) == 4 and set(out.variant) == {"a", "b"}
    assert np.allclose(out[out.backend == "ray"].speedup_vs_serial, 1.5)
    assert out.set_index(["variant", "backend"]).throughput_median.to_dict() == pytest.approx(
        {("a", "ray"): 3.0, ("a", "serial"): 2.0, ("b", "ray"): 6.0, ("b", "serial"): 4.0}
    )


@pytest.mark.parametrize("seed", range(12))
def test_intervals_bracket_their_medians(seed):
    """Property over random sweeps: trials, batches and spreads drawn at random."""
    rng = np.random.default_rng(seed)
    recs = []
    for workers in (1, 2):
        for backend in ("serial", "multiprocessing"):
            scale = rng.lognormal(0, 1)
            for trial in range(1, rng.integers(1, 5) + 1):
                n = int(rng.integers(1, 7))
                recs.append(record(backend, workers, trial, scale * rng.lognormal(0, rng.uniform(0, 1.5), n)))
    out = table(recs, seed=seed)[2]
    for _, r in out.iterrows():
        assert r.throughput_ci_low <= r.throughput_median <= r.throughput_ci_high, r.to_dict()
        if r.backend != "serial" and r.n_rounds < 2:  # one paired round: an estimate, no interval
            assert np.isnan(r.speedup_ci_low) and r.verdict_vs_serial == "cannot tell", r.to_dict()
            continue
        slack = 1e-12 * r.speedup_vs_serial
        assert r.speedup_ci_low - slack <= r.speedup_vs_serial <= r.speedup_ci_high + slack, r.to_dict()


def test_a_single_batch_gives_a_point_interval():
    out = table([record("serial", 1, 1, [0.5])])[2]
    r = row(out, "serial", 1)
    assert r.throughput_ci_low == r.throughput_median == r.throughput_ci_high == 2.0


@pytest.fixture(scope="module")
def unclean():
    recs = [
        record("ray", 2, 1, [1.0, 1.0]),
        record("ray", 2, 2, [1.0, 1.0]),
        record("ray", 2, 3, [0.001, 0.001], status="failed"),  # absurdly fast partial batches of a failed run
        record("ray", 2, 4, [0.001, 0.001], verified=False),  # ran, but wrong results
        record("ray", 2, 5, [0.001], status="timeout"),
        record("serial", 2, 1, [2.0, 2.0]),
        record("serial", 2, 2, [2.0, 2.0]),
        record("dask", 2, 1, [0.001], status="oom"),  # nothing clean at all
        record("dask", 2, 2, [0.001], verified=False),
    ]
    return table(recs)


def test_unclean_runs_are_excluded_from_statistics(unclean):
    out = unclean[2]
    ray = row(out, "ray", 2)
    assert ray.throughput_median == pytest.approx(2.0)  # 2 tasks per 1 s batch: only trials 1 and 2
    assert ray.throughput_ci_high == pytest.approx(2.0)
    assert ray.speedup_vs_serial == pytest.approx(2.0)
    assert ray.n_runs == 5 and ray.n_clean == 2


def test_unclean_runs_are_flagged(unclean):
    out = unclean[2]
    assert not row(out, "ray", 2).all_clean
    assert row(out, "serial", 2).all_clean
    dask = row(out, "dask", 2)
    assert not dask.all_clean and dask.n_clean == 0
    assert np.isnan(dask.throughput_median) and np.isnan(dask.speedup_vs_serial)
    statuses = row(out, "ray", 2).statuses
    assert "failed" in statuses and "timeout" in statuses


def test_unclean_runs_stay_in_the_runs_table(unclean):
    runs = unclean[0]
    assert len(runs) == 9
    assert set(runs.status) == {"ok", "failed", "timeout", "oom"}
    assert runs.verified.dtype == bool and (~runs.verified).sum() == 2


def test_no_serial_baseline_means_no_speedup():
    out = table([record("ray", 2, 1, [1.0]), record("ray", 2, 2, [1.2])])[2]
    r = row(out, "ray", 2)
    assert not np.isnan(r.throughput_median)
    assert np.isnan(r.speedup_vs_serial) and r.verdict_vs_serial == "cannot tell" and r.n_rounds == 0


def test_stats_are_reproducible_with_a_seed(sweep):
    runs, batches, out = sweep
    again = stats.stats(runs, batches, seed=0)
    pd.testing.assert_frame_equal(out, again)


# ---------------------------------------------------------------------------------------------
# Records that cannot be used are named, moved aside and redone


def write_cell(root, rec):
    path = root / "runs" / rec["workload"] / rec["backend"] / f"workers-{rec['workers']}" / f"trial-{rec['trial']}.json"
    records.write(path, rec)
    return path


def full(**kw):
    """A complete record of the current schema."""
    return records.new(
        {"workload": "matmul", "backend": "serial", "workers": 1, "trial": 1, "params": {}, "settings": {}, **kw},
        {"host": "h", "cpu_model": "c", "physical_cores": 2, "logical_cores": 2, "memory_bytes": 1, "python": "3.11",
         "packages": {}, "start_method": None, "git_commit": None},
        status="ok", finished_at=2.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda p: p.write_text(p.read_text()[:200]), "not a complete JSON record"),
        (lambda p: p.write_text("{}"), "field schema_version: missing"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "memory": {"peak_tree_pss_bytes": "a lot"}})), "field memory"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "schema_version": 99})), "newer than this parbench reads"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "status": "running"})), "never finished"),
    ],
    ids=["truncated", "empty", "wrong-type", "newer-schema", "unfinished"],
)
def test_a_damaged_record_is_named_and_moved_aside(tmp_path, damage, message):
    good, bad = write_cell(tmp_path, full()), write_cell(tmp_path, full(trial=2))
    damage(bad)
    with pytest.raises(records.RecordError) as raised:
        records.read_all([good, bad])
    assert str(bad) in str(raised.value) and message in str(raised.value), raised.value
    assert good.exists() and not bad.exists() and Path(f"{bad}.invalid").exists(), "moved aside: the next snakemake redoes it"


def test_a_record_copied_over_another_cells_path_is_refused(tmp_path):
    a = write_cell(tmp_path, full(trial=1))
    b = write_cell(tmp_path, full(trial=2))
    b.write_text(a.read_text())  # trial 1's record at trial 2's path
    with pytest.raises(records.RecordError, match=r"trial-2\.json: field trial: 1, but its path names 2"):
        records.read_all([a, b])
    assert a.exists() and not b.exists()


def test_a_valid_record_passes_the_schema():
    assert records.problems(full()) == []
    assert records.problems({**full(), "gil_enabled": "yes"}) == ["field gil_enabled: 'yes' is not of type 'boolean', 'null'"]


# The busy flag against /proc/stat's ticks. This kernel (CONFIG_TICK_CPU_ACCOUNTING, HZ=250) samples each
# CPU's state every 4 ms and charges the whole tick to it; /proc/stat then sums the CPUs' nanoseconds and
# prints them in 10 ms ticks (USER_HZ). The tree's CPU comes from its cgroup, exact. A model of both, not
# the formula stats uses, drives the rule here.
KERNEL_TICK_S, USER_TICK_S, SEEDS = 0.004, 0.01, 400


def ticked_run(rng, n_batches, batch_s, other_cores, cpus=2):
    """A run record whose timed batches each read /proc/stat as the kernel would count them: the tree
    keeps each CPU busy a random share of the time, the rest of the machine other_cores on average."""
    machine, other_batch = rng.uniform(0, 1e4), []
    for _ in range(n_batches):
        share = rng.uniform(0, 1, cpus)  # the tree's share of each CPU in this batch
        tree = float(share.sum() * batch_s)
        busy = np.minimum(share + other_cores / cpus, 1.0)  # what each CPU's ticks see busy
        ticks = rng.binomial(int(batch_s / KERNEL_TICK_S), busy).sum()
        before = np.floor(machine / USER_TICK_S) * USER_TICK_S
        machine += ticks * KERNEL_TICK_S
        other_batch.append(float(np.floor(machine / USER_TICK_S) * USER_TICK_S - before) - tree)
        machine += rng.uniform(0, 0.02)  # the harness between batches
    r = record("serial", 1, 1, [batch_s] * n_batches)
    r["system"] = {"window_s": 10.0, "other_cpu_s": 0.0, "other_cpu_batch_s": other_batch}
    r["cpu"]["tree_totals_source"] = "cgroup v2"
    r["environment"]["logical_cores"] = cpus
    return stats.run_row(r)


def share_flagged(rows, old=False):
    """Runs flagged busy, with a 95 % binomial interval: by today's rule, or by the rule before it (the
    sum of other work over the timed batches against the threshold, whatever the window)."""
    from scipy.stats import binomtest

    flagged = sum((r["other_cores_batches"] > stats.BUSY_OTHER_CORES) if old else bool(r["busy_machine"]) for r in rows)
    ci = binomtest(flagged, len(rows)).proportion_ci(0.95, method="exact")
    return flagged / len(rows), ci.low, ci.high


@pytest.mark.parametrize("n_batches, batch_s", [(50, 0.02), (5, 0.2), (25, 0.04), (3, 0.06)])  # the last: the shortest window judged
def test_ticks_alone_do_not_flag_a_quiet_run_and_real_load_is_seen(n_batches, batch_s):
    rng = np.random.default_rng(20)
    quiet = [ticked_run(rng, n_batches, batch_s, 0.0) for _ in range(SEEDS)]
    assert all(r["busy_machine"] is not None for r in quiet), "these windows are judged"
    rate, _, high = share_flagged(quiet)
    assert high <= 0.05, f"quiet runs flagged busy by ticks alone: {rate:.1%} (upper bound {high:.1%}, {SEEDS} seeds)"
    loaded = [ticked_run(rng, n_batches, batch_s, 0.6) for _ in range(SEEDS)]
    rate, low, _ = share_flagged(loaded)
    assert low >= 0.95, f"runs beside 0.6 of a core of other work flagged in only {rate:.1%} ({SEEDS} seeds)"


def test_a_window_too_short_for_the_ticks_is_not_judged_where_the_old_rule_flagged_quiet_runs():
    """tinytasks' three timed batches of 20 ms: the rule before flagged quiet runs busy on tick noise alone
    (seen: 9 of 350 runs of a quiet default sweep, all tinytasks); now such a run is not judged."""
    rng = np.random.default_rng(21)
    quiet = [ticked_run(rng, 3, 0.02, 0.0) for _ in range(1000)]
    rate, low, high = share_flagged(quiet, old=True)
    assert rate > 0.05, f"the old rule should fail here: it flagged {rate:.1%} [{low:.1%}-{high:.1%}] of quiet runs (1000 seeds)"
    assert all(r["busy_machine"] is None for r in quiet), "tick noise over 60 ms is not judged"
    assert all(r["other_cores_tick_noise"] > stats.TICK_NOISE_SHARE * stats.BUSY_OTHER_CORES for r in quiet)


def test_the_report_says_which_runs_were_too_short_to_judge():
    from parbench.report import report

    rng = np.random.default_rng(22)
    rows = [ticked_run(rng, 3, 0.02, 0.0) | {"workload": "tinytasks"}, ticked_run(rng, 50, 0.02, 0.0)]
    runs = pd.DataFrame(rows)
    lines = report.machine_state(runs, pd.DataFrame(), {})
    assert "0 of 2 runs were made on a busy machine." in lines
    assert "1 runs had timed batches too short to judge (tinytasks): set their min_timed_s to judge them." in lines


def test_a_left_out_cell_names_why_its_runs_are_unclean():
    """An unverified run once showed as 'ok x1' with its problem nowhere on the page (issue 24, item 6)."""
    from parbench.report import claims

    unverified = record("ray", 2, 1, verified=False) | {"verification": {"problems": ["batch 0 task 1: result differs from the serial"]}}
    failed = record("ray", 2, 2, status="failed") | {"reason": "task raised ValueError: no (mine.py, line 9, in task)"}
    recs = [record("serial", 2, t) for t in (1, 2, 3)] + [unverified, failed, record("ray", 2, 3)]
    out = table(recs)[2]
    ray = row(out, "ray", 2)
    assert ray.statuses == "failed x1, ok x1, ok but not verified x1"
    assert ray.causes == "batch 0 task 1: result differs from the serial; task raised ValueError: no (mine.py, line 9, in task)"
    (text,) = claims.excluded(out)
    assert "ray at 2 workers (failed x1, ok x1, ok but not verified x1: batch 0 task 1: result differs from the serial; task raised" in text


def test_students_t_from_scipy_special_is_scipy_stats_t():
    """decide computes t from scipy.special (scipy.stats took half a second of every table job's start): the same
    numbers as scipy.stats.t, bit for bit, the ends of the quantile included."""
    from scipy import stats as st

    x, q = np.linspace(-40, 40, 801), np.linspace(0, 1, 401)
    for df in (1, 2, 3.5, 4, 9, 24, 1000, np.inf):
        assert np.array_equal(decide.t_cdf(x, df), st.t.cdf(x, df)), df
        assert np.array_equal(decide.t_sf(x, df), st.t.sf(x, df)), df
        assert np.array_equal(decide.t_ppf(q, df), st.t.ppf(q, df)), df
    assert decide.t_quantile(0.95, 4) == st.t.ppf(0.95, 4)
