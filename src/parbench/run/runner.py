"""One run of one cell (workload x backend x workers): start the backend, place shared state, warm up, time batches, tear
down, then verify every result against a serial reference. Returns the run record."""

import collections
import contextlib
import dataclasses
import functools
import importlib
import os
import pickle
import re
import sys
import time

import numpy as np
import psutil

from parbench import backends, cgroups, environment, plugins, records, worker, workloads
from parbench.run.measure import TreeSampler, proc_stat
from parbench.worker import Marks, TaskError
from parbench.workloads.base import RUN_KEYS, Work, WorkloadError

GIB = 1024**3
DEFAULT_MEMORY_SHARE = 0.8  # memory limit when limits.memory_gb is null: this share of the machine's memory
# Warm-up batches beyond `warmup_batches` while some worker has not run a task yet (recorded in workers_used).
WARMUP_EXTRA_MAX = 10
# Under `min_timed_s`, at most this many times `batches` timed batches (recorded in timed_until).
MIN_TIMED_MAX_FACTOR = 20


class ShortBatch(Exception):
    """A batch came back with fewer (or more) results than it had tasks or items: the run failed."""


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

    `timed(key)` adds to `timings[key]` (a list key appends, and the CPU seconds in it go to
    `cpu['driver_' + key]`, the driver's: all the CPU of serial and threads, whose tasks run in the
    driver, and to `cpu['tree_' + key]`, the whole tree's, read by `tree_cpu()` just outside the
    timer, and what the rest of the machine used meanwhile to `system['other_cpu_' + key]`: the
    machine's busy time from /proc/stat less the tree's); `harness(label)` is driver work (inputs,
    digests) that no timing includes, `end_to_end_s` excluded."""

    def __init__(self, timings: dict, sampler: TreeSampler, cpu: dict, tree_cpu, system: dict, service_cpu=lambda: None):
        self.timings, self.sampler, self.cpu, self.tree_cpu, self.harness_s = timings, sampler, cpu, tree_cpu, 0.0
        self.system, self.service_cpu = system, service_cpu
        self.begin = time.perf_counter()

    @contextlib.contextmanager
    def timed(self, key: str, label: str):
        self.sampler.phase(label)
        batch = isinstance(self.timings[key], list)
        tree0, machine0, service0 = (self.tree_cpu(), proc_stat()[0], self.service_cpu()) if batch else (0.0, 0.0, None)
        t0, cpu0, sampling0 = time.perf_counter(), time.process_time(), self.sampler.cpu_s
        yield
        elapsed = time.perf_counter() - t0
        sampling = self.sampler.cpu_s - sampling0  # the memory sampler's own CPU is not the work's
        cpu = time.process_time() - cpu0 - sampling
        if batch:
            tree, machine = self.tree_cpu() - tree0, proc_stat()[0] - machine0
            service = None if service0 is None else self.service_cpu() - service0
            self.timings[key].append(elapsed)
            self.cpu.setdefault(f"driver_{key}", []).append(cpu)
            self.cpu.setdefault(f"tree_{key}", []).append(tree - sampling)
            # /proc/stat counts 10 ms ticks per CPU: one batch's figure is coarse, sums over batches are not.
            # The workload's own service outside the tree (http's server) is not other work.
            self.system.setdefault(f"other_cpu_{key}", []).append(round(machine - tree - (service or 0.0), 4))
            if service is not None:  # every batch, 0 too: the list pairs with the batches' (under a tick: 0)
                self.cpu.setdefault(f"service_{key}", []).append(round(service, 4))
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


def run(spec: dict, progress=lambda record: None, on_limit=lambda record: None) -> dict:
    """Run `spec`, the run spec ({workload, backend, workers, trial, params, settings, code}).

    `progress(record)` gets the record so far after each phase. If the process tree's PSS
    passes the memory limit, `on_limit(record)` gets it with `status: oom`, from the sampling
    thread; it is expected to end the process.
    """
    params, settings = spec["params"], spec["settings"]
    options, limits = settings.get("options", {}), settings.get("limits", {})
    try:  # before any timer: a backend or workload this interpreter cannot run is skipped, saying why
        Backend = backends.load(spec["backend"])
        # Loaded before the backend starts: a user's module puts its folder on the path its workers inherit.
        Workload = workloads.load(spec["workload"], params.get("module"))
        for package in Workload.packages:
            with plugins.needing(spec["workload"]):
                importlib.import_module(package)
    except plugins.Unavailable as error:
        return skipped(spec, str(error))
    threads = blas_threads(settings["blas_threads"], Backend.in_driver, spec["workers"], psutil.cpu_count(logical=False))
    memory_gb = limits.get("memory_gb") or DEFAULT_MEMORY_SHARE * psutil.virtual_memory().total / GIB
    record = records.new(
        spec,
        environment.of_run(spec),
        limits={**limits, "memory_gb": memory_gb},
        blas_threads_policy={"policy": settings["blas_threads"], "per_worker": threads},
    )
    tasks, chunk = record["tasks_per_batch"], record["items_per_task"]
    workload = Workload({k: v for k, v in params.items() if k not in RUN_KEYS}, spec["trial"])
    backend = Backend(spec["workers"], threads, options)

    def over_limit(pss):
        reason = f"process tree PSS {pss / GIB:.1f} GiB passed limits.memory_gb = {memory_gb:.1f}"
        on_limit({**record, "memory": memory(), "status": "oom", "reason": reason})

    # No PSS walk inside a timed batch (it stalls the work it measures): RSS there, PSS just after each.
    sampler = TreeSampler(settings.get("sampler", {}).get("period_s", 0.05), int(memory_gb * GIB), over_limit, cheap_phases=("batch",))
    groups, missing = cgroups.from_env()
    tree_cpu = TreeCpu(groups.get("cpu"), sampler.tree)
    record["cpu"]["tree_source"] = tree_cpu.source

    def memory():
        return {**sampler.summary(), **cgroups.exact_memory(groups.get("memory"), missing.get("memory"))}

    def report():
        progress({**record, "memory": memory()})

    report()
    sampler.start()
    clock = Clock(record["timings"], sampler, record["cpu"], tree_cpu, record["system"], workload.service_cpu_s)
    warmups, batches, min_timed = params["warmup_batches"], params["batches"], params.get("min_timed_s")
    digests, seen, stateful, cluster_memory = {}, collections.defaultdict(list), None, None
    timed_seen, marks = [], Marks()  # per timed batch, what its tasks saw
    declared, extra = backend.worker_count(), 0
    try:
        with clock.timed("startup_s", "startup"):
            backend.start()
        report()
        with clock.harness("inputs"):
            work = workload.work()
            stateful = work.stateful
            record["workload_info"] = {"data_bytes": data_bytes(work.data), "stateful": stateful}
            work = chunked(work) if chunk > 1 else work
        with clock.timed("setup_s", "setup"):
            backend.setup(work)
        del work  # from here the driver holds the shared data only if the backend keeps it
        report()

        def one(b: int, key: str, label: str) -> list:
            with clock.harness("inputs"):
                items = workload.items(b, tasks * chunk)
                inputs = [items[i : i + chunk] for i in range(0, len(items), chunk)] if chunk > 1 else items
                del items
            with clock.timed(key, label):
                results = backend.run(inputs)
            with clock.harness("digests"):
                results = list(results)
                check_count(b, inputs, results, chunk)
                outputs = [r for out, _ in results for r in out] if chunk > 1 else [out for out, _ in results]
                digests[b] = [workload.digest(output) for output in outputs]
                batch_seen = marks.resolve([s for _, s in results])
                seen[label].extend(batch_seen)
                del inputs, results, outputs
                sampler.catch_up(label)
            report()
            return batch_seen

        for b in range(warmups):
            one(b, "warmup_s", "warmup")
        # Every worker runs a task before the timed batches (a first task pays for imports, first touch, state builds).
        while warmups and len(distinct(seen["warmup"])) < declared and extra < WARMUP_EXTRA_MAX:
            extra += 1
            one(warmups + extra - 1, "warmup_s", "warmup")
        b = warmups + extra
        cap = batches * MIN_TIMED_MAX_FACTOR
        while len(timed_seen) < batches or (min_timed and sum(record["timings"]["batch_s"]) < min_timed and len(timed_seen) < cap):
            timed_seen.append(one(b, "batch_s", "batch"))
            b += 1
        with clock.harness("cluster"):
            cluster_memory = backend.cluster_memory()
        with clock.timed("teardown_s", "teardown"):
            backend.stop()
        record["status"] = "ok"
    except plugins.Unavailable as error:  # found only once the workers exist (a subinterpreter cannot import numpy)
        record.update(status="skipped", reason=str(error))
        _quietly(backend.stop)
    except Exception as error:
        reason = failure(error, backend.failures, backend.died)
        if reason is None:
            raise  # a bug in parbench
        for whole in {e.whole for e in _causes(error) if isinstance(e, TaskError) and getattr(e, "whole", None)}:
            print(f"parbench: the run failed: {reason}\n{whole}", file=sys.stderr)  # the record holds one line
        record.update(status="failed", reason=reason)
        _quietly(backend.stop)
    clock.close()
    # The cgroup's peak read now, as the sampler stops: verification (a reference model in the driver) comes after.
    sampled = sampler.stop()
    record["memory"] = {**sampled, **cgroups.exact_memory(groups.get("memory"), missing.get("memory")), "cluster_reported": cluster_memory}
    record["cluster"] = cluster = backend.cluster()
    # On an external cluster the workers are not the driver's descendants: the tree figures miss them.
    cluster["workers_in_memory_tree"] = cluster["kind"] == "local"
    # The nodes whose workers ran tasks (as each backend names its nodes), and how many tasks each ran.
    cluster["tasks_per_node"] = dict(collections.Counter(s.node for ss in seen.values() for s in ss))
    cluster["nodes_used"] = len(cluster["tasks_per_node"])
    record["finished_at"] = time.time()
    progress(record)

    # After teardown and after sampling: reference work is neither timed nor in the memory peaks.
    problems = []
    for b, d in digests.items():
        try:
            problems += workload.verify(b, workload.items(b, tasks * chunk), d)
        except WorkloadError as error:
            problems.append(f"batch {b}: {error}")
    record["verified"] = record["status"] == "ok" and not problems and len(digests) == warmups + extra + len(timed_seen)
    record["verification"] = {"items_checked": sum(map(len, digests.values())), "problems": problems[:20]}
    record.update(_seen(seen, stateful))
    record["workers_used"] = workers_used(declared, tasks, timed_seen, seen["warmup"], extra)
    timed = sum(record["timings"]["batch_s"])
    if min_timed:
        cap = batches * MIN_TIMED_MAX_FACTOR
        record["timed_until"] = {"min_timed_s": min_timed, "max_batches": cap, "met": timed >= min_timed}
    flops = workload.flops_per_item()
    record["gflops"] = flops * tasks * chunk * len(timed_seen) / timed / 1e9 if flops and timed and record["status"] == "ok" else None
    record["workload_info"] = {**record.get("workload_info", {}), **workload.describe(), "flops_per_item": flops}
    record["backend_info"] = backend.describe()
    # After every import of the run: an extension module can turn a free-threaded build's GIL back on.
    record["gil_enabled"] = environment.gil_enabled()
    record["driver_pid"] = os.getpid()
    workload.close()
    return record


def skipped(spec: dict, reason: str) -> dict:
    """The record of a run that could not start on this interpreter: nothing was timed or measured."""
    record = records.new(spec, environment.of_run(spec))
    record.update(status="skipped", reason=reason, verified=False, finished_at=time.time(), gil_enabled=environment.gil_enabled())
    return record


class TreeCpu:
    """CPU seconds of the driver's whole tree so far: from the run's cgroup where it has one (exact,
    processes that ended included), else from /proc (10 ms ticks per process)."""

    def __init__(self, group: cgroups.Group | None, tree):
        self.group, self.tree = group, tree
        self.source = group.source if group else "/proc/PID/stat of the live tree"

    def __call__(self) -> float:
        return cgroups.read(self.group)["usage_s"] if self.group else self.tree.cpu_s()


def check_count(b: int, inputs: list, results: list, chunk: int) -> None:
    """Raise ShortBatch unless batch `b` returned one result per task (and per item, for chunked tasks):
    a backend that loses tasks would otherwise look faster, and verification pairs what is there."""
    if len(results) != len(inputs):
        raise ShortBatch(f"batch {b} returned {_n(len(results), 'result')} for {_n(len(inputs), 'task')}")
    if chunk > 1:
        for i, ((out, _), given) in enumerate(zip(results, inputs)):
            if len(out) != len(given):
                raise ShortBatch(f"batch {b} task {i} returned {_n(len(out), 'result')} for {_n(len(given), 'item')}")


def _n(count: int, what: str) -> str:
    return f"{count} {what}" + ("" if count == 1 else "s")


def distinct(seen: list) -> set:
    """The distinct workers (node, process, thread) among what tasks saw."""
    return {(s.node, s.pid, s.thread) for s in seen}


def workers_used(declared: int, tasks: int, timed: list[list], warmup: list, extra: int) -> dict:
    """How the tasks spread over the workers: the record's `workers_used` (docs/record.md)."""
    possible = min(declared, tasks)  # a batch of fewer tasks than workers cannot use them all
    per_worker = collections.Counter((s.node, s.pid, s.thread) for batch in timed for s in batch)
    per_batch = [len(distinct(batch)) for batch in timed]
    return {
        "declared": declared,
        "possible_per_batch": possible,
        "per_batch": per_batch,
        "tasks_per_worker": sorted(per_worker.values(), reverse=True),
        "warmup_workers": len(distinct(warmup)),
        "warmup_extra_batches": extra,
        "fewer": any(n < possible for n in per_batch),
        "note": f"a batch of {_n(tasks, 'task')} cannot use all {declared} workers" if tasks < declared else None,
    }


def chunked(work: Work) -> Work:
    """The same work with each task taking a list of items (the workload's `many` where it has one)."""
    return dataclasses.replace(work, task=functools.partial(worker.each, work.task, work.many), many=None)


def data_bytes(data: dict) -> int | None:
    """Size of the shared input: arrays and strings by their bytes, anything else by its pickle."""
    total = 0
    for value in data.values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, bytes | str):
            total += len(value)
        else:
            try:
                total += len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            except Exception:  # noqa: BLE001  (an unpicklable input: its size is unknown, the run goes on)
                return None
    return total


def failure(error: BaseException, failures: tuple, died: tuple = ()) -> str | None:
    """The reason a run failed if `error` is the run's failure (the workload's code raised, an input
    could not be pickled for the workers, a worker died, the backend failed), else None: a bug in parbench."""
    chain = _causes(error)
    if dead := [e for e in chain if isinstance(e, died)]:  # the same words on every backend; its own detail after
        return f"{WORKER_DIED} ({type(dead[0]).__name__}: {_short(dead[0], 120)})"
    # Exactly ours, not Ray's RayTaskError(TaskError), a subclass whose str() is a coloured traceback.
    ours = [e for e in chain if type(e) in (TaskError, WorkloadError, ShortBatch)]
    if ours:
        return str(ours[0])
    unpicklable = [e for e in chain if _unpicklable(e)]
    if unpicklable:  # the innermost message that names the object (loky sometimes keeps it only in a remote traceback's text)
        named = next((m.group(0) for e in reversed(chain) if (m := PICKLE_WHAT.search(str(e)))), None)
        return f"could not pickle what the backend sends between processes: {named or _short(unpicklable[-1])}"
    return f"{type(error).__name__}: {_short(error)}" if isinstance(error, failures) else None


WORKER_DIED = "a worker process died"
# "cannot pickle '_thread.lock' object": what could not be pickled, as Python's pickle says it.
PICKLE_WHAT = re.compile(r"(?:cannot|can't) pickle '[^']+' object")


def _causes(error: BaseException) -> list[BaseException]:
    """`error` and what it wraps: __cause__, __context__, and Ray's `.cause`."""
    chain, todo = [], [error]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is c for c in chain) or len(chain) > 20:
            continue
        chain.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "cause", None) if isinstance(getattr(e, "cause", None), BaseException) else None]
    return chain


def _unpicklable(error: BaseException) -> bool:
    if isinstance(error, pickle.PicklingError) or type(error).__name__ == "MaybeEncodingError":
        return True
    return isinstance(error, TypeError | AttributeError) and bool(re.search(r"pickl|serializ", str(error), re.IGNORECASE))


def _short(error: BaseException, limit: int = 300) -> str:
    """The first line of an error's message, without terminal colours."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _seen(seen: dict, stateful: bool | None) -> dict:
    """What the tasks reported from inside their workers."""
    counts = collections.Counter(s.blas_threads for ss in seen.values() for s in ss)
    return {
        "blas_threads": counts.most_common(1)[0][0] if counts else None,
        "blas_threads_seen": sorted(counts, key=str),
        "workers_seen": {label: len(distinct(ss)) for label, ss in seen.items()},
        # Model loads inside tasks: the blog's pattern loads per task; others should show none when timed.
        "state_builds": {label: sum(s.built_state for s in ss) for label, ss in seen.items()} if stateful else None,
    }


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001  (already failing; the supervisor cleans up what remains)
        pass
