"""The report of a tiny real sweep, rendered in headless Chromium: every figure loads, every section
is there, nothing is fetched from outside the page. Needs Debian's chromium (`make browser`)."""

import json
import os
from pathlib import Path

import pandas as pd
import psutil
import pytest

from parbench import config, environment, machine, plots, report, runner, stats

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
# Real runs, small enough for about half a minute; ner without warm-up (the blog's pattern loads a model per task).
TINY = {
    "backends": ["serial", "multiprocessing", "multiprocessing-shared"],
    "workers": [1, 2],
    "trials": 1,
    "workloads": {
        "matmul": {"n": 200, "k": 16, "batches": 2, "warmup_batches": 1},
        "ner": {"model": "en_core_web_sm", "texts": ["Paris is the capital of France."], "batches": 2, "warmup_batches": 0},
    },
}


def cells(cfg: dict):
    """The sweep's cells, shaped as workflow/rules/common.smk shapes them for the run rule."""
    for workload, params in cfg["workloads"].items():
        for backend in cfg["backends"]:
            for workers in cfg["workers"]:
                settings = {
                    "blas_threads": cfg["blas_threads"],
                    "options": cfg.get(backend, {}),
                    "limits": cfg["limits"],
                    "sampler": cfg["sampler"],
                }
                yield {
                    "workload": workload,
                    "backend": backend,
                    "workers": workers,
                    "trial": 1,
                    "params": params,
                    "settings": settings,
                    "code": environment.run_code_hash(backend, workload),
                }


def tiny_machine() -> dict:
    """results/machine.json without the slow parts (full-size GEMM, Ray start-up)."""
    return {
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "blas_gflops_single": machine.gemm_gflops(1, n=512),
        "blas_gflops_all": machine.gemm_gflops(psutil.cpu_count(logical=False), n=512),
        **machine.pickle_costs(),
        "process_spawn_s": {"fork": machine.spawn_s("fork")},
        "environment": environment.collect(),
    }


def unavailable(what: str):
    """Skip on a developer's machine; in CI (CI=true) a missing browser is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} in CI")
    pytest.skip(what)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: install Debian's chromium (make browser)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    out = tmp_path_factory.mktemp("report")
    cfg = config.validate(TINY, ROOT / "config" / "schema.yaml")
    records = [runner.run(cell) for cell in cells(cfg)]
    runs, batches = stats.tables(records)
    paths = {"runs": out / "runs.csv", "stats": out / "stats.csv", "machine": out / "machine.json"}
    runs.to_csv(paths["runs"], index=False)
    stats.stats(runs, batches).to_csv(paths["stats"], index=False)
    paths["machine"].write_text(json.dumps(tiny_machine()))
    figures = []
    for workload in cfg["workloads"]:
        png = [out / f"{workload}_{name}.png" for name in plots.DRAW]
        plots.draw_all(workload, paths["runs"], paths["stats"], paths["machine"], png, [p.with_suffix(".svg") for p in png])
        figures += png
    report.write(out / "report.html", paths["runs"], paths["stats"], paths["machine"], figures, cfg)
    # A failed run is still reported (that is one of the sections); only a sweep with nothing to show is useless.
    assert pd.read_csv(paths["runs"]).groupby("workload").status.apply(lambda s: s.eq("ok").any()).all()
    return out / "report.html"


# On a machine shared with running sweeps, another supervisor's /dev/shm cleanup can remove this
# process's multiprocessing semaphores; their finalizers then complain. Harmless for the report.
@pytest.mark.filterwarnings("ignore:Exception ignored in.*Finalize:pytest.PytestUnraisableExceptionWarning")
def test_report_renders_in_chromium(report_html):
    from playwright.sync_api import sync_playwright

    outside = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(("file:", "data:"))
                    else (outside.append(route.request.url), route.abort())
                ),
            )
            page.goto(report_html.as_uri(), wait_until="load")
            images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.alt, i.complete, i.naturalWidth])")
            sections = page.eval_on_selector_all("section", "ss => ss.map(s => s.id)")
            advice = page.inner_text("#findings .cards")
            page.screenshot(path=str(report_html.parent / "report.png"), full_page=True)
        finally:
            browser.close()
    assert len(images) == 8  # 2 workloads x 4 figures
    assert all(complete and width > 0 for _, complete, width in images), images
    assert sections == list(report.SECTIONS)
    # The tests' sweep has one trial per cell: the cards say why they rank nothing.
    assert "matmul" in advice and "ner" in advice and advice.count("Not enough repeats to rank") == 2
    assert outside == []
    assert (report_html.parent / "report.png").stat().st_size > 10_000
