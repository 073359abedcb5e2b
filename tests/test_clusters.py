"""The pipeline against clusters started outside it: a real Ray head and a real Dask scheduler
with workers, on loopback. Records must say where they ran and stay verified."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from conftest import TEXTS, read_records, scratch_workflow, snakemake, snakemake_env

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head of its own (own session, own temp dir): stopping it must not touch other Ray instances."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # short: Ray's socket paths live under it
    env = {**snakemake_env(), "RAY_USAGE_STATS_ENABLED": "0"}
    start = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--num-cpus",
        "2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    head = subprocess.Popen(start, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, timeout=120)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        # Whatever of this head's session remains (its workers run in process groups of their own).
        rest = [p for p in psutil.process_iter(["cmdline"]) if temp_dir in " ".join(p.info["cmdline"] or [])]
        for proc in rest:
            proc.kill()
        psutil.wait_procs(rest, timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    port = free_port()
    logs = tmp_path_factory.mktemp("dask")
    env = snakemake_env()
    procs = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=env,
            stdout=open(logs / "scheduler.log", "w"),
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        wait_for_port(port)
        procs.append(
            subprocess.Popen(
                [str(BIN / "dask"), "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                env=env,
                stdout=open(logs / "workers.log", "w"),
                stderr=subprocess.STDOUT,
            )
        )
        yield f"tcp://127.0.0.1:{port}"
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_pipeline_runs_against_external_clusters(tmp_path, ray_head, dask_cluster):
    config = {
        "backends": ["ray", "dask"],
        "workers": [2],
        "trials": 1,
        "workloads": {
            "matmul": {"n": 256, "k": 8, "batches": 2, "warmup_batches": 1},
            "ner": {"texts": TEXTS, "batches": 2, "warmup_batches": 1},
        },
        "ray": {"address": ray_head},
        "dask": {"address": dask_cluster},
        "limits": {"timeout_s": 300},
    }
    work = scratch_workflow(tmp_path, config)
    result = snakemake(work, "--cores", "2", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]

    records = read_records(work)
    assert len(records) == 4
    for r in records:
        where = f"{r['workload']}/{r['backend']}"
        assert r["status"] == "ok" and r["verified"], (where, r["reason"])
        address = config[r["backend"]]["address"]
        assert r["cluster"] == {"kind": "external", "address": address, "workers_in_memory_tree": False}, where
        # The workers' memory is outside the driver's tree: what the cluster reports stands beside it.
        assert r["memory"]["cluster_reported"], where
        assert r["cleanup"]["processes_stopped"] == 0, where
    dask_ner = next(r for r in records if r["backend"] == "dask" and r["workload"] == "ner")
    assert dask_ner["memory"]["cluster_reported"]["workers"] == 2
    assert dask_ner["memory"]["cluster_reported"]["workers_pss_bytes"] > 0
    # The clusters outlive the runs that joined them: the supervisor stops only the run's own processes.
    for address in (ray_head, dask_cluster):
        wait_for_port(int(address.rsplit(":", 1)[1]), timeout=5)
