"""The jobs of a sweep and the order they run in, one at a time: in rounds (docs/method.md).

A round runs every cell once (each variant's, with the reference cell's A/A twin and the sentinel),
in a fresh seeded random order, and round r + 1 starts only after round r has ended: a cell and its
reference are measured a round apart at most, so the machine's drift cancels in their ratio.
`trials` is the number of rounds (a run's `trial` is its round, from 1).

Snakemake runs the ready job of highest `priority:` first, and every benchmark job is ready from the
start, so priorities in this order make a fresh sweep run in it. Neither the order nor the seed is a
run's param: changing them reruns nothing, and adding a round only adds its runs.
"""

import random

from parbench.plugins import REFERENCE, declared
from parbench.records import RUN, TWIN, VARIANT

SENTINEL = "results/sentinels/round-{trial}.json"
# The workload that declares itself the sentinel (SENTINEL = True in its module), on the reference backend.
SENTINEL_CELL = {"workload": next(w for w, yes in declared("workloads", "SENTINEL").items() if yes), "backend": REFERENCE, "workers": 1}


def rounds(config: dict) -> range:
    return range(1, config["trials"] + 1)


def variants(config: dict) -> list:
    """The variants' names in config order; [None] when the config has none (one unnamed variant)."""
    return list(config.get("variants") or {}) or [None]


def cells(config: dict) -> list[tuple[str, str, int]]:
    """(workload, backend, workers) of every cell: workloads x backends x workers (the workload's own, else the sweep's)."""
    return [
        (workload, backend, workers)
        for workload, params in config["workloads"].items()
        for backend in config["backends"]
        for workers in params.get("workers") or config["workers"]
    ]


def reference_workers(config: dict, workload: str) -> int | None:
    """The worker count of the workload's A/A reference cell (the reference backend at the workload's first
    worker count), or None where the reference backend does not run."""
    if REFERENCE not in config["backends"]:
        return None
    return (config["workloads"][workload].get("workers") or config["workers"])[0]


def run_path(workload, backend, workers, trial, variant=None, twin=False) -> str:
    """A run's record: the first variant's at RUN (or TWIN), the other variants' under results/variants/."""
    cell = {"workload": workload, "backend": backend, "workers": workers, "trial": trial}
    if twin:
        return TWIN.format(**cell)
    return VARIANT.format(variant=variant, **cell) if variant else RUN.format(**cell)


def round_jobs(config: dict, trial: int) -> list[str]:
    """Every benchmark job of one round, in config order."""
    first, *others = variants(config)
    jobs = [run_path(*cell, trial) for cell in cells(config)]
    jobs += [run_path(*cell, trial, variant) for variant in others for cell in cells(config)]
    for workload in config["workloads"]:
        if (workers := reference_workers(config, workload)) is not None:
            jobs.append(run_path(workload, REFERENCE, workers, trial, twin=True))
    if config.get("sentinel") is not None:
        jobs.append(SENTINEL.format(trial=trial))
    return jobs


def run_paths(config: dict) -> list[str]:
    """The first variant's runs (the sweep's own cells) over every round."""
    return [run_path(*cell, trial) for trial in rounds(config) for cell in cells(config)]


def twin_paths(config: dict) -> list[str]:
    return [job for trial in rounds(config) for job in round_jobs(config, trial) if job.endswith(".twin.json")]


def variant_paths(config: dict) -> list[str]:
    """The runs of every variant after the first."""
    return [job for trial in rounds(config) for job in round_jobs(config, trial) if job.startswith("results/variants/")]


def sentinel_paths(config: dict) -> list[str]:
    return [SENTINEL.format(trial=trial) for trial in rounds(config)] if config.get("sentinel") is not None else []


def shuffled_round(config: dict, trial: int) -> list[str]:
    """One round's jobs in their seeded random order (a fresh order per round)."""
    jobs = round_jobs(config, trial)
    random.Random(f"{config.get('shuffle_seed', 0)}/{trial}").shuffle(jobs)
    return jobs


def plan(config: dict) -> list[str]:
    """The benchmark jobs of a fresh sweep in the order they run: round after round, each shuffled."""
    return [job for trial in rounds(config) for job in shuffled_round(config, trial)]


def priorities(config: dict) -> dict[str, int]:
    """Each job's Snakemake priority: the first in the plan highest."""
    jobs = plan(config)
    return {path: len(jobs) - i for i, path in enumerate(jobs)}


def positions(config: dict) -> dict[str, dict]:
    """What each job's record says of its place: {seed, round, place and of (within its round, from 1),
    position (over the sweep, from 1), sentinel (bool)}."""
    out, position = {}, 0
    for trial in rounds(config):
        jobs = shuffled_round(config, trial)
        for place, path in enumerate(jobs, 1):
            position += 1
            out[path] = {
                "seed": config.get("shuffle_seed", 0),
                "round": trial,
                "place": place,
                "of": len(jobs),
                "position": position,
                "sentinel": path.startswith("results/sentinels/"),
            }
    return out
