"""Run records: one JSON object per run, written atomically, made by one constructor (`new`) and
checked against schemas/record.schema.json. docs/record.md describes every field."""

import functools
import json
import os
import re
import tempfile
import time
from pathlib import Path

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).parent / "schemas" / "record.schema.json"
STATUSES = ("ok", "failed", "timeout", "oom", "skipped")
RUN_ID = ("workload", "backend", "workers", "trial")
# Fields every record has from the start, null until the run knows them (docs/record.md).
MEMORY = ("peak_tree_pss_bytes", "peak_tree_rss_bytes", "peak_shm_bytes", "driver_peak_rss_bytes")
EXACT = ("exact_peak_bytes", "exact_source", "exact_unavailable", "exact_file_cache_bytes")
CPU = ("tree_user_s", "tree_system_s", "tree_totals_source", "tree_source")
SYSTEM = ("loadavg_1m_start", "loadavg_1m_end", "cpu_steal_s", "machine_cpu_s", "other_cpu_s", "window_s", "tree_involuntary_switches")
# Where a record lives (Snakemake's output patterns; `path` for a results folder elsewhere), and how PATH parses it.
RUN = "results/runs/{workload}/{backend}/workers-{workers}/trial-{trial}.json"
# The reference cell run a second time in the same round: the sweep's A/A arm.
TWIN = RUN.removesuffix(".json") + ".twin.json"
# Every variant after the first (the first variant's runs are the sweep's own, at RUN).
VARIANT = "results/variants/{variant}/" + RUN.removeprefix("results/")


def path(folder, workload, backend, workers, trial) -> Path:
    """A run's record in the results folder `folder` (a runs.csv row's strings are accepted)."""
    return Path(folder) / RUN.removeprefix("results/").format(
        workload=workload, backend=backend, workers=int(float(workers)), trial=int(float(trial))
    )


# A record's fields must name the run its path names.
PATH = re.compile(
    r"(?:^|/)runs/(?P<workload>[^/]+)/(?P<backend>[^/]+)/workers-(?P<workers>\d+)/trial-(?P<trial>\d+)(?P<twin>\.twin)?\.json$"
)


class RecordError(ValueError):
    """A record that cannot be used as it is; the message names its file and the field."""


def new(spec: dict, environment: dict, **fields) -> dict:
    """A run's record, with every field every record has: null (or empty) until the run knows it.

    `spec` is the run spec the driver runs ({workload, backend, workers, trial, params, settings});
    `fields` override the defaults."""
    params = spec["params"]
    tasks, chunk = params.get("tasks_per_batch") or spec["workers"], params.get("items_per_task") or 1
    return {
        "schema_version": SCHEMA_VERSION,
        **{k: spec[k] for k in RUN_ID},
        # A run's trial is its round (docs/method.md); the twin is the reference cell's second run in it.
        "round": spec["trial"],
        "twin": bool(spec.get("twin")),
        "variant": spec.get("variant"),
        "status": "running",
        "reason": None,
        "params": params,
        "settings": spec["settings"],
        "tasks_per_batch": tasks,
        "items_per_task": chunk,
        "items_per_batch": tasks * chunk,
        "timings": {"startup_s": None, "setup_s": None, "warmup_s": [], "batch_s": [], "teardown_s": None, "end_to_end_s": None},
        "memory": dict.fromkeys(MEMORY + EXACT),
        "cpu": {**dict.fromkeys(CPU), "driver_warmup_s": [], "driver_batch_s": [], "tree_warmup_s": [], "tree_batch_s": []},
        "system": {**dict.fromkeys(SYSTEM), "other_cpu_warmup_s": [], "other_cpu_batch_s": []},
        "order": spec.get("order"),
        "verified": False,
        "blas_threads": None,
        "gil_enabled": None,
        "started_at": time.time(),
        "finished_at": None,
        "environment": environment,
        **fields,
    }


@functools.cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def problems(record) -> list[str]:
    """What is wrong with `record` by the schema, one message per field ('field memory.peak_tree_pss_bytes: ...')."""
    if not isinstance(record, dict):
        return [f"not a JSON object but {type(record).__name__}"]
    if isinstance(record.get("schema_version"), int) and record["schema_version"] > SCHEMA_VERSION:
        return [f"field schema_version: {record['schema_version']} is newer than this parbench reads ({SCHEMA_VERSION}); update parbench"]
    found = []
    for error in sorted(_validator().iter_errors(record), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(map(str, error.absolute_path))
        missing = re.match(r"'(.+)' is a required property", error.message) if error.validator == "required" else None
        if missing:
            where = f"{where}.{missing.group(1)}" if where else missing.group(1)
            found.append(f"field {where}: missing")
        else:
            found.append(f"field {where or '(top level)'}: {error.message[:200]}")
    return found


def read(path, *, check: bool = False) -> dict:
    """The record at `path`. With `check`, a record that is not valid JSON, breaks the schema, is
    still running, or names another run than its path raises RecordError naming file and field."""
    try:
        with open(path) as f:
            record = json.load(f)
    except json.JSONDecodeError as error:
        raise RecordError(f"{path}: not a complete JSON record ({error.msg} at line {error.lineno})") from None
    if not check:
        return record
    found = problems(record)
    if not found and record["status"] == "running":
        found = ["field status: 'running' (the run never finished)"]
    where = PATH.search(str(path))
    if not found and where:
        expected = {k: (int(v) if k in ("workers", "trial") else v) for k, v in where.groupdict().items()}
        expected["twin"] = bool(expected["twin"])
        named = {k: record.get(k, False) for k in (*RUN_ID, "twin")}  # records before rounds have no twin field
        wrong = [f"field {k}: {v!r}, but its path names {expected[k]!r}" for k, v in named.items() if v != expected[k]]
        found = [*wrong[:1], "(a record of another spec)"] if wrong else []
    if found:
        raise RecordError(f"{path}: {'; '.join(found)}")
    return record


def write(path, record: dict) -> None:
    """Write `record` to `path` atomically: readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, default=_plain)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_all(paths) -> list[dict]:
    """Every record of `paths`, checked. Invalid ones are moved aside (`*.invalid`) so that the next
    `snakemake` redoes their runs, and one RecordError names them all."""
    good, bad = [], []
    for path in paths:
        try:
            good.append(read(path, check=True))
        except RecordError as error:
            bad.append(str(error))
            Path(path).replace(f"{path}.invalid")
    if bad:
        raise RecordError(
            f"{len(bad)} run record(s) cannot be used; each was moved aside to <record>.invalid, so the next "
            "snakemake redoes its run:\n  " + "\n  ".join(bad)
        )
    return good


def _plain(value):
    """numpy scalars and tuples-as-lists for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
