"""What the harness adds per task, on each backend (issue 20, item 5): prints figures, passes or fails nothing.

    .venv/bin/python benchmarks/overhead.py [--backends serial,threads,...] [--workers 2] [--tasks 2000] [--batches 7]

For each backend, an empty task (0 + item, a builtin: nothing of the workload's own) three ways:
  through    the whole per-task cost through the backend (`Backend.run` of --tasks empty tasks, median batch
             over --batches, per task): the library's transport plus the harness.
  call, kept inside one of the backend's own workers: the harness's per-task wrapper (`worker.call`, which
             builds the state per task, and `worker.call_kept`, the kept state) minus the bare task, per task
             (median of 5 loops of 20,000 calls).
  mark B     bytes a task's bookkeeping adds to its pickled result after the worker's first task (the
             process backends send it; serial and threads only hand it over).
Run it from another checkout (PYTHONPATH=OTHER/src) for that code's figures: the script uses only
`worker.call`, `worker.keep` and `worker.call_kept`.
"""

import argparse
import operator
import os
import pickle
import statistics
import sys
import time
import uuid
from pathlib import Path

import yaml

from parbench import backends, worker
from parbench.workloads.base import Work

os.environ.setdefault("RAY_ADDRESS", "local")  # never join someone else's `ray start` cluster
LOOPS, CALLS = 5, 20_000
ROOT = Path(__file__).resolve().parents[1]


def in_worker(state, n):
    """Run inside a worker: ns per call of the bare task, of worker.call and of worker.call_kept, and the mark's bytes."""
    key = uuid.uuid4().hex
    worker.keep(key, int, {}, None)
    build, state, data = int, 0, {}
    bare_built, bare, call, kept = [], [], [], []
    for _ in range(LOOPS):
        t0 = time.perf_counter_ns()
        for i in range(CALLS):
            operator.add(build(**data), i)  # what worker.call does, without the harness
        t1 = time.perf_counter_ns()
        for i in range(CALLS):
            worker.call(operator.add, build, data, i, None)
        t2 = time.perf_counter_ns()
        for i in range(CALLS):
            operator.add(state, i)  # what worker.call_kept does, without the harness
        t3 = time.perf_counter_ns()
        for i in range(CALLS):
            worker.call_kept(operator.add, key, i, None)
        t4 = time.perf_counter_ns()
        bare_built.append((t1 - t0) / CALLS)
        call.append((t2 - t1 - (t1 - t0)) / CALLS)
        bare.append((t3 - t2) / CALLS)
        kept.append((t4 - t3 - (t3 - t2)) / CALLS)
    worker.drop(key)
    value, mark = worker.call_kept(operator.add, key, 0, None, build, data)
    mark_bytes = len(pickle.dumps((value, mark))) - len(pickle.dumps(value))
    return {"bare": statistics.median(bare), "call": statistics.median(call), "kept": statistics.median(kept), "mark_bytes": mark_bytes}


def options(name: str, start_method: str) -> dict:
    """The defaults of the backend's config section (as the pipeline fills them), and the start method."""
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    section = schema["properties"].get(name) or {}
    if "$ref" in section:
        section = schema["$defs"][section["$ref"].rsplit("/", 1)[-1]]
    defaults = {k: v["default"] for k, v in section.get("properties", {}).items() if "default" in v}
    return {**defaults, "start_method": start_method}


def started(name: str, workers: int, start_method: str, task, use):
    """use(backend) on a fresh backend set up for `task` (one setup per backend: the pools' workers take
    their state once, in their initializer)."""
    backend = backends.load(name)(workers, 1, options(name, start_method))
    backend.start()
    try:
        backend.setup(Work(task=task, build=int, data={}, stateful=False))
        return use(backend)
    finally:
        backend.stop()


def measure(name: str, workers: int, tasks: int, batches: int, start_method: str) -> dict:
    def through(backend) -> list:
        backend.run(list(range(tasks)))  # warm-up: every worker imports and prepares
        times = []
        for _ in range(batches):
            t0 = time.perf_counter()
            backend.run(list(range(tasks)))
            times.append(time.perf_counter() - t0)
        return times

    times = started(name, workers, start_method, operator.add, through)
    ((inside, _),) = started(name, workers, start_method, in_worker, lambda backend: backend.run([0]))
    return {"through_us": statistics.median(times) / tasks * 1e6, **inside}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(backends.names()))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=2000, help="empty tasks per batch")
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--start-method", default="forkserver")
    args = parser.parse_args()
    print(f"# per-task harness cost: {args.workers} workers, {args.tasks} empty tasks per batch, load average {os.getloadavg()[0]:.2f}")
    print(f"# parbench from {Path(worker.__file__).parents[1]}")
    head = f"{'backend':24} {'through us':>10} {'bare ns':>8} {'call ns':>8} {'kept ns':>8} {'mark B':>6}"
    print(head, "-" * len(head), sep="\n", flush=True)
    for name in args.backends.split(","):
        try:
            r = measure(name, args.workers, args.tasks, args.batches, args.start_method)
        except Exception as error:  # noqa: BLE001  (one backend failing must not hide the others' figures)
            print(f"{name:24} failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", flush=True)
            continue
        print(f"{name:24} {r['through_us']:>10.2f} {r['bare']:>8.0f} {r['call']:>8.0f} {r['kept']:>8.0f} {r['mark_bytes']:>6}", flush=True)
    print(
        "-" * len(head),
        "through: per task through Backend.run (transport + harness); call/kept: the harness's wrapper per task inside a",
        "worker, less the same work without it (bare: the task alone); mark B: bytes the bookkeeping adds to a pickled",
        "result after a worker's first task.",
        f"load average {os.getloadavg()[0]:.2f}",
        sep="\n",
    )


if __name__ == "__main__":
    sys.exit(main())
