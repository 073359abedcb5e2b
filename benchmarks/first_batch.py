"""The first batches against the steady ones, per cell of a finished sweep (issue 20, items 2, 3, 8):

    .venv/bin/python benchmarks/first_batch.py SWEEP_FOLDER [--workload http] [--workers 8]

Per workload, backend and workers, over the cell's ok runs (medians): startup and setup seconds, the warm-up
batch and the first timed batch each over the run's median timed batch, and the slowest timed batch in seconds
(a batch that waited on a SYN retransmit at the http server takes over 1 s). Prints, passes or fails nothing else.
"""

import argparse
import collections
import json
import statistics
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--workload")
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()
    cells = collections.defaultdict(list)
    for path in sorted((args.sweep / "results" / "runs").rglob("*.json")):
        r = json.loads(path.read_text())
        t = r.get("timings") or {}
        if r.get("status") != "ok" or len(t.get("batch_s") or []) < 2 or not t.get("warmup_s"):
            continue
        if (args.workload and r["workload"] != args.workload) or (args.workers and r["workers"] != args.workers):
            continue
        steady = statistics.median(t["batch_s"])
        rest = statistics.median(t["batch_s"][1:])
        cells[r["workload"], r["backend"], r["workers"]].append(
            (t["startup_s"], t["setup_s"], t["warmup_s"][0] / steady, t["batch_s"][0] / rest, max(t["batch_s"]))
        )
    head = f"{'workload':10} {'backend':24} {'workers':>7} {'runs':>4} {'startup s':>9} {'setup s':>8} "
    head += f"{'warmup/med':>10} {'first/rest':>10} {'max batch s':>11}"
    print(head, "-" * len(head), sep="\n")
    for (workload, backend, workers), runs in sorted(cells.items()):
        m = [statistics.median(column) for column in zip(*runs)]
        print(f"{workload:10} {backend:24} {workers:>7} {len(runs):>4} {m[0]:>9.3f} {m[1]:>8.3f} {m[2]:>10.2f} {m[3]:>10.2f} {m[4]:>11.3f}")


if __name__ == "__main__":
    main()
