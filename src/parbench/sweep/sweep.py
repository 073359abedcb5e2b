"""Sweep-level care, in the main Snakemake process only: a sweep killed with SIGKILL leaves
Snakemake's lock behind, and the next plain `snakemake` must resume it instead of asking for
--unlock; one sweep at a time in a folder; a run that finished is kept even if Snakemake was
interrupted meanwhile; and Snakemake's scheduler must not compete with the benchmark it schedules."""

import contextlib
import fcntl
import importlib
import os
import threading
from pathlib import Path

import psutil

_held = []  # the folder's sweep lock, open (so held) for the life of this Snakemake process


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


def one_sweep_here(workdir) -> str | None:
    """Take this folder's sweep lock for the life of this process. Snakemake's own lock is
    check-then-write, so two sweeps started together can both pass it; this one is atomic.
    Returns None once held, else who holds it."""
    if _held:
        return None
    path = Path(workdir, ".snakemake", "parbench-sweep.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return path.read_text().strip() or "another Snakemake"
    except OSError:
        pass  # no locks on this file system (some network ones): Snakemake's own lock has to do
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"snakemake pid {os.getpid()}\n".encode(), 0)
    _held.append(fd)
    return None


def scheduler_class():
    """Snakemake's JobScheduler (its module moved in 9.10), or None."""
    for module in ("snakemake.scheduling.job_scheduler", "snakemake.scheduler"):
        with contextlib.suppress(ImportError, AttributeError):
            return importlib.import_module(module).JobScheduler
    return None


def keep_finished_on_interrupt() -> bool:
    """Record runs that finish after Snakemake was interrupted; True if patched.

    On SIGINT Snakemake waits for its running jobs but no longer records those that succeed, so
    their outputs stay marked incomplete and the next sweep redoes them. Finishing them after
    the scheduler stopped keeps them (their outputs and metadata are complete)."""
    JobScheduler = scheduler_class()
    if JobScheduler is None or not all(hasattr(JobScheduler, a) for a in ("schedule", "_finish_jobs")):
        return False
    if getattr(JobScheduler.schedule, "parbench", False):
        return True
    schedule = JobScheduler.schedule

    def schedule_then_keep_finished(self):
        success = schedule(self)
        with self._lock:
            if getattr(self, "_tofinish", None):
                self._finish_jobs()
        return success

    schedule_then_keep_finished.parbench = True
    JobScheduler.schedule = schedule_then_keep_finished
    return True


def one_reevaluation_timer() -> bool:
    """Keep at most one of Snakemake's scheduler re-evaluation timers pending; True if patched.

    Snakemake 9 starts a new 1-second timer after every scheduling round and each timer's round
    starts another, so chains pile up, one per finished job (snakemake/snakemake#3744). With the
    runs waiting on `benchmark_slot`, the scheduler then spins beside the timed run: 40 ILP solves
    a second (each a `cbc` process) late in the default sweep, and serial matmul ran 33 % slower.
    """
    JobScheduler = scheduler_class()
    if JobScheduler is None or not hasattr(JobScheduler, "_schedule_reevalutation"):
        return False  # not inside Snakemake, or a layout this patch does not know
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
