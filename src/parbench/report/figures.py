"""The figures every workload gets: names (files results/figures/{workload}_{name}.png) and the
captions the report shows under them. One place: the Snakefile's targets, the plot functions
(parbench.report.plots.DRAW) and the report read them from here."""

FIGURES = {
    "throughput": "Items per second in the timed batches (steady state), the geometric mean over runs with its 90 % interval (band); "
    "both axes logarithmic. Dashed: ideal linear scaling up to the physical cores.",
    "speedup": "Throughput over serial's at the same worker count (the same batches, serial in one process), "
    "paired within rounds, with its 90 % interval. Above 1: faster than serial.",
    "memory": "Peak PSS summed over the driver and every worker process (median of clean trials, MiB). "
    "Hatched: growth of shared memory (Shmem), e.g. Ray's object store or shared arrays.",
    "time_breakdown": "Where a run's time goes (median of clean trials): start-up, setup, untimed warm-up, "
    "the timed batches that throughput is computed from, and teardown.",
}


def split_name(path) -> tuple[str, str]:
    """'results/figures/ner_time_breakdown.png' -> ('ner', 'time_breakdown')."""
    from pathlib import Path

    stem = Path(path).stem
    name = next((f for f in FIGURES if stem.endswith("_" + f)), stem.partition("_")[2])
    return stem.removesuffix("_" + name), name
