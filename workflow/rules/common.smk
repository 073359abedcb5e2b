import json
import sys
from pathlib import Path

from parbench import environment as parbench_environment
from parbench import records as parbench_records
from parbench.report import figures as parbench_figures
from parbench.sweep import config as parbench_config
from parbench.sweep import order as parbench_order
from parbench.sweep import progress as parbench_progress
from parbench.sweep import spec as parbench_spec
from parbench.sweep import sweep as parbench_sweep
from snakemake.settings.types import DeploymentMethod

# A bad config fails here, before any job starts, naming every bad key (and no traceback).
try:
    config.update(
        parbench_config.validate(config, Path(PARBENCH_ROOT) / "config" / "schema.yaml")
    )
except parbench_config.ConfigError as error:
    sys.exit(f"parbench: {error}")


# So does a compare_with folder that cannot serve as a baseline, naming the folder.
BASELINES = {}  # folder as given -> the files of it that rule compare reads
if config.get("compare_with"):
    # Light: parbench.compare.compare would map pandas and scipy into Snakemake's process (see the module).
    from parbench.compare import baseline as parbench_baseline

    try:
        BASELINES = parbench_baseline.baselines(config["compare_with"], here="results")
    except parbench_baseline.BaselineError as error:
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
    # The runs to do and an estimate; each round's last job says when its round is done (parbench.sweep.progress).
    print(parbench_progress.start(config))


onsuccess:
    if Path("results/report.html").exists():
        print(f"parbench: the report is {Path('results/report.html').resolve()}")


# A tripped fail_on gate fails the sweep after the report is written: say where it is then too.
onerror:
    if Path("results/report.html").exists():
        print(f"parbench: the report is {Path('results/report.html').resolve()}")


RUN = parbench_records.RUN
TWIN = parbench_records.TWIN
VARIANT = parbench_records.VARIANT
SENTINEL = parbench_order.SENTINEL
FIGURES = list(parbench_figures.FIGURES)
VARIANTS = [v for v in parbench_order.variants(config) if v]


wildcard_constraints:
    workers=r"\d+",
    trial=r"\d+",
    workload=parbench_config.NAME,
    backend=r"[a-z0-9_-]+",
    variant="|".join(VARIANTS[1:]) or "(?!)",
    figure="|".join(FIGURES),


def run_records():
    """The sweep's own runs: workloads x backends x workers (the workload's own, else the sweep's) x rounds."""
    return parbench_order.run_paths(config)


def twin_records():
    """The reference cell's A/A twin of every workload, one per round."""
    return parbench_order.twin_paths(config)


def variant_records():
    """The runs of every variant after the first, in the same rounds."""
    return parbench_order.variant_paths(config)


def sentinel_records():
    """The sentinel's runs, one per round, or none if `sentinel` is null."""
    return parbench_order.sentinel_paths(config)


# A fresh sweep runs in rounds, each in a seeded shuffle: Snakemake starts the ready job of highest
# priority, and all of them are ready at once. Priorities are no rerun trigger, so the order reruns nothing.
PRIORITY = parbench_order.priorities(config)
POSITIONS = parbench_order.positions(config)
# The job's interpreter: the run environment's (a conda env's, else Snakemake's own). A param: a
# run made by another Python is another run.
PYTHON = (
    "python"
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    else sys.executable
)


def run_priority(wildcards):
    return PRIORITY.get(parbench_order.run_path(**wildcards), 0)


def twin_priority(wildcards):
    return PRIORITY.get(parbench_order.run_path(**wildcards, twin=True), 0)


def sentinel_priority(wildcards):
    return PRIORITY.get(SENTINEL.format(**wildcards), 0)


def run_info(wildcards):
    """The job's place, variant and twin mark for its record: a resource, so that none of it reruns a run."""
    path = parbench_order.run_path(**wildcards)
    return parbench_spec.dumps(
        parbench_spec.job_info(
            path, POSITIONS, wildcards.get("variant") or (VARIANTS or [None])[0]
        )
    )


def twin_info(wildcards):
    path = parbench_order.run_path(**wildcards, twin=True)
    return parbench_spec.dumps(
        parbench_spec.job_info(path, POSITIONS, (VARIANTS or [None])[0])
    )


def sentinel_info(wildcards):
    path = SENTINEL.format(**wildcards)
    return parbench_spec.dumps(parbench_spec.job_info(path, POSITIONS, None))


def run_params(wildcards):
    """All that shapes one run, as canonical JSON: changing it reruns exactly the affected runs.

    The code hash covers the backend's and the workload's modules (a user's module by its
    content) and the shared run code, so editing one backend reruns only that backend's runs.
    """
    return parbench_spec.dumps(
        parbench_spec.run(
            config,
            wildcards.workload,
            wildcards.backend,
            int(wildcards.workers),
            int(wildcards.trial),
            wildcards.get("variant"),
        )
    )


def sentinel_params(wildcards):
    """The sentinel's run spec: the same small serial matmul in every round."""
    return parbench_spec.dumps(parbench_spec.sentinel(config, int(wildcards.trial)))


def script_code(script, *more):
    """The code hash of a rule's script: the parbench modules it imports, found from its imports (and `more`)."""
    return parbench_environment.script_code_hash(
        Path(PARBENCH_ROOT) / "workflow" / "scripts" / f"{script}.py", *more
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
    """What rule compare makes when compare_with names a baseline or the sweep has variants; nothing otherwise."""
    if not BASELINES and len(VARIANTS) < 2:
        return []
    return [
        "results/tables/comparison.csv",
        "results/tables/verdicts.json",
        "results/comparison.html",
        *comparison_figures("png"),
        *comparison_figures("svg"),
        *(["results/tables/gate.txt"] if config.get("fail_on") else []),
    ]


def all_targets():
    workloads = list(config["workloads"])
    return [
        *run_records(),
        *twin_records(),
        *variant_records(),
        *sentinel_records(),
        "results/tables/runs.csv",
        "results/tables/stats.csv",
        "results/machine.json",
        "results/config.yaml",
        *figures(workloads, "png"),
        *figures(workloads, "svg"),
        "results/report.html",
        *comparison_targets(),
    ]
