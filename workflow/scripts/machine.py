"""Rule machine: what this machine can do at best, measured once -> results/machine.json."""

import subprocess
import sys

sys.stderr = open(snakemake.log[0], "w")

from parbench.cleanup import Abandoned  # noqa: E402
from parbench.run.supervise import Interrupted, run_alone  # noqa: E402

# Alone on the machine, like a timed run, and cleaned up after like one. A module of its own as
# __main__, so multiprocessing's spawn and forkserver can start children.
command = [sys.executable, "-m", "parbench.run.machine", snakemake.output[0]]
try:
    if code := run_alone(command, sys.stderr):
        raise subprocess.CalledProcessError(code, command)
except (Interrupted, Abandoned) as stop:
    sys.exit(f"parbench: {stop}")
