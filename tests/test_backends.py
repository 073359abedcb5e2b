"""Every backend x workload on tiny sizes, each in a fresh supervised driver process as in the
pipeline; and verification that catches wrong results."""

import dataclasses
import importlib
import subprocess
import time

import numpy as np
import psutil
import pytest
from conftest import MEMORY_FIELDS, REPO, TEXTS, Leftovers, backend_options, make_spec, missing_fields

from parbench import backends, records, runner, workloads
from parbench.supervise import supervise
from parbench.workloads.base import Work

WORKERS = 2
CELLS = [(b, w) for b in backends.names() for w in workloads.names()]


@pytest.fixture(scope="module")
def run_once(tmp_path_factory):
    """Run (backend, workload) once per module through the supervisor; later calls reuse the record."""
    done = {}
    out = tmp_path_factory.mktemp("backends")

    def get(backend, workload):
        """(spec, record, record path, log path, leftovers after the run)."""
        if (backend, workload) not in done:
            spec = make_spec(backend, workload, WORKERS)
            path, log = out / f"{workload}-{backend}.json", out / f"{workload}-{backend}.log"
            with Leftovers() as left:
                try:
                    record = supervise(spec, path, log)
                except Exception as error:  # noqa: BLE001  (reported by every test that needs this spec)
                    record = error
            done[backend, workload] = (spec, record, path, log, left.problems())
        spec, record, path, log, left = done[backend, workload]
        if isinstance(record, Exception):
            pytest.fail(f"{backend} x {workload} raised {record!r}; driver log:\n{log.read_text()[-3000:] if log.exists() else ''}")
        return spec, record, path, log, left

    return get


def in_git() -> bool:
    return subprocess.run(["git", "rev-parse", "--git-dir"], cwd=REPO, capture_output=True).returncode == 0


def is_commit(sha) -> bool:
    """True if `sha` names a commit of this repository (HEAD itself may move while the suite runs)."""
    return (
        isinstance(sha, str)
        and subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=REPO, capture_output=True).returncode == 0
    )


@pytest.mark.parametrize("backend,workload", CELLS)
def test_backend_runs_and_verifies(run_once, backend, workload):
    spec, record, path, log, _ = run_once(backend, workload)
    assert record["status"] == "ok", f"{record['status']}: {record.get('reason')}\n{log.read_text()[-3000:]}"
    assert record["reason"] is None
    assert record["verified"] is True, record.get("verification")
    assert records.read(path) == record, "the record written is the record returned"

    assert missing_fields(record) == []
    assert records.problems(record) == [], "the record schema holds"

    assert record["schema_version"] == records.SCHEMA_VERSION
    assert (record["workload"], record["backend"], record["workers"], record["trial"]) == (workload, backend, WORKERS, 1)
    assert record["params"] == spec["params"]
    tasks = spec["params"]["tasks_per_batch"] or WORKERS
    assert record["tasks_per_batch"] == tasks and record["items_per_batch"] == tasks
    assert record["verification"]["items_checked"] == tasks * (spec["params"]["batches"] + spec["params"]["warmup_batches"])
    assert record["gil_enabled"] is True, "a standard CPython"

    t = record["timings"]
    assert len(t["batch_s"]) == spec["params"]["batches"]
    assert len(t["warmup_s"]) == spec["params"]["warmup_batches"]
    assert all(isinstance(s, float) and s > 0 for s in t["batch_s"] + t["warmup_s"])
    phases = t["startup_s"] + t["setup_s"] + sum(t["warmup_s"]) + sum(t["batch_s"]) + t["teardown_s"]
    assert all(t[k] >= 0 for k in ("startup_s", "setup_s", "teardown_s"))
    assert t["end_to_end_s"] >= phases * (1 - 1e-9), "end to end covers every phase"

    m = record["memory"]
    assert all(isinstance(m[f], int) for f in MEMORY_FIELDS)
    assert m["peak_tree_pss_bytes"] > 0 and m["peak_shm_bytes"] >= 0
    assert m["peak_tree_rss_bytes"] >= m["peak_tree_pss_bytes"], "RSS counts shared pages in full, PSS splits them"
    assert m["peak_tree_rss_bytes"] >= m["driver_peak_rss_bytes"] > 0

    assert record["started_at"] <= record["finished_at"]
    env = record["environment"]
    assert env["physical_cores"] == psutil.cpu_count(logical=False)
    assert env["logical_cores"] == psutil.cpu_count(logical=True)
    assert env["memory_bytes"] == psutil.virtual_memory().total
    assert env["packages"]["numpy"] == np.__version__
    assert env["start_method"] == spec["settings"]["options"].get("start_method")
    if in_git():
        assert is_commit(env["git_commit"]), env["git_commit"]


@pytest.mark.parametrize("backend,workload", CELLS)
def test_backend_leaves_nothing_behind(run_once, backend, workload):
    """After a normal run no process of it remains, and nothing new in /dev/shm."""
    assert run_once(backend, workload)[4] == {}


def test_blas_threads_under_auto(run_once):
    """Under `auto` every worker-based backend sees the same BLAS threads; serial gets every physical core."""
    cores = psutil.cpu_count(logical=False)
    seen = {}
    for backend, workload in CELLS:
        _, record, _, _, _ = run_once(backend, workload)
        assert record["settings"]["blas_threads"] == "auto"
        seen[backend, workload] = record["blas_threads"]
    serial = {k: v for k, v in seen.items() if k[0] == "serial"}
    others = {k: v for k, v in seen.items() if k[0] != "serial"}
    assert set(serial.values()) == {cores}, serial
    assert set(others.values()) == {max(1, cores // WORKERS)}, others


# ---------------------------------------------------------------------------------------------
# Wrong results are caught


@pytest.fixture(scope="module")
def matmul():
    w = workloads.load("matmul")({"n": 64, "k": 4, "seed": 7}, trial=1)
    work = w.work()
    x = work.build(**work.data)
    items = w.items(0, 3)
    return w, x, items, [work.task(x, y) for y in items]


def test_matmul_verify_accepts_the_right_products(matmul):
    w, x, items, results = matmul
    assert w.verify(0, items, [w.digest(r) for r in results]) == []


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda r, x, y: r + np.eye(*r.shape) * 1e-4, id="small-perturbation"),
        pytest.param(lambda r, x, y: np.matmul(x.T, y), id="transposed-x"),
        pytest.param(lambda r, x, y: r[:, :-1], id="wrong-shape"),
        pytest.param(lambda r, x, y: r.tolist(), id="not-an-array"),
        pytest.param(lambda r, x, y: np.full_like(r, np.nan), id="nan"),
    ],
)
def test_matmul_verify_catches_a_wrong_product(matmul, corrupt):
    w, x, items, results = matmul
    bad = list(results)
    bad[1] = corrupt(results[1], x, items[1])
    problems = w.verify(0, items, [w.digest(r) for r in bad])
    assert len(problems) == 1 and "task 1" in problems[0], problems


@pytest.fixture(scope="module")
def ner():
    w = workloads.load("ner")({"model": "en_core_web_sm", "texts": TEXTS}, trial=1)
    items = w.items(0, 2)
    return w, items, [w.work().task(w.reference, t) for t in items]


def test_ner_verify_accepts_the_reference_entities(ner):
    w, items, digests = ner
    assert all(digests), "the texts have entities"
    assert w.verify(0, items, digests) == []


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda ents: ents[1:], id="entity-dropped"),
        pytest.param(lambda ents: [(e[0], "ORG" if e[1] != "ORG" else "GPE", *e[2:]) for e in ents], id="label-changed"),
        pytest.param(lambda ents: [*ents, ("May", "DATE", 0, 3)], id="entity-added"),
        pytest.param(lambda ents: [], id="no-entities"),
    ],
)
def test_ner_verify_catches_altered_entities(ner, alter):
    w, items, digests = ner
    bad = [digests[0], alter(digests[1])]
    problems = w.verify(0, items, bad)
    assert len(problems) == 1 and "task 1" in problems[0], problems


def test_runner_marks_wrong_results_unverified(monkeypatch):
    """A backend that returns wrong products ends `ok` (it ran) but not verified, with the problems listed."""
    from parbench.workloads import matmul as matmul_module

    monkeypatch.setattr(matmul_module, "multiply", lambda x, y: np.matmul(x, y) * (1 + 1e-6))
    record = runner.run(make_spec("serial", "matmul", 1, n=64, k=4))
    assert record["status"] == "ok"
    assert record["verified"] is False
    assert record["verification"]["problems"] and all("Freivalds" in p for p in record["verification"]["problems"])


def test_ray_without_address_starts_its_own_instance(monkeypatch):
    """With `address: null` the backend must start a fresh local Ray, never join whatever cluster
    RAY_ADDRESS or /tmp/ray/ray_current_cluster points at (a `ray start` of someone else)."""
    ray = pytest.importorskip("ray")
    from ray._private.services import canonicalize_bootstrap_address

    calls = []
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    backends.load("ray")(2, 1, {"address": None}).start()
    ((args, kwargs),) = calls
    address = args[0] if args else kwargs.get("address")
    assert canonicalize_bootstrap_address(address) is None, f"ray.init(address={address!r}) joins an existing cluster"
    assert kwargs.get("num_cpus") == 2


def test_blog_multiprocessing_shows_its_copies_of_x(tmp_path):
    """Issue 3: at 2 workers with a 4000 x 4000 x (122 MiB), the blog's pattern (x pickled into
    every task, so a private copy in each busy worker) peaks above multiprocessing-shared (one
    shared block, counted once by PSS) by at least the size of x."""
    x_bytes = 8 * 4000**2
    peaks = {}
    for backend in ("multiprocessing", "multiprocessing-shared"):
        spec = make_spec(backend, "matmul", 2, n=4000, k=64, batches=5, warmup_batches=1)
        record = supervise(spec, tmp_path / f"{backend}.json", tmp_path / f"{backend}.log")
        assert record["status"] == "ok" and record["verified"], record.get("reason")
        peaks[backend] = record["memory"]["peak_tree_pss_bytes"]
    assert peaks["multiprocessing"] - peaks["multiprocessing-shared"] >= x_bytes, peaks


@pytest.fixture(scope="module")
def broken_pipeline(tmp_path_factory):
    """A folder that looks like a spaCy pipeline (config.cfg, meta.json) but does not load."""
    folder = tmp_path_factory.mktemp("broken-pipeline")
    (folder / "config.cfg").write_text('[nlp]\nlang = "xx-no-such-language"\npipeline = []\n')
    (folder / "meta.json").write_text("{}")
    return folder


@pytest.mark.parametrize("backend", ["serial", "multiprocessing", "multiprocessing-shared", "ray"])
def test_a_model_that_does_not_load_is_the_same_short_failure_everywhere(tmp_path, broken_pipeline, backend):
    """The same cause, the same status and one plain line on every backend (Ray's own report is a
    coloured traceback), and describing the workload afterwards does not crash the run."""
    spec = make_spec(backend, "ner", 2, model=str(broken_pipeline))
    record = supervise(spec, tmp_path / "r.json", tmp_path / "r.log")
    assert record["status"] == "failed", record["reason"]
    assert record["reason"].startswith("building the state raised "), record["reason"]
    assert "\n" not in record["reason"] and "\x1b" not in record["reason"] and len(record["reason"]) < 400
    assert "error" in record["workload_info"]["model"], "described without loading the model again"


def _state(**data):
    return data


def _count(state, item):
    return len(state["corpus"]) + item


@pytest.mark.parametrize("stateful", [False, True])
def test_dask_sends_each_shared_value_whole(stateful):
    """A list in the shared data is one object on the cluster. Dask makes a future per element of a
    scattered list and serializes collections element by element: a user's list of 300,000 words
    took 40 s to scatter, and each task waited on 300,000 futures (50 s per batch)."""
    backend = backends.load("dask")(workers=1, blas_threads=1, options={})
    backend.start()
    try:
        data = {"corpus": [f"w{i}" for i in range(1000)], "other": {"a": 1}}
        backend.setup(Work(task=_count, build=_state, data=data, stateful=stateful))
        keys = backend.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        assert keys == (0 if stateful else 2), f"{keys} futures for two shared values"
        assert [value for value, _ in backend.run([1, 2])] == [1001, 1002]
    finally:
        backend.stop()


# ---------------------------------------------------------------------------------------------
# Start-up and setup end when every worker is up and holds the shared state

# A task that answers, from inside its worker, when that process applied the BLAS policy (worker.prepare).
PROBE = Work(task=getattr, build=importlib.import_module, data={"name": "parbench.worker"}, stateful=False)
BUILDS_PER_TASK = {"multiprocessing"}  # the blog's pattern: every task builds its state, by design


@pytest.mark.parametrize("stateful", [False, True], ids=["tasks", "stateful"])
@pytest.mark.parametrize("backend", [b for b in backends.names() if not backends.load(b).in_driver])
def test_the_first_batch_finds_every_worker_up(backend, stateful):
    """Every task of the first batch runs in a worker that start() brought up (or, for actors, setup()) and,
    for stateful work, finds its state built: no timed batch pays for a worker's start or its state."""
    b = backends.load(backend)(WORKERS, 1, backend_options(backend))
    try:
        b.start()
        started = time.time()
        b.setup(dataclasses.replace(PROBE, stateful=stateful))
        placed = time.time()
        results = b.run(["prepared_at"] * WORKERS * 2)
    finally:
        b.stop()
    for prepared, seen in results:
        assert prepared is not None and prepared <= (placed if stateful else started), f"worker {seen.pid} came up during the batch"
        if stateful and backend not in BUILDS_PER_TASK:
            assert not seen.built_state, f"worker {seen.pid} built its state in the batch"


def test_joblib_dumps_the_shared_arrays_in_setup(monkeypatch):
    """joblib memory-maps an array over 1 MB by dumping it to a file at its first call: that call is setup's, not a batch's."""
    from joblib import _memmapping_reducer

    dumps = []
    dump = _memmapping_reducer.dump
    monkeypatch.setattr(_memmapping_reducer, "dump", lambda value, *a, **k: dumps.append(value.nbytes) or dump(value, *a, **k))
    x = np.ones((512, 512))  # 2 MiB
    b = backends.load("joblib")(WORKERS, 1, {})
    try:
        b.start()
        b.setup(Work(task=np.matmul, build=lambda x: x, data={"x": x}, stateful=False))
        in_setup = len(dumps)
        results = b.run([np.ones((512, 1))] * WORKERS)
    finally:
        b.stop()
    assert in_setup == 1 and len(dumps) == 1, f"{in_setup} dumps in setup, {len(dumps) - in_setup} in the batch"
    assert all(np.all(r == 512) for r, _ in results)
