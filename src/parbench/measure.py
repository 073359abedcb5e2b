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


def tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_memory(root: psutil.Process) -> tuple[int, int, int]:
    """(PSS, RSS, root's own RSS) summed over `root` and its descendants, in bytes."""
    pss = rss = own = 0
    for proc in tree(root):
        try:
            info = proc.memory_full_info()  # reads /proc/PID/smaps_rollup
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # a process that ended between listing and reading holds no memory
        pss, rss = pss + info.pss, rss + info.rss
        if proc.pid == root.pid:
            own = info.rss
    return pss, rss, own


class TreeSampler:
    """Peak memory of the driver's process tree, per phase and overall.

    `phase(name)` labels the samples that follow. If `limit_bytes` is set and the tree's PSS
    passes it, `on_limit(pss)` is called once from the sampling thread.
    """

    def __init__(self, period_s: float = 0.05, limit_bytes: int | None = None, on_limit=None):
        self.period_s, self.limit_bytes, self.on_limit = period_s, limit_bytes, on_limit
        self.root = psutil.Process()
        self.shm_base = shmem_bytes()
        self.current = "start"
        self.phases: dict[str, dict] = {}
        self.samples, self.busy_s = 0, 0.0
        self._lock = threading.Lock()  # the driver's phase() and the thread both sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def phase(self, name: str) -> None:
        self.sample()  # close the previous phase with a fresh sample
        self.current = name

    def sample(self) -> None:
        t0 = time.perf_counter()
        pss, rss, own = tree_memory(self.root)
        shm = max(0, shmem_bytes() - self.shm_base)
        with self._lock:
            peak = self.phases.setdefault(self.current, dict.fromkeys(("pss", "rss", "driver_rss", "shm"), 0))
            for key, value in (("pss", pss), ("rss", rss), ("driver_rss", own), ("shm", shm)):
                peak[key] = max(peak[key], value)
            self.samples += 1
            self.busy_s += time.perf_counter() - t0
        if self.limit_bytes and pss > self.limit_bytes and self.on_limit:
            on_limit, self.on_limit = self.on_limit, None
            on_limit(pss)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self.sample()

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

        def peak(key):
            return max((p[key] for p in phases.values()), default=None)  # None: nothing sampled yet

        return {
            "peak_tree_pss_bytes": peak("pss"),
            "peak_tree_rss_bytes": peak("rss"),
            "peak_shm_bytes": peak("shm"),
            "driver_peak_rss_bytes": peak("driver_rss"),
            "phases": {name: {f"peak_{k}_bytes": v for k, v in p.items()} for name, p in phases.items()},
            "samples": self.samples,
            "period_s": self.period_s,
            "sampling_busy_s": round(self.busy_s, 4),
        }
