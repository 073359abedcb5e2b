"""The memory sampler sees the whole process tree and shared memory; the BLAS thread policy."""

import json
import os
import subprocess
import sys
import textwrap
import time
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import BACKENDS, make_spec

from parbench import backends
from parbench.run import measure, runner
from parbench.run.measure import TreeSampler, shmem_bytes
from parbench.run.supervise import SNAKEMAKE_THREAD_VARS, supervise

MIB = 2**20
TOLERANCE = 0.15

# A process that imports numpy, says "up", waits, then allocates and touches ALLOC bytes (or maps
# and reads every page of the /dev/shm block SHM), says "ready" and holds it until its stdin closes.
# With DEPTH > 1 it does this through a child of its own (so the memory is a grandchild's).
HOLDER = textwrap.dedent(
    r"""
    import mmap, subprocess, sys
    import numpy as np
    depth, alloc, shm = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    if depth > 1:
        child = subprocess.Popen([sys.executable, __file__, str(depth - 1), str(alloc), shm],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        print(child.stdout.readline().strip(), flush=True)  # up
        sys.stdin.readline(); child.stdin.write("go\n"); child.stdin.flush()
        print(child.stdout.readline().strip(), flush=True)  # ready
        sys.stdin.read(); child.stdin.close(); child.wait(); sys.exit()
    print("up", flush=True)
    sys.stdin.readline()
    if shm != "-":
        with open(f"/dev/shm/{shm}", "r+b") as f:  # mapped directly: SharedMemory() would start a resource tracker
            block = mmap.mmap(f.fileno(), 0)
        held = np.frombuffer(block, np.uint8)
        total = int(held[::4096].sum())  # one byte read per page: every page is mapped
    else:
        held = np.ones(alloc // 8)  # written: every page is touched
    print("ready", flush=True)
    sys.stdin.read()
    """
)

# The sampler in a fresh process (the root of the tree it measures, as the driver is in a run):
# phase "up" with the holder up, phase "held" once it holds its memory; prints the memory section.
# The steady phases are compared, not the peak of the transition between them.
# If SHM is given, the root maps and reads the block first, as the holder will.
SCENARIO = textwrap.dedent(
    r"""
    import json, mmap, subprocess, sys, time
    import numpy as np
    from parbench.run.measure import TreeSampler
    holder, depth, alloc, shm = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    if shm != "-":
        with open(f"/dev/shm/{shm}", "r+b") as f:
            block = mmap.mmap(f.fileno(), 0)
        int(np.frombuffer(block, np.uint8)[::4096].sum())
    sampler = TreeSampler(period_s=0.02).start()

    def settle(n=4):  # n more RSS samples and a PSS reading in this phase (a wait, not a measurement)
        target = sampler.rss_samples + n
        while sampler.rss_samples < target or sampler.phases.get(sampler.current, {}).get("pss") is None:
            time.sleep(0.02)

    proc = subprocess.Popen([sys.executable, holder, depth, alloc, shm], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    sampler.phase("up")
    settle()
    sampler.phase("taking")  # while the holder allocates or maps: processes are read one after another, not at one instant
    proc.stdin.write("go\n"); proc.stdin.flush()
    assert proc.stdout.readline().strip() == "ready"
    sampler.phase("held")
    settle()
    sampler.phase("after")
    proc.stdin.close(); proc.wait()
    print(json.dumps(sampler.stop()))
    """
)


def scenario(tmp_path, depth: int, alloc: int = 0, shm: str = "-") -> dict:
    holder, script = tmp_path / "holder.py", tmp_path / "scenario.py"
    holder.write_text(HOLDER)
    script.write_text(SCENARIO)
    out = subprocess.run(
        [sys.executable, str(script), str(holder), str(depth), str(alloc), shm], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def rise(memory: dict, key: str) -> int:
    phases = memory["phases"]
    return phases["held"][f"peak_{key}_bytes"] - phases["up"][f"peak_{key}_bytes"]


@pytest.mark.parametrize("depth", [1, 2], ids=["child", "grandchild"])
def test_sampler_sees_memory_of_descendants(tmp_path, depth):
    size = 300 * MIB
    memory = scenario(tmp_path, depth, alloc=size)
    assert rise(memory, "pss") == pytest.approx(size, rel=TOLERANCE), f"PSS rose by {rise(memory, 'pss') / MIB:.0f} MiB"
    assert rise(memory, "rss") == pytest.approx(size, rel=TOLERANCE), f"RSS rose by {rise(memory, 'rss') / MIB:.0f} MiB"
    assert memory["peak_tree_pss_bytes"] >= memory["phases"]["held"]["peak_pss_bytes"]
    assert abs(rise(memory, "driver_rss")) < size / 2, "the root itself did not allocate it"


def test_shared_pages_count_once_in_pss_and_per_process_in_rss(tmp_path):
    """The root and its child map the same block: PSS (the record's headline for the tree) counts
    its pages once, RSS once per process. (PSS moves half of it from the root to the child.)"""
    size = 200 * MIB
    block = SharedMemory(create=True, size=size)
    try:
        np.ndarray((size,), np.uint8, buffer=block.buf)[:] = 1
        block.close()  # unmapped here: this process's share would dilute the tree's PSS
        memory = scenario(tmp_path, 1, shm=block.name)
    finally:
        block.close()
        block.unlink()
    assert rise(memory, "rss") == pytest.approx(size, rel=TOLERANCE)
    assert abs(rise(memory, "pss")) < TOLERANCE * size


def test_shared_memory_shows_in_peak_shm():
    """A touched shared-memory block shows in peak_shm_bytes. Shmem is system-wide and others
    share this machine, so a measurement disturbed by them is retried (a sampler that misses
    the block misses it every time)."""
    size = 256 * MIB
    seen = []
    for _ in range(3):
        sampler = TreeSampler(period_s=0.02)  # takes the Shmem baseline
        block = SharedMemory(create=True, size=size)
        try:
            np.ndarray((size,), np.uint8, buffer=block.buf)[:] = 1
            sampler.sample()
            peak = sampler.summary()["peak_shm_bytes"]
        finally:
            block.close()
            block.unlink()
        seen.append(peak)
        if peak == pytest.approx(size, rel=TOLERANCE):
            return
    pytest.fail(f"peak_shm_bytes {[p / MIB for p in seen]} MiB for a {size / MIB:.0f} MiB block")


def test_shmem_bytes_follows_a_file_in_dev_shm(tmp_path):
    """Shmem grows by what a process writes to /dev/shm and falls back when it is removed (other
    programs on the machine may move it a little meanwhile)."""
    path = Path("/dev/shm", f"parbench-test-{os.getpid()}")
    before = shmem_bytes()
    try:
        path.write_bytes(b"\1" * (64 * MIB))
        grown = shmem_bytes() - before
    finally:
        path.unlink(missing_ok=True)
    assert grown == pytest.approx(64 * MIB, abs=16 * MIB)
    assert shmem_bytes() - before == pytest.approx(0, abs=16 * MIB)


def test_memory_limit_calls_back_once():
    """Over the limit the sampler calls on_limit (once) with the tree's PSS."""
    calls = []
    sampler = TreeSampler(period_s=0.02, limit_bytes=1, on_limit=calls.append)
    sampler.sample()
    sampler.sample()
    assert len(calls) == 1 and calls[0] > 1
    sampler.stop()  # it holds a file open for each process of the tree
    quiet = []
    sampler = TreeSampler(period_s=0.02, limit_bytes=psutil.virtual_memory().total * 4, on_limit=quiet.append)
    sampler.sample()
    sampler.stop()
    assert quiet == []


def test_summary_before_any_sample_has_no_peaks():
    memory = TreeSampler().summary()
    assert memory["peak_tree_pss_bytes"] is None and memory["samples"] == 0


# ---------------------------------------------------------------------------------------------
# The BLAS thread policy


@pytest.mark.parametrize(
    "in_driver,workers,cores,expected",
    [
        (True, 1, 8, 8),
        (True, 4, 8, 8),  # tasks in the driver, one after another: BLAS gets every core
        (False, 1, 8, 8),
        (False, 2, 8, 4),
        (False, 3, 8, 2),
        (False, 8, 8, 1),
        (False, 16, 8, 1),  # never zero
        (False, 2, 2, 1),
        (False, 3, 2, 1),
    ],
)
def test_auto_shares_physical_cores(in_driver, workers, cores, expected):
    assert runner.blas_threads("auto", in_driver, workers, cores) == expected


@pytest.mark.parametrize("in_driver", [True, False])
def test_library_default_leaves_blas_alone(in_driver):
    assert runner.blas_threads("library-default", in_driver, 2, 8) is None


@pytest.mark.parametrize("policy", [1, 3, 16])
@pytest.mark.parametrize("in_driver", [True, False])
def test_integer_policy_is_used_as_is(policy, in_driver):
    assert runner.blas_threads(policy, in_driver, 4, 8) == policy


def test_only_serial_runs_tasks_in_the_driver():
    assert {name for name in BACKENDS if backends.load(name).in_driver} == {"serial"}


@pytest.mark.parametrize("threads", [1, 2])
def test_worker_prepare_applies_the_policy(threads):
    """In a fresh process, worker.prepare(n) leaves numpy's BLAS with n threads and reports it."""
    code = f"from parbench import worker; print(worker.prepare({threads}), worker.blas_threads_now())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(threads), str(threads)]


# ---------------------------------------------------------------------------------------------
# What the sampler reads when: RSS often and cheaply, PSS as its cost allows


@pytest.mark.parametrize(
    "since,cost,rising,over,due",
    [
        (0.0, 0.001, False, True, True),  # past the memory limit: at once
        (0.05, 0.001, True, False, False),  # rising: at most 1 % of a core (0.1 s after a 1 ms sample)
        (0.1, 0.001, True, False, True),
        (0.1, 0.001, False, False, False),  # steady: at most measure.MAX_BUSY_SHARE of a core
        (0.001 / measure.MAX_BUSY_SHARE, 0.001, False, False, True),
    ],
)
def test_full_samples_keep_to_their_share_of_a_core(since, cost, rising, over, due):
    assert measure.full_due(since, cost, rising, over) is due


def test_rss_reads_between_full_samples_catch_a_peak_and_trigger_a_full_sample(tmp_path):
    """A child allocates 300 MiB while the last full sample was cheap and recent: the next tick reads the
    rise in RSS and takes a full sample (PSS) at the rising rate, not the steady one."""
    holder = tmp_path / "holder.py"
    holder.write_text(HOLDER)
    proc = subprocess.Popen(
        [sys.executable, str(holder), "1", str(300 * MIB), "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "up"
        sampler = TreeSampler(period_s=0.02)
        sampler.phase("held")
        sampler.sample()
        before = sampler.summary()["phases"]["held"]["peak_pss_bytes"]
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ready"
        while time.perf_counter() - sampler._full_at < sampler._full_cost / measure.RISING_SHARE:
            time.sleep(0.01)  # until a rise may be read (the steady rate would wait four times as long)
        sampler._tick()
        memory = sampler.summary()
    finally:
        proc.stdin.close()
        proc.wait()
    assert memory["rss_samples"] == 1 and memory["samples"] == 2, "the rise was read from statm and set off a full sample"
    assert memory["phases"]["held"]["peak_pss_bytes"] - before == pytest.approx(300 * MIB, rel=TOLERANCE)


def test_process_tree_follows_children_and_grandchildren():
    """The cheap listing (only new processes read) finds a grandchild, and drops it once it has ended."""
    tree = measure.ProcessTree(os.getpid())
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'input()'], stdin=0); print(p.pid, flush=True); p.wait()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    grandchild = int(child.stdout.readline())
    assert {child.pid, grandchild} <= set(tree.refresh())
    child.stdin.write("\n")
    child.stdin.close()
    child.wait()
    assert not {child.pid, grandchild} & set(tree.refresh())


def test_library_default_is_the_librarys_own_under_snakemakes_thread_variables(tmp_path, monkeypatch):
    """Snakemake sets OPENBLAS_NUM_THREADS=1 and its kin for every job; a run's driver must not inherit
    them, or `library-default` (the blog's uncontrolled setting) would be one thread everywhere."""
    clean_env = {k: v for k, v in os.environ.items() if k not in SNAKEMAKE_THREAD_VARS}
    default = subprocess.run(
        [sys.executable, "-c", "import numpy, threadpoolctl; print(threadpoolctl.threadpool_info()[0]['num_threads'])"],
        env=clean_env,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in SNAKEMAKE_THREAD_VARS:
        monkeypatch.setenv(name, "1")
    spec = make_spec("serial", "matmul", 1, blas_threads="library-default", n=64, k=4, batches=1)
    record = supervise(spec, tmp_path / "r.json", tmp_path / "r.log")
    assert record["status"] == "ok", record["reason"]
    assert record["blas_threads"] == int(default.stdout), "the library's own default, not Snakemake's 1"
    assert not any(name in record["environment"]["env"] for name in SNAKEMAKE_THREAD_VARS)


# ---------------------------------------------------------------------------------------------
# No PSS walk inside a timed batch (issue 20, item 6)

SLEEPY = """
import time

def data(params):
    return {}

def items(params, batch, n):
    return [0.2] * n

def task(state, sleep_s):
    time.sleep(sleep_s)
    return sleep_s
"""


def test_no_pss_walk_inside_a_timed_batch(tmp_path, monkeypatch):
    """Batches of 0.2 s, the sampler every 10 ms: RSS is read inside the timed batches, PSS
    (/proc/PID/smaps_rollup) never, yet the batch phase has its PSS, read just after a batch."""
    made = []
    init = TreeSampler.__init__

    def keep(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    walks = []
    full_info = psutil.Process.memory_full_info

    def spy(self):
        walks.append(made[-1].current)
        return full_info(self)

    monkeypatch.setattr(TreeSampler, "__init__", keep)
    monkeypatch.setattr(psutil.Process, "memory_full_info", spy)
    (tmp_path / "sleepy.py").write_text(SLEEPY)
    spec = make_spec("serial", "sleepy", 1, module=str(tmp_path / "sleepy.py"), batches=3, warmup_batches=1, period_s=0.01)
    record = runner.run(spec)
    assert record["status"] == "ok", record["reason"]
    assert walks and "batch" not in walks, walks
    batch = record["memory"]["phases"]["batch"]
    assert batch["peak_pss_bytes"] is not None and batch["peak_rss_bytes"] is not None


def test_the_memory_limit_is_checked_inside_a_timed_batch():
    """In a cheap phase the sampler reads RSS only, but RSS above what the limit allows still sets off a
    PSS reading and the limit's callback."""
    calls = []
    sampler = TreeSampler(period_s=0.02, limit_bytes=1, on_limit=calls.append, cheap_phases=("batch",))
    sampler.phase("batch")
    sampler._tick()
    assert len(calls) == 1 and sampler.samples == 1
    quiet = TreeSampler(period_s=0.02, limit_bytes=psutil.virtual_memory().total * 4, cheap_phases=("batch",))
    quiet.phase("batch")
    quiet._tick()
    assert quiet.samples == 0 and quiet.rss_samples == 1, "no PSS reading in a cheap phase below the limit"
    quiet.catch_up("batch")
    assert quiet.samples == 1 and quiet.summary()["phases"]["batch"]["peak_pss_bytes"] > 0
    sampler.stop()  # each holds a file open for each process of the tree
    quiet.stop()
