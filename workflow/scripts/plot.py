"""Rule plot: one workload's figures from the tables, as PNG and SVG."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from parbench.report import plots  # noqa: E402

plots.draw_all(
    snakemake.wildcards.workload,
    snakemake.input.runs,
    snakemake.input.stats,
    snakemake.input.machine,
    png=snakemake.output.png,
    svg=snakemake.output.svg,
    variant=snakemake.params.variant,
)
