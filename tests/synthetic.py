"""Synthetic sweeps of known truth, for the method's simulation tests (tests/test_method.py) and the
comparison's (tests/test_compare.py): run records with the fields stats.run_row reads, made in rounds
as the pipeline makes them (docs/method.md), with the noise this machine shows.

    recs = synthetic.sweep({("primes", "serial", 2): 10.0, ("primes", "ray", 2): 11.0}, rounds=5, rng=np.random.default_rng(0))
    runs, sentinels = synthetic.split(recs)
    stats.tables(runs)

The noise model (defaults: the issue's "realistic noise", issue 25):
- every run is a fresh process with its own speed: a log-normal factor, sd of log `process_sd` (0.05;
  12 fresh processes of a pure-Python loop on this machine gave 0.01 to 0.06);
- the machine drifts within a session by up to `drift` (0.15) over the sweep's time, a smooth trend
  evaluated at each run's position: a linear ramp in a random direction, or a slow random walk
  (`drift_kind="walk"`) scaled to reach ±drift;
- a whole session has a speed `session_factor` (1.0; a second session: e.g. 0.9, and a later `start_time`);
- batches within a run have their own noise, sd of log `batch_sd` (0.02).
A run's throughput is truth x variant factor x session x drift(position) x process; a batch's seconds
are its items over that, times its own noise.
"""

import concurrent.futures
import math
import multiprocessing
import os

import numpy as np

REFERENCE = "serial"  # stats.REFERENCE; repeated so that this generator does not depend on the code it tests
SENTINEL = ("matmul", REFERENCE, 1)
PROCESS_SD, DRIFT, BATCH_SD = 0.05, 0.15, 0.02


def over_seeds(function, seeds) -> list:
    """[function(seed) for seed in seeds], computed on every core: each seed is a simulation of its own, nothing
    is timed meanwhile, and the forked workers end before the test goes on. `function` must be picklable
    (a module-level function, or a functools.partial of one)."""
    seeds = list(seeds)
    cores = os.cpu_count() or 1
    fork = multiprocessing.get_context("fork")  # the workers inherit the imports: nothing to start
    with concurrent.futures.ProcessPoolExecutor(cores, mp_context=fork) as pool:
        return list(pool.map(function, seeds, chunksize=max(1, len(seeds) // (4 * cores))))


def reference_cells(cells) -> dict:
    """Each workload's reference cell: serial at the workload's first (smallest) worker count."""
    out = {}
    for workload, backend, workers in cells:
        if backend == REFERENCE and (workload not in out or workers < out[workload][2]):
            out[workload] = (workload, backend, workers)
    return out


def drift_curve(n: int, rng: np.random.Generator, drift: float = DRIFT, kind: str = "ramp") -> np.ndarray:
    """The machine's speed factor at each of n positions of a sweep: 1 at the start, reaching 1 ± drift."""
    if n <= 1 or drift == 0:
        return np.ones(max(n, 1))
    top = math.log1p(drift)
    if kind == "ramp":
        return np.exp(rng.choice([-1.0, 1.0]) * top * np.linspace(0, 1, n))
    if kind == "walk":  # a slow random walk: smoothed steps, scaled so that its largest excursion is ±drift
        walk = np.cumsum(rng.normal(size=n))
        walk = np.convolve(walk, np.ones(5) / 5, mode="same") if n >= 5 else walk
        walk = walk - walk[0]
        peak = np.max(np.abs(walk))
        return np.exp(top * walk / peak) if peak > 0 else np.ones(n)
    raise ValueError(f"drift kind {kind!r}: ramp or walk")


def sweep(
    cells: dict,
    rounds: int = 5,
    rng: np.random.Generator | None = None,
    *,
    process_sd: float = PROCESS_SD,
    drift: float = DRIFT,
    drift_kind: str = "ramp",
    batch_sd: float = BATCH_SD,
    batches: int = 3,
    session_factor: float = 1.0,
    start_time: float = 0.0,
    run_s: float = 10.0,
    variants: dict | None = None,
    twin: bool = True,
    sentinel: bool = True,
    sentinel_throughput: float = 20.0,
    first_round: int = 1,
    seed: int = 0,
    free: bool = False,
) -> list[dict]:
    """The records of one session's sweep: `rounds` rounds, each running every cell once (and once per
    variant) in a seeded shuffle, the reference cell's A/A twin (per variant) and one sentinel.

    cells: {(workload, backend, workers): true throughput in items/s}. variants: {name: factor on the
    truth} (None: one unnamed variant, `variant` null). first_round: the first round's number (adding
    rounds to an existing sweep). Sentinel records (order.sentinel true) are in the list: split() them off.
    free: the design before rounds (tests/old_method.py): every run of the sweep in one free shuffle, a
    cell's trials wherever they fall (records still say their `round`, the trial number).
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    named = variants or {None: 1.0}
    refs = reference_cells(cells)
    plan = []  # (round, cell, variant, twin, sentinel), in running order
    for r in range(first_round, first_round + rounds):
        jobs = [(cell, v, False, False) for cell in cells for v in named]
        if twin:
            jobs += [(refs[w], v, True, False) for w in refs for v in named]
        order = [jobs[i] for i in rng.permutation(len(jobs))]
        if sentinel:
            order.insert(int(rng.integers(len(order) + 1)), (SENTINEL, None, False, True))
        plan += [(r, place, len(order), job) for place, job in enumerate(order, 1)]
    if free:
        plan = [plan[i] for i in rng.permutation(len(plan))]
    speed = session_factor * drift_curve(len(plan), rng, drift, drift_kind)
    out = []
    for position, (r, place, of, (cell, variant, is_twin, is_sentinel)) in enumerate(plan, 1):
        workload, backend, workers = cell
        truth = sentinel_throughput if is_sentinel else cells[cell] * named[variant]
        mean = truth * speed[position - 1] * math.exp(rng.normal(0, process_sd))
        items = workers
        batch_s = (items / mean * np.exp(rng.normal(0, batch_sd, batches))).tolist()
        started = start_time + (position - 1) * run_s
        out.append(
            {
                "schema_version": 1,
                "workload": workload,
                "backend": backend,
                "workers": workers,
                "trial": r,
                "round": r,
                "twin": is_twin,
                "variant": variant,
                "order": {"seed": seed, "round": r, "place": place, "of": of, "position": position, "sentinel": is_sentinel},
                "status": "ok",
                "reason": None,
                "verified": True,
                "params": {},
                "tasks_per_batch": items,
                "items_per_task": 1,
                "items_per_batch": items,
                "timings": {"startup_s": 0.5, "setup_s": 0.1, "warmup_s": [batch_s[0]], "batch_s": batch_s, "teardown_s": 0.1},
                "memory": {"peak_tree_pss_bytes": 100 * 2**20 * workers},
                "started_at": started,
                "finished_at": started + run_s * 0.9,
                "environment": {"host": "synthetic", "cpu_model": "synthetic", "physical_cores": 2, "git_commit": "0" * 40},
            }
        )
    return out


def split(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """The sweep's runs and its sentinel runs (the pipeline keeps them apart: results/sentinels/)."""
    runs = [r for r in records if not (r.get("order") or {}).get("sentinel")]
    return runs, [r for r in records if (r.get("order") or {}).get("sentinel")]


def grid(workloads=("a", "b"), backends=(REFERENCE, "p", "q"), workers=(2,), truth: float = 10.0, speedups: dict | None = None) -> dict:
    """A sweep's cells: every workload x backend x workers at `truth` items/s, times speedups[(workload, backend)] (default 1)."""
    speedups = speedups or {}
    return {(w, b, n): truth * speedups.get((w, b), speedups.get(b, 1.0)) for w in workloads for b in backends for n in workers}
