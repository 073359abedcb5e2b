import json
import sys
from pathlib import Path

from parbench import config as parbench_config
from parbench import environment as parbench_environment
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


# A sweep killed with SIGKILL left its lock: the same plain command resumes it.
if stale := parbench_sweep.clear_stale_locks(Path.cwd()):
    print(
        f"parbench: removed stale Snakemake locks {stale} (no other Snakemake runs here)"
    )


# Snakemake's scheduler would otherwise spin beside the timed runs (see the function).
if not parbench_sweep.one_reevaluation_timer():
    print("parbench: warning: could not calm Snakemake's scheduler; timings may suffer")


RUN = "results/runs/{workload}/{backend}/workers-{workers}/trial-{trial}.json"
# One plot function each in parbench.plots.DRAW.
FIGURES = ["throughput", "speedup", "memory", "time_breakdown"]


wildcard_constraints:
    workers=r"\d+",
    trial=r"\d+",
    workload=r"[a-z0-9_-]+",
    backend=r"[a-z0-9_-]+",
    figure="|".join(FIGURES),


def run_records():
    """Every run of the sweep: workloads x backends x workers x trials."""
    return expand(
        RUN,
        workload=list(config["workloads"]),
        backend=config["backends"],
        workers=config["workers"],
        trial=range(1, config["trials"] + 1),
    )


def run_params(wildcards):
    """All that shapes one run, as canonical JSON: changing it reruns exactly the affected runs.

    The code hash covers the backend's and the workload's modules and the shared run code,
    so editing one backend reruns only that backend's runs."""
    return json.dumps(
        {
            "params": config["workloads"][wildcards.workload],
            "settings": {
                "blas_threads": config["blas_threads"],
                "options": config.get(wildcards.backend, {}),
                "limits": config["limits"],
                "sampler": config["sampler"],
            },
            "code": parbench_environment.run_code_hash(
                wildcards.backend, wildcards.workload
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
    """What rule compare makes when compare_with names a baseline; nothing otherwise."""
    if not BASELINES:
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
        "results/tables/runs.csv",
        "results/tables/stats.csv",
        "results/machine.json",
        *figures(workloads, "png"),
        *figures(workloads, "svg"),
        "results/report.html",
        *comparison_targets(),
    ]
