"""Run specs: everything that shapes one run, built in one place for every kind of benchmark job.

A spec is `{workload, backend, workers, trial, params, settings, code}`: the rule passes it as its
params (canonical JSON), so changing any part reruns exactly the runs it shapes. What a job's record
says of its place (its round and order, whether it is the A/A twin, its variant's name) is no part of
it: `job_info` gives that, and the rule passes it as a resource, which reruns nothing.
"""

import json

from parbench import environment
from parbench.sweep import order

# What a variant may override: the run's interpreter, its environment variables, the BLAS policy,
# and a backend's own section (its start method, its cluster address).
VARIANT_SETTINGS = ("python", "env", "blas_threads")


def overrides(config: dict, variant: str | None) -> dict:
    return (config.get("variants") or {}).get(variant) or {} if variant else {}


def run(config: dict, workload: str, backend: str, workers: int, trial: int, variant: str | None = None) -> dict:
    """The spec of one run of a cell (the first variant's, its A/A twin's, or another variant's)."""
    params = config["workloads"][workload]
    over = overrides(config, variant or order.variants(config)[0])
    settings = {
        "blas_threads": over.get("blas_threads", config["blas_threads"]),
        "options": {**config.get(backend, {}), **over.get(backend, {})},
        "limits": config["limits"],
        "sampler": config["sampler"],
    }
    # Only where set: a sweep without variants keeps the params (and so the records) it had.
    settings.update({k: over[k] for k in ("python", "env") if k in over})
    return {
        "workload": workload,
        "backend": backend,
        "workers": int(workers),
        "trial": int(trial),
        # A workload's own worker counts name its runs; they do not shape one.
        "params": {k: v for k, v in params.items() if k != "workers"},
        "settings": settings,
        "code": environment.run_code_hash(backend, workload, params.get("module")),
    }


def sentinel(config: dict, trial: int) -> dict:
    """The sentinel's spec: a small serial matmul with every core in BLAS, the same in every round."""
    return {
        **order.SENTINEL_CELL,
        "trial": int(trial),
        "params": {"seed": 1234, "warmup_batches": 1, "items_per_task": 1, **config["sentinel"]},
        "settings": {"blas_threads": "auto", "options": {}, "limits": config["limits"], "sampler": config["sampler"]},
        "code": environment.run_code_hash(order.SENTINEL_CELL["backend"], order.SENTINEL_CELL["workload"]),
    }


def job_info(path: str, positions: dict, variant: str | None) -> dict:
    """What a job's record says beyond its spec: its place in the sweep, its variant, whether it is the A/A twin."""
    return {"order": positions.get(path), "variant": variant, "twin": path.endswith(".twin.json")}


def dumps(value: dict) -> str:
    return json.dumps(value, sort_keys=True)
