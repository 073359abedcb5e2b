"""A user's own workload: a file of plain functions in the user's project, measured, verified and
reported like a built-in; bad modules refused before any job; reruns scoped to the file's content."""

import json
import os
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import (
    BACKENDS,
    PIPELINE_BACKENDS,
    SCHEMA,
    SUMS,
    TABLE,
    Leftovers,
    dry_run_jobs,
    make_spec,
    read_records,
    scheduled_outputs,
    scratch_workflow,
    snakemake,
    write_config,
)

from parbench import backends
from parbench.run import runner
from parbench.run.supervise import supervise
from parbench.sweep.config import ConfigError, validate
from parbench.workloads import _user

USER_TINY = {"batches": 2, "warmup_batches": 1, "tasks_per_batch": 4}
# The backends of the faulty user files' sweep (test_a_sweep_of_faulty_user_files_...): one whose tasks run in the
# driver, and Dask, whose dead workers and unpicklable exceptions were "a bug in parbench" that stopped the sweep.
# Without serial, the sweep has no A/A twins: each fault's run on every other backend is a test of its own.
FAULT_BACKENDS = ["threads", "dask"]


def project(tmp_path, files: dict) -> Path:
    """A user's project folder holding `files` ({relative path: source})."""
    for name, source in files.items():
        path = Path(tmp_path, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return Path(tmp_path)


# ---------------------------------------------------------------------------------------------
# The default check


@pytest.mark.parametrize(
    "result,expected,same",
    [
        (np.ones(3) * (1 + 1e-9), np.ones(3), True),
        (np.ones(3) * (1 + 1e-5), np.ones(3), False),
        (np.ones(3), np.ones(4), False),
        (np.array([1.0, np.nan]), np.array([1.0, np.nan]), True),
        (np.array([1.0, np.nan]), np.array([1.0, 2.0]), False),
        (np.arange(3), np.arange(3), True),
        (np.arange(3), np.arange(3) + 1, False),
        ([np.ones(2), {"a": 1.0 + 1e-12}], [np.ones(2), {"a": 1.0}], True),
        ({"a": 1}, {"b": 1}, False),
        ((1, 2), [1, 2], False),
        ("text", "text", True),
        (pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [1]}), True),
        (pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2]}), False),
        ([1, 2], [1, 2, 3], False),
    ],
)
def test_default_check(result, expected, same):
    assert _user.same(result, expected) is same


# ---------------------------------------------------------------------------------------------
# Through the runner and the supervisor: every backend, stateful and not, verified


@pytest.fixture(scope="module")
def user_project(tmp_path_factory, request):
    root = project(tmp_path_factory.mktemp("project"), {"bench/sums.py": SUMS, "bench/table.py": TABLE})
    monkey = pytest.MonkeyPatch()
    monkey.chdir(root)  # a user's module path is relative to the working directory
    request.addfinalizer(monkey.undo)
    return root


def user_spec(backend, module, workers=2, **params):
    spec = make_spec(backend, "mine", workers, **{**USER_TINY, "module": module, **params})
    return spec


# The stateless module on the tiny sweep's backends runs, verified, in that sweep (conftest.PIPELINE_CONFIG's `sums`).
@pytest.mark.parametrize(
    "backend,module,params",
    [
        *[(b, "bench/sums.py", {"rows": 64, "seed": 3}) for b in BACKENDS if b not in PIPELINE_BACKENDS],
        *[(b, "bench/table.py", {"size": 100}) for b in BACKENDS],
    ],
)
def test_user_workload_runs_and_verifies_on_every_backend(user_project, tmp_path, backend, module, params):
    """Measured and verified on every backend; a run that went well keeps no library's files (a failed one keeps
    them beside its log: the huge message's test below)."""
    sessions = ray_sessions()
    record = supervise(user_spec(backend, module, **params), tmp_path / "r.json", tmp_path / "r.log")
    assert record["status"] == "ok", f"{record['reason']}\n{(tmp_path / 'r.log').read_text()[-2000:]}"
    assert record["verified"] is True, record["verification"]
    assert ray_sessions() == sessions, "a session folder in /tmp/ray"
    assert not (tmp_path / "r.library").exists() and "library_files_kept" not in record["cleanup"]
    batches = len(record["timings"]["warmup_s"]) + len(record["timings"]["batch_s"])
    assert len(record["timings"]["batch_s"]) == 2 and batches == 3 + record["workers_used"]["warmup_extra_batches"]
    assert record["verification"]["items_checked"] == 4 * batches
    info = record["workload_info"]["module"]
    assert info["source"] == module and Path(info["file"]).is_file()
    assert info["sha256"] == _user.digest(module)
    if module == "bench/table.py" and backend not in ("multiprocessing", "serial", "threads"):
        builds = sum(record["state_builds"].values())
        assert builds == 0, "STATEFUL: built once per worker in setup, never inside a task"
    if module == "bench/table.py" and backend == "multiprocessing":
        assert record["state_builds"]["batch"] == 4 * 2, "the blog's pattern builds the state in every task"


WRONG_OFF_MAIN_THREAD = SUMS.replace(
    "def task(state, item):\n    return",
    "import threading\n\ndef task(state, item):\n    return (threading.current_thread() is not threading.main_thread()) +",
)


def test_a_wrong_result_is_not_verified(user_project, monkeypatch):
    """The default check compares with the same task run serially (in the driver's main thread): a
    task that answers differently in a worker thread is caught."""
    project(user_project, {"bench/wrong.py": WRONG_OFF_MAIN_THREAD})
    # In this process, as in a driver: the module's folder goes on the path; undone after the test.
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    monkeypatch.setattr(sys, "path", list(sys.path))
    record = runner.run(user_spec("threads", "bench/wrong.py", rows=64, seed=3))
    assert record["status"] == "ok" and record["verified"] is False
    assert "differs from the same task run serially" in record["verification"]["problems"][0]


UNSEEDED = """
import random

def data(params):
    return {}

def items(params, batch, n):
    return [random.random() for _ in range(n)]

def task(state, item):
    return item * 2
"""

NAN_FIELD = """
import dataclasses

@dataclasses.dataclass
class Score:
    name: str
    value: float

def data(params):
    return {}

def items(params, batch, n):
    return list(range(n))

def task(state, item):
    return Score(str(item), float("nan") if item % 2 else item / 3)
"""


@pytest.mark.parametrize(
    "files, verified, problem",
    [
        ({"bench/unseeded.py": UNSEEDED}, False, "items(params, 0, 4) gave other items when called again for the check"),
        ({"bench/nan_field.py": NAN_FIELD}, True, None),
    ],
    ids=["unseeded-items", "nan-in-a-dataclass"],
)
def test_the_check_blames_what_is_wrong(user_project, monkeypatch, files, verified, problem):
    """Items that differ on each call are named as such, not as wrong results; a dataclass with a NaN
    field compares field by field, as floats do (issue 24, item 5)."""
    project(user_project, files)
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    monkeypatch.setattr(sys, "path", list(sys.path))
    record = runner.run(user_spec("serial", next(iter(files)), workers=2))
    assert record["status"] == "ok" and record["verified"] is verified, record["verification"]
    if problem:
        assert record["verification"]["problems"][0].startswith("batch 0: " + problem), record["verification"]
        assert not any("differs from the same task" in p for p in record["verification"]["problems"])


UNPICKLABLE = """
import threading

def data(params):
    return {"lock": threading.Lock()}

def items(params, batch, n):
    return list(range(n))

def task(state, item):
    with state["lock"]:
        return item * 2
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unpicklable_input_fails_process_backends_as_records(user_project, tmp_path, backend):
    """A lock in the data cannot reach another process: those backends record `failed` saying so;
    in-process backends run it."""
    project(user_project, {"bench/locked.py": UNPICKLABLE})
    record = supervise(user_spec(backend, "bench/locked.py"), tmp_path / "r.json", tmp_path / "r.log")
    if backend in ("serial", "threads"):
        assert record["status"] == "ok" and record["verified"], record["reason"]
    else:
        assert record["status"] == "failed", record
        assert "pickle" in record["reason"] and "lock" in record["reason"], record["reason"]
        assert "\n" not in record["reason"] and "\x1b" not in record["reason"] and len(record["reason"]) < 400


RAISES = """
def data(params):
    return {}

def items(params, batch, n):
    return list(range(n))

def task(state, item):
    if item == 1:
        raise ValueError(f"no good: {item}")
    return item
"""


def ray_sessions() -> set[Path]:
    """The session folders in /tmp/ray, where every local Ray run left one (about 250 KB) before issue 24, item 8."""
    return set(Path("/tmp/ray").glob("session_*"))


LOUD = """
def data(params):
    return {}

def items(params, batch, n):
    return list(range(n))

def task(state, item):
    raise ValueError("x" * 1_000_000 + " the end")
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_task_that_raises_a_huge_message_gives_the_same_short_reason_on_every_backend(user_project, tmp_path, backend):
    """A task raising a 1 MB message once made a 1 MB record (issue 24, item 4): the reason is one short line, the
    same on every backend (the faulty files' sweep checks a short message's whole reason), and the whole message is
    in the log. A local Ray instance's session folder lives in the run's temporary folder, and a failed run's is moved
    beside its log, where Ray's own messages point, and the record says so."""
    project(user_project, {"bench/loud.py": LOUD})
    sessions = ray_sessions()
    record = supervise(user_spec(backend, "bench/loud.py"), tmp_path / "r.json", tmp_path / "r.log")
    assert record["status"] == "failed"
    reason = record["reason"]
    assert reason.startswith("task raised ValueError: xxx") and reason.endswith("(loud.py, line 9, in task)"), reason[:500]
    assert len(reason) < 500 and "\n" not in reason and "cut from 1,000,020 characters" in reason, reason[:500]
    assert len((tmp_path / "r.json").read_bytes()) < 100_000
    log = (tmp_path / "r.log").read_text()
    assert "x" * 1_000_000 + " the end" in log, "the whole message is in the run's log"
    assert ray_sessions() == sessions, "a session folder in /tmp/ray"
    kept = tmp_path / "r.library"
    if backend == "ray":  # the one library here that makes a folder of its own (cleanup.library_folder)
        assert record["cleanup"]["library_files_kept"] == str(kept)
        assert list(kept.glob("ray/session_*/logs")), "Ray's session folder with its logs"
        assert str(kept) in log
    else:
        assert not kept.exists() and "library_files_kept" not in record["cleanup"]


# ---------------------------------------------------------------------------------------------
# Bad modules are refused before any job, naming the workload


def refused(tmp_path, files: dict, params: dict, name="mine") -> str:
    root = project(tmp_path, files)
    config = {"backends": ["serial"], "workers": [1], "trials": 1, "workloads": {name: params}}
    with pytest.raises(ConfigError) as raised:
        _validate_in(root, config)
    return str(raised.value)


def _validate_in(root, config):
    monkey = pytest.MonkeyPatch()
    monkey.chdir(root)
    try:
        return validate(config, SCHEMA)
    finally:
        monkey.undo()


ITEMS_AND_TASK = "def items(p, b, n): return [0] * n\ndef task(s, i): return 1\n"


@pytest.mark.parametrize(
    "files,params,expected",
    [
        ({}, {"module": "bench/none.py"}, ["workloads.mine.module", "bench/none.py does not exist"]),
        ({}, {"module": "no_such_package.bench"}, ["workloads.mine.module", "no module 'no_such_package.bench'"]),
        ({"b/syntax.py": "def data(params:\n"}, {"module": "b/syntax.py"}, ["workloads.mine.module", "SyntaxError", "syntax.py, line 1"]),
        (
            {"b/boom.py": "import os\nraise RuntimeError('cannot start')\n"},
            {"module": "b/boom.py"},
            ["workloads.mine.module", "RuntimeError: cannot start", "boom.py, line 2"],
        ),
        (
            {"b/half.py": "def data(params):\n    return {}\n"},
            {"module": "b/half.py"},
            ["has no function items()", "has no function task()"],
        ),
        (
            {"b/arity.py": "def data(params): return {}\ndef items(params, n): return []\ndef task(state, item): return 1\n"},
            {"module": "b/arity.py"},
            ["items() must take 3 positional arguments"],
        ),
        (
            {"b/keyerr.py": "def data(params):\n    return {'n': params['words']}\n" + ITEMS_AND_TASK},
            {"module": "b/keyerr.py", "wrods": 10},
            ["workloads.mine", "parameters are rejected", "KeyError: 'words'", "keyerr.py, line 2, in data"],
        ),
        (
            {"b/build.py": "def data(params): return {'a': 1}\ndef build(b): return b\n" + ITEMS_AND_TASK},
            {"module": "b/build.py"},
            ["build(**data) does not accept the keys of data(params): a"],
        ),
        (
            {"b/json.py": SUMS},
            {"module": "b/json.py", "rows": 8, "seed": 1},
            ["json.py has the name of the module 'json' already installed"],
        ),
        (
            {"b/few.py": SUMS.replace("for i in range(n)", "for i in range(1)")},
            {"module": "b/few.py", "rows": 8, "seed": 1},
            ["returned 1 items, not 2"],
        ),
        (
            {"b/threaded.py": "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,)).start()\n" + SUMS},
            {"module": "b/threaded.py", "rows": 8, "seed": 1},
            ["workloads.mine.module", "left threads running: Thread-1 (sleep)", "make them daemon threads"],
        ),
    ],
    ids=[
        "missing-file",
        "missing-module",
        "syntax-error",
        "import-raises",
        "missing-functions",
        "wrong-arity",
        "rejected-param",
        "build-keys",
        "name-clash-installed",
        "items-count",
        "thread-at-import",  # issue 24, item 2: this check once hung until killed
    ],
)
def test_a_bad_user_module_is_refused_naming_it(tmp_path, files, params, expected):
    message = refused(tmp_path, files, params)
    for text in expected:
        assert text in message, f"{text!r} not in:\n{message}"


def test_a_module_that_blocks_at_import_is_refused_in_bounded_time_naming_where(tmp_path, monkeypatch):
    """The check once waited without end; now it says where the module was when its time ran out (issue 24, item 2)."""
    from parbench.workloads import _user

    monkeypatch.setattr(_user, "CHECK_TIMEOUT_S", 3)
    monkeypatch.setenv("PARBENCH_CHECK_TIMEOUT_S", "3")
    message = refused(tmp_path, {"b/stuck.py": "import threading\nthreading.Event().wait()\n" + SUMS}, {"module": "b/stuck.py"})
    assert "workloads.mine: checking b/stuck.py (its import, data(params) and items(params, 0, 2)) did not end within 3 s" in message
    assert "it was waiting in stuck.py, line 2, in <module>" in message, message


def test_a_user_workload_may_not_take_a_builtin_name(tmp_path):
    message = refused(tmp_path, {"b/sums.py": SUMS}, {"module": "b/sums.py"}, name="matmul")
    assert "workloads.matmul.module: 'matmul' is a built-in workload" in message


def test_a_good_module_passes_and_is_checked_once(tmp_path):
    root = project(tmp_path, {"b/sums.py": SUMS})
    config = {"backends": ["serial"], "workers": [1], "trials": 1, "workloads": {"mine": {"module": "b/sums.py", "rows": 8, "seed": 1}}}
    filled = _validate_in(root, config)
    assert filled["workloads"]["mine"]["batches"] == 10 and filled["workloads"]["mine"]["items_per_task"] == 1
    assert len(list((root / _user.CHECKED).iterdir())) == 1, "a passed check is remembered"
    (root / "b" / "sums.py").write_text(SUMS + "\n# edited\n")
    _validate_in(root, config)
    assert len(list((root / _user.CHECKED).iterdir())) == 2, "an edit is checked again"


# ---------------------------------------------------------------------------------------------
# The pipeline: the user's workload beside a built-in, its reruns scoped to its file


@pytest.fixture(scope="module")
def pipeline(tiny_pipeline):
    """The tests' shared sweep, which holds a user workload beside matmul and ner (conftest)."""
    assert tiny_pipeline.result.returncode == 0, tiny_pipeline.result.stdout[-5000:]
    return tiny_pipeline.work, tiny_pipeline.config


def test_the_pipeline_measures_verifies_and_reports_a_user_workload(pipeline):
    work, config = pipeline
    recs = [r for r in read_records(work) if r["workload"] == "sums"]
    cells = [("sums", w) for w in config["workloads"]["sums"]["workers"]]
    assert sorted((r["workload"], r["workers"]) for r in recs) == sorted(cells * len(config["backends"]) * config["trials"]), (
        "sums' own worker counts"
    )
    assert all(r["status"] == "ok" and r["verified"] for r in recs), [r["reason"] for r in recs]
    runs = pd.read_csv(work / "results" / "tables" / "runs.csv")
    assert "sums" in set(runs.workload)
    assert (runs[runs.workload == "sums"].module == "bench/sums.py").all()
    for figure in ("throughput", "memory"):
        assert (work / "results" / "figures" / f"sums_{figure}.png").stat().st_size > 5000
    html = (work / "results" / "report.html").read_text()
    assert "<h3>sums in detail</h3>" in html


def test_editing_the_user_file_reruns_only_its_runs(pipeline):
    work, config = pipeline
    path = work / "bench" / "sums.py"
    original = path.read_text()
    try:
        path.write_text(original + "\n# a comment changes the content\n")
        runs = scheduled_outputs(snakemake(work, "-n", "--cores", "2", timeout=300).stdout, "run")
        assert runs and all("/sums/" in p for p in runs), runs
        assert len(runs) == len(config["backends"]) * len(config["workloads"]["sums"]["workers"]) * config["trials"]
    finally:
        path.write_text(original)


def test_editing_a_builtin_workload_does_not_rerun_user_workloads(pipeline):
    work, config = pipeline
    path = work / "src" / "parbench" / "workloads" / "matmul.py"
    original = path.read_text()
    try:
        path.write_text(original + "\n# edited\n")
        runs = scheduled_outputs(snakemake(work, "-n", "--cores", "2", timeout=300).stdout, "run")
        assert runs and all("/matmul/" in p for p in runs), runs
    finally:
        path.write_text(original)


def test_a_users_own_worker_counts_change_no_run_of_others(pipeline):
    work, config = pipeline
    changed = json.loads(json.dumps(config))
    changed["workloads"]["sums"]["workers"] = [1, 2]
    write_config(work, changed, "other.yaml")
    jobs = dry_run_jobs(snakemake(work, "-n", "--cores", "2", "--configfile", "other.yaml", timeout=300).stdout)
    # Only sums at 1 worker is new, in every round; its A/A twin moves to serial at the first count, 1.
    assert jobs.get("run") == len(config["backends"]) * config["trials"], jobs
    assert jobs.get("twin") == config["trials"], jobs


CHATTY = """
def data(params):
    return {}

def items(params, batch, n):
    return list(range(n))

def task(state, item):
    print("chatter " * 200_000, flush=True)  # 1.6 MB per task
    return item
"""


def test_a_task_that_prints_megabytes_leaves_a_capped_log_that_says_so(user_project, tmp_path):
    """A task printing 50 MB once made a 191 MB log per run (issue 24, item 8)."""
    from parbench import cleanup

    project(user_project, {"bench/chatty.py": CHATTY})
    log = tmp_path / "r.log"
    log.write_text("before the run\n")
    record = supervise(user_spec("serial", "bench/chatty.py"), tmp_path / "r.json", log)
    assert record["status"] == "ok" and record["verified"], record["reason"]
    text = log.read_text()
    assert text.startswith("before the run\nchatter"), "the log's earlier content and the run's first output stay"
    assert len(text) <= len("before the run\n") + cleanup.LOG_CAP_BYTES + 200
    assert (
        record["cleanup"]["log_cut_bytes"] > 5_000_000
        and f"{record['cleanup']['log_cut_bytes']:,} bytes of this run's output cut here" in text
    )


LINGERING = """
import threading
import time

def data(params):
    return {}

def items(params, batch, n):
    return list(range(n))

def linger():
    time.sleep(3600)

def task(state, item):
    threading.Thread(target=linger, name="linger").start()  # never joined, not a daemon
    return item
"""


LINGERED = "linger at lingering.py, line 12, in linger"  # what a driver that ran the tasks names in threads_left


# The faulty files' sweep below runs it on FAULT_BACKENDS through Snakemake; here the others but multiprocessing-shared,
# which stops its Pool through the same _pool.finish (whose EXIT_GRACE_S, 5 s, is most of such a run).
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b not in [*FAULT_BACKENDS, "multiprocessing-shared"]])
def test_a_thread_a_task_leaves_running_does_not_hold_a_finished_run(user_project, tmp_path, backend):
    """Runs whose work was done and verified once waited for such a thread until their timeout (issue 24, item 3)."""
    project(user_project, {"bench/lingering.py": LINGERING})
    spec = user_spec(backend, "bench/lingering.py")
    spec["settings"] = {**spec["settings"], "limits": {**spec["settings"].get("limits", {}), "timeout_s": 120}}
    record = supervise(spec, tmp_path / "r.json", tmp_path / "r.log")
    assert record["status"] == "ok" and record["verified"], f"{record['status']}: {record['reason']}"
    if backends.load(backend).in_driver:  # the tasks ran in the driver: it names what it ended
        assert any(t.startswith(LINGERED) for t in record["threads_left"]), record.get("threads_left")


DIES = """
import os

def data(params):
    return {}

def items(params, batch, n):
    return list(range(n))

def task(state, item):
    os.{how}
"""


# abort() on every backend; _exit(3) where the faulty files' sweep below does not run it (it runs both through
# Snakemake on FAULT_BACKENDS), except Ray, whose dead worker is the same WorkerCrashedError either way (10 s a run).
ENDINGS = [
    *[pytest.param(b, "abort()", id=f"{b}-abort()") for b in BACKENDS],
    *[pytest.param(b, "_exit(3)", id=f"{b}-_exit(3)") for b in BACKENDS if b not in FAULT_BACKENDS and b != "ray"],
]


@pytest.mark.parametrize("backend,how", ENDINGS)
def test_a_task_that_ends_its_process_is_a_failed_run_with_one_cause(user_project, tmp_path, backend, how):
    """A worker that died came back from Dask as 'a bug in parbench' (no record, the sweep stopped), and each
    backend worded it its own way (issue 24, item 1). os.abort leaves a faulthandler stack: its line is named."""
    from parbench.run import runner

    project(user_project, {"bench/dies.py": DIES.replace("{how}", how)})
    record = supervise(user_spec(backend, "bench/dies.py"), tmp_path / "r.json", tmp_path / "r.log")
    assert record["status"] == "failed", record["status"]
    reason = record["reason"]
    if backends.load(backend).in_driver or backend == "threads":  # the tasks ran in the driver: it is what died
        assert reason.startswith("driver killed by SIGABRT" if how == "abort()" else "driver exited with code 3"), reason
    else:
        assert reason.startswith(runner.WORKER_DIED + " ("), reason
    if how == "abort()":
        assert reason.endswith("(a fatal error at dies.py, line 11, in task)"), reason
        assert "ended in a fatal error" in (tmp_path / "r.log").read_text()


# One sweep of a user's faulty files on the backends they concern (Dask's dead workers and unpicklable
# exceptions were "a bug in parbench" that stopped the sweep): each fault a record with its cause.
FAULTS = {
    "raises": (RAISES, "task raised ValueError: no good: 1 (raises.py, line 10, in task)"),
    "exits": (DIES.replace("{how}", "_exit(3)"), None),
    "aborts": (DIES.replace("{how}", "abort()"), "(a fatal error at aborts.py, line 11, in task)"),
    "unseeded": (UNSEEDED, "items(params, 0, 4) gave other items when called again for the check"),
    "lingering": (LINGERING, None),
}


def test_a_sweep_of_faulty_user_files_records_every_fault_reports_and_exits_0(tmp_path, seed_machine):
    """The end-to-end form of issue 24's tests: through Snakemake, every fault is a record whose reason (or
    verification problem) is one short line, the good workload's cells are reported, the report is written,
    Snakemake exits 0, and no process, /dev/shm entry or cgroup remains."""
    config = {
        "backends": FAULT_BACKENDS,
        "workers": [2],
        "trials": 1,
        "workloads": {
            "sums": {"module": "bench/sums.py", "rows": 64, "seed": 3, **USER_TINY},
            **{name: {"module": f"bench/{name}.py", **USER_TINY} for name in FAULTS},
        },
        "limits": {"timeout_s": 120},
        "sentinel": None,
    }
    work = scratch_workflow(tmp_path, config)
    project(work, {"bench/sums.py": SUMS, **{f"bench/{name}.py": source for name, (source, _) in FAULTS.items()}})
    seed_machine(work)
    with Leftovers() as left:
        result = snakemake(work, "--cores", "8", timeout=900)
        problems = left.problems()
    assert result.returncode == 0, result.stdout[-5000:]
    assert "a bug in parbench" not in result.stdout
    assert not problems, problems
    recs = {(r["workload"], r["backend"]): r for r in read_records(work)}
    assert set(recs) == {(w, b) for w in ["sums", *FAULTS] for b in FAULT_BACKENDS}
    for backend in FAULT_BACKENDS:
        assert recs["sums", backend]["status"] == "ok" and recs["sums", backend]["verified"], recs["sums", backend]["reason"]
        lingering = recs["lingering", backend]
        assert lingering["status"] == "ok" and lingering["verified"], lingering["reason"]
        if backend == "threads":  # the tasks ran in the driver: it names what it ended
            assert any(t.startswith(LINGERED) for t in lingering["threads_left"]), lingering.get("threads_left")
        unseeded = recs["unseeded", backend]
        assert unseeded["status"] == "ok" and unseeded["verified"] is False
        assert unseeded["verification"]["problems"][0].startswith("batch 0: " + FAULTS["unseeded"][1]), unseeded["verification"]
        assert recs["raises", backend]["reason"] == FAULTS["raises"][1]
        for name in ("raises", "exits", "aborts"):
            record = recs[name, backend]
            assert record["status"] == "failed" and "\n" not in record["reason"] and len(record["reason"]) < 400, record["reason"]
            if FAULTS[name][1]:
                assert FAULTS[name][1] in record["reason"], record["reason"]
    html = (work / "results" / "report.html").read_text()
    assert "<h3>sums in detail</h3>" in html
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    for name, cause in [("raises", FAULTS["raises"][1]), ("exits", runner.WORKER_DIED), ("exits", "driver exited with code 3")]:
        # (A busy machine, other work beside the sweep, puts its own section first.)
        left_out = rf"{name} in detail (Busy machine .*?)?Left out .*?{re.escape(cause)}"
        assert re.search(left_out, text), f"{name}'s left-out cells name {cause!r}"
    assert text.count(FAULTS["unseeded"][1]) >= 2 * len(FAULT_BACKENDS), "named where it is left out and in the runs table"
    assert "did not match the serial reference" not in text
