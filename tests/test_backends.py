"""Every backend x workload on tiny sizes, each in a fresh supervised driver process as in the
pipeline; and verification that catches wrong results."""

import dataclasses
import importlib
import pickle
import subprocess
import time

import numpy as np
import psutil
import pytest
from conftest import BACKENDS, MEMORY_FIELDS, REPO, TEXTS, TINY, Leftovers, backend_options, make_spec, missing_fields

from parbench import backends, records, worker, workloads
from parbench.run import runner
from parbench.run.supervise import supervise
from parbench.workloads.base import RUN_KEYS, Work, WorkloadError

WORKERS = 2
CELLS = [(b, w) for b in BACKENDS for w in workloads.names()]


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
    extra = record["workers_used"]["warmup_extra_batches"]  # warm-up goes on until every worker has run a task
    t = record["timings"]
    assert record["verification"]["items_checked"] == tasks * (len(t["batch_s"]) + len(t["warmup_s"]))
    assert record["gil_enabled"] is True, "a standard CPython"

    assert len(t["batch_s"]) >= spec["params"]["batches"], "min_timed_s may add timed batches, never remove one"
    assert len(t["warmup_s"]) == spec["params"]["warmup_batches"] + extra
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


def test_shared_memory_block_shows_in_peak_shm(tmp_path):
    """multiprocessing-shared puts matmul's x (n x n float64) in one shared-memory block: the run's
    peak growth of Shmem holds it (others on the machine can only add to a peak, or free theirs meanwhile)."""
    # Shmem is machine-wide: pages freed elsewhere meanwhile (a torn-down store of an earlier test) lower the
    # growth; CI saw 96 KiB go. An 8 MiB block keeps such frees a small part of what is measured.
    spec = make_spec("multiprocessing-shared", "matmul", WORKERS, n=1024)
    record = supervise(spec, tmp_path / "run.json", tmp_path / "run.log")
    assert record["status"] == "ok", record.get("reason")
    x_bytes = 8 * spec["params"]["n"] ** 2
    assert record["memory"]["peak_shm_bytes"] >= 0.9 * x_bytes, record["memory"]
    assert record["memory"]["phases"]["batch"]["peak_pss_bytes"] is not None, "the timed batches have a PSS reading"


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
    backend = backends.load("ray")(2, 1, {"address": None})
    monkeypatch.setattr(backend, "_one_each", lambda: None)  # no Ray runs here to start workers on
    backend.start()
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
        spec = make_spec(backend, "matmul", 2, n=4000, k=64, batches=2, warmup_batches=1)
        record = supervise(spec, tmp_path / f"{backend}.json", tmp_path / f"{backend}.log")
        assert record["status"] == "ok" and record["verified"], record.get("reason")
        # The cgroup's exact peak where the run has one: the sampled PSS (RSS inside a batch, every 50 ms) once
        # missed 200 MB of the blog pattern's short-lived copies under the full suite (417 MB sampled, 621 MB exact).
        peaks[backend] = record["memory"].get("exact_peak_bytes") or record["memory"]["peak_tree_pss_bytes"]
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
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_first_batch_finds_every_worker_up_and_each_task_returns_a_small_mark(backend, stateful):
    """Every task of the first batch runs in a worker that start() brought up (or, for actors, setup()) and,
    for stateful work, finds its state built: no timed batch pays for a worker's start or its state.

    Each task goes through worker.call/call_kept and returns, besides its result, its worker's Seen on the
    worker's first task and a small number after that (no runtime queried per task, no record pickled with
    every result), and the driver turns the marks back into Seen records (issue 20, item 5). (Results come back
    in order: every verified run shows it.)"""
    b = backends.load(backend)(WORKERS, 1, backend_options(backend))
    try:
        b.start()
        started = time.time()
        b.setup(dataclasses.replace(PROBE, stateful=stateful))
        placed = time.time()
        first = b.run(["prepared_at"] * WORKERS * 2)
        later = b.run(["prepared_at"] * WORKERS * 2)
    finally:
        b.stop()
    sent = [m for _, m in first + later]
    seen = worker.Marks().resolve(sent)
    for (prepared, _), s in zip(first, seen):
        assert prepared is not None and prepared <= (placed if stateful else started), f"worker {s.pid} came up during the batch"
        if stateful and backend not in BUILDS_PER_TASK:
            assert not s.built_state, f"worker {s.pid} built its state in the batch"
    assert all(isinstance(s, worker.Seen) and s.pid > 0 for s in seen)
    workers = {(s.node, s.pid, s.thread) for s in seen}
    assert 1 <= len(workers) <= b.worker_count()
    full = [m for m in sent if isinstance(m, worker.Seen)]
    assert len(full) == len(workers), "each worker sends its Seen once"
    small = [m for m in sent if not isinstance(m, worker.Seen)]
    assert len(small) == len(sent) - len(workers) and all(isinstance(m, int) for m in small), [type(m).__name__ for m in small]
    assert all(len(pickle.dumps(m)) <= len(pickle.dumps(2**31 - 1)) for m in small), "a mark pickles as a 4-byte integer"


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


# Every result is counted (issue 20, item 1)

SerialBackend = backends.load("serial")


class Dropping(SerialBackend):
    """Serial, but every batch loses its last result."""

    def run(self, items):
        return super().run(items)[:-1]


class DroppingAnItem(SerialBackend):
    """Serial, but the first chunked task of every batch loses its last item's result."""

    def run(self, items):
        results = super().run(items)
        (out, mark), rest = results[0], results[1:]
        return [(out[:-1], mark), *rest]


USER_MODULE = """
def data(params):
    return {}

def items(params, batch, n):
    return list(range(batch * n, batch * n + n))

def task(state, item):
    return item * 2
"""


def fake_run(monkeypatch, fake, workload, **params):
    monkeypatch.setattr(backends, "load", lambda name: fake)
    return runner.run(make_spec("serial", workload, 2, **params))


@pytest.mark.parametrize("workload", [*workloads.names(), "user"])
def test_a_batch_short_of_a_result_fails_the_run(monkeypatch, tmp_path, workload):
    """A backend that loses a task's result must not pass as verified (verify paired what was there,
    and throughput counts what was sent): the run fails and says which batch came back short."""
    params = {}
    if workload == "user":
        (tmp_path / "mine.py").write_text(USER_MODULE)
        params = {"module": str(tmp_path / "mine.py"), "batches": 2, "warmup_batches": 1, "tasks_per_batch": None}
    record = fake_run(monkeypatch, Dropping, workload, **params)
    tasks = record["tasks_per_batch"]
    assert record["status"] == "failed" and record["verified"] is False
    assert record["reason"] == f"batch 0 returned {tasks - 1} result{'s' if tasks != 2 else ''} for {tasks} tasks", record["reason"]


def test_a_chunked_task_short_of_an_item_fails_the_run(monkeypatch):
    record = fake_run(monkeypatch, DroppingAnItem, "primes", items_per_task=3)
    assert record["status"] == "failed" and record["verified"] is False
    assert record["reason"] == "batch 0 task 0 returned 2 results for 3 items", record["reason"]


def _tiny_workload(name):
    params = {k: v for k, v in TINY[name].items() if k not in RUN_KEYS}
    w = workloads.load(name)(params, trial=1)
    w.work()
    return w


@pytest.mark.parametrize("name", sorted(TINY))
def test_verify_refuses_fewer_results_than_items(name):
    """Each workload's verify pairs items with results: fewer results is an error, not a shorter check."""
    w = _tiny_workload(name)
    try:
        items = w.items(0, 3)
        with pytest.raises(WorkloadError, match="2 results for 3 items"):
            w.verify(0, items, [None, None])
    finally:
        w.close()


# ---------------------------------------------------------------------------------------------
# Warm-up until every worker has worked, and how the timed tasks spread (issue 20, item 4)


def _on(pid):
    return worker.Seen(pid, pid, 1, False, "node", pid * 2)


class LateWorker(SerialBackend):
    """Serial in truth, but it claims two workers, and the second first runs a task in batch `late`
    (every batch until then runs on the first alone; None: never)."""

    late = 3

    def worker_count(self):
        return 2

    def setup(self, work):
        super().setup(work)
        self.batch = 0

    def run(self, items):
        out = [
            (value, _on(1 if self.late is None or self.batch < self.late or i % 2 == 0 else 2))
            for i, (value, _) in enumerate(super().run(items))
        ]
        self.batch += 1
        return out


class NeverSecond(LateWorker):
    late = None


def test_warmup_lasts_until_every_worker_has_run_a_task(monkeypatch):
    """One warm-up batch asked for; the second worker first works in the fourth batch: three more
    warm-up batches, and the timed batches use both workers."""
    record = fake_run(monkeypatch, LateWorker, "primes", batches=2, warmup_batches=1, tasks_per_batch=4)
    assert record["status"] == "ok" and record["verified"], record["reason"]
    used = record["workers_used"]
    assert len(record["timings"]["warmup_s"]) == 4 and used["warmup_extra_batches"] == 3
    assert used["warmup_workers"] == 2 and used["declared"] == 2
    assert used["per_batch"] == [2, 2] and used["tasks_per_worker"] == [4, 4] and used["fewer"] is False
    assert record["verification"]["items_checked"] == 4 * 6


def test_warmup_gives_up_after_its_cap_and_the_run_says_it_used_fewer_workers(monkeypatch):
    record = fake_run(monkeypatch, NeverSecond, "primes", batches=2, warmup_batches=1, tasks_per_batch=4)
    used = record["workers_used"]
    assert used["warmup_extra_batches"] == runner.WARMUP_EXTRA_MAX and len(record["timings"]["warmup_s"]) == 1 + runner.WARMUP_EXTRA_MAX
    assert used["per_batch"] == [1, 1] and used["tasks_per_worker"] == [8] and used["fewer"] is True
    assert used["note"] is None


def test_a_batch_of_fewer_tasks_than_workers_is_said_not_flagged(monkeypatch):
    """One task per batch on two workers: a batch cannot use both, so one worker per batch is not `fewer`."""
    record = fake_run(monkeypatch, NeverSecond, "primes", batches=2, warmup_batches=1, tasks_per_batch=1)
    used = record["workers_used"]
    assert used["possible_per_batch"] == 1 and used["per_batch"] == [1, 1] and used["fewer"] is False
    assert used["note"] == "a batch of 1 task cannot use all 2 workers"


def test_no_warmup_asked_means_none_added(monkeypatch):
    record = fake_run(monkeypatch, NeverSecond, "primes", batches=2, warmup_batches=0, tasks_per_batch=4)
    assert record["timings"]["warmup_s"] == [] and record["workers_used"]["warmup_extra_batches"] == 0


# ---------------------------------------------------------------------------------------------
# min_timed_s: time batches until they add up to a minimum (issue 25, item 6)

SLEEPY_TASK = """
import time

def data(params):
    return {}

def items(params, batch, n):
    return [params["sleep_s"]] * n

def task(state, sleep_s):
    time.sleep(sleep_s)
    return sleep_s
"""


def test_min_timed_s_times_batches_until_their_sum_reaches_it(tmp_path):
    """Each batch sleeps at least 0.1 s, so 0.45 s of timed batches is reached by the fifth at the latest."""
    (tmp_path / "sleepy.py").write_text(SLEEPY_TASK)
    spec = make_spec("serial", "sleepy", 1, module=str(tmp_path / "sleepy.py"), sleep_s=0.1, batches=2, warmup_batches=0, min_timed_s=0.45)
    spec["params"]["tasks_per_batch"] = 1
    record = runner.run(spec)
    batch_s = record["timings"]["batch_s"]
    assert record["status"] == "ok" and record["verified"], record["reason"]
    assert 2 <= len(batch_s) <= 5 and sum(batch_s) >= 0.45 and sum(batch_s[:-1]) < 0.45, batch_s
    assert record["timed_until"] == {"min_timed_s": 0.45, "max_batches": 2 * runner.MIN_TIMED_MAX_FACTOR, "met": True}
    assert record["verification"]["items_checked"] == len(batch_s)
    assert records.problems(record) == []


def test_min_timed_s_stops_at_its_cap():
    record = runner.run(make_spec("serial", "primes", 1, batches=1, warmup_batches=0, min_timed_s=1000))
    assert len(record["timings"]["batch_s"]) == runner.MIN_TIMED_MAX_FACTOR
    assert record["timed_until"]["met"] is False and record["verified"]


def test_without_min_timed_s_the_batches_are_batches():
    record = runner.run(make_spec("serial", "primes", 1, batches=3, warmup_batches=0))
    assert len(record["timings"]["batch_s"]) == 3 and record.get("timed_until") is None


# ---------------------------------------------------------------------------------------------
# What each timer includes: known sleeps in known phases, on every backend (issue 20, item 14)

SLEEP_S = 0.25  # large against what these phases cost on tiny work, so a sleep shows where it falls
# data() runs in the driver before setup (the harness's inputs, in no timer); build() makes the state
# (once per worker in setup, in a worker's first task, or in every task, as the backend does); task() sleeps.
# The check calls data() again after teardown and reruns every task in the driver: that state sleeps nowhere.
PHASED = f"""
import time
STATEFUL = __STATEFUL__
CALLS = []

def data(params):
    CALLS.append(1)
    run = len(CALLS) == 1  # the second call is the check's
    time.sleep({SLEEP_S} if run else 0)
    return {{"build_s": params["build_s"] if run else 0, "task_sleeps": run}}

def build(build_s, task_sleeps):
    time.sleep(build_s)
    return {{"task_sleeps": task_sleeps}}

def items(params, batch, n):
    return [params["task_s"]] * n

def task(state, task_s):
    time.sleep(task_s if state["task_sleeps"] else 0)
    return task_s
"""


def phased_run(tmp_path, backend, stateful, build_s, task_s):
    module = tmp_path / f"phased_{stateful}.py"
    module.write_text(PHASED.replace("__STATEFUL__", str(stateful)))
    # One warm-up and one timed batch show where each sleep falls.
    spec = make_spec(backend, "phased", 2, module=str(module), build_s=build_s, task_s=task_s, batches=1, warmup_batches=1)
    record = supervise(spec, tmp_path / "r.json", tmp_path / "r.log")
    assert record["status"] == "ok" and record["verified"], f"{record['reason']}\n{(tmp_path / 'r.log').read_text()[-2000:]}"
    return record


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_task_sleep_is_in_every_batch_and_nowhere_else(tmp_path, backend):
    """task() sleeps: each warm-up and timed batch lasts at least that; setup does not hold it; data()'s
    sleep (the driver's inputs) is in the harness's time, not in setup."""
    t = phased_run(tmp_path, backend, False, build_s=0, task_s=SLEEP_S)["timings"]
    assert all(s >= SLEEP_S for s in t["warmup_s"] + t["batch_s"]), t
    assert t["setup_s"] < SLEEP_S, t
    assert t["harness_s"] >= SLEEP_S, "data() is the harness's work"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_state_build_sleep_is_in_the_timed_batches_only_where_the_record_says_state_was_built(tmp_path, backend):
    """build() sleeps, task() does not. Wherever the backend builds the state (setup, a worker's first
    task, every task), the build's sleep is in the timed batches exactly when the record counts state
    builds in them, and before them otherwise."""
    record = phased_run(tmp_path, backend, True, build_s=SLEEP_S, task_s=0)
    t, builds = record["timings"], record["state_builds"]
    assert t["setup_s"] + sum(t["warmup_s"]) >= SLEEP_S, "built before the timed batches, or in the warm-up's tasks"
    for s in t["batch_s"]:
        assert (s >= SLEEP_S) == (builds["batch"] > 0), (t, builds)
