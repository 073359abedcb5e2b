"""Rule run: one run of the sweep, in a fresh supervised driver process, written as one record."""

import json
import sys

# Truncate, then append: the driver appends its output to the same log, and a second handle
# opened with "w" would write over the head of it (its traceback).
open(snakemake.log[0], "w").close()
sys.stderr = open(snakemake.log[0], "a", buffering=1)

from parbench.cleanup import Abandoned  # noqa: E402
from parbench.supervise import Interrupted, NotWritable, supervise  # noqa: E402

wildcards = snakemake.wildcards
spec = {
    "workload": wildcards.workload,
    "backend": wildcards.backend,
    "workers": int(wildcards.workers),
    "trial": int(wildcards.trial),
    **json.loads(snakemake.params.spec),
}
try:
    supervise(spec, snakemake.output[0], snakemake.log[0])
except (Interrupted, NotWritable, Abandoned) as stop:
    sys.exit(f"parbench: {stop}")
