"""The benchmark job's entry point (rule run, twin, variant and sentinel): one run in a fresh
supervised driver process, written as one record.

    python -m parbench.run.job RECORD LOG SPEC INFO

A `shell:` rule calls it rather than a `script:`, so that a job does not import Snakemake (about a
second per run). SPEC is the run spec as JSON (the rule's params: what shapes the run), ORDER the
job's place in the sweep, its variant and whether it is the A/A twin as JSON (`spec.job_info`: a
resource, not a param, so that none of it reruns anything).
"""

import json
import sys


def main(argv: list[str]) -> int:
    out, log, spec, info = argv
    # Truncate, then append: the driver appends its output to the same log, and a second handle
    # opened with "w" would write over the head of it (its traceback).
    open(log, "w").close()
    sys.stderr = open(log, "a", buffering=1)

    from parbench.cleanup import Abandoned
    from parbench.run.supervise import Interrupted, NotWritable, supervise
    from parbench.sweep import progress

    spec = {**json.loads(spec), **json.loads(info)}
    try:
        supervise(spec, out, log)
    except (Interrupted, NotWritable, Abandoned) as stop:
        print(f"parbench: {stop}", file=sys.stderr)
        return 1
    # After the record, with the benchmark slot still held: to Snakemake's console, once per finished round.
    if line := progress.after(out, json.loads(info)):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
