import json
import sys
from pathlib import Path

from parbench import config as parbench_config
from parbench import environment as parbench_environment
from parbench import figures as parbench_figures
from parbench import order as parbench_order
from parbench import sweep as parbench_sweep

# A bad config fails here, before any job starts, naming every bad key (and no traceback).
try:
    config.update(
        parbench_config.validate(
            config, Path(workflow.basedir) / "config" / "schema.yaml"
        )
    )
except parbench_config.ConfigError as error:
    sys.exit(f"parbench: {error}")


# So does a compare_with folder that cannot serve as a baseline, naming the folder.
BASELINES = {}  # folder as given -> the files of it that rule compare reads
if config.get("compare_with"):
    from parbench import compare as parbench_compare

    try:
        BASELINES = parbench_compare.baselines(config["compare_with"], here="results")
    except parbench_compare.BaselineError as error:
        sys.exit(f"parbench: {error}")


# Only in the main Snakemake process: a job's own Snakemake (SLURM's, with --nolock) parses this
# file again on its node, where it sees no other Snakemake and would take the sweep's locks for stale.
if workflow.is_main_process:
    # A sweep killed with SIGKILL left its lock: the same plain command resumes it.
    if stale := parbench_sweep.clear_stale_locks(Path.cwd()):
        print(
            f"parbench: removed stale Snakemake locks {stale} (no other Snakemake runs here)"
        )
    # Snakemake's scheduler would otherwise spin beside the timed runs (see the function).
    if not parbench_sweep.one_reevaluation_timer():
        print(
            "parbench: warning: could not calm Snakemake's scheduler; timings may suffer"
        )
    # Ctrl-C to Snakemake alone would otherwise throw away the run it waited for.
    if not parbench_sweep.keep_finished_on_interrupt():
        print(
            "parbench: warning: a run that finishes after an interrupt will be redone"
        )


# One sweep at a time in a folder (Snakemake's own lock lets two through if started together).
onstart:
    if holder := parbench_sweep.one_sweep_here(Path.cwd()):
        sys.exit(
            f"parbench: another sweep runs in this folder ({holder}); this one stops. "
            "Let it finish, or stop it and run the same command again."
        )


RUN = parbench_order.RUN
SENTINEL = parbench_order.SENTINEL
FIGURES = list(parbench_figures.FIGURES)


wildcard_constraints:
    workers=r"\d+",
    trial=r"\d+",
    workload=r"[a-z0-9_-]+",
    backend=r"[a-z0-9_-]+",
    figure="|".join(FIGURES),
    at="|".join(parbench_order.SENTINELS),


def run_records():
    """Every run of the sweep: workloads x backends x workers (the workload's own, else the
    sweep's) x trials."""
    return parbench_order.run_paths(config)


def sentinel_records():
    """The sentinel's three runs (start, middle, end of the sweep), or none if `sentinel` is null."""
    return parbench_order.sentinel_paths(config)


# A fresh sweep runs its benchmark jobs in a seeded shuffle, with the sentinel first, in the middle
# and last: Snakemake starts the ready job of highest priority, and all of them are ready at once.
# Priorities are no rerun trigger, so the order reruns nothing.
PRIORITY = parbench_order.priorities(config)


def run_priority(wildcards):
    return PRIORITY.get(RUN.format(**wildcards), 0)


def sentinel_priority(wildcards):
    return PRIORITY.get(SENTINEL.format(at=wildcards.at), 0)


def run_params(wildcards):
    """All that shapes one run, as canonical JSON: changing it reruns exactly the affected runs.

    The code hash covers the backend's and the workload's modules (a user's module by its
    content) and the shared run code, so editing one backend reruns only that backend's runs.
    """
    params = config["workloads"][wildcards.workload]
    return json.dumps(
        {
            # A workload's own worker counts name its runs; they do not shape one.
            "params": {k: v for k, v in params.items() if k != "workers"},
            "settings": {
                "blas_threads": config["blas_threads"],
                "options": config.get(wildcards.backend, {}),
                "limits": config["limits"],
                "sampler": config["sampler"],
            },
            "code": parbench_environment.run_code_hash(
                wildcards.backend, wildcards.workload, params.get("module")
            ),
        },
        sort_keys=True,
    )


def sentinel_params(wildcards):
    """The sentinel's run spec: a small serial matmul with every core in BLAS, the same at the start,
    middle and end, under the sweep's limits and sampler."""
    return json.dumps(
        {
            **parbench_order.SENTINEL_CELL,
            "params": {
                "seed": 1234,
                "warmup_batches": 1,
                "items_per_task": 1,
                **config["sentinel"],
            },
            "settings": {
                "blas_threads": "auto",
                "options": {},
                "limits": config["limits"],
                "sampler": config["sampler"],
            },
            "code": parbench_environment.run_code_hash(
                parbench_order.SENTINEL_CELL["backend"],
                parbench_order.SENTINEL_CELL["workload"],
            ),
        },
        sort_keys=True,
    )


def figures(workload, ext="png"):
    return expand(
        "results/figures/{workload}_{figure}.{ext}",
        workload=workload,
        figure=FIGURES,
        ext=ext,
    )


def comparison_figures(ext):
    return expand(
        "results/figures/comparison_{workload}.{ext}",
        workload=list(config["workloads"]),
        ext=ext,
    )


def comparison_targets():
    """What rule compare makes when compare_with names a baseline or the sweep has two or more variants; nothing otherwise."""
    if not BASELINES and len(config.get("variants") or {}) < 2:
        return []
    return [
        "results/tables/comparison.csv",
        "results/comparison.html",
        *comparison_figures("png"),
        *comparison_figures("svg"),
    ]


def all_targets():
    workloads = list(config["workloads"])
    return [
        *run_records(),
        *sentinel_records(),
        "results/tables/runs.csv",
        "results/tables/stats.csv",
        "results/machine.json",
        *figures(workloads, "png"),
        *figures(workloads, "svg"),
        "results/report.html",
        *comparison_targets(),
    ]
