"""The supervisor: runs one cell in a fresh driver process and makes sure the run ends as a record.

It enforces the time limit, turns a driver killed from outside into a `failed` record, and after
every run kills whatever processes of the run remain and removes the shared-memory files the run
left in /dev/shm. A driver that exits with an error (a bug in parbench) fails loudly instead.
"""

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from parbench import environment, records
from parbench.driver import SUPERVISOR, kill_tree

SHM = Path("/dev/shm")
PR_SET_CHILD_SUBREAPER = 36
DEFAULT_TIMEOUT_S = 1800
POLL_S = 0.2


class DriverError(RuntimeError):
    """The driver raised: a bug in parbench, not a result."""


def become_subreaper() -> None:
    """Orphaned descendants of the driver (Ray's raylet, loky workers) become our children, so none escape."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: leftovers are still found while the driver lives


def shm_entries() -> set[str]:
    try:
        return {p.name for p in SHM.iterdir() if p.stat().st_uid == os.getuid()}
    except OSError:
        return set()


# What the backends' libraries create in /dev/shm: multiprocessing's semaphores and shared
# memory, joblib's memory-map folders, loky's semaphores. Anything else (an external Ray
# cluster's store, another program) is left alone.
OURS = ("sem.", "psm_", "joblib_memmapping_folder_", "loky-")


def in_use(names: set[str]) -> set[str]:
    """Those of `names` (in /dev/shm) that a living process still maps or holds open. Matched by
    inode: glibc maps a named semaphore under the temporary name it was created with."""
    by_inode = {}
    for name in names:
        try:
            by_inode[(SHM / name).stat().st_ino] = name
        except OSError:
            pass
    used = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            for line in (proc / "maps").read_text().splitlines():
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].startswith("/dev/shm/"):
                    used.add(by_inode.get(int(fields[4])))
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd).startswith("/dev/shm/"):
                    used.add(by_inode.get(os.stat(fd).st_ino))
        except OSError:
            continue  # ended meanwhile, or not ours to read
    return used & names


def remove_shm(before: set[str]) -> list[str]:
    """Remove what the run's libraries left in /dev/shm and nobody uses any more."""
    removed = []
    new = {n for n in shm_entries() - before if n.startswith(OURS)}
    for name in sorted(new - in_use(new)):
        path = SHM / name
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed.append(name)
        except OSError:
            pass
    return removed


def reap(spare: set[int] = frozenset(), grace_s: float = 2.0) -> int:
    """Stop every remaining descendant but those in `spare` (there before the run). Returns how
    many had not ended by themselves within `grace_s` (a Pool's forkserver and resource tracker
    end on their own once the driver is gone)."""
    ours = [p for p in psutil.Process().children(recursive=True) if p.pid not in spare]
    _, procs = psutil.wait_procs(ours, timeout=grace_s)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return len(procs)


def progress_of(record: dict) -> str:
    t = record.get("timings") or {}
    done = [k for k in ("startup_s", "setup_s") if t.get(k) is not None]
    batches = f"{len(t.get('warmup_s', []))} warm-up and {len(t.get('batch_s', []))} timed batches"
    return f"after {', '.join(p[:-2] for p in done) or 'nothing'}, {batches}"


def snakemake_and_below() -> list[psutil.Process]:
    """Our ancestors up to the Snakemake process that runs the job (a shell above it may come and go)."""
    parents = psutil.Process().parents()
    top = next((i for i, p in enumerate(parents) if _is_snakemake(p)), len(parents) - 1)
    return [p for p in parents[: top + 1] if p.pid != 1]


def _is_snakemake(proc: psutil.Process) -> bool:
    """`snakemake ...`, `python .../bin/snakemake ...` or `python -m snakemake ...` (not a job's
    shell, whose command line names a script under .snakemake/)."""
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return any(Path(arg).name == "snakemake" for arg in cmd[:2]) or cmd[1:3] == ["-m", "snakemake"]


def _orphaned(ancestors: list[psutil.Process]) -> bool:
    """True once a process above us (Snakemake) has ended: the run must not outlive the sweep."""
    for proc in ancestors:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
    return False


def supervise(cell: dict, out_path, log_path) -> dict:
    """Run `cell` in a fresh driver process; write and return its record."""
    become_subreaper()
    ancestors = snakemake_and_below()
    before = shm_entries()
    spare = {p.pid for p in psutil.Process().children(recursive=True)}  # not the run's: a caller's own helpers
    timeout = cell["settings"].get("limits", {}).get("timeout_s") or DEFAULT_TIMEOUT_S
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="parbench-") as tmp, open(log_path, "a") as log:
        log.flush()
        log_start = log.tell()
        cell_path, partial = Path(tmp, "cell.json"), Path(tmp, "record.json")
        cell_path.write_text(json.dumps(cell))
        driver = subprocess.Popen(
            [sys.executable, "-m", "parbench.driver", str(cell_path), str(partial)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, SUPERVISOR: str(os.getpid())},
        )
        deadline, timed_out = time.monotonic() + timeout, False
        while (code := driver.poll()) is None:
            if _orphaned(ancestors):
                kill_tree(psutil.Process(driver.pid))
                reap(spare)
                remove_shm(before)
                sys.exit("Snakemake ended; run abandoned (it will be redone as incomplete)")
            if time.monotonic() > deadline:
                kill_tree(psutil.Process(driver.pid))
                code, timed_out = driver.wait(), True
                break
            time.sleep(POLL_S)
        stopped = reap(spare)
        removed = remove_shm(before)
        partial_record = records.read(partial) if partial.exists() else None

    with open(log_path, errors="replace") as log:
        log.seek(log_start)
        output = log.read()
    record = _final(cell, partial_record, code, timed_out, timeout, started, log_path, output)
    record["cleanup"] = {"processes_stopped": stopped, "shm_removed": removed}
    records.write(out_path, record)
    return record


def _final(cell, record, code, timed_out, timeout, started, log_path, output: str) -> dict:
    """The run's record, whatever its end; raises DriverError if parbench itself failed (a
    Python traceback in the driver's output). A driver that exits without one was ended by a
    library beneath it (Ray exits the process when it loses its GCS): a failed run."""
    base = record or records.new(cell, environment.of_run(cell), started_at=started)
    if timed_out:
        record = {**base, "status": "timeout", "reason": f"passed limits.timeout_s = {timeout} s {progress_of(base)}"}
    elif record and (record["status"] == "oom" or (code == 0 and record["status"] != "running")):
        pass  # finished (ok, or failed with the backend's reason), or stopped itself at the memory limit
    elif code < 0:
        name = signal.Signals(-code).name
        hint = " (SIGKILL from outside: often the kernel's OOM killer)" if name == "SIGKILL" else ""
        record = {**base, "status": "failed", "reason": f"driver killed by {name}{hint} {progress_of(base)}"}
    elif "Traceback (most recent call last)" in output:
        raise DriverError(f"the parbench driver exited with code {code}; its traceback is in {log_path}")
    else:
        last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
        record = {**base, "status": "failed", "reason": f"driver exited with code {code} {progress_of(base)}: {last[-300:]}"}
    if record.get("finished_at") is None:
        record["finished_at"] = time.time()
    return record
