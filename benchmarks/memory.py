"""How close the memory sampler came to the exact peak, from a finished sweep's results folder.

    .venv/bin/python benchmarks/memory.py [results]      # default: results

Per cell, medians over its clean runs: the sampler's peak tree PSS and RSS, the exact peak of the
run's memory cgroup (memory.exact_peak_bytes), and exact / PSS. Then per workload and over all
cells: the median ratio and how many cells are within 10 % and 25 %. What the two figures count,
and why they differ: docs/measurement.md.
"""

import sys
from pathlib import Path

import pandas as pd

from parbench.stats import clean

MIB = 2**20


def main(results: str = "results") -> None:
    runs = clean(pd.read_csv(Path(results, "tables", "runs.csv")))
    if "exact_peak_bytes" not in runs or runs.exact_peak_bytes.isna().all():
        sys.exit(f"{results}: no run has an exact peak (records from before it was recorded, or no memory cgroup was offered)")
    sources = ", ".join(runs.exact_source.dropna().unique())
    cells = (
        runs.dropna(subset=["exact_peak_bytes", "peak_tree_pss_bytes"])
        .groupby(["workload", "backend", "workers"])[["peak_tree_pss_bytes", "peak_tree_rss_bytes", "exact_peak_bytes"]]
        .median()
        .reset_index()
    )
    cells["exact / PSS"] = cells.exact_peak_bytes / cells.peak_tree_pss_bytes
    cells["exact / RSS"] = cells.exact_peak_bytes / cells.peak_tree_rss_bytes
    shown = cells.rename(columns={"peak_tree_pss_bytes": "PSS MiB", "peak_tree_rss_bytes": "RSS MiB", "exact_peak_bytes": "exact MiB"})
    for column in ("PSS MiB", "RSS MiB", "exact MiB"):
        shown[column] = (shown[column] / MIB).round(0).astype(int)
    print(f"# sampled vs exact peak memory, {results} ({len(runs)} clean runs; exact from {sources})\n")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}"))

    def line(name, ratios):
        within = [(abs(ratios - 1) <= tol).sum() for tol in (0.10, 0.25)]
        print(f"{name:24} median exact/PSS {ratios.median():.2f}, within 10 %: {within[0]} of {len(ratios)}, within 25 %: {within[1]}")

    print()
    for workload, group in cells.groupby("workload"):
        line(workload, group["exact / PSS"])
    line("all cells", cells["exact / PSS"])
    print(
        "\nexact: the peak charged to the run's memory cgroup (private pages, shared memory and tmpfs pages the run first"
        "\ntouched, page cache it first read or wrote, kernel memory), from the driver's start to the end of teardown;"
        "\nPSS: the sampler's peak of the tree's proportional set size (shared pages split among the processes that map"
        "\nthem, shared libraries included), read as often as its cost allows."
    )


if __name__ == "__main__":
    main(*sys.argv[1:2])
