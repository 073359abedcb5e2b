"""Rule run: one cell of the sweep, in a fresh supervised driver process, written as one record."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")

from parbench.supervise import supervise  # noqa: E402

wildcards = snakemake.wildcards
cell = {
    "workload": wildcards.workload,
    "backend": wildcards.backend,
    "workers": int(wildcards.workers),
    "trial": int(wildcards.trial),
    **json.loads(snakemake.params.cell),
}
supervise(cell, snakemake.output[0], snakemake.log[0])
