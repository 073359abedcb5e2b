"""Rule machine: what this machine can do at best, measured once -> results/machine.json."""

import os
import subprocess
import sys

sys.stderr = open(snakemake.log[0], "w")

# A module of its own as __main__, so multiprocessing's spawn and forkserver can start children.
subprocess.run(
    [sys.executable, "-m", "parbench.machine", snakemake.output[0]],
    env={**os.environ, "PARBENCH_SUPERVISOR_PID": str(os.getpid())},  # it ends if this job does
    stderr=sys.stderr,
    check=True,
)
