"""Memory of a whole process tree, sampled by a thread in the driver.

Sums PSS (shared pages counted once, split among the processes that map them) and RSS (shared
pages counted in every process) over the driver and all its descendants, and follows the
system's `Shmem` (tmpfs and shared memory: Ray's store, shm blocks, joblib's memory maps).
"""

import threading
import time

import psutil


def shmem_bytes() -> int:
    """System-wide shared memory (`Shmem` in /proc/meminfo), in bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1]) * 1024
    return 0


MAX_BUSY_SHARE = 0.01  # the sampler backs off so that its CPU time stays under this share of one core
REFRESH_S = 1.0  # how long a list of the tree's processes is trusted (listing scans every process)


def tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_memory(procs: list[psutil.Process], root_pid: int) -> tuple[int, int, int]:
    """(PSS, RSS, the root's own RSS) summed over `procs`, in bytes."""
    pss = rss = own = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()  # reads /proc/PID/smaps_rollup
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # a process that ended between listing and reading holds no memory
        pss, rss = pss + info.pss, rss + info.rss
        if proc.pid == root_pid:
            own = info.rss
    return pss, rss, own


class TreeSampler:
    """Peak memory of the driver's process tree, per phase and overall, sampled by a thread.

    The thread samples every `period_s`, backing off so that its CPU time stays under
    MAX_BUSY_SHARE of one core: reading PSS walks each process's page tables, ~15 ms of CPU per
    worker mapping 800 MiB. (A sample can also wait, without CPU, while a worker changes its
    memory map; that wait slows nobody but the sampler and does not count.) `phase(name)` labels the samples
    that follow. If the tree's PSS passes `limit_bytes`, `on_limit(pss)` is called once.
    """

    def __init__(self, period_s: float = 0.05, limit_bytes: int | None = None, on_limit=None):
        self.period_s, self.limit_bytes, self.on_limit = period_s, limit_bytes, on_limit
        self.root = psutil.Process()
        self.shm_base = shmem_bytes()
        self.current = "start"
        self.phases: dict[str, dict] = {}
        self.samples, self.busy_s, self.cpu_s = 0, 0.0, 0.0
        self._procs, self._listed_at = [], float("-inf")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)
        self._began = time.perf_counter()

    def start(self) -> "TreeSampler":
        self._began = time.perf_counter()
        self._thread.start()
        return self

    def phase(self, name: str) -> None:
        """Label the samples that follow (no sample here: the driver's timed code must not wait for one)."""
        self.current = name
        self._listed_at = float("-inf")  # workers come and go at phase changes: list them afresh

    def _tree(self) -> list[psutil.Process]:
        now = time.monotonic()
        if now - self._listed_at > REFRESH_S:
            self._procs, self._listed_at = tree(self.root), now
        return self._procs

    def sample(self) -> float:
        """Take one sample; returns the CPU time it took (waiting for a busy process's memory map is not CPU)."""
        t0, cpu0 = time.perf_counter(), time.thread_time()
        label = self.current
        pss, rss, own = tree_memory(self._tree(), self.root.pid)
        shm = max(0, shmem_bytes() - self.shm_base)
        cost, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
        with self._lock:
            peak = self.phases.setdefault(label, dict.fromkeys(("pss", "rss", "driver_rss", "shm"), 0))
            for key, value in (("pss", pss), ("rss", rss), ("driver_rss", own), ("shm", shm)):
                peak[key] = max(peak[key], value)
            self.samples += 1
            self.busy_s += cost
            self.cpu_s += cpu
        if self.limit_bytes and pss > self.limit_bytes and self.on_limit:
            on_limit, self.on_limit = self.on_limit, None
            on_limit(pss)
        return cpu

    def _loop(self) -> None:
        wait = self.period_s
        while not self._stop.wait(wait):
            cost = self.sample()
            wait = max(self.period_s, cost / MAX_BUSY_SHARE - cost)

    def stop(self) -> dict:
        """Stop sampling; return the record's `memory` section."""
        self._stop.set()
        self._thread.join()
        self.sample()
        return self.summary()

    def summary(self) -> dict:
        """The record's `memory` section, from the samples so far."""
        with self._lock:
            phases = {name: dict(p) for name, p in self.phases.items()}
            samples, busy, cpu = self.samples, self.busy_s, self.cpu_s
        elapsed = time.perf_counter() - self._began

        def peak(key):
            return max((p[key] for p in phases.values()), default=None)  # None: nothing sampled yet

        return {
            "peak_tree_pss_bytes": peak("pss"),
            "peak_tree_rss_bytes": peak("rss"),
            "peak_shm_bytes": peak("shm"),
            "driver_peak_rss_bytes": peak("driver_rss"),
            "phases": {name: {f"peak_{k}_bytes": v for k, v in p.items()} for name, p in phases.items()},
            "samples": samples,
            "period_s": self.period_s,
            "effective_period_s": round(elapsed / samples, 4) if samples else None,
            "sampling_busy_s": round(busy, 4),
            "sampling_cpu_s": round(cpu, 4),
        }
