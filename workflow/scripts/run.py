"""Rule run: one run of the sweep, in a fresh supervised driver process, written as one record."""

import json
import sys

# Truncate, then append: the driver appends its output to the same log, and a second handle
# opened with "w" would write over the head of it (its traceback).
open(snakemake.log[0], "w").close()
sys.stderr = open(snakemake.log[0], "a", buffering=1)

from parbench import order  # noqa: E402
from parbench.cleanup import Abandoned  # noqa: E402
from parbench.supervise import Interrupted, NotWritable, supervise  # noqa: E402

w = snakemake.wildcards
# A run's cell is in its path; the sentinel's is in its spec.
cell = {"workload": w.workload, "backend": w.backend, "workers": int(w.workers), "trial": int(w.trial)} if "workload" in w.keys() else {}
spec = {
    **cell,
    **json.loads(snakemake.params.spec),
    # Its place in the sweep's planned order, not a param: the order reruns nothing.
    "order": order.position(snakemake.output[0], snakemake.config),
}
try:
    supervise(spec, snakemake.output[0], snakemake.log[0])
except (Interrupted, NotWritable, Abandoned) as stop:
    sys.exit(f"parbench: {stop}")
