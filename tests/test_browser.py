"""The report of the tests' tiny real sweep (conftest.tiny_pipeline), rendered in headless Chromium: every figure loads, every section
is there, nothing is fetched from outside the page. Needs Debian's chromium (`make browser`)."""

import contextlib
import os
from pathlib import Path

import pytest
from conftest import PIPELINE_CONFIG

from parbench.report import report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def unavailable(what: str):
    """Skip on a developer's machine; in CI (CI=true) a missing browser is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} in CI")
    pytest.skip(what)


@contextlib.contextmanager
def offline_page(outside: list):
    """A Chromium page that loads only file: and data: URLs; every other request is aborted and listed in `outside`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route(
                "**/*",
                lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else (outside.append(r.request.url), r.abort()),
            )
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def report_html(tiny_pipeline):
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: install Debian's chromium (make browser)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    assert tiny_pipeline.result.returncode == 0, tiny_pipeline.result.stdout[-3000:]
    return tiny_pipeline.results / "report.html"


def test_report_renders_in_chromium(report_html, tmp_path):
    outside = []
    with offline_page(outside) as page:
        page.goto(report_html.as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.alt, i.complete, i.naturalWidth])")
        sections = page.eval_on_selector_all("section", "ss => ss.map(s => s.id)")
        advice = page.inner_text("#findings .cards")
        noise = page.eval_on_selector_all("#summary ul.noise li", "lis => lis.map(li => li.innerText)")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    workloads = list(PIPELINE_CONFIG["workloads"])
    assert len(images) == 4 * len(workloads)  # 4 figures per workload
    assert all(complete and width > 0 for _, complete, width in images), images
    assert sections == list(report.SECTIONS)
    # The tests' sweep has two rounds, the least that ranks: every card names a cell and says how sure.
    assert all(w in advice for w in workloads) and advice.count("How sure:") == len(workloads), advice
    # The first screen's A/A arm: one line per workload, each its twin against its reference.
    assert sorted(line.split(":")[0] for line in noise) == sorted(workloads) and all("against itself" in line for line in noise), noise
    assert outside == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
