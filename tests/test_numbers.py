"""The numbers around a run: the CPU time of its whole process tree, the exact peak memory its cgroup
was charged, the machine's state (load, steal, the CPU other processes took) and the busy-machine
flag, each against known work."""

import os
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import OFFERED, Leftovers, make_spec

from parbench import cgroups, cleanup, stats
from parbench.report import claims
from parbench.run.supervise import supervise

MIB = 2**20
# cgroup CPU counters take in a running thread's time at scheduler ticks, /proc's in 10 ms ticks: per batch,
# a figure may be off by about a tick per running thread at each end.
TICKS_S = 0.05


needs_cgroups = pytest.mark.skipif(
    None in OFFERED.values() and os.environ.get("CI") != "true",
    reason=f"this machine offers no memory or CPU cgroup to a run: {OFFERED}",
)

# Each task starts a child that burns `cpu_s` seconds of CPU and ends: CPU of processes that ended
# before the run did, which only whole-tree accounting sees.
BURN = textwrap.dedent(
    '''
    """Each task: a child process that burns cpu_s seconds of CPU, then ends."""
    import subprocess, sys

    CHILD = "import time\\nend = time.process_time() + {}\\nwhile time.process_time() < end:\\n    sum(range(10000))\\n"

    def data(params):
        return {}

    def items(params, batch, n):
        return [params["cpu_s"]] * n

    def task(state, cpu_s):
        subprocess.run([sys.executable, "-c", CHILD.format(cpu_s)], check=True)
        return cpu_s
    '''
)


BURN_S = 0.25  # each child's CPU: five ticks of TICKS_S, and 3 s for the run's twelve children


def burn_spec(tmp_path, cpu_s=BURN_S):
    module = tmp_path / "burn.py"
    module.write_text(BURN)
    return make_spec("serial", "burn", 1, module=str(module), cpu_s=cpu_s, tasks_per_batch=2, batches=2, warmup_batches=1)


def run(spec, tmp_path, name="r"):
    with Leftovers() as left:
        record = supervise(spec, tmp_path / f"{name}.json", tmp_path / f"{name}.log")
    assert record["status"] == "ok", record["reason"]
    assert left.problems() == {}, "the run left something behind (its cgroups included)"
    return record


@pytest.fixture
def no_cgroups(monkeypatch):
    """Runs as on a machine that offers no cgroup to this user."""
    monkeypatch.setattr(cgroups, "make", lambda kind, name, where=None: f"no {kind} cgroup here (the test says so)")


@pytest.mark.parametrize("groups", ["cgroups", "without"])
def test_tree_cpu_counts_processes_that_ended_before_the_run(tmp_path, request, groups):
    """Six tasks, each a child that burns BURN_S of CPU and exits: the tree's CPU holds them, per
    timed batch (two tasks, and little more: a child's interpreter start-up, the driver waiting) and
    over the whole run, though the driver itself hardly used any."""
    if groups == "without":
        request.getfixturevalue("no_cgroups")
    elif None in OFFERED.values() and os.environ.get("CI") != "true":
        pytest.skip(f"no cgroups offered here: {OFFERED}")
    record = run(burn_spec(tmp_path), tmp_path)
    cpu = record["cpu"]
    assert len(cpu["tree_batch_s"]) == 2 and len(cpu["tree_warmup_s"]) == 1
    for tree, driver in zip(cpu["tree_batch_s"], cpu["driver_batch_s"]):
        assert 2 * BURN_S - TICKS_S <= tree <= 1.5 * 2 * BURN_S, cpu  # half a batch's burn for start-ups: a double count fails
        assert driver < 0.2, "the driver only waited for its children"
    # Six children in the run, and six more when the driver verifies each task by running it again.
    assert cpu["tree_user_s"] + cpu["tree_system_s"] >= 12 * BURN_S, cpu
    if groups == "cgroups":
        assert cpu["tree_source"] == OFFERED["cpu"] and cpu["tree_totals_source"] == OFFERED["cpu"]
    else:
        assert cpu["tree_source"].startswith("/proc") and cpu["tree_totals_source"] == "getrusage(RUSAGE_CHILDREN)"
        memory = record["memory"]
        assert memory["exact_peak_bytes"] is None and memory["exact_source"] is None
        assert memory["exact_unavailable"] == "no memory cgroup here (the test says so)", "null, and why"


@pytest.mark.parametrize("threads", [1, 2])
def test_serial_cpu_fits_its_batches_and_blas_threads(tmp_path, threads):
    """Serial matmul: in each timed batch the tree used at least the driver's CPU (it is the tree) and at
    most the batch's wall time on each BLAS thread; over the run, at least the driver's CPU in its batches."""
    spec = make_spec("serial", "matmul", 1, blas_threads=threads, n=1536, k=256, tasks_per_batch=3, batches=3)
    busy0, t0 = machine_busy_s(), time.monotonic()
    record = run(spec, tmp_path)
    busy, wall_s = machine_busy_s() - busy0, time.monotonic() - t0
    cpu, batch_s = record["cpu"], record["timings"]["batch_s"]
    assert record["blas_threads"] == threads
    for tree, driver, wall in zip(cpu["tree_batch_s"], cpu["driver_batch_s"], batch_s):
        assert driver - TICKS_S <= tree <= threads * wall + TICKS_S, (tree, driver, wall)
    tree = cpu["tree_user_s"] + cpu["tree_system_s"]
    assert tree >= sum(cpu["driver_batch_s"]) + sum(cpu["driver_warmup_s"])
    system = record["system"]
    assert record["timings"]["end_to_end_s"] <= system["window_s"] <= wall_s
    # The machine's busy time over the run holds the tree's, and fits in what this test saw around it.
    assert tree - TICKS_S <= system["machine_cpu_s"] <= busy + TICKS_S, (tree, system, busy)


@needs_cgroups
def test_exact_peak_of_a_child_of_known_size(tmp_path):
    """A process in a run's groups allocates and touches 256 MiB, then ends: the memory group's peak holds
    it (and little more: an interpreter and numpy), and removing the groups leaves nothing."""
    groups = cgroups.RunGroups()
    try:
        code = "import numpy as np; x = np.ones(256 * 2**20 // 8); print(x.sum())"
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, preexec_fn=groups.enter)
        peak = cgroups.read(groups.groups["memory"])["peak_bytes"]
        cpu = cgroups.read(groups.groups["cpu"])
    finally:
        assert groups.remove() == []
    assert 256 * MIB <= peak <= 256 * MIB + 200 * MIB, peak / MIB
    assert cpu["usage_s"] > 0 and cpu["user_s"] + cpu["system_s"] == pytest.approx(cpu["usage_s"], rel=0.1)
    assert not any(os.path.exists(g.path) for g in groups.groups.values())


@needs_cgroups
def test_exact_peak_of_a_run_holds_its_shared_input(tmp_path):
    """Serial matmul at n = 4096: the driver holds x, 128 MiB, so the run's group was charged at least that."""
    record = run(make_spec("serial", "matmul", 1, n=4096, k=8, batches=1), tmp_path)
    memory = record["memory"]
    assert memory["exact_source"] == OFFERED["memory"] and memory["exact_unavailable"] is None
    assert memory["exact_peak_bytes"] >= 8 * 4096**2, memory["exact_peak_bytes"] / MIB


def machine_busy_s() -> float:
    """CPU seconds the machine has been busy since boot: every state of /proc/stat's first line but idle and iowait."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def spin(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


@needs_cgroups
def test_a_run_beside_other_work_is_flagged_busy(tmp_path):
    """Load the machine with a spinning process per core, then run: the record shows the CPU others took,
    the run is flagged busy, and the report marks its cell and warns."""
    spinners = spin(os.cpu_count() or 2)
    try:
        time.sleep(0.5)  # let them get going (not a measurement)
        # A second of timed batches: shorter windows are not judged (the ticks of /proc/stat alone could flag them).
        record = run(make_spec("serial", "matmul", 1, n=1024, k=128, batches=5, tasks_per_batch=4, min_timed_s=1.0), tmp_path)
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
    system = record["system"]
    assert system["other_cpu_s"] / system["window_s"] > stats.BUSY_OTHER_CORES, system
    runs, batches = stats.tables([record, {**record, "trial": 2}])
    assert runs.busy_machine.tolist() == [True, True], runs.other_cores_tick_noise.tolist()
    # Not judged where the tree's CPU is incomplete: no CPU cgroup (getrusage), or workers outside the tree.
    without = {**record, "cpu": {**record["cpu"], "tree_totals_source": "getrusage(RUSAGE_CHILDREN)"}}
    external = {**record, "cluster": {**record["cluster"], "workers_in_memory_tree": False}}
    unjudged, _ = stats.tables([without, external])
    assert unjudged.busy_machine.isna().all() and unjudged.cpu_per_item_s.isna().tolist() == [False, True]
    cells = stats.stats(runs, batches)
    assert cells.n_busy.tolist() == [2]
    (text,) = claims.busy(cells)
    assert "serial at 1 worker (2 of 2 runs)" in text
    assert claims.busy_warning(runs).startswith("2 of 2 runs were made on a busy machine")
    assert (
        claims.recommendation(cells)[0]
        == "Use serial [busy machine] (in the driver, no worker processes): " + claims.throughput_text(cells.iloc[0]) + "."
    )


def test_stale_cgroups_of_gone_supervisors_are_removed():
    where = cgroups.hierarchies()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    made = []
    for folder in {where[k] for k in ("v2", "memory", "cpuacct") if k in where}:
        for pid in (gone.pid, os.getpid()):
            path = folder / f"{cgroups.PREFIX}{pid}-0123abcd"
            try:
                path.mkdir()
            except OSError:
                continue
            made.append(path)
    if not made:
        pytest.skip("no cgroup can be made here")
    try:
        removed = cleanup.remove_stale()["cgroups"]
        assert f"{cgroups.PREFIX}{gone.pid}-0123abcd" in removed
        assert all(p.exists() == (str(os.getpid()) in p.name) for p in made), "only the gone supervisor's groups go"
    finally:
        for path in made:
            if path.exists():
                path.rmdir()


# A task that, once in the timed batch, wakes a spinner outside the run (through a FIFO) and sleeps
# while it spins; data() sleeps first, so the run's whole window is long beside its one timed batch.
BURST = textwrap.dedent(
    '''
    """One timed task beside a burst of someone else's CPU."""
    import os, time

    def data(params):
        time.sleep(params["idle_s"])
        return {}

    def items(params, batch, n):
        return [params["fifo"]] * n

    def task(state, fifo):
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the spinner starts (nobody reads: verification's rerun)
        except OSError:
            pass
        time.sleep(1.0)
        return 1
    '''
)


@needs_cgroups
def test_other_load_during_the_timed_batches_is_judged_on_them(tmp_path):
    """A core of other work during the one timed batch only, after 1.5 s of idle inputs: the per-batch
    figure sees it (a busy run), and sees more than the whole run's average, which the idle start dilutes."""
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    spinner = subprocess.Popen(
        [sys.executable, "-c", f"open({str(fifo)!r}).close()\nimport time\nend = time.time() + 1.0\nwhile time.time() < end: pass"]
    )
    module = tmp_path / "burst.py"
    module.write_text(BURST)
    try:
        spec = make_spec(
            "serial", "burst", 1, module=str(module), idle_s=1.5, fifo=str(fifo), tasks_per_batch=1, batches=1, warmup_batches=0
        )
        record = run(spec, tmp_path)
    finally:
        spinner.kill()
        spinner.wait()
    assert len(record["system"]["other_cpu_batch_s"]) == 1
    (row,) = [stats.run_row(record)]
    assert row["other_cores_batches"] > stats.BUSY_OTHER_CORES and row["busy_machine"], row
    assert row["other_cores_batches"] > row["other_cores"], "the idle start-up dilutes the whole run's average"


CACHE_READER = """
def data(params):
    with open(params["path"], "rb") as f:  # 1 MiB at a time: page cache, and almost no memory of the run's own
        while f.read(1 << 20):
            pass
    return {}

def items(params, batch, n):
    return list(range(n))

def task(state, item):
    return item
"""


@needs_cgroups
def test_the_exact_peak_less_the_page_cache_leaves_out_a_file_the_run_read(tmp_path):
    """The exact peak counts page cache of files the run read first, so it depended on what earlier runs had
    cached (issue 20, item 11); the figure less the page cache does not count the 256 MiB file read here."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(256):
            f.write(b"\1" * (1 << 20))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # out of the page cache: the run reads it from disk
    module = tmp_path / "reader.py"
    module.write_text(CACHE_READER)
    record = run(make_spec("serial", "reader", 1, module=str(module), path=str(big), batches=1, warmup_batches=0), tmp_path)
    memory = record["memory"]
    assert memory["exact_file_cache_bytes"] >= 250 * MIB, memory
    assert memory["exact_peak_bytes"] >= 250 * MIB, memory
    row = stats.run_row(record)
    assert row["exact_peak_less_cache_bytes"] == memory["exact_peak_bytes"] - memory["exact_file_cache_bytes"]
    assert row["exact_peak_less_cache_bytes"] < 150 * MIB, row["exact_peak_less_cache_bytes"] / MIB
