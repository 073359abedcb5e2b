"""One run of one cell: start the backend, place shared state, warm up, time batches, tear
down, then verify every result against a serial reference. Returns the run record."""

import collections
import contextlib
import os
import time

import psutil

from parbench import backends, environment, workloads
from parbench.measure import TreeSampler
from parbench.records import SCHEMA_VERSION

GIB = 1024**3
DEFAULT_MEMORY_SHARE = 0.8  # memory limit when limits.memory_gb is null: this share of the machine's memory
RUN_KEYS = ("batches", "warmup_batches", "tasks_per_batch")  # workload config keys that shape the run, not the tasks


def blas_threads(policy, in_driver: bool, workers: int, physical_cores: int) -> int | None:
    """BLAS threads per worker: `auto` shares the physical cores among the workers (a backend
    that runs tasks in the driver gets them all), an integer is used as is, `library-default`
    (None) leaves each library's own choice."""
    if policy == "library-default":
        return None
    if policy == "auto":
        return physical_cores if in_driver else max(1, physical_cores // workers)
    return int(policy)


class Clock:
    """Phase timings of one run, and the memory sampler's phase labels.

    `timed(key)` adds to `timings[key]` (a list key appends); `harness(label)` is driver work
    (inputs, digests) that no timing includes, `end_to_end_s` excluded."""

    def __init__(self, timings: dict, sampler: TreeSampler):
        self.timings, self.sampler, self.harness_s = timings, sampler, 0.0
        self.begin = time.perf_counter()

    @contextlib.contextmanager
    def timed(self, key: str, label: str):
        self.sampler.phase(label)
        t0 = time.perf_counter()
        yield
        elapsed = time.perf_counter() - t0
        if isinstance(self.timings[key], list):
            self.timings[key].append(elapsed)
        else:
            self.timings[key] = elapsed

    @contextlib.contextmanager
    def harness(self, label: str):
        self.sampler.phase(label)
        t0 = time.perf_counter()
        yield
        self.harness_s += time.perf_counter() - t0

    def close(self) -> None:
        self.timings["end_to_end_s"] = time.perf_counter() - self.begin - self.harness_s
        self.timings["harness_s"] = self.harness_s


def run(cell: dict, progress=lambda record: None, on_limit=lambda record: None) -> dict:
    """Run `cell` ({workload, backend, workers, trial, params, settings, code}).

    `progress(record)` gets the record so far after each phase. If the process tree's PSS
    passes the memory limit, `on_limit(record)` gets it with `status: oom`, from the sampling
    thread; it is expected to end the process.
    """
    params, settings = cell["params"], cell["settings"]
    options, limits = settings.get("options", {}), settings.get("limits", {})
    Backend = backends.load(cell["backend"])
    threads = blas_threads(settings["blas_threads"], Backend.in_driver, cell["workers"], psutil.cpu_count(logical=False))
    memory_gb = limits.get("memory_gb") or DEFAULT_MEMORY_SHARE * psutil.virtual_memory().total / GIB
    record = {
        "schema_version": SCHEMA_VERSION,
        **{k: cell[k] for k in ("workload", "backend", "workers", "trial")},
        "status": "running",
        "reason": None,
        "params": params,
        "settings": settings,
        "limits": {**limits, "memory_gb": memory_gb},
        "tasks_per_batch": params.get("tasks_per_batch") or cell["workers"],
        "blas_threads_policy": {"policy": settings["blas_threads"], "per_worker": threads},
        "timings": {"startup_s": None, "setup_s": None, "warmup_s": [], "batch_s": [], "teardown_s": None},
        "started_at": time.time(),
        "environment": {
            **environment.collect(options.get("start_method"), {"params": params, "settings": settings}),
            "code_hash": cell.get("code"),
        },
    }
    workload = workloads.load(cell["workload"])({k: v for k, v in params.items() if k not in RUN_KEYS}, cell["trial"])
    backend = Backend(cell["workers"], threads, options)

    def over_limit(pss):
        reason = f"process tree PSS {pss / GIB:.1f} GiB passed limits.memory_gb = {memory_gb:.1f}"
        on_limit({**record, "memory": sampler.summary(), "status": "oom", "reason": reason})

    sampler = TreeSampler(settings.get("sampler", {}).get("period_s", 0.05), int(memory_gb * GIB), over_limit)

    def report():
        progress({**record, "memory": sampler.summary()})

    report()
    sampler.start()
    clock = Clock(record["timings"], sampler)
    warmups, batches, n = params["warmup_batches"], params["batches"], record["tasks_per_batch"]
    digests, seen, stateful, cluster_memory = {}, collections.defaultdict(list), None, None
    try:
        with clock.timed("startup_s", "startup"):
            backend.start()
        report()
        with clock.harness("inputs"):
            work = workload.work()
            stateful = work.stateful
        with clock.timed("setup_s", "setup"):
            backend.place(work)
        del work  # from here the driver holds the shared data only if the backend keeps it
        report()
        for b in range(warmups + batches):
            key, label = ("warmup_s", "warmup") if b < warmups else ("batch_s", "batches")
            with clock.harness("inputs"):
                items = workload.items(b, n)
            with clock.timed(key, label):
                results = backend.run(items)
            with clock.harness("digests"):
                digests[b] = [workload.digest(result) for result, _ in results]
                seen[label].extend(s for _, s in results)
                del items, results
            report()
        with clock.harness("cluster"):
            cluster_memory = backend.cluster_memory()
        with clock.timed("teardown_s", "teardown"):
            backend.stop()
        record["status"] = "ok"
    except backend.failures as error:  # the backend failed; a bug in parbench propagates
        record.update(status="failed", reason=f"{type(error).__name__}: {error}")
        _quietly(backend.stop)
    clock.close()
    record["memory"] = {**sampler.stop(), "cluster_reported": cluster_memory}
    record["cluster"] = cluster = backend.cluster()
    # On an external cluster the workers are not the driver's descendants: the tree figures miss them.
    cluster["workers_in_memory_tree"] = cluster["kind"] == "local"
    # The nodes whose workers ran tasks (as each backend names its nodes), and how many tasks each ran.
    cluster["tasks_per_node"] = dict(collections.Counter(s.node for ss in seen.values() for s in ss))
    cluster["nodes_used"] = len(cluster["tasks_per_node"])
    record["finished_at"] = time.time()
    progress(record)

    # After teardown and after sampling: reference work is neither timed nor in the memory peaks.
    problems = [p for b, d in digests.items() for p in workload.verify(b, workload.items(b, n), d)]
    record["verified"] = record["status"] == "ok" and not problems and len(digests) == warmups + batches
    record["verification"] = {"tasks_checked": sum(map(len, digests.values())), "problems": problems[:20]}
    record.update(_seen(seen, stateful))
    flops = workload.flops_per_task()
    timed = sum(record["timings"]["batch_s"])
    record["gflops"] = flops * n * batches / timed / 1e9 if flops and timed and record["status"] == "ok" else None
    record["workload_info"] = {**workload.describe(), "flops_per_task": flops}
    record["backend_info"] = backend.describe()
    record["driver_pid"] = os.getpid()
    return record


def _seen(seen: dict, stateful: bool | None) -> dict:
    """What the tasks reported from inside their workers."""
    counts = collections.Counter(s.blas_threads for ss in seen.values() for s in ss)
    return {
        "blas_threads": counts.most_common(1)[0][0] if counts else None,
        "blas_threads_seen": sorted(counts, key=str),
        "workers_seen": {label: len({(s.node, s.pid) for s in ss}) for label, ss in seen.items()},
        # Model loads inside tasks: the blog's pattern loads per task; others should show none when timed.
        "state_builds": {label: sum(s.built_state for s in ss) for label, ss in seen.items()} if stateful else None,
    }


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001  (already failing; the supervisor cleans up what remains)
        pass
