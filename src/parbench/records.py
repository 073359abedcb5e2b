"""Run records: one JSON object per run, written atomically.

Fields (schema_version 1; see DESIGN.md and README.md for their meaning):
schema_version, workload, backend, workers, trial, status (ok|failed|timeout|oom|skipped),
reason, params, settings, tasks_per_batch, timings{startup_s, setup_s, warmup_s[], batch_s[],
teardown_s, end_to_end_s, harness_s}, memory{peak_tree_pss_bytes, peak_tree_rss_bytes,
peak_shm_bytes, driver_peak_rss_bytes, phases{...}, samples, period_s, sampling_busy_s},
verified, verification, blas_threads, blas_threads_seen, blas_threads_policy, workers_seen,
state_builds, workload_info, backend_info, cluster, started_at, finished_at, environment.
"""

import json
import os
import tempfile
from pathlib import Path

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "timeout", "oom", "skipped")


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


def read(path) -> dict:
    with open(path) as f:
        return json.load(f)


def _plain(value):
    """numpy scalars and tuples-as-lists for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
