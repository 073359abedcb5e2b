"""The scheduler patch: however often Snakemake asks for a re-evaluation, one timer is pending."""

import threading
import time

from snakemake.scheduling.job_scheduler import JobScheduler

from parbench import sweep


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
