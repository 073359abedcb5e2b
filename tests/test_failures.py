"""Failures become records with their cause, soon; what is not a result fails before the run or
loudly. A bug in parbench is told apart from a failed run by the driver's exit code."""

import os
import socket
import textwrap
import time

import pytest
from conftest import Leftovers, make_spec, scratch_workflow, snakemake

from parbench.run.driver import BUG_EXIT
from parbench.run.supervise import DriverError, NotWritable, supervise


def free_port() -> int:
    """A loopback port where nothing listens (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("backend,address", [("ray", "127.0.0.1:{port}"), ("dask", "tcp://127.0.0.1:{port}")])
def test_unreachable_cluster_is_a_failed_run_naming_it(tmp_path, backend, address):
    """Ray retried until the run's time limit (a `timeout` record, 30 minutes by default) and Dask
    raised after 30 s as if parbench had a bug. Both are `failed` runs that say what they could not reach."""
    address = address.format(port=free_port())
    spec = make_spec(backend, "matmul", 2, options={"address": address}, limits={"timeout_s": 240})
    t0 = time.monotonic()
    with Leftovers() as left:
        record = supervise(spec, tmp_path / "record.json", tmp_path / "run.log")
    print(f"{backend} at {address}: {record['status']} after {time.monotonic() - t0:.1f} s: {record['reason']}")
    assert record["status"] == "failed", record["reason"]
    assert "could not connect" in record["reason"] and address in record["reason"], record["reason"]
    assert record["cluster"]["kind"] == "external"
    assert left.problems() == {}


def test_unwritable_record_fails_before_the_run(tmp_path):
    """A record that cannot be written must not cost a whole run first. (A file where the record's
    folder should be: not writable even for root, who ignores permission bits.)"""
    in_the_way = tmp_path / "runs"
    in_the_way.write_text("")
    spec = make_spec("serial", "matmul", 1, batches=100_000, limits={"timeout_s": 120})
    log = tmp_path / "run.log"
    with Leftovers() as left, pytest.raises(NotWritable, match="cannot write the run's record"):
        supervise(spec, in_the_way / "trial-1.json", log)
    assert not log.exists(), "a driver was started"
    assert left.problems() == {}


def test_library_that_prints_a_traceback_and_exits_is_a_failed_run(tmp_path, monkeypatch):
    """A library beneath the driver may print a traceback and exit the process (Ray does when it
    loses its GCS). That is a failed run, not a bug in parbench: only BUG_EXIT says bug."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import sys, traceback
            import parbench.run.runner

            def run(spec, *args, **kwargs):
                try:
                    raise ConnectionError("lost the cluster")
                except ConnectionError:
                    traceback.print_exc()
                sys.exit(1)

            parbench.run.runner.run = run
            """
        )
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])))
    with Leftovers() as left:
        record = supervise(make_spec("serial", "matmul", 1), tmp_path / "record.json", tmp_path / "run.log")
    assert record["status"] == "failed"
    assert "exited with code 1" in record["reason"] and "ConnectionError: lost the cluster" in record["reason"], record["reason"]
    assert left.problems() == {}


def test_driver_bug_fails_the_job_with_its_whole_traceback_in_the_log(tmp_path):
    """The job's own stderr and the driver's output share the run's log: the driver's traceback
    must survive whole, head first, above the job's DriverError."""
    config = {"backends": ["serial"], "workers": [1], "trials": 1, "workloads": {"matmul": {"n": 64, "k": 4, "batches": 1}}}
    work = scratch_workflow(tmp_path, config)
    driver = work / "src" / "parbench" / "run" / "driver.py"
    bug = '    raise RuntimeError("an injected bug")\n    record = runner.run('
    driver.write_text(driver.read_text().replace("    record = runner.run(", bug, 1))
    result = snakemake(work, "results/runs/matmul/serial/workers-1/trial-1.json", "--cores", "1", timeout=300)
    assert result.returncode != 0
    log = (work / "results" / "logs" / "runs" / "matmul" / "serial" / "workers-1" / "trial-1.log").read_text()
    assert log.count("Traceback (most recent call last):") == 2, log  # the driver's, then the job's
    driver_part = log[log.index("Traceback (most recent call last):") : log.index("DriverError")]
    assert 'parbench/run/driver.py", line' in driver_part and "RuntimeError: an injected bug" in driver_part, log
    assert f"exited with code {BUG_EXIT}" in log
    assert not (work / "results" / "runs").exists() or not list((work / "results" / "runs").rglob("*.json"))


def test_parbench_bug_is_told_by_the_exit_code(tmp_path):
    spec = make_spec("serial", "matmul", 1)
    spec["workload"] = "no-such-workload"
    with pytest.raises(DriverError, match=f"code {BUG_EXIT}"):
        supervise(spec, tmp_path / "record.json", tmp_path / "run.log")
