"""The blog's multiprocessing spaCy script, parametrised (benchmarks/README.md).

Unchanged in substance: a Pool of num_workers created at import, a task that loads the model with
spacy.load and returns ner(text) (the Doc, pickled back), pool.map over num_workers copies of the
blog's sentence per batch, the batches timed together with perf_counter; prints the total seconds.
The one addition is each batch's own time, printed on its own line (for the steady-state framing).
The model is en_core_web_sm, or where that package is not installed its PyPI redistribution.
"""

import argparse
import time
from multiprocessing import Pool

import psutil
import spacy

from parbench.workloads.ner import resolve_model

parser = argparse.ArgumentParser()
parser.add_argument("--workers", type=int, default=psutil.cpu_count(logical=False) // 2)
parser.add_argument("--batches", type=int, default=10)
parser.add_argument("--model", default="en_core_web_sm")
args = parser.parse_args()

num_workers = max(1, args.workers)
MODEL = resolve_model(args.model)


def task(text):
    ner = spacy.load(MODEL)
    return ner(text)


pool = Pool(num_workers)


if __name__ == "__main__":
    each = []  # not in the blog: each batch's time
    start = time.perf_counter()
    for _ in range(args.batches):
        t0 = time.perf_counter()
        pool.map(task, ["Paris is the capital of France."] * num_workers)
        each.append(time.perf_counter() - t0)
    print(f"seconds_total {time.perf_counter() - start:.4f}")
    print("seconds_each_batch", *(f"{s:.4f}" for s in each))
