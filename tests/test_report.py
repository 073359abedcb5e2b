"""The report: findings as pure functions of hand-made stats tables, the blog table, and the page itself."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from parbench import stats, text, workloads
from parbench.report import blog, claims, decisions, figures, plots, report
from parbench.stats import blog_timer, run_row

MIB = 2**20


def verdict_of(speedup, margin=0.05) -> str:
    """decide's word for a hand-made speedup interval (one comparison, no Holm): what stats would say."""
    _, low, high = speedup
    if low > 1 + margin or high < 1 / (1 + margin):
        return "faster" if low > 1 else "slower"
    return "equivalent" if 1 / (1 + margin) < low and high < 1 + margin else "cannot tell"


def cell(backend, workers, thr, low, high, workload="matmul", clean=True, pss=100, speedup=None, **extra):
    """One stats.csv row; memory in MiB, speedup as (median, low, high), its verdict from the interval unless given."""
    s = speedup or (float("nan"),) * 3
    if backend != "serial":
        extra.setdefault("verdict_vs_serial", verdict_of(s) if speedup else "cannot tell")
    return {
        "workload": workload,
        "backend": backend,
        "workers": workers,
        "throughput_median": thr,
        "throughput_ci_low": low,
        "throughput_ci_high": high,
        "batch_s_median": workers / thr if thr else float("nan"),
        "speedup_vs_serial": s[0],
        "speedup_ci_low": s[1],
        "speedup_ci_high": s[2],
        "peak_tree_pss_bytes_median": pss * MIB,
        "peak_shm_bytes_median": 0.0,
        "setup_s_median": 0.5,
        "n_runs": 3,
        "n_clean": 3 if clean else 1,
        "all_clean": clean,
        "statuses": "ok x3" if clean else "ok x1, timeout x2",
        "blas_threads": 1,
        "physical_cores": 8,
        **extra,
    }


def frame(*cells):
    return pd.DataFrame(list(cells))


# ---------------------------------------------------------------- throughput claims


def test_a_backend_faster_than_serial_is_chosen_over_a_higher_median_that_cannot_be_told_from_it():
    """ner-chunked in a default sweep: ray had the highest median but an interval over serial down to 0.84,
    joblib a lower median and an interval above 1 + margin: joblib is recommended, ray cannot be told from serial."""
    stats = frame(
        cell("serial", 2, 552, 520, 570, speedup=(1, 1, 1)),
        cell("ray", 2, 772, 472, 951, speedup=(1.40, 0.84, 1.76), rounds_needed=40),
        cell("joblib", 2, 745, 593, 947, speedup=(1.35, 1.14, 1.79), n_rounds=5),
        cell("dask", 2, 407, 360, 556, speedup=(0.74, 0.64, 1.04)),
    )
    advice = claims.recommendation(stats)
    assert advice[0] == "Use joblib with 2 workers: 745 items/s [593–947]."
    assert advice[1] == (
        "How sure: faster than serial at the same batch size, 1.35× serial's throughput [1.14–1.79×] over 5 rounds, beyond the "
        "5% margin; chosen from 3 comparisons with serial (Holm's correction over them)."
    )
    assert advice[2] == "No other cell is faster than serial."
    # Without joblib no parallel cell is faster than serial: serial, and the closest cannot be told from it.
    advice = claims.recommendation(stats[stats.backend != "joblib"])
    assert advice[0].startswith("Use serial (in the driver")
    assert advice[1].endswith("of 2 compared (Holm's correction over them): 2 cannot tell.")
    assert advice[2] == (
        "The closest: cannot tell ray with 2 workers from serial: 1.40× serial's throughput [0.84–1.76×]; about 40 rounds would decide it."
    )


def paired_runs(speeds: dict, rounds=5, workers=2, sd=0.01, seed=0):
    """A runs table of `rounds` rounds: each backend's run_throughput, speeds[backend] times a per-round machine speed."""
    rng = np.random.default_rng(seed)
    machine = rng.lognormal(0, 0.2, rounds)  # the machine's speed drifts a lot between rounds: pairing takes it out
    return pd.DataFrame(
        [
            {"workload": "matmul", "backend": b, "workers": workers, "trial": r + 1, "round": r + 1, "twin": False, "variant": "",
             "status": "ok", "verified": True, "run_throughput": v * machine[r] * rng.lognormal(0, sd)}
            for b, v in speeds.items()
            for r in range(rounds)
        ]
    )  # fmt: skip


def test_the_winner_is_told_from_the_runner_up_only_by_their_paired_ratio():
    stats = frame(
        cell("serial", 2, 10, 9, 11, speedup=(1, 1, 1)),
        cell("ray", 2, 30, 28, 32, speedup=(3, 2.6, 3.5)),
        cell("multiprocessing", 2, 15, 14, 16, speedup=(1.5, 1.3, 1.7)),
    )
    advice = claims.recommendation(stats)
    assert advice[0] == (
        "Use ray with 2 workers or multiprocessing with 2 workers (cannot be told apart; the first ran faster here): "
        "30.0 items/s [28.0–32.0]."
    ), "a runner-up it cannot be told from is in the answer: another sweep may rank the two the other way"
    assert advice[2] == (
        "Cannot tell it from the runner-up, multiprocessing with 2 workers, also faster than serial: no paired comparison "
        "of their runs is at hand."
    ), "without the runs, no claim between the two"
    advice = claims.recommendation(stats, paired_runs({"serial": 10, "ray": 30, "multiprocessing": 15}))
    assert advice[0] == "Use ray with 2 workers: 30.0 items/s [28.0–32.0].", "told apart: the winner alone"
    assert advice[2].startswith("Faster than the runner-up, multiprocessing with 2 workers (also faster than serial): 1.98× [")
    assert advice[2].endswith("×] paired over 5 rounds, beyond the 5% margin.")
    close = claims.recommendation(stats, paired_runs({"serial": 10, "ray": 15.3, "multiprocessing": 15}, sd=0.05))
    assert close[0].startswith("Use ray with 2 workers or multiprocessing with 2 workers (cannot be told apart")
    assert close[2].startswith("Cannot tell it from the runner-up, multiprocessing with 2 workers, also faster than serial: 0.98× [")
    assert "rounds would decide it" in close[2]
    (at2,) = claims.per_workers(stats)
    assert at2 == "At 2 workers, against serial (margin 5%): faster: ray 3.00× [2.60–3.50×], multiprocessing 1.50× [1.30–1.70×]."


def test_cells_that_cannot_be_told_from_serial_leave_serial_recommended():
    stats = frame(
        cell("ray", 4, 30, 20, 40, speedup=(1.1, 0.8, 1.5), rounds_needed=40),
        cell("multiprocessing-shared", 4, 28, 25, 31, speedup=(1.04, 0.99, 1.08), rounds_needed=None),
        cell("serial", 4, 27, 24, 35, speedup=(1, 1, 1)),
        cell("multiprocessing", 4, 5, 4, 6, speedup=(0.19, 0.15, 0.23)),
    )
    (at4,) = claims.per_workers(stats)
    assert at4 == (
        "At 4 workers, against serial (margin 5%): cannot tell: ray 1.10× [0.80–1.50×], multiprocessing-shared 1.04× [0.99–1.08×]; "
        "slower: multiprocessing 0.19× [0.15–0.23×]."
    )
    advice = claims.recommendation(stats)
    assert advice[0].startswith("Use serial (in the driver")
    assert advice[1] == (
        "How sure: no parallel cell is faster than serial beyond the 5% margin, of 3 compared (Holm's correction over them): "
        "1 slower, 2 cannot tell."
    )
    assert advice[2] == (
        "The closest: cannot tell ray with 4 workers from serial: 1.10× serial's throughput [0.80–1.50×]; about 40 rounds would decide it."
    )
    assert "clearly" not in " ".join(advice + [at4])


def test_every_parallel_cell_equivalent_to_serial_says_so():
    stats = frame(cell("serial", 2, 10, 9, 11, speedup=(1, 1, 1)), cell("threads", 2, 10, 9, 11, speedup=(1.0, 0.97, 1.03)))
    advice = claims.recommendation(stats)
    assert (
        advice[1].endswith(": 1 equivalent.")
        and advice[2] == "Every parallel cell is equivalent to serial within ±5%: serial is the simpler choice."
    )


def test_touching_intervals_count_as_overlap():
    a, b = cell("ray", 2, 30, 20, 40), cell("dask", 2, 15, 10, 20)
    assert decisions.overlaps(pd.Series(a), pd.Series(b))
    assert not decisions.overlaps(pd.Series(a), pd.Series({**b, "throughput_ci_high": 19.9}))


def test_cells_not_clean_are_left_out_of_claims():
    stats = frame(
        cell("ray", 2, 100, 95, 105, clean=False), cell("serial", 2, 10, 9, 11), cell("dask", 2, 20, 18, 22, speedup=(2, 1.7, 2.3))
    )
    advice = claims.recommendation(stats)
    assert advice[0].startswith("Use dask with 2 workers")
    assert "ray" not in " ".join(advice + claims.per_workers(stats) + claims.least_memory(stats))
    assert claims.excluded(stats) == ["Left out of every claim (not every run was ok and verified): ray at 2 workers (ok x1, timeout x2)."]
    assert claims.excluded(frame(cell("serial", 1, 10, 9, 11))) == []


def test_nothing_clean_recommends_nothing():
    stats = frame(cell("ray", 2, 100, 95, 105, clean=False))
    assert claims.recommendation(stats) == ["No cell ran cleanly: nothing to recommend."]
    assert claims.per_workers(stats) == [] and claims.scaling(stats) == []


def test_serial_winning_says_no_parallel_backend_is_faster():
    stats = frame(
        cell("serial", 1, 50, 45, 55),
        cell("serial", 2, 48, 44, 52),
        cell("joblib", 1, 20, 18, 22, speedup=(0.4, 0.35, 0.45)),
        cell("joblib", 2, 30, 28, 31, speedup=(0.6, 0.55, 0.65)),
    )
    advice = claims.recommendation(stats)
    assert advice[0].startswith("Use serial (in the driver")
    assert advice[1].endswith("of 2 compared (Holm's correction over them): 2 slower.")


# ---------------------------------------------------------------- scaling


def scaling_frame(*points, backend="ray"):
    return frame(*(cell(backend, w, t, lo, hi) for w, t, lo, hi in points))


def test_scaling_stops_where_more_workers_no_longer_beat_the_interval():
    stats = scaling_frame((1, 10, 9, 11), (2, 20, 18, 22), (4, 21, 19, 23), (8, 22, 20, 24))
    assert decisions.scaling_stop(stats)[0].workers == 2
    (text,) = claims.scaling(stats)
    assert text.startswith("ray: scaling stops at 2 workers (20.0 items/s [18.0–22.0]): 4 workers is not faster: cannot tell, 1.05× [")
    assert "at 8 workers: 22.0" in text


def test_scaling_that_never_stops_and_that_never_starts():
    rising = scaling_frame((1, 10, 9, 11), (2, 20, 18, 22), (4, 40, 36, 44))
    assert claims.scaling(rising) == ["ray: faster at every step up to 4 workers, the most run (40.0 items/s [36.0–44.0])."]
    flat = scaling_frame((1, 10, 8, 12), (2, 11, 9, 13), (4, 12, 10, 14))
    assert claims.scaling(flat)[0].startswith(
        "ray: scaling stops at 1 worker (10.0 items/s [8.00–12.0]): 2 workers is not faster: cannot tell"
    )


def test_scaling_skips_serial_and_single_counts_and_unclean_cells():
    stats = pd.concat(
        [
            scaling_frame((1, 10, 9, 11), (2, 10, 9, 11), backend="serial"),
            scaling_frame((2, 10, 9, 11), backend="dask"),
            frame(cell("ray", 1, 10, 9, 11), cell("ray", 2, 50, 45, 55, clean=False)),
        ]
    )
    assert claims.scaling(stats) == []


# ---------------------------------------------------------------- memory


def test_least_memory_names_the_leanest_parallel_backend():
    stats = frame(
        cell("serial", 2, 10, 9, 11, pss=40), cell("ray", 2, 10, 9, 11, pss=600), cell("multiprocessing-shared", 2, 10, 9, 11, pss=90)
    )
    (text,) = claims.least_memory(stats)
    assert text == (
        "At 2 workers, multiprocessing-shared needs least memory: 90.0 MiB peak PSS, 85% less than the next, "
        "ray (600 MiB) (serial, one process: 40.0 MiB)."
    )


def test_memory_ranges_that_overlap_are_no_clear_difference():
    stats = frame(
        cell("ray", 2, 10, 9, 11, pss=100, peak_tree_pss_bytes_low=90 * MIB, peak_tree_pss_bytes_high=110 * MIB),
        cell("dask", 2, 10, 9, 11, pss=105, peak_tree_pss_bytes_low=100 * MIB, peak_tree_pss_bytes_high=120 * MIB),
        cell("joblib", 2, 10, 9, 11, pss=300, clean=False),
    )
    (text,) = claims.least_memory(stats)
    assert text.startswith("At 2 workers, no clear difference in memory between ray (100 MiB), dask (105 MiB)")
    assert "joblib" not in text


def test_memory_within_a_few_percent_is_no_clear_difference():
    stats = frame(cell("ray", 2, 10, 9, 11, pss=100), cell("dask", 2, 10, 9, 11, pss=104))
    assert "no clear difference in memory between ray (100 MiB), dask (104 MiB)" in claims.least_memory(stats)[0]


def test_memory_ranges_come_from_clean_runs_only():
    runs = pd.DataFrame(
        [
            {"workload": "ner", "backend": "ray", "workers": 2, "status": "ok", "verified": True, "peak_tree_pss_bytes": 10},
            {"workload": "ner", "backend": "ray", "workers": 2, "status": "ok", "verified": True, "peak_tree_pss_bytes": 30},
            {"workload": "ner", "backend": "ray", "workers": 2, "status": "oom", "verified": False, "peak_tree_pss_bytes": 999},
            {"workload": "ner", "backend": "ray", "workers": 2, "status": "ok", "verified": False, "peak_tree_pss_bytes": 998},
        ]
    )
    (row,) = decisions.memory_ranges(runs).to_dict("records")
    assert (row["peak_tree_pss_bytes_low"], row["peak_tree_pss_bytes_high"]) == (10, 30)


# ---------------------------------------------------------------- the blog


def blog_stats():
    return frame(
        cell("multiprocessing", 2, 10, 9, 11, pss=1000),
        cell("ray", 2, 40, 36, 44, pss=500),
        cell("multiprocessing-shared", 2, 45, 40, 50, pss=200),
        cell("multiprocessing", 8, 12, 11, 13),
        cell("multiprocessing", 2, 1, 0.9, 1.1, workload="ner", pss=300),
        cell("multiprocessing-shared", 2, 30, 25, 35, workload="ner", pss=250, clean=False),
    )


def test_closest_worker_count_to_the_blogs_four():
    assert blog.closest_workers(frame(cell("ray", 1, 1, 1, 1), cell("ray", 2, 1, 1, 1), cell("ray", 8, 1, 1, 1))) == 2
    assert blog.closest_workers(frame(cell("ray", 2, 1, 1, 1), cell("ray", 6, 1, 1, 1))) == 6
    assert blog.closest_workers(frame(cell("ray", 4, 1, 1, 1), cell("ray", 3, 1, 1, 1))) == 4


def test_blog_table_ratios_and_missing_cells():
    table = blog.blog_table(blog_stats()).set_index(["workload", "measure (blog)"])
    matmul_time = table.loc[("matmul", "seconds per trial")]
    assert matmul_time["blog ratio (mp / Ray)"] == "7.69×"
    # batch time 0.2 s vs 0.05 s; interval from throughput intervals 36/11 .. 44/9
    assert matmul_time["here, steady state: multiprocessing vs ray"] == "0.20 s vs 0.050 s per batch → 4.00× [3.27–4.89×]"
    assert matmul_time["here, steady state: multiprocessing-shared vs ray"].endswith("→ 0.89× [0.72–1.10×]")
    assert table.loc[("matmul", "peak memory, MB"), "here, steady state: multiprocessing vs ray"] == "1,000 MiB vs 500 MiB → 2.00×"
    ner = table.loc[("ner", "seconds, 10 batches of 4 texts")]
    assert ner["here, steady state: multiprocessing vs ray"] == "ray: not run"
    assert ner["here, steady state: multiprocessing-shared vs ray"] == "multiprocessing-shared: not clean (ok x1, timeout x2); ray: not run"
    assert (table["workers here"] == "2 workers").all()


def test_blog_table_with_a_workload_not_run():
    table = blog.blog_table(frame(cell("ray", 2, 40, 36, 44)))
    assert (table[table.workload == "ner"].iloc[:, 5:7] == "not run").all().all()


def blog_paragraph(stats, runs, machine, config, workload) -> str:
    """The blog's paragraph as the report makes it: the workload's explanation made once, then handed to the blog;
    the blog calling `explain` again would fail here."""
    explained = report.explanations(stats[stats.workload == workload], runs, machine, config).get(workload, [])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(workloads.load(workload), "explain", classmethod(lambda *a: pytest.fail("explain made twice")))
        return blog.blog_explanation(stats, runs, workload, explained)


def built(backend: str, builds: int) -> dict:
    """A clean run at 2 workers of 3 batches of 2 tasks, `builds` of whose state builds fell in the timed batches."""
    run = {"backend": backend, "workers": 2, "status": "ok", "verified": True}
    return {**run, "state_builds_timed": builds, "tasks_per_batch": 2, "n_batches": 3}


def test_blog_explanation_says_what_differs():
    runs = pd.DataFrame([{"workload": "ner", **built("multiprocessing", 6)}])
    machine = {"pickle_100mib_dumps_s": 0.05, "pickle_100mib_loads_s": 0.05}
    config = {"workloads": {"matmul": {"n": 1024}}}
    matmul = blog_paragraph(blog_stats(), runs, machine, config, "matmul")
    assert "multiprocessing is slower than ray: 4.00× its batch time [3.27–4.89×]" in matmul
    assert "not clearly different from ray: 0.89×" in matmul
    assert "How x reaches the workers decides the blog's gap: its pattern pickles x (1024×1024 float64, 8 MiB) into every task" in matmul
    assert "costs about 8 ms per task" in matmul
    ner = blog_paragraph(blog_stats(), runs, machine, config, "ner")
    assert "model loads per task in the timed batches here: 1)" in ner and "not measured" in ner


# ---------------------------------------------------------------- the page


def test_figure_names_split_at_the_figure_not_the_first_underscore():
    assert figures.split_name("results/figures/ner_time_breakdown.png") == ("ner", "time_breakdown")
    assert figures.split_name("my_workload_memory.png") == ("my_workload", "memory")


def test_helpers():
    assert text.workers_text(1) == "1 worker" and text.workers_text(4) == "4 workers"
    assert [text.num(v) for v in (1234.5, 123.4, 12.34, 1.234, 0.01234, float("nan"))] == ["1,234", "123", "12.3", "1.23", "0.012", "–"]


@pytest.fixture
def inputs(tmp_path):
    stats = frame(
        cell("serial", 1, 10, 9, 11, speedup=(1, 1, 1)),
        cell("<b>x</b>", 1, 5, 4, 6, speedup=(0.5, 0.4, 0.6)),
        cell("serial", 1, 3, 2, 4, workload="ner", speedup=(1, 1, 1)),
    )
    runs = pd.DataFrame(
        [
            {
                "workload": w,
                "backend": b,
                "workers": 1,
                "trial": 1,
                "status": "ok",
                "reason": None,
                "verified": True,
                "peak_tree_pss_bytes": MIB,
                "state_builds_timed": None,
                "tasks_per_batch": 1,
                "n_batches": 2,
            }
            for w, b in (("matmul", "serial"), ("matmul", "<b>x</b>"), ("ner", "serial"))
        ]
        + [
            {
                "workload": "ner",
                "backend": "ray",
                "workers": 1,
                "trial": 1,
                "status": "timeout",
                "verified": False,
                "reason": "passed limits.timeout_s = 5 s\n<script>alert(1)</script>",
                "peak_tree_pss_bytes": None,
            }
        ]
    )
    machine = {
        "physical_cores": 2,
        "logical_cores": 2,
        "blas_gflops_single": 50.0,
        "blas_gflops_all": 90.0,
        "pickle_100mib_dumps_s": 0.05,
        "pickle_100mib_loads_s": 0.06,
        "process_spawn_s": {"fork": 0.003},
        "environment": {
            "host": "box",
            "cpu_model": "CPU & co",
            "memory_bytes": 2**33,
            "python": "3.11",
            "packages": {"numpy": "2.0", "ray": None},
            "git_commit": "abc123",
            "git_dirty": True,
            "blas": [{"internal_api": "openblas", "version": "0.3", "threading_layer": "pthreads"}],
        },
    }
    paths = {"runs": tmp_path / "runs.csv", "stats": tmp_path / "stats.csv", "machine": tmp_path / "machine.json"}
    runs.to_csv(paths["runs"], index=False)
    stats.to_csv(paths["stats"], index=False)
    paths["machine"].write_text(json.dumps(machine))
    png = tmp_path / "matmul_throughput.png"
    plots.plt.figure(figsize=(1, 1)).savefig(png)
    return paths, [png]


def test_write_builds_one_self_contained_escaped_page(tmp_path, inputs):
    paths, figures = inputs
    out = tmp_path / "report.html"
    report.write(out, paths["runs"], paths["stats"], paths["machine"], figures, {"trials": 1, "blas_threads": "auto"})
    page = out.read_text()
    for key in report.SECTIONS:
        assert f'<section id="{key}">' in page
    assert page.count("data:image/png;base64,") == 1 and 'src="http' not in page and "<link" not in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "CPU &amp; co" in page and "abc123 (uncommitted changes)" in page
    assert "timeout" in page and "ray: not run" in page
    assert "trials: 1" in page  # the configuration, as YAML
    assert "the physical cores are shared among the workers" in page and "RSS followed every 50 ms" in page


def test_plots_draw_every_figure_from_small_tables(tmp_path):
    rows = [
        cell(b, w, 10 * w, 9 * w, 11 * w, speedup=(1, 0.9, 1.1), peak_shm_bytes_median=MIB, all_clean=w == 1)
        for b in ("serial", "ray")
        for w in (1, 2)
    ]
    runs = pd.DataFrame(
        [
            {
                "workload": "matmul",
                "backend": r["backend"],
                "workers": r["workers"],
                "trial": 1,
                "status": "ok",
                "verified": True,
                "flops_per_item": 1e6,
                "startup_s": 1.0,
                "setup_s": 0.1,
                "warmup_s": 0.2,
                "batch_s_total": 0.5,
                "teardown_s": 0.3,
            }
            for r in rows
        ]
    )
    runs_csv, stats_csv, machine_json = tmp_path / "runs.csv", tmp_path / "stats.csv", tmp_path / "machine.json"
    runs.to_csv(runs_csv, index=False)
    frame(*rows).to_csv(stats_csv, index=False)
    machine_json.write_text(json.dumps({"physical_cores": 2, "blas_gflops_single": 1.0}))
    png = [tmp_path / f"matmul_{n}.png" for n in plots.DRAW]
    plots.draw_all("matmul", runs_csv, stats_csv, machine_json, png, [p.with_suffix(".svg") for p in png])
    assert all(p.stat().st_size > 1000 and p.with_suffix(".svg").exists() for p in png)


# ---------------------------------------------------------------- the summary by kind of work


@pytest.mark.parametrize(
    "serial,threads,expected",
    [
        (1.9, float("nan"), "several cores by itself"),
        (0.1, 0.3, "mostly waits"),
        (1.0, 1.8, "threads use several (the GIL is released)"),
        (1.0, 1.05, "threads stay on one (the GIL is held"),
        (1.0, float("nan"), "GIL not measured (threads not run)"),
        (float("nan"), 1.0, "serial did not run cleanly"),
    ],
)
def test_kind_of_work_from_the_cores_kept_busy(serial, threads, expected):
    assert expected in claims.kind(serial, threads)


def summary_stats():
    common = {"items_per_task": 1, "data_bytes_median": 800 * MIB}
    return frame(
        cell("serial", 2, 10, 9, 11, speedup=(1, 1, 1), setup_s_median=0.002, driver_cores_busy_median=1.02, **common),
        cell("threads", 2, 11, 9, 12, speedup=(1.1, 0.9, 1.2), driver_cores_busy_median=1.04, **common),
        cell("ray", 2, 30, 28, 32, speedup=(3, 2.6, 3.5), pss=700, **common),
        cell("multiprocessing-shared", 2, 29, 27, 31, speedup=(2.9, 2.5, 3.3), **common),
        cell("dask", 2, 15, 14, 16, speedup=(1.5, 1.3, 1.7), **common),
    )


def test_summary_row_characterises_the_work_and_names_the_choice():
    (row,) = claims.summary(summary_stats(), pd.DataFrame()).to_dict("records")
    assert row["workload"] == "matmul" and row["items per task"] == 1
    assert row["shared input"] == "800 MiB" and row["serial time per item"] == "100 ms" and row["state build (serial)"] == "2.00 ms"
    assert row["kind"] == "one core; threads stay on one (the GIL is held, or per-task overhead)"
    assert row["recommended"] == "ray with 2 workers" and row["speedup over serial"] == "faster: 3.00× [2.60–3.50×]"
    assert row["peak memory"] == "700 MiB"
    assert row["cannot tell from"] == "multiprocessing-shared with 2 workers", "the runner-up, without a paired comparison"


def test_summary_row_when_serial_is_the_choice_and_when_nothing_is_clean():
    stats = pd.concat(
        [
            frame(cell("serial", 2, 10, 9, 11, speedup=(1, 1, 1)), cell("ray", 2, 12, 9, 15, speedup=(1.2, 0.8, 1.6))),
            frame(cell("serial", 2, 10, 9, 11, workload="ner", clean=False)),
        ]
    )
    rows = claims.summary(stats, pd.DataFrame()).set_index("workload")
    assert rows.loc["matmul", "recommended"] == "serial" and rows.loc["matmul", "speedup over serial"] == "1 (is serial)"
    assert rows.loc["matmul", "cannot tell from"] == "ray with 2 workers"
    assert rows.loc["ner", "recommended"] == "No cell ran cleanly: nothing to recommend."


def test_one_trial_makes_no_claim():
    """An interval from one process cannot rank: with one clean trial per cell nothing is claimed."""
    stats = frame(
        cell("serial", 2, 10, 9.9, 10.1, n_clean=1, n_runs=1, speedup=(1, 1, 1)),
        cell("ray", 2, 30, 29.9, 30.1, n_clean=1, n_runs=1, speedup=(3, 2.9, 3.1)),
    )
    assert claims.recommendation(stats)[0].startswith("Not enough repeats to rank")
    assert claims.per_workers(stats) == [] and claims.least_memory(stats) == [] and claims.scaling(stats) == []
    assert claims.excluded(stats) == ["Not enough repeats to rank (fewer than 2 clean trials): serial at 2 workers; ray at 2 workers."]
    assert "clearly" not in " ".join(claims.summary(stats, pd.DataFrame()).astype(str).to_numpy().ravel())


def test_state_built_in_timed_batches_is_flagged_unless_by_design():
    runs = pd.DataFrame([built("multiprocessing", 6), built("joblib", 2), built("ray", 0)])
    distorted, by_design = claims.state_in_timed_batches(runs)  # by backend name
    assert by_design.startswith("multiprocessing at 2 workers: every task builds its state (by design)")
    assert distorted.startswith("joblib at 2 workers: 2 state builds fell in the timed batches") and "warmup_batches" in distorted


def test_every_figure_has_a_plot_function_and_a_snakemake_caption():
    """figures.FIGURES names the figures once; the plot functions and Snakemake's captions follow it."""
    assert set(plots.DRAW) == set(figures.FIGURES)
    assert all((REPO / "workflow" / "report" / f"{name}.rst").exists() for name in figures.FIGURES)


# ---------------------------------------------------------------- the machine's state, CPU per item, drift, the blog's timer


def test_cells_with_runs_on_a_busy_machine_are_marked_wherever_named():
    stats = frame(
        cell("serial", 2, 10, 9, 11),
        cell("ray", 2, 30, 28, 32, speedup=(3, 2.6, 3.5), n_busy=1),
        cell("multiprocessing", 2, 15, 14, 16, speedup=(1.5, 1.3, 1.7), n_busy=0),
    )
    advice = claims.recommendation(stats)
    assert advice[0].startswith("Use ray with 2 workers [busy machine] or multiprocessing with 2 workers (")
    (at2,) = claims.per_workers(stats)
    assert at2.startswith("At 2 workers, against serial (margin 5%): faster: ray [busy machine] 3.00×") and ", multiprocessing 1.50×" in at2
    assert claims.busy(stats) == [
        "Made on a busy machine, marked [busy machine] wherever named: ray at 2 workers (1 of 3 runs). Other work beside a run "
        "takes cores and memory bandwidth from it, so these figures may be lower and noisier than this machine gives; rerun them "
        "on a quiet machine."
    ]
    assert claims.busy(stats.assign(n_busy=0)) == [] and "[busy" not in " ".join(claims.recommendation(stats.assign(n_busy=0)))
    runs = pd.DataFrame({"busy_machine": [True, False, None]})
    assert claims.busy_warning(runs).startswith("1 of 3 runs were made on a busy machine (a run was made on a busy machine when")
    assert claims.busy_warning(runs.assign(busy_machine=False)) is None


@pytest.mark.parametrize("other_cpu_s,busy", [(0.25, False), (0.26, True), (None, None)])
def test_busy_rule_is_other_cores_above_a_quarter(other_cpu_s, busy):
    record = {
        "workload": "matmul",
        "backend": "serial",
        "workers": 1,
        "trial": 1,
        "system": {"other_cpu_s": other_cpu_s, "window_s": 1.0},
        "cpu": {"tree_totals_source": "cgroup v1 cpuacct.usage"},
    }
    assert run_row(record)["busy_machine"] is busy
    # Without a CPU cgroup the tree's CPU may miss processes (Ray's workers): not judged.
    assert run_row({**record, "cpu": {"tree_totals_source": "getrusage(RUSAGE_CHILDREN)"}})["busy_machine"] is None


def test_cpu_per_item_stands_beside_throughput():
    stats = frame(
        cell("serial", 2, 10, 9, 11, speedup=(1, 1, 1), cpu_per_item_s_median=0.01),
        cell("ray", 2, 30, 28, 32, speedup=(3, 2.6, 3.5), cpu_per_item_s_median=0.03),
    )
    assert claims.cpu_cost(stats) == [
        "ray with 2 workers: 30.0 items/s [28.0–32.0], CPU per item 30.0 ms (3.00× serial's).",
        "serial: 10.0 items/s [9.00–11.0], CPU per item 10.0 ms.",
    ]
    (row,) = claims.summary(stats, pd.DataFrame()).to_dict("records")
    assert row["CPU per item"] == "30.0 ms (3.00× serial's)"
    assert claims.cpu_cost(frame(cell("serial", 2, 10, 9, 11))) == [], "not measured: said nowhere rather than guessed"


def sentinel_runs(*throughputs, busy=False):
    return pd.DataFrame(
        [
            {
                "round": i + 1,
                "status": "ok",
                "verified": True,
                "throughput": t,
                "started_at": i,
                "finished_at": i + 0.5,
                "busy_machine": busy,
            }
            for i, t in enumerate(throughputs)
        ]
    )


def test_drift_from_the_sentinel_warns_above_its_threshold():
    text, warn = claims.drift(sentinel_runs(100, 99, 97))
    assert not warn and "in each of 3 rounds, ran at 100 → 99.0 → 97.0 items/s" in text and "differ by 3.1%" in text
    text, warn = claims.drift(sentinel_runs(100, 95, 90, busy=True))
    assert warn and "differ by 11.1% (some sentinels ran on a busy machine)" in text and "more than 5%" in text
    text, warn = claims.drift(sentinel_runs())
    assert not warn and text.startswith("Drift not measured: the config has no sentinel")
    unverified = sentinel_runs(100, 90, 100).assign(verified=[True, False, True])
    assert "differ by 0.0%" in claims.drift(unverified)[0], "an unverified sentinel is left out"
    runs = pd.DataFrame({"started_at": [0.6, 1.6, 9.0], "finished_at": [0.9, 1.9, 9.5]})
    assert "1 of 3 runs ran more than a round away from every sentinel" in claims.drift(sentinel_runs(100, 99, 98), runs)[0]
    assert "outside" not in claims.drift(sentinel_runs(100, 99, 98), runs.iloc[:2])[0]
    failed = sentinel_runs(100, 90).assign(status=["ok", "failed"])
    assert claims.drift(failed) == (
        "Drift not measured: the sentinel did not run cleanly twice. The sentinel is the same small serial run once in every round.",
        False,
    )


def test_blogs_timer_covers_every_batch_and_a_stateful_setup():
    timings = {"setup_s": 2.0, "warmup_s": [1.0], "batch_s": [0.5, 0.5]}
    assert blog_timer(timings, {"stateful": True}) == 4.0, "Ray's actors load the model after the blog's clock started"
    assert blog_timer(timings, {"stateful": False}) == 2.0, "ray.put came before the blog's clock"
    assert blog_timer(timings, {}) is None and blog_timer({"setup_s": 1.0}, {"stateful": True}) is None


def test_blog_table_reproduces_the_blogs_ratio_by_its_timer_first():
    table = blog_stats().assign(blog_timer_s_median=float("nan"))
    table.loc[(table.workload == "matmul") & (table.backend == "multiprocessing") & (table.workers == 2), "blog_timer_s_median"] = 8.0
    table.loc[(table.workload == "matmul") & (table.backend == "ray"), "blog_timer_s_median"] = 2.0
    runs = pd.DataFrame(
        [
            {
                "workload": "matmul",
                "backend": b,
                "workers": 2,
                "status": "ok",
                "verified": True,
                "blog_timer_s": t,
                "blog_timer_batches": 10,
            }
            for b, t in (
                ("multiprocessing", 7.0),
                ("multiprocessing", 8.0),
                ("multiprocessing", 9.0),
                ("ray", 1.5),
                ("ray", 2.0),
                ("ray", 2.5),
            )
        ]
    )
    rows = blog.blog_table(table, runs).set_index(["workload", "measure (blog)"])
    timer = rows.loc[("matmul", "seconds per trial"), "here, the blog's timer: multiprocessing vs ray"]
    assert timer == "8.00 s vs 2.00 s over 10 batches → 4.00× [2.80–6.00×]", "medians, and the range over trials"
    assert rows.loc[("matmul", "peak memory, MB"), "here, the blog's timer: multiprocessing vs ray"] == "–"
    assert rows.loc[("ner", "seconds, 10 batches of 4 texts"), "here, the blog's timer: multiprocessing vs ray"] == "ray: not run"
    assert list(rows.columns).index("here, the blog's timer: multiprocessing vs ray") < list(rows.columns).index(
        "here, steady state: multiprocessing vs ray"
    ), "first reproduce, then explain"
    paragraph = blog_paragraph(table, runs, {}, {}, "matmul")
    assert (
        paragraph.startswith("matmul, 2 workers: timed as the blog timed it")
        and "4.00× [2.80–6.00×] (the blog: 7.31 s vs 0.95 s, 7.69×)" in paragraph
    )


NO_RUNS = pd.DataFrame(columns=["backend", "status", "verified", "state_builds_timed", "tasks_per_batch", "n_batches"])


def test_ner_explains_why_the_blogs_ratio_and_the_steady_state_differ():
    stats = frame(
        cell("multiprocessing", 4, 4, 3.8, 4.2, workload="ner", blog_timer_s_median=10.0),
        cell("ray", 4, 200, 190, 210, workload="ner", blog_timer_s_median=2.5, setup_s_median=2.0),
    )
    runs = NO_RUNS.assign(workload=pd.Series(dtype=object))
    text = blog_paragraph(stats, runs, {}, {}, "ner")
    assert "Ray's setup, creating 4 actors that load the model, took 2 s, 80% of Ray's time by the blog's timer" in text
    assert "one tagging (50× here)" in text and "result: doc puts it back" in text
    with_doc = blog_paragraph(stats, runs, {}, {"workloads": {"ner": {"result": "doc"}}}, "ner")
    assert "80% of Ray's time" in with_doc and "result: doc puts it back" not in with_doc
    findings = " ".join(workloads.load("ner").explain(stats, NO_RUNS, {}, {}))
    assert "result: doc puts it back" in findings and "Ray's time" not in findings, "the blog's framing is said in its section only"


# ---------------------------------------------------------------- the A/A arm on the first screen


def aa_of(speedups=None, rounds=5, seed=0, process_sd=None):
    """stats.aa of a synthetic sweep (tests/synthetic.py): the twin is serial's second run in each round."""
    import synthetic

    from parbench import stats

    noise = {} if process_sd is None else {"process_sd": process_sd}
    records, _ = synthetic.split(
        synthetic.sweep(synthetic.grid(speedups=speedups), rounds=rounds, rng=np.random.default_rng(seed), **noise)
    )
    runs, _ = stats.tables(records)
    return stats.aa(runs)


def test_the_noise_floor_says_per_workload_what_the_twin_shows_and_the_smallest_difference_seen():
    aa = aa_of()
    lines = claims.noise_floor(aa)
    assert len(lines) == len(aa) == 2 and [line.split(":")[0] for line in lines] == list(aa.workload)
    for line, (_, r) in zip(lines, aa.iterrows()):
        assert "against itself" in line and f"over {r.n_rounds} rounds" in line and f"called {r.verdict}" in line
        assert r.detectable_difference < 1 and f"{r.detectable_difference:.0%} cannot be told from noise" in line, line
        assert f"{r.noise_sd:.1%}" in line


def test_the_noise_floor_grows_with_the_noise():
    quiet, loud = aa_of(process_sd=0.01), aa_of(process_sd=0.2)
    assert (quiet.noise_sd < loud.noise_sd).all() and (quiet.detectable_difference < loud.detectable_difference).all()


def test_a_noise_floor_past_100_percent_reads_as_a_ratio():
    aa = aa_of()
    aa["detectable_difference"] = [7.6, 50]
    lines = claims.noise_floor(aa)
    assert "beyond 8.60×" in lines[0] and "no difference can be decided" in lines[1], lines


def test_a_twin_called_different_is_a_first_screen_warning():
    aa = aa_of()
    assert claims.noise_warning(aa) is None
    aa.loc[aa.workload == "b", ["verdict", "false_verdict"]] = ["faster", True]
    warning = claims.noise_warning(aa)
    assert warning is not None and "in b:" in warning and "doubtful" in warning
    assert "false verdict" in claims.noise_floor(aa)[1]


# ---------------------------------------------------------------- GIL or free-threaded (variants on other interpreters)


def interpreter_sweep(tax: float, seed: int = 0):
    """A synthetic sweep of two variants on different interpreters: 'gil' (first) and 'ft', whose every cell runs
    at `tax` times gil's; p is 2x serial on both."""
    import synthetic

    records, _ = synthetic.split(
        synthetic.sweep(synthetic.grid(workloads=("a",), speedups={"p": 2.0}), rounds=6, rng=np.random.default_rng(seed),
                        variants={"gil": 1.0, "ft": tax})
    )  # fmt: skip
    for r in records:
        ft = r["variant"] == "ft"
        r["environment"] = {**r["environment"], "python": "3.13.5", "python_build": "free-threaded" if ft else "GIL"}
        r["gil_enabled"] = not ft
    return stats.tables(records)[0]


def test_the_interpreter_section_pairs_each_interpreter_with_the_first_variants_serial():
    runs = interpreter_sweep(tax=0.6)
    table = stats.stats(runs)
    assert claims.interpreters_of(runs, ["gil", "ft"]) == {"gil": "Python 3.13.5", "ft": "Python 3.13.5 free-threaded"}
    (a,) = claims.interpreters(table, runs, ["gil", "ft"])
    (sentence,) = a["sentences"]
    tax = re.match(
        r"Python 3\.13\.5 free-threaded: serial gives ([\d.]+)× \[([\d.]+)–([\d.]+)×\] "
        r"the items/s of serial on Python 3\.13\.5, paired over 6 rounds",
        sentence,
    )
    assert tax and float(tax[2]) < 0.6 < float(tax[3]) and float(tax[3]) < 0.95, sentence
    assert "(slower, beyond the 5% margin)" in sentence and "its fastest parallel cell, p at 2 workers" in sentence
    rows = a["rows"]
    assert list(rows.interpreter) == ["Python 3.13.5"] * 3 + ["Python 3.13.5 free-threaded"] * 3, "the first variant's cells first"
    assert rows.backend.iloc[0] == "serial" and rows["× serial on Python 3.13.5"].iloc[0] == "–"
    # Order decides which interpreter the others are compared with.
    (b,) = claims.interpreters(table, runs, ["ft", "gil"])
    assert b["sentences"][0].startswith("Python 3.13.5: serial gives 1.")


def test_no_interpreter_section_when_the_variants_share_one_interpreter():
    runs = interpreter_sweep(tax=0.6).assign(python_build="GIL")
    assert claims.interpreters(stats.stats(runs), runs, ["gil", "ft"]) == []


def test_a_free_threaded_run_with_the_gil_on_is_warned_about_loudly():
    runs = interpreter_sweep(tax=0.6)
    assert claims.gil_warning(runs) is None
    runs.loc[(runs.variant == "ft") & (runs.backend == "p"), "gil_enabled"] = True
    warning = claims.gil_warning(runs)
    assert warning.startswith("The GIL was ON in 6 runs on a free-threaded build (a on p)"), warning
