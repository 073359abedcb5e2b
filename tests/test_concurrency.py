"""Two sweeps at once: no two timed runs overlap on one machine, whatever started them. A second
sweep in the same folder stops with a message; one in another folder waits for the machine's
lock of timed runs, saying so."""

import fcntl
import os
import subprocess
import time

import pytest
from conftest import SNAKEMAKE, Leftovers, overlaps, processes_with_token, read_records, scratch_workflow, snakemake_env

from parbench import cleanup

pytestmark = pytest.mark.slow

CONFIG = {
    "backends": ["serial", "multiprocessing-shared"],
    "workers": [1, 2],
    "trials": 1,
    "workloads": {"matmul": {"n": 256, "k": 8, "batches": 2, "warmup_batches": 1}},
    "limits": {"timeout_s": 300},
}
N_RUNS = 4
WAITING = "waiting for another timed run on this machine"


def start(work, log_name: str) -> subprocess.Popen:
    log = open(work / log_name, "w")
    cmd = [str(SNAKEMAKE), "--cores", "2", "--until", "run"]
    return subprocess.Popen(cmd, cwd=work, env=snakemake_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_a_run_waits_for_the_machines_lock(tmp_path):
    """While something else holds the lock of timed runs (here the test, as another sweep's
    supervisor would), a sweep's run waits, says so, and starts only once it is released."""
    work = scratch_workflow(tmp_path, {**CONFIG, "backends": ["serial"], "workers": [1]})
    with Leftovers() as left:
        held = cleanup._open_lock()
        try:
            fcntl.flock(held, fcntl.LOCK_EX)
            sweep = start(work, "sweep.log")
            deadline = time.monotonic() + 300  # a limit, not a measurement
            while WAITING not in (work / "sweep.log").read_text() and sweep.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert WAITING in (work / "sweep.log").read_text(), (work / "sweep.log").read_text()[-3000:]
            assert not any("parbench.run.driver" in " ".join(p.cmdline()) for p in processes_with_token(left.token)), "a run started"
            released = time.time()
        finally:
            os.close(held)
        assert sweep.wait(timeout=300) == 0, (work / "sweep.log").read_text()[-3000:]
        assert left.problems() == {}
    (record,) = read_records(work)
    assert record["status"] == "ok" and record["started_at"] >= released


def test_two_sweeps_started_together_never_overlap(tmp_path):
    """Two folders and twice the same folder, all four started at the same instant: every run of
    the two folders is done once, none overlapping another; the second sweep of a folder stops
    with a message (Snakemake's lock, or parbench's where Snakemake's let both through)."""
    works = [scratch_workflow(tmp_path / name, CONFIG) for name in ("a", "b")]
    with Leftovers() as left:
        sweeps = [start(work, f"sweep-{i}.log") for work in works for i in (1, 2)]
        codes = [s.wait(timeout=900) for s in sweeps]
        assert left.problems() == {}
    for work, pair in zip(works, (codes[:2], codes[2:])):
        outputs = [(work / f"sweep-{i}.log").read_text() for i in (1, 2)]
        assert sorted(c == 0 for c in pair) == [False, True], outputs
        stopped = outputs[pair.index(next(c for c in pair if c != 0))]
        assert "another sweep runs in this folder" in stopped or "cannot be locked" in stopped, stopped[-3000:]
    runs = [r for work in works for r in read_records(work)]
    assert len(runs) == 2 * N_RUNS and all(r["status"] == "ok" for r in runs)
    assert overlaps(runs) == []
