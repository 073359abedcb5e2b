"""Rule compare: the variants against the first, and this sweep against its compare_with baselines -> comparison.csv, figures, page."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from parbench.compare import compare, facts  # noqa: E402
from parbench.sweep import gate  # noqa: E402

compare.write(
    snakemake.output.table,
    snakemake.output.page,
    png=snakemake.output.png,
    svg=snakemake.output.svg,
    here=facts.load(
        "this sweep", [*snakemake.input.records, *snakemake.input.variants], snakemake.input.machine, snakemake.input.sentinels
    ),
    bases=[facts.load_baseline(folder) for folder in snakemake.params.baselines],
    margin=snakemake.params.margin,
    variants=snakemake.params.variants,
)
gate.write(snakemake.output.table, snakemake.output.verdicts, snakemake.params.fail_on, snakemake.params.margin)
