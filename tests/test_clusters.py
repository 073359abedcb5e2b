"""The pipeline against clusters started outside it, as on several machines: a Ray head with a
second node joining it, and a Dask scheduler with two workers started separately. Each node has
a loopback address of its own (127.0.0.2, 127.0.0.3), so nodes are told apart as on a network.
Records must say where they ran, on which nodes, and stay verified."""

import contextlib
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
NODE_ADDRESSES = ["127.0.0.2", "127.0.0.3"]  # one per node; all of 127.0.0.0/8 is this machine's loopback
RAY_STORE_BYTES = 100 * 1000**2  # each Ray node's object store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {host}:{port}")


def stop(procs: list[subprocess.Popen], grace_s: float = 10) -> None:
    """Stop every process group together: SIGTERM to all, last started first, then SIGKILL to those still there after `grace_s`."""
    for proc in reversed(procs):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in reversed(procs):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def ray_env() -> dict:
    env = {**snakemake_env(), "RAY_USAGE_STATS_ENABLED": "0"}
    # As parbench.backends.ray does: with a token file, `ray start --head` requires the token from
    # every node and driver, and a joining node sends it only in token mode.
    if (Path.home() / ".ray" / "auth_token").exists():
        env["RAY_AUTH_MODE"] = "token"
    return env


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray head and a second node joining it, one CPU each (own session, own temp dir: stopping
    them must not touch other Ray instances). Yields the head's address."""
    head_ip, node_ip = NODE_ADDRESSES
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # short: Ray's socket paths live under it
    procs = []

    def start(*args):
        command = [str(BIN / "ray"), "start", *args, "--block", "--num-cpus", "1", f"--object-store-memory={RAY_STORE_BYTES}"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        procs.append(subprocess.Popen([*command, "--disable-usage-stats"], env=ray_env(), start_new_session=True, **quiet))

    try:
        start("--head", "--node-ip-address", head_ip, "--port", str(port), "--include-dashboard=false", f"--temp-dir={temp_dir}")
        wait_for_port(port, head_ip, timeout=120)
        start("--address", f"{head_ip}:{port}", "--node-ip-address", node_ip)
        wait_for_ray_nodes(f"{head_ip}:{port}", 2)
        yield f"{head_ip}:{port}"
    finally:
        stop(procs, grace_s=2)  # `ray start --block` takes half a minute to end on SIGTERM; the rest is killed below
        # Whatever of this cluster's session remains (its workers run in process groups of their own).
        rest = [p for p in psutil.process_iter(["cmdline"]) if temp_dir in " ".join(p.info["cmdline"] or [])]
        for proc in rest:
            proc.kill()
        psutil.wait_procs(rest, timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def wait_for_ray_nodes(address: str, count: int, timeout: float = 120) -> None:
    """Until the cluster at `address` counts `count` live nodes (a joining node takes seconds)."""
    probe = f"import ray; ray.init(address={address!r}, log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", probe], env=ray_env(), capture_output=True, text=True, timeout=120)
        if out.stdout.strip() == str(count):
            return
        time.sleep(1)
    raise TimeoutError(f"the Ray cluster at {address} did not reach {count} nodes: {out.stdout} {out.stderr[-2000:]}")


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes, each worker on a node address of its own."""
    port = free_port()
    logs = tmp_path_factory.mktemp("dask")
    env = snakemake_env()
    procs = []

    def start(name, command):
        procs.append(
            subprocess.Popen(command, env=env, stdout=open(logs / f"{name}.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
        )

    try:
        start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"])
        wait_for_port(port)
        for i, host in enumerate(NODE_ADDRESSES):
            start(f"worker-{i}", [str(BIN / "dask"), "worker", f"tcp://127.0.0.1:{port}", "--host", host, "--nthreads=1", "--no-dashboard"])
        yield f"tcp://127.0.0.1:{port}"
    finally:
        stop(procs)


@pytest.fixture(scope="module")
def external_sweep(tmp_path_factory, ray_cluster, dask_cluster, seed_machine):
    """One pipeline run with Ray and Dask pointed at the clusters above; returns (config, records)."""
    config = {
        "backends": ["ray", "dask"],
        "workers": [2],
        "trials": 1,
        "workloads": {
            "matmul": {"n": 256, "k": 8, "batches": 2, "warmup_batches": 1},
            "ner": {"texts": TEXTS, "batches": 2, "warmup_batches": 1},
        },
        "ray": {"address": ray_cluster},
        "dask": {"address": dask_cluster},
        "limits": {"timeout_s": 300},
    }
    work = scratch_workflow(tmp_path_factory.mktemp("external"), config)
    seed_machine(work)
    result = snakemake(work, "--cores", "2", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    records = read_records(work)
    assert len(records) == 4
    # The clusters outlive the runs that joined them: the supervisor stops only the run's own processes.
    for address in (ray_cluster, dask_cluster):
        host, port = address.removeprefix("tcp://").rsplit(":", 1)
        wait_for_port(int(port), host, timeout=5)
    return config, records


def check_external(config: dict, records: list[dict], backend: str) -> list[dict]:
    """The checks both clusters share; returns the backend's records."""
    ours = [r for r in records if r["backend"] == backend]
    assert {r["workload"] for r in ours} == {"matmul", "ner"}
    for r in ours:
        where = f"{r['workload']}/{backend}"
        assert r["status"] == "ok" and r["verified"], (where, r["reason"])
        cluster = r["cluster"]
        assert cluster["kind"] == "external" and cluster["address"] == config[backend]["address"], where
        # The workers' memory is outside the driver's tree: what the cluster reports stands beside it.
        assert cluster["workers_in_memory_tree"] is False and r["memory"]["cluster_reported"], where
        assert cluster["slurm_job_id"] is None, where
        # Tasks ran on both nodes, and the record says so. (Ray's plain tasks, matmul, follow Ray's
        # default scheduling, which keeps them beside their input while that node has room: one
        # node or two, as it chose; its actors, ner, take a CPU each and spread.)
        spread = not (backend == "ray" and r["workload"] == "matmul")
        assert cluster["nodes_used"] == 2 if spread else cluster["nodes_used"] in (1, 2), (where, cluster)
        # Every batch's tasks, warm-up batches included (more of them while some worker had not run a task yet).
        batches = len(r["timings"]["warmup_s"]) + len(r["timings"]["batch_s"])
        assert sum(cluster["tasks_per_node"].values()) == batches * r["tasks_per_batch"], (where, cluster)
        assert r["cleanup"]["processes_stopped"] == 0, where
    return ours


def test_ray_runs_on_two_nodes(external_sweep):
    config, records = external_sweep
    for r in check_external(config, records, "ray"):
        # Ray names a node by its id; the object store is both nodes' stores together.
        assert all(len(node) == 56 for node in r["cluster"]["tasks_per_node"]), r["cluster"]
        reported = r["memory"]["cluster_reported"]
        assert reported["object_store_capacity_bytes"] == 2 * RAY_STORE_BYTES, reported
        assert 0 <= reported["object_store_used_bytes"] <= reported["object_store_capacity_bytes"]


def test_dask_runs_on_separately_started_workers(external_sweep):
    config, records = external_sweep
    for r in check_external(config, records, "dask"):
        # Dask names a node by its worker's host; each worker reports its own memory.
        assert set(r["cluster"]["tasks_per_node"]) == set(NODE_ADDRESSES), r["cluster"]
        reported = r["memory"]["cluster_reported"]
        assert reported["workers"] == 2 and reported["workers_pss_bytes"] > 0, reported
