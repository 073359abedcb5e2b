"""The order a sweep's benchmark jobs run in, one at a time: its runs in a seeded shuffle, so that no
backend's or workload's runs bunch in one stretch of time (the machine's state drifts), with the
sentinel, the same small serial run, first, in the middle and last, to measure that drift.

Snakemake runs the ready job of highest `priority:` first, and every benchmark job is ready from the
start, so priorities in this order make a fresh sweep run in it. Neither the order nor the seed is a
run's param: changing them reruns nothing."""

import random

RUN = "results/runs/{workload}/{backend}/workers-{workers}/trial-{trial}.json"
SENTINELS = ("start", "middle", "end")
SENTINEL = "results/sentinels/{at}.json"
SENTINEL_CELL = {"workload": "matmul", "backend": "serial", "workers": 1, "trial": 1}


def run_paths(config: dict) -> list[str]:
    """Every run record of the sweep: workloads x backends x workers (the workload's own, else the sweep's) x trials."""
    return [
        RUN.format(workload=workload, backend=backend, workers=workers, trial=trial)
        for workload, params in config["workloads"].items()
        for backend in config["backends"]
        for workers in params.get("workers") or config["workers"]
        for trial in range(1, config["trials"] + 1)
    ]


def sentinel_paths(config: dict) -> list[str]:
    return [SENTINEL.format(at=at) for at in SENTINELS] if config.get("sentinel") else []


def plan(config: dict) -> list[str]:
    """The benchmark jobs of a fresh sweep in the order they run: runs shuffled with `shuffle_seed`,
    the sentinel (if any) first, after half the runs, and last."""
    runs = run_paths(config)
    random.Random(config.get("shuffle_seed", 0)).shuffle(runs)
    if not config.get("sentinel"):
        return runs
    start, middle, end = sentinel_paths(config)
    half = len(runs) // 2
    return [start, *runs[:half], middle, *runs[half:], end]


def priorities(config: dict) -> dict[str, int]:
    """Each job's Snakemake priority: the first in the plan highest."""
    jobs = plan(config)
    return {path: len(jobs) - i for i, path in enumerate(jobs)}


def position(path: str, config: dict) -> dict | None:
    """What a record says of its place in the plan: {seed, position (from 1), of, sentinel (start/middle/end or null)}."""
    jobs = plan(config)
    if path not in jobs:
        return None
    sentinel = next((at for at in SENTINELS if path == SENTINEL.format(at=at)), None)
    return {"seed": config.get("shuffle_seed", 0), "position": jobs.index(path) + 1, "of": len(jobs), "sentinel": sentinel}
