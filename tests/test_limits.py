"""Runs that end badly end as records (timeout, oom, failed) and leave nothing behind; a bug in
parbench fails loudly instead of becoming a record."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import Leftovers, make_spec

from parbench import records
from parbench.run.supervise import DriverError, supervise

GIB = 1024**3


def run(tmp_path, spec, during=None):
    """Supervise `spec`; `during(driver)` runs in a thread once the driver process exists.
    Returns (record, leftovers)."""
    out, log = tmp_path / "record.json", tmp_path / "run.log"
    errors = []
    with Leftovers() as left:
        thread = None
        if during is not None:
            thread = threading.Thread(target=_guarded, args=(during, errors), daemon=True)
            thread.start()
        try:
            record = supervise(spec, out, log)
        finally:
            if thread is not None:
                thread.join(timeout=60)
    assert errors == [], errors
    assert records.read(out) == record
    return record, left, log


def _guarded(fn, errors):
    try:
        fn(wait_for_driver())
    except Exception as error:  # noqa: BLE001  (reported by the test)
        errors.append(repr(error))


def wait_for_driver(timeout_s: float = 120) -> psutil.Process:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in psutil.Process().children():
            try:
                if "parbench.run.driver" in " ".join(proc.cmdline()):
                    return proc
            except psutil.Error:
                pass
        time.sleep(0.05)
    raise TimeoutError("no driver process appeared")


def partial_record(driver: psutil.Process) -> dict:
    """The record the driver has written so far (its path is the driver's last argument)."""
    try:
        with open(driver.cmdline()[-1]) as f:
            return json.load(f)
    except (OSError, ValueError, psutil.Error):
        return {}


def wait_until_batches_run(driver: psutil.Process, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and driver.is_running():
        if (partial_record(driver).get("timings") or {}).get("warmup_s"):
            return
        time.sleep(0.05)
    raise TimeoutError("the run ended or never got to its batches")


def pool_workers(driver: psutil.Process) -> list[psutil.Process]:
    """A forkserver Pool's workers: the forkserver's children."""
    servers = [p for p in driver.children() if "forkserver" in " ".join(p.cmdline())]
    return [w for s in servers for w in s.children()]


def busy_worker(workers: list[psutil.Process], timeout_s: float = 120) -> psutil.Process:
    """A worker that is running a task now (its CPU time advances)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = {w: sum(w.cpu_times()[:2]) for w in workers}
        time.sleep(0.1)
        for w, t in before.items():
            if sum(w.cpu_times()[:2]) - t > 0.02:
                return w
    raise TimeoutError("no worker got busy")


TIME_LIMIT_S = 3  # past a Pool's start; a Ray run may be killed in its start-up (either is a timeout)


def assert_clean(left: Leftovers) -> None:
    assert left.processes() == [], "processes of the run remain"
    assert left.shm() == [], "the run left entries in /dev/shm"
    assert left.cgroups() == [], "the run left its cgroups"


@pytest.mark.parametrize(
    "spec",
    [
        # the blog's ner: the model is loaded in every task, so 1000 batches take minutes
        pytest.param(make_spec("multiprocessing", "ner", 2, batches=1000, limits={"timeout_s": TIME_LIMIT_S}), id="multiprocessing-ner"),
        # Ray: killed during start-up or early batches; its raylet and GCS server must not survive
        pytest.param(make_spec("ray", "matmul", 2, batches=100_000, limits={"timeout_s": TIME_LIMIT_S}), id="ray-matmul"),
    ],
)
def test_time_limit_gives_timeout(tmp_path, spec):
    record, left, _ = run(tmp_path, spec)
    assert record["status"] == "timeout"
    assert "timeout_s" in record["reason"]
    assert record["verified"] is False
    assert len((record.get("timings") or {}).get("batch_s") or []) < spec["params"]["batches"]
    assert record["finished_at"] >= record["started_at"]
    assert_clean(left)


def test_memory_limit_gives_oom(tmp_path):
    """x is 4000 x 4000 float64 (122 MiB); pickled into every task and unpickled in two workers,
    the tree needs well over the 0.3 GiB limit, while the driver alone with x stays under it."""
    limit = 0.3
    spec = make_spec("multiprocessing", "matmul", 2, n=4000, k=8, batches=3, limits={"memory_gb": limit})
    record, left, _ = run(tmp_path, spec)
    assert record["status"] == "oom", record.get("reason")
    assert "memory_gb" in record["reason"]
    assert record["memory"]["peak_tree_pss_bytes"] > limit * GIB
    assert record["verified"] is False
    assert_clean(left)


# A driver that starts processes all the time, as a Pool replacing its killed workers does; it ends its run itself
# (the memory limit) or waits to be killed (the time limit).
SPAWNING = """
import subprocess, sys, threading, time
from parbench.run import driver

def spawn():
    while True:
        subprocess.Popen(["sleep", "60"])
        time.sleep(0.001)

threading.Thread(target=spawn, daemon=True).start()
time.sleep(0.3)
driver.end_run() if sys.argv[1] == "itself" else time.sleep(60)
"""


@pytest.mark.parametrize("ender", ["itself", "supervisor"])
def test_a_run_ended_leaves_no_process_its_driver_started_meanwhile(ender):
    """A child the driver started after its tree was listed outlived the run: a Pool's new workers and resource
    tracker kept the Pool's semaphores in /dev/shm (test_memory_limit_gives_oom, twice in five suites). The driver's
    process group goes at once, whether the driver ends the run (driver.end_run) or the supervisor does."""
    from parbench.run import supervise as supervisor

    with Leftovers() as left:
        proc = subprocess.Popen([sys.executable, "-c", SPAWNING, ender], start_new_session=True)  # as the supervisor starts it
        if ender == "supervisor":
            time.sleep(0.5)
            supervisor._kill(proc)
        proc.wait(timeout=60)
        survivors = left.processes(settle_s=1)
    # Its hundreds of killed children are now this (subreaper) process's zombies: reaped here, or every sampler
    # that later walks this process's tree holds a file open for each (the suite once passed 1024 files so).
    psutil.wait_procs([c for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE], timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert survivors == [], survivors


@pytest.mark.parametrize("files_open", [0, 1100])
def test_the_supervisor_sees_its_driver_end_without_waiting_out_its_poll(files_open):
    """The supervisor waits for its driver in steps (each checks the time limit and Snakemake's life); a step ends
    when the driver does, not at its end: Popen.wait's polling came about 25 ms late on every run. With over 1024
    files open (the suite's own process in CI) the exit is watched all the same (select.select refused such a file)."""
    import resource

    from parbench.run import supervise as supervisor

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if files_open + 64 > hard:
        pytest.skip(f"this process may open {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, files_open + 64), hard))
    extra = [os.open(os.devnull, os.O_RDONLY) for _ in range(files_open)]
    try:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
        with supervisor._exit_notice(proc) as ended:
            began = time.monotonic()
            ended(20)
            waited = time.monotonic() - began
    finally:
        for fd in extra:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert proc.poll() == 0, "the step ended before the driver"
    assert waited < 10, f"the step waited {waited:.0f} s of its 20 for a driver that ended after 0.3 s"


@pytest.mark.parametrize("backend", ["multiprocessing"])
def test_killed_worker_gives_failed(tmp_path, backend):
    """SIGKILL one Pool worker while batches run: the run must end soon as `failed` naming the
    dead worker (not hang until the time limit, which here is short so that a hang costs little)."""

    def kill_a_worker(driver):
        wait_until_batches_run(driver)
        workers = pool_workers(driver)
        assert len(workers) == 2, workers
        busy_worker(workers).send_signal(signal.SIGKILL)  # mid-task, as the OOM killer would

    spec = make_spec(backend, "ner", 2, batches=1000, limits={"timeout_s": 30})
    record, left, _ = run(tmp_path, spec, kill_a_worker)
    assert record["status"] == "failed", record.get("reason")
    assert record["reason"] and "died" in record["reason"]
    assert record["verified"] is False
    assert_clean(left)


def test_killed_driver_gives_failed(tmp_path):
    def kill_driver(driver):
        wait_until_batches_run(driver)
        driver.send_signal(signal.SIGKILL)

    spec = make_spec("multiprocessing-shared", "matmul", 2, batches=100_000, limits={"timeout_s": 240})
    record, left, _ = run(tmp_path, spec, kill_driver)
    assert record["status"] == "failed"
    assert "SIGKILL" in record["reason"]
    assert record["verified"] is False
    assert record["timings"]["startup_s"] is not None, "the partial record's timings are kept"
    assert_clean(left)


def test_normal_run_leaves_nothing(tmp_path):
    record, left, _ = run(tmp_path, make_spec("multiprocessing-shared", "matmul", 2))
    assert record["status"] == "ok" and record["verified"] is True
    assert_clean(left)


def test_parbench_bug_raises_instead_of_a_record(tmp_path):
    """A spec that config validation would have refused (unknown workload) makes the driver raise:
    that is a bug in parbench, so the job must fail, not produce a record."""
    spec = make_spec("serial", "matmul", 1)
    spec["workload"] = "no-such-workload"
    out, log = tmp_path / "record.json", tmp_path / "run.log"
    with Leftovers() as left:
        with pytest.raises(DriverError) as raised:
            supervise(spec, out, log)
    assert not out.exists()
    assert str(log) in str(raised.value)
    assert "Traceback" in log.read_text() and "no-such-workload" in log.read_text()
    assert_clean(left)


def test_driver_error_with_unknown_backend(tmp_path):
    spec = make_spec("serial", "matmul", 1)
    spec["backend"] = "no-such-backend"
    with pytest.raises(DriverError):
        supervise(spec, tmp_path / "record.json", tmp_path / "run.log")
    assert not (tmp_path / "record.json").exists()


def test_leftovers_check_finds_a_surviving_process():
    """The check itself can fail: a process started in the block and still alive is found."""
    with Leftovers() as left:
        proc = psutil.Popen(["sleep", "30"], env={**os.environ})
    try:
        assert any(str(proc.pid) in p for p in left.processes(settle_s=0))
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("kind", ["semaphore", "shared_memory"])
def test_shm_cleanup_spares_entries_in_use(kind):
    """The supervisor removes only what nobody uses any more: a live process's named semaphore or
    shared-memory block (another sweep, another program on this machine) must survive it."""
    import multiprocessing
    from multiprocessing.shared_memory import SharedMemory

    from parbench import cleanup

    before = cleanup.shm_entries()
    if kind == "semaphore":
        held = multiprocessing.get_context("forkserver").Semaphore(0)  # a named POSIX semaphore, kept open
        name = "sem." + held._semlock.name.lstrip("/")
    else:
        held = SharedMemory(create=True, size=1 << 20)
        name = held.name
    try:
        assert name in cleanup.shm_entries()
        removed = cleanup.remove_shm(before)
        assert name not in removed and name in cleanup.shm_entries(), f"{name}, in use here, was removed"
    finally:
        if kind == "shared_memory":
            held.close()
            held.unlink()
    # Once nobody uses it, it is the run's leftover and goes.
    if kind == "shared_memory":
        leftover = SharedMemory(create=True, size=1 << 20)
        leftover.close()
        assert leftover.name in cleanup.remove_shm(before)
        from multiprocessing import resource_tracker

        resource_tracker.unregister(leftover._name, "shared_memory")


def test_time_limit_leaves_no_temp_folder(tmp_path, monkeypatch):
    """A multiprocessing-shared driver killed at the time limit leaves its pymp-* folder (forkserver's socket); the supervisor
    removes it."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # the run's own: other programs' pymp-* folders stay out of it
    monkeypatch.setattr(tempfile, "tempdir", None)
    spec = make_spec("multiprocessing-shared", "matmul", 2, batches=100_000, limits={"timeout_s": TIME_LIMIT_S})
    record, left, _ = run(tmp_path, spec)
    assert record["status"] == "timeout" and record["timings"]["startup_s"] is not None, "the pool was up: its driver had made its folder"
    assert sorted(p.name for p in tmp.iterdir()) == []
    assert [Path(p).parent for p in record["cleanup"]["temp_removed"]] == [tmp]
    assert_clean(left)
