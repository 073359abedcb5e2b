"""Word frequencies of a text corpus, slice by slice: pure-Python work over a large shared input.

A parbench user workload: plain functions, no parbench import. Benchmark it with
    snakemake --cores 8 --configfile examples/wordcount.yaml
"""

import collections
import random

VOCABULARY = 5000


def data(params):
    """The corpus, made once in the driver: `words` words drawn from a fixed vocabulary."""
    rng = random.Random(params.get("seed", 0))
    vocabulary = [f"w{i}" for i in range(VOCABULARY)]
    return {"corpus": rng.choices(vocabulary, k=params["words"])}


def items(params, batch, n):
    """Task i of a batch counts one slice of the corpus; slices move with the batch."""
    size = params["slice"]
    start = batch * n * size
    return [((start + i * size) % params["words"], size) for i in range(n)]


def task(state, item):
    """The 20 most frequent words of the slice and their counts."""
    start, size = item
    words = state["corpus"][start : start + size]
    return collections.Counter(words).most_common(20)
