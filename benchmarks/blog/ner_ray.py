"""The blog's Ray spaCy script, parametrised (benchmarks/README.md).

Unchanged in substance: ray.init(num_cpus=num_workers) with Ray's defaults, a @ray.remote class NER
whose __init__ loads the model and whose tag(text) returns the entities (as (text, label) pairs: a
spaCy Span cannot be pickled), num_workers actors created before the timer (creation returns at
once, so their model loads fall in the first batch), ray.get over one text per actor per batch, the
batches timed together with perf_counter; prints the total seconds. The one addition is each
batch's own time, printed on its own line (for the steady-state framing). The model is
en_core_web_sm, or where that package is not installed its PyPI redistribution.
"""

import argparse
import time

import psutil
import ray
import spacy

from parbench.workloads.ner import resolve_model

parser = argparse.ArgumentParser()
parser.add_argument("--workers", type=int, default=psutil.cpu_count(logical=False) // 2)
parser.add_argument("--batches", type=int, default=10)
parser.add_argument("--model", default="en_core_web_sm")
args = parser.parse_args()

num_workers = max(1, args.workers)
MODEL = resolve_model(args.model)

ray.init(num_cpus=num_workers)


@ray.remote
class NER:
    def __init__(self):
        self.ner = spacy.load(MODEL)

    def tag(self, text):
        return [(ent.text, ent.label_) for ent in self.ner(text).ents]


actors = [NER.remote() for _ in range(num_workers)]
each = []  # not in the blog: each batch's time
start = time.perf_counter()
for _ in range(args.batches):
    t0 = time.perf_counter()
    texts = ["Paris is the capital of France."] * num_workers
    ray.get([a.tag.remote(t) for a, t in zip(actors, texts)])
    each.append(time.perf_counter() - t0)
print(f"seconds_total {time.perf_counter() - start:.4f}")
print("seconds_each_batch", *(f"{s:.4f}" for s in each))
