"""GIL or no GIL: runs whose driver is another interpreter (a variant's `python`), CPython 3.13 and the
free-threaded 3.13t that `make interpreters` builds; the subinterpreters backend; what an interpreter
cannot run is a `skipped` record with its reason. Skips without the interpreters, fails under CI=true."""

import os
import re
import sys
import textwrap

import pytest
from conftest import REPO, TINY, make_spec, read_records, scratch_workflow, snakemake

from parbench import backends, plugins
from parbench.run.supervise import supervise

GIL, FREE = REPO / "interpreters" / "3.13", REPO / "interpreters" / "3.13t"


def needed(path):
    if not (path / "bin" / "python").exists():
        why = f"{path} is missing: run `make interpreters`"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return str(path)


@pytest.fixture(scope="module")
def free():
    return needed(FREE)


@pytest.fixture(scope="module")
def gil():
    return needed(GIL)


def on(python, backend, workload, tmp_path, workers=2, **params):
    spec = make_spec(backend, workload, workers, **{**TINY.get(workload, {}), **params})
    spec["settings"] = {**spec["settings"], "python": python}
    return supervise(spec, tmp_path / "r.json", tmp_path / "r.log")


def test_a_run_on_the_free_threaded_build_says_so(free, tmp_path):
    record = on(free, "threads", "primes", tmp_path)
    assert record["status"] == "ok" and record["verified"], record["reason"]
    env = record["environment"]
    assert env["python_build"] == "free-threaded" and env["python"].startswith("3.13")
    assert env["python_executable"] == str(FREE / "bin" / "python")
    assert record["gil_enabled"] is False


def test_the_gil_build_of_the_same_version_says_so(gil, tmp_path):
    record = on(gil, "serial", "primes", tmp_path)
    assert record["status"] == "ok" and record["verified"], record["reason"]
    assert record["environment"]["python_build"] == "GIL" and record["gil_enabled"] is True


@pytest.mark.parametrize("backend, workload", [("ray", "primes"), ("serial", "ner")])
def test_a_package_missing_on_the_interpreter_is_a_skipped_run_naming_it(free, tmp_path, backend, workload):
    """Ray has no free-threaded wheels and spaCy's stack none for 3.13t: before any timer, skipped."""
    record = on(free, backend, workload, tmp_path)
    assert record["status"] == "skipped", record
    package = "ray" if backend == "ray" else "spacy"
    assert record["reason"].startswith(f"{package} is not installed for Python 3.13"), record["reason"]
    assert "free-threaded" in record["reason"]
    assert record["timings"]["startup_s"] is None and record["timings"]["batch_s"] == []


@pytest.mark.parametrize("python", ["free", "gil"])
@pytest.mark.parametrize("workload", ["primes", "tinytasks", "http"])
def test_the_interpreters_backend_runs_pure_python_work_verified(request, tmp_path, python, workload):
    record = on(request.getfixturevalue(python), "interpreters", workload, tmp_path)
    assert record["status"] == "ok" and record["verified"], f"{record['status']}: {record['reason']}"
    assert record["workers_used"]["per_batch"] == [2, 2], "each batch ran in both interpreters"


def test_the_interpreters_backend_skips_matmul_naming_numpy(free, tmp_path):
    record = on(free, "interpreters", "matmul", tmp_path)
    assert record["status"] == "skipped", record
    assert "cannot be loaded in a subinterpreter" in record["reason"] and "numpy" in record["reason"], record["reason"]
    assert "\n" not in record["reason"] and len(record["reason"]) < 400


PURE = """
def data(params):
    return {"words": ["alpha", "beta", "gamma"] * params["size"]}

def items(params, batch, n):
    return [(batch * n + i) % 7 for i in range(n)]

def task(state, item):
    return sum(len(w) * item for w in state["words"])
"""


def test_the_interpreters_backend_runs_a_pure_python_user_workload(free, tmp_path, monkeypatch):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "pure.py").write_text(textwrap.dedent(PURE))
    monkeypatch.chdir(tmp_path)  # a user's module path is relative to the working directory
    record = on(free, "interpreters", "mine", tmp_path, module="bench/pure.py", size=50, batches=2, warmup_batches=1, tasks_per_batch=4)
    assert record["status"] == "ok" and record["verified"], f"{record['status']}: {record['reason']}"


def test_the_interpreters_backend_is_unavailable_before_3_13_on_our_own_python():
    if sys.version_info >= (3, 13):
        pytest.skip("this interpreter has subinterpreters")
    with pytest.raises(plugins.Unavailable, match="is not installed for Python 3"):
        backends.load("interpreters")


def test_a_free_threaded_variant_through_the_sweep(free, tmp_path, seed_machine):
    """The sweep's own Python and 3.13t interleaved in the same rounds: every record names its interpreter,
    what 3.13t cannot run is skipped with its reason, and the report says so."""
    config = {
        "backends": ["serial", "threads", "interpreters"],
        "workers": [2],
        "trials": 2,
        "workloads": {
            "primes": {"span": 300, "batches": 2, "warmup_batches": 1},
            "matmul": {"n": 128, "k": 8, "batches": 2, "warmup_batches": 1},
        },
        "variants": {"own": {}, "ft": {"python": free}},
        "sentinel": None,  # variants are paired within rounds: no sentinel normalises them
    }
    work = scratch_workflow(tmp_path, config)
    seed_machine(work)
    result = snakemake(work, "--cores", "8", timeout=900)
    assert result.returncode == 0, result.stdout[-5000:]
    recs = {(r["variant"], r["workload"], r["backend"]): r for r in read_records(work)}
    for (variant, workload, backend), r in recs.items():
        assert r["environment"]["python_build"] == ("free-threaded" if variant == "ft" else "GIL"), (variant, r["environment"])
        assert r["gil_enabled"] is (variant != "ft")
        if backend == "interpreters" and (variant == "own" or workload == "matmul"):
            assert r["status"] == "skipped", (variant, workload, r["status"], r["reason"])
        else:
            assert r["status"] == "ok" and r["verified"], (variant, workload, backend, r["reason"])
    html = (work / "results" / "report.html").read_text()
    section = html[html.index('<section id="interpreters">') :]
    section = section[: section.index("</section>")]
    assert "<h3>primes</h3>" in section and "<h3>matmul</h3>" in section
    assert re.search(
        r"Python 3\.13\.\d+ free-threaded: serial gives [\d.]+× \[[\d.]+–[\d.]+×\] the items/s of serial on Python 3\.11", section
    ), section
    assert "not available on Python 3.13" in section and "cannot be loaded in a subinterpreter" in section
    assert "not available on Python 3.11" in section or sys.version_info >= (3, 13), "our own interpreter has no subinterpreters"
