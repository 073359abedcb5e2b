"""Rule gate: fail the sweep when verdicts.json says fail_on tripped (everything else is written by then)."""

import json
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")

from parbench.sweep import gate  # noqa: E402

found = json.loads(Path(snakemake.input.verdicts).read_text())
if not found["passed"]:  # sys.exit's message goes to stderr: the rule's log
    sys.exit(f"{gate.explain(found)}\n(results/tables/verdicts.json; the report and comparison are written)")
Path(snakemake.output[0]).write_text(f"passed: fail_on {found['fail_on']}, {found['cells']} cells compared, none tripped\n")
