"""One run of one cell: start the backend, place shared state, warm up, time batches, tear
down, then verify every result against a serial reference. Returns the run record."""

import collections
import os
import time

import psutil

from parbench import backends, environment, workloads
from parbench.measure import TreeSampler
from parbench.records import SCHEMA_VERSION

GIB = 1024**3
DEFAULT_MEMORY_SHARE = 0.8  # memory limit when limits.memory_gb is null: this share of the machine's memory


def blas_threads(policy, in_driver: bool, workers: int, physical_cores: int) -> int | None:
    """BLAS threads per worker: `auto` shares the physical cores among the workers (a backend
    that runs tasks in the driver gets them all), an integer is used as is, `library-default`
    (None) leaves each library's own choice."""
    if policy == "library-default":
        return None
    if policy == "auto":
        return physical_cores if in_driver else max(1, physical_cores // workers)
    return int(policy)


def run(cell: dict, progress=lambda record: None, on_limit=lambda record: None) -> dict:
    """Run `cell` ({workload, backend, workers, trial, params, settings}).

    `progress(record)` gets the record so far after each phase. If the process tree's memory
    passes `settings.limits.memory_gb`, `on_limit(record)` gets it with `status: oom`, from
    the sampling thread; it is expected to stop the run.
    """
    params, settings = cell["params"], cell["settings"]
    record = {
        "schema_version": SCHEMA_VERSION,
        **{k: cell[k] for k in ("workload", "backend", "workers", "trial")},
        "status": "running",
        "reason": None,
        "params": params,
        "settings": settings,
        "tasks_per_batch": params.get("tasks_per_batch") or cell["workers"],
        "started_at": time.time(),
    }
    options = settings.get("options", {})
    record["environment"] = {
        **environment.collect(options.get("start_method"), {"params": params, "settings": settings}),
        "code_hash": cell.get("code"),
    }
    Backend = backends.load(cell["backend"])
    cores = psutil.cpu_count(logical=False)
    threads = blas_threads(settings["blas_threads"], Backend.in_driver, cell["workers"], cores)
    record["blas_threads_policy"] = {"policy": settings["blas_threads"], "per_worker": threads}
    workload = workloads.load(cell["workload"])({k: v for k, v in params.items() if k not in RUN_KEYS}, cell["trial"])
    backend = Backend(cell["workers"], threads, options)

    memory_gb = settings.get("limits", {}).get("memory_gb") or DEFAULT_MEMORY_SHARE * psutil.virtual_memory().total / GIB
    record["limits"] = {**settings.get("limits", {}), "memory_gb": memory_gb}

    def over_limit(pss):
        reason = f"process tree PSS {pss / GIB:.1f} GiB passed limits.memory_gb = {memory_gb:.1f}"
        on_limit({**record, "memory": sampler.summary(), "status": "oom", "reason": reason})

    sampler = TreeSampler(settings.get("sampler", {}).get("period_s", 0.05), int(memory_gb * GIB), over_limit)
    report = progress
    progress = lambda record: report({**record, "memory": sampler.summary()})  # noqa: E731
    progress(record)
    sampler.start()
    timings = record["timings"] = {"startup_s": None, "setup_s": None, "warmup_s": [], "batch_s": [], "teardown_s": None}
    warmups, batches, n = params["warmup_batches"], params["batches"], record["tasks_per_batch"]
    digests, seen = {}, collections.defaultdict(list)
    harness = 0.0  # driver time spent on inputs and digests, excluded from end_to_end_s
    begin = time.perf_counter()
    try:
        sampler.phase("startup")
        timings["startup_s"] = _timed(backend.start)
        progress(record)
        sampler.phase("inputs")
        t0 = time.perf_counter()
        work = workload.work()
        harness += time.perf_counter() - t0
        sampler.phase("setup")
        timings["setup_s"] = _timed(backend.place, work)
        del work  # the driver keeps no copy of the shared data unless the backend does
        progress(record)
        for b in range(warmups + batches):
            phase = "warmup" if b < warmups else "batches"
            sampler.phase("inputs")
            t0 = time.perf_counter()
            items = workload.items(b, n)
            harness += time.perf_counter() - t0
            sampler.phase(phase)
            t0 = time.perf_counter()
            results = backend.run(items)
            timings[f"{'warmup' if b < warmups else 'batch'}_s"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            digests[b] = [workload.digest(result) for result, _ in results]
            seen[phase].extend(s for _, s in results)
            del items, results
            harness += time.perf_counter() - t0
            progress(record)
        sampler.phase("teardown")
        timings["teardown_s"] = _timed(backend.stop)
        record["status"] = "ok"
    except backend.failures as error:  # the backend failed; a parbench bug propagates
        record.update(status="failed", reason=f"{type(error).__name__}: {error}")
        _quietly(backend.stop)
    timings["end_to_end_s"] = time.perf_counter() - begin - harness
    timings["harness_s"] = harness
    record["memory"] = sampler.stop()
    record["finished_at"] = time.time()
    report(record)

    problems = [p for b, d in digests.items() for p in workload.verify(b, workload.items(b, n), d)]
    record["verified"] = record["status"] == "ok" and not problems and len(digests) == warmups + batches
    record["verification"] = {"tasks_checked": sum(map(len, digests.values())), "problems": problems[:20]}
    record["workers_seen"] = {phase: len({s.pid for s in ss}) for phase, ss in seen.items()}
    record["state_builds"] = {phase: sum(s.built_state for s in ss) for phase, ss in seen.items()}
    counts = collections.Counter(s.blas_threads for ss in seen.values() for s in ss)
    record["blas_threads"] = counts.most_common(1)[0][0] if counts else None
    record["blas_threads_seen"] = sorted(counts, key=str)
    record["workload_info"] = {**workload.describe(), "flops_per_task": workload.flops_per_task()}
    record["backend_info"] = backend.describe()
    record["pid"] = os.getpid()
    return record


# Keys of a workload's config block that shape the run, not the computation.
RUN_KEYS = ("batches", "warmup_batches", "tasks_per_batch")


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001  (already failing; the supervisor cleans up what remains)
        pass
