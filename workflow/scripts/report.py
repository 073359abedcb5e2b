"""Rule report: one self-contained HTML page from the tables, figures and machine limits."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")

from parbench.report import report  # noqa: E402

report.write(
    snakemake.output[0],
    runs=snakemake.input.runs,
    stats=snakemake.input.stats,
    machine=snakemake.input.machine,
    figures=snakemake.input.figures,
    config=json.loads(snakemake.params.config),
    sentinels=snakemake.input.sentinels,
    aa=snakemake.input.aa,
)
