"""The whole pipeline end to end on a tiny sweep in a temporary directory, and what a second
invocation does after the config changes (dry runs)."""

import copy
import itertools
import json
import re

import pandas as pd
import pytest
from conftest import (
    OFFERED,
    TEXTS,
    dry_run_jobs,
    missing_fields,
    overlaps,
    read_records,
    scheduled_outputs,
    scratch_workflow,
    snakemake,
    write_config,
)

from parbench import records, stats
from parbench.report import plots
from parbench.report.figures import FIGURES
from parbench.sweep import order

pytestmark = pytest.mark.slow
# CPU counters advance at scheduler ticks: per batch, a figure may be off by about a tick at each end.
TICKS_S = 0.05


@pytest.fixture(scope="module")
def done(tiny_pipeline):
    assert tiny_pipeline.result.returncode == 0, tiny_pipeline.result.stdout[-6000:]
    return tiny_pipeline


def cells_of(config):
    """Every run (workload, backend, workers, trial) of `config`, a workload's own worker counts honoured."""
    trials = range(1, config["trials"] + 1)
    return {
        run
        for workload, params in config["workloads"].items()
        for run in itertools.product([workload], config["backends"], params.get("workers") or config["workers"], trials)
    }


def test_every_record_is_complete_and_verified(done):
    config, recs = done.config, done.records()
    assert {(r["workload"], r["backend"], r["workers"], r["trial"]) for r in recs} == cells_of(config)
    assert len(recs) == len(cells_of(config))
    for r in recs:
        where = f"{r['workload']}/{r['backend']}/w{r['workers']}"
        assert r["status"] == "ok", f"{where}: {r['reason']}"
        assert r["verified"] is True, where
        assert missing_fields(r) == [], where
        assert records.problems(r) == [], where
        assert len(r["timings"]["batch_s"]) == config["workloads"][r["workload"]]["batches"], where
        assert r["tasks_per_batch"] == r["workers"], where


def test_runs_never_overlap(done):
    assert overlaps(done.records()) == []


def test_tables_have_a_row_per_run_and_per_cell(done):
    config, tables = done.config, done.results / "tables"
    runs = pd.read_csv(tables / "runs.csv")
    runs = runs[~runs.twin]
    assert set(map(tuple, runs[["workload", "backend", "workers", "trial"]].values.tolist())) == cells_of(config)
    assert len(runs) == len(cells_of(config))
    batches = pd.read_csv(tables / "batches.csv")
    twins = len(config["workloads"]) * config["trials"]
    assert len(batches) == sum(config["workloads"][w]["batches"] for w, *_ in cells_of(config)) + 2 * twins
    stats = pd.read_csv(tables / "stats.csv")
    expected = {run[:3] for run in cells_of(config)}
    assert set(map(tuple, stats[["workload", "backend", "workers"]].values.tolist())) == expected
    assert len(stats) == len(expected)
    assert stats.all_clean.all()
    assert (stats[stats.backend == "serial"].speedup_vs_serial == 1).all()
    assert stats.throughput_median.notna().all()


@pytest.mark.parametrize("figure", FIGURES)
def test_figures_exist(done, figure):
    for workload in done.config["workloads"]:
        png = done.results / "figures" / f"{workload}_{figure}.png"
        svg = done.results / "figures" / f"{workload}_{figure}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in svg.read_text()[:2000]


def test_report_exists(done):
    html = (done.results / "report.html").read_text()
    assert "<html" in html.lower() and len(html) > 1000


def test_the_results_keep_the_installed_set_that_ran_them(done):
    """results/installed.txt is pip-installable (name==version lines after comments), holds what the runs'
    interpreter had (numpy at this session's version), and the report names it (issue 22, item 3)."""
    import importlib.metadata

    text = (done.results / "installed.txt").read_text()
    pins = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[a-z0-9][a-z0-9.\-]*==\S+", line) for line in pins), pins[:5]
    assert f"numpy=={importlib.metadata.version('numpy')}" in pins and not any(p.startswith("parbench==") for p in pins)
    assert re.match(r"# The installed set of (\d+) of \1 runs: Python 3\.", text), text[:200]
    assert "every run had the same set" in (done.results / "report.html").read_text()


def test_machine_limits_measured(done):
    assert (done.results / "machine.json").stat().st_size > 0


# ---------------------------------------------------------------------------------------------
# Second invocations: dry runs (with another config through --configfile, so the directory stays as it is)


def dry_run(done, tmp_path, config=None):
    args = ["-n", "--cores", "8"]
    if config is not None:
        args += ["--configfile", write_config(tmp_path, config, "changed.yaml")]
    result = snakemake(done.work, *args, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


def test_second_run_has_nothing_to_do(done, tmp_path):
    out = dry_run(done, tmp_path)
    assert "Nothing to be done" in out, out[-3000:]


def test_changed_texts_rerun_only_ner(done, tmp_path):
    config = copy.deepcopy(done.config)
    config["workloads"]["ner"]["texts"] = [*TEXTS, "Ada Lovelace was born in London."]
    out = dry_run(done, tmp_path, config)
    jobs = dry_run_jobs(out)
    ner_runs = {c for c in cells_of(config) if c[0] == "ner"}
    assert jobs.get("run") == len(ner_runs) and jobs.get("twin") == config["trials"], jobs
    runs = scheduled_outputs(out, "run")
    assert len(runs) == len(ner_runs) and all(p.startswith("results/runs/ner/") for p in runs), runs
    assert set(jobs) == {"config", "run", "twin", "aggregate", "plot", "report", "all"}, jobs


def test_added_worker_count_runs_only_new_cells(done, tmp_path):
    config = copy.deepcopy(done.config)
    config["workers"] = [*config["workers"], 3]
    out = dry_run(done, tmp_path, config)
    runs = scheduled_outputs(out, "run")
    new = {c for c in cells_of(config) if c[2] == 3}
    assert dry_run_jobs(out).get("run") == len(new)
    assert sorted(runs) == sorted(f"results/runs/{w}/{b}/workers-{n}/trial-{t}.json" for w, b, n, t in new)
    assert "machine" not in dry_run_jobs(out)


def test_benchmark_slot_stays_one_with_other_resources(tmp_path):
    """A user's own --resources must not lift the one-run-at-a-time limit."""
    config = {"backends": ["serial"], "workers": [1, 2], "trials": 1, "workloads": {"matmul": {"n": 256, "k": 8, "batches": 2}}}
    work = scratch_workflow(tmp_path, config)
    targets = [f"results/runs/matmul/serial/workers-{w}/trial-1.json" for w in (1, 2)]
    result = snakemake(work, *targets, "--cores", "8", "--resources", "mem_mb=1000", timeout=600)
    out = result.stdout
    assert result.returncode == 0, out[-4000:]
    provided = next(line for line in out.splitlines() if line.startswith("Provided resources:"))
    assert re.search(r"benchmark_slot\D+1\b", provided) and "mem_mb" in provided, provided
    assert out.count("Execute 1 jobs") == 2 and "Execute 2 jobs" not in out, "two runs were started together"
    recs = read_records(work)
    assert len(recs) == 2 and overlaps(recs) == []


def boxes_overlap(boxes) -> list:
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]


@pytest.mark.parametrize("figure", list(FIGURES))
def test_tick_labels_never_overlap(done, figure):
    """Every figure of the tests' sweep, drawn as the pipeline draws it: no two tick labels of an
    axis touch (matplotlib gives each label's box in the window)."""
    runs = pd.read_csv(done.results / "tables" / "runs.csv")
    stats = pd.read_csv(done.results / "tables" / "stats.csv")
    machine = json.loads((done.results / "machine.json").read_text())
    for workload in done.config["workloads"]:
        fig = plots.figure(figure, stats[stats.workload == workload], runs[runs.workload == workload], machine, workload)
        fig.set_dpi(plots.DPI)
        for axis_boxes in plots.visible_labels(fig):
            assert boxes_overlap(axis_boxes) == [], f"{workload} {figure}: tick labels overlap"
        plots.plt.close(fig)


def test_tick_labels_overlap_is_seen_without_declutter(done):
    """The check above can fail: the raw throughput figure of a narrow log axis labels every minor tick."""
    stats = pd.DataFrame(
        [{"workload": "w", "backend": "serial", "workers": w, "throughput_median": v, "throughput_ci_low": v * 0.99,
          "throughput_ci_high": v * 1.01, "all_clean": True} for w, v in ((1, 0.03), (2, 0.9))]
    )  # fmt: skip
    fig = plots.DRAW["throughput"](stats, pd.DataFrame({"flops_per_item": []}), {"physical_cores": 2}, "w")
    raw = sum(len(boxes_overlap(b)) for b in plots.visible_labels(fig))
    plots.declutter(fig)
    assert raw > 0 and sum(len(boxes_overlap(b)) for b in plots.visible_labels(fig)) == 0


# ---------------------------------------------------------------------------------------------
# The order of the runs, the sentinel, and what every record says of the machine, the CPU and the memory


def sentinels(done) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((done.results / "sentinels").glob("round-*.json"))]


def test_runs_execute_in_rounds_each_in_its_own_shuffled_order(done):
    """Every benchmark job ran in the place the seeded plan gave it: round after round (every run of
    round r ended before round r + 1 began), each round in its own order, none the config's."""
    ran = sorted([*done.records(), *done.records(twins=True), *sentinels(done)], key=lambda r: r["started_at"])
    plan = order.plan(done.config)
    assert [r["order"]["position"] for r in ran] == list(range(1, len(plan) + 1)), "executed in planned order"
    rounds = [r["round"] for r in ran]
    assert rounds == sorted(rounds) and set(rounds) == {1, 2} and all(r["round"] == r["trial"] for r in ran)
    for trial in (1, 2):
        jobs = order.shuffled_round(done.config, trial)
        assert [r["order"]["place"] for r in ran if r["round"] == trial] == list(range(1, len(jobs) + 1))
        assert jobs != order.round_jobs(done.config, trial) and sorted(jobs) == sorted(order.round_jobs(done.config, trial))
    assert order.shuffled_round(done.config, 1) != order.shuffled_round(done.config, 2), "a fresh order per round"
    assert order.plan({**done.config, "shuffle_seed": 1}) != plan and order.plan(copy.deepcopy(done.config)) == plan, "seeded"


def test_every_round_has_the_sentinel_and_each_workloads_twin(done):
    twins = done.records(twins=True)
    first = {w: (p.get("workers") or done.config["workers"])[0] for w, p in done.config["workloads"].items()}
    expected = {(w, "serial", workers, t) for w, workers in first.items() for t in (1, 2)}
    assert {(r["workload"], r["backend"], r["workers"], r["trial"]) for r in twins} == expected
    assert all(r["twin"] and r["status"] == "ok" and r["verified"] and records.problems(r) == [] for r in twins)
    assert not any(r["twin"] for r in done.records())
    marks = sentinels(done)
    assert [r["round"] for r in marks] == [1, 2] and all(r["order"]["sentinel"] for r in marks)
    assert all(r["status"] == "ok" and r["verified"] and records.problems(r) == [] for r in marks)
    table = pd.read_csv(done.results / "tables" / "sentinels.csv")
    assert table["round"].tolist() == [1, 2] and table.throughput.notna().all()


def test_order_and_sentinel_settings_rerun_no_benchmark_run(done, tmp_path):
    config = {**copy.deepcopy(done.config), "shuffle_seed": 7}
    jobs = dry_run_jobs(dry_run(done, tmp_path, config))
    assert set(jobs) == {"config", "report", "all"}, f"a new order reruns no benchmark (the report and config.yaml show the config): {jobs}"
    config["sentinel"] = {**config["sentinel"], "batches": 3}
    jobs = dry_run_jobs(dry_run(done, tmp_path, config))
    assert jobs.get("sentinel") == 2 and "run" not in jobs and "twin" not in jobs, jobs


def test_a_round_a_variant_and_a_margin_rerun_only_what_they_must(done, tmp_path):
    config = {**copy.deepcopy(done.config), "trials": 3}
    jobs = dry_run_jobs(dry_run(done, tmp_path, config))
    cells, twins = len({c[:3] for c in cells_of(done.config)}), len(done.config["workloads"])
    assert jobs.get("run") == cells and jobs.get("twin") == twins and jobs.get("sentinel") == 1, f"one more round only: {jobs}"
    config = {**copy.deepcopy(done.config), "variants": {"same": {}, "one-blas": {"blas_threads": 1}}}
    jobs = dry_run_jobs(dry_run(done, tmp_path, config))
    assert "run" not in jobs and "twin" not in jobs and jobs.get("variant") == 2 * cells, f"the first variant's runs stay: {jobs}"
    config = {**copy.deepcopy(done.config), "margin": 0.1}
    jobs = dry_run_jobs(dry_run(done, tmp_path, config))
    assert not {"run", "twin", "sentinel", "variant"} & set(jobs), f"a margin reruns no benchmark: {jobs}"


def test_records_hold_the_tree_cpu_the_machine_and_the_exact_memory(done):
    for r in [*done.records(), *sentinels(done)]:
        where, cpu, system, memory = f"{r['workload']}/{r['backend']}/w{r['workers']}", r["cpu"], r["system"], r["memory"]
        assert len(cpu["tree_batch_s"]) == len(r["timings"]["batch_s"]), where
        # Batch by batch, like with like: the tree holds the driver; where tasks run outside the driver, more.
        for tree, driver in zip(cpu["tree_batch_s"], cpu["driver_batch_s"]):
            assert tree >= driver - TICKS_S, where
        if OFFERED["cpu"] and r["backend"] not in ("serial", "threads"):  # exact counters: a worker's CPU shows
            assert sum(cpu["tree_batch_s"]) > sum(cpu["driver_batch_s"]), where
        driver = sum(cpu["driver_batch_s"]) + sum(cpu["driver_warmup_s"])
        assert system["window_s"] >= r["timings"]["end_to_end_s"] and system["loadavg_1m_end"] >= 0, where
        if OFFERED["memory"]:
            assert memory["exact_source"] == OFFERED["memory"] and memory["exact_peak_bytes"] > 0, where
        else:
            assert memory["exact_peak_bytes"] is None and memory["exact_unavailable"], where
        # The whole tree over the whole run: start-up and imports too, beyond the driver's batches.
        assert cpu["tree_user_s"] + cpu["tree_system_s"] > driver, where
    runs = pd.read_csv(done.results / "tables" / "runs.csv")
    # Busy is judged wherever the timed batches are long enough for /proc/stat's ticks, and only there.
    judgeable = runs.other_cores_tick_noise <= stats.TICK_NOISE_SHARE * stats.BUSY_OTHER_CORES
    assert runs.cpu_per_item_s.notna().all() and runs.other_cores_batches.notna().all()
    assert (runs.busy_machine.notna() == judgeable).all(), runs[["workload", "backend", "other_cores_tick_noise", "busy_machine"]]
