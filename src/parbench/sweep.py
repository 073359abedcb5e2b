"""Sweep-level care: a sweep killed with SIGKILL leaves Snakemake's lock behind; the next plain
`snakemake` must resume it instead of asking for --unlock. And Snakemake's scheduler must not
compete with the benchmark it schedules."""

import threading
from pathlib import Path

import psutil


def other_snakemake_here(workdir) -> bool:
    """True if a Snakemake process (or one of its jobs) other than ours works in `workdir`."""
    workdir = str(Path(workdir).resolve())
    me = psutil.Process()
    ours = {me.pid, *(p.pid for p in me.parents()), *(c.pid for c in me.children(recursive=True))}
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        if proc.info["pid"] in ours or not proc.info["cmdline"]:
            continue
        if "snakemake" in " ".join(proc.info["cmdline"]) and proc.info["cwd"] == workdir:
            return True
    return False


def clear_stale_locks(workdir) -> list[str]:
    """Remove Snakemake's lock files if no other Snakemake process works in `workdir`; returns their names."""
    locks = sorted(Path(workdir, ".snakemake", "locks").glob("*.lock"))
    if not locks or other_snakemake_here(workdir):
        return []
    for lock in locks:
        lock.unlink(missing_ok=True)
    return [lock.name for lock in locks]


def one_reevaluation_timer() -> bool:
    """Keep at most one of Snakemake's scheduler re-evaluation timers pending; True if patched.

    Snakemake 9 starts a new 1-second timer after every scheduling round and each timer's round
    starts another, so chains pile up, one per finished job (snakemake/snakemake#3744). With the
    runs waiting on `benchmark_slot`, the scheduler then spins beside the timed run: 40 ILP solves
    a second (each a `cbc` process) late in the default sweep, and serial matmul ran 33 % slower.
    """
    try:
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:  # not inside Snakemake, or a layout this patch does not know
        return False
    if not hasattr(JobScheduler, "_schedule_reevalutation"):
        return False
    if getattr(JobScheduler._schedule_reevalutation, "parbench", False):
        return True

    def schedule_reevaluation(self, delay) -> None:
        pending = getattr(self, "_parbench_timer", None)
        if pending is not None and pending.is_alive():
            return  # its round comes within `delay` anyway
        self._parbench_timer = threading.Timer(delay, self._open_jobs.release)
        self._parbench_timer.daemon = True  # a timer left at the end must not hold Snakemake's exit
        self._parbench_timer.start()

    schedule_reevaluation.parbench = True
    JobScheduler._schedule_reevalutation = schedule_reevaluation
    return True
