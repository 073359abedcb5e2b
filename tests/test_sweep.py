"""Sweep-level care: the scheduler patches, only the main Snakemake process touching locks, and
one sweep at a time in a folder."""

import fcntl
import threading
import time

from conftest import scratch_workflow, snakemake
from snakemake.scheduling.job_scheduler import JobScheduler

from parbench.sweep import sweep

CONFIG = {"backends": ["serial"], "workers": [1], "trials": 1, "workloads": {"matmul": {"n": 64, "k": 4, "batches": 1}}}


class FakeScheduler:
    def __init__(self):
        self._open_jobs = threading.Semaphore(0)


def test_one_reevaluation_timer_keeps_one_chain():
    assert sweep.one_reevaluation_timer()
    assert sweep.one_reevaluation_timer()  # idempotent: a second parse does not wrap it twice
    scheduler = FakeScheduler()
    for _ in range(50):  # Snakemake's unpatched method would start 50 timers, so 50 rounds
        JobScheduler._schedule_reevalutation(scheduler, 0.2)
    scheduler._parbench_timer.join()
    time.sleep(0.1)  # any other timer, had one started, fired by now (all were due at 0.2 s)
    rounds = 0
    while scheduler._open_jobs.acquire(blocking=False):
        rounds += 1
    assert rounds == 1
    assert scheduler._parbench_timer.daemon


def test_interrupt_patch_is_applied_once():
    assert sweep.keep_finished_on_interrupt()
    patched = JobScheduler.schedule
    assert sweep.keep_finished_on_interrupt()  # idempotent: a second parse does not wrap it twice
    assert JobScheduler.schedule is patched and patched.parbench


def test_remote_job_parse_leaves_locks_alone(tmp_path):
    """A job's own Snakemake (SLURM: --mode remote --nolock) sees no other Snakemake on its node:
    it must not take the sweep's locks for stale. The main process still clears stale ones."""
    work = scratch_workflow(tmp_path, CONFIG)
    lock = work / ".snakemake" / "locks" / "0.input.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    remote = snakemake(work, "--mode", "remote", "--nolock", "-n", timeout=300)
    assert remote.returncode == 0, remote.stdout[-3000:]
    assert lock.exists() and "stale" not in remote.stdout
    main = snakemake(work, "-n", timeout=300)
    assert main.returncode == 0 and "removed stale Snakemake locks" in main.stdout, main.stdout[-3000:]
    assert not lock.exists()


def test_second_sweep_in_a_folder_stops_with_a_message(tmp_path):
    """Snakemake's own lock is check-then-write: two sweeps started together can both pass it. The
    folder's sweep lock (held here as a first sweep would hold it) stops the second before any job."""
    work = scratch_workflow(tmp_path, CONFIG)
    path = work / ".snakemake" / "parbench-sweep.lock"
    path.parent.mkdir(parents=True)
    with open(path, "w") as held:
        held.write("snakemake pid 12345\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        second = snakemake(work, "--cores", "2", timeout=300)
    assert second.returncode != 0
    assert "another sweep runs in this folder (snakemake pid 12345)" in second.stdout, second.stdout[-3000:]
    assert not (work / "results" / "runs").exists(), "the second sweep ran jobs"
    assert not list((work / ".snakemake" / "locks").glob("*.lock")), "the stopped sweep left Snakemake's lock"
