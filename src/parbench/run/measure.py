"""Memory and CPU of a whole process tree, measured from inside the driver.

The memory sampler, a thread, sums PSS (shared pages counted once, split among the processes that
map them) and RSS (shared pages counted in every process) over the driver and all its descendants,
and follows the system's `Shmem` (tmpfs and shared memory: Ray's store, shm blocks, joblib's memory
maps). PSS is costly to read, RSS is not: see TreeSampler.
"""

import collections
import os
import threading
import time

import psutil

PAGE = os.sysconf("SC_PAGE_SIZE")
HZ = os.sysconf("SC_CLK_TCK")
# The sampler reads PSS at most so often that it stays under this share of one core (CPU time)...
MAX_BUSY_SHARE = 0.0025
# ...or under this share while the tree's RSS is rising or a phase has no PSS reading yet.
RISING_SHARE = 0.01
# RSS this much above the last PSS reading's is rising: a new PSS peak may be there.
RISE = 0.02
REFRESH_S = 1.0  # how long a list of the tree's processes is trusted (new ones appear within this, or at a new phase)


def shmem_bytes() -> int:
    """System-wide shared memory (`Shmem` in /proc/meminfo), in bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1]) * 1024
    return 0


def proc_stat() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy since boot (every state but idle and iowait; steal
    included, as time other guests took from this machine), and steal alone, from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]] + [0] * 8
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    return (user + nice + system + irq + softirq + steal) / HZ, steal / HZ


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces): fields 3 onwards, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(b")") + 2 :].decode().split()


class ProcessTree:
    """The driver and its descendants, kept up to date cheaply: listing /proc costs ~0.1 ms, and only
    processes not seen before have their parent read (a full scan reads every process's stat, ~2 ms
    for 100 processes). A process whose parent ends is read again: it may have left the tree."""

    def __init__(self, root: int):
        self.root = root
        self._parent: dict[int, int] = {}
        self._lock = threading.Lock()
        self.pids: list[int] = []
        self.refresh()

    def refresh(self) -> list[int]:
        with self._lock:
            now = {int(n) for n in os.listdir("/proc") if n.isdigit()}
            gone = self._parent.keys() - now
            reparented = {p for p, pp in self._parent.items() if pp in gone and p in now}
            for pid in gone:
                del self._parent[pid]
            for pid in (now - self._parent.keys()) | reparented:
                fields = _stat_fields(pid)
                if fields:
                    self._parent[pid] = int(fields[1])
            children = collections.defaultdict(list)
            for pid, ppid in self._parent.items():
                children[ppid].append(pid)
            tree, todo = [], [self.root]
            while todo:
                pid = todo.pop()
                if pid not in tree:
                    tree.append(pid)
                    todo += children.get(pid, [])
            self.pids = tree
            return tree

    def cpu_s(self) -> float:
        """CPU seconds of the tree so far (user + system, reaped children included), from /proc/PID/stat:
        10 ms ticks per process; a process that ended and was reaped outside the tree is missed."""
        total = 0
        for pid in self.refresh():
            fields = _stat_fields(pid)
            if fields:
                total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
        return total / HZ


class TreeSampler:
    """Peak memory of the driver's process tree, per phase and overall, measured by a thread.

    Every `period_s` the thread reads each process's RSS from /proc/PID/statm (a few µs: the kernel
    keeps counters). PSS needs /proc/PID/smaps_rollup, which walks each process's page tables (~0.5 ms
    per 512 MiB mapped; a sample of Ray's tree at the blog's size takes tens of ms), so a full sample
    is taken only when its cost so far keeps the thread under MAX_BUSY_SHARE of one core, or
    RISING_SHARE when RSS has risen by RISE since the last full sample or the phase has none yet (a new
    peak may be there), and at once when RSS passes the memory limit. (A sample can also wait, without
    CPU, while a worker changes its memory map; that wait slows nobody but the sampler.) `phase(name)`
    labels the samples that follow. If the tree's PSS passes `limit_bytes`, `on_limit(pss)` is called once.

    In `cheap_phases` (the runner's timed batches) the thread reads RSS only: no PSS walk stalls the
    work being timed. PSS is then read only when RSS says the limit may be passed, and otherwise by
    `catch_up(label)`, which the driver calls between batches, outside their timers.
    """

    def __init__(self, period_s: float = 0.05, limit_bytes: int | None = None, on_limit=None, cheap_phases: tuple = ()):
        self.period_s, self.limit_bytes, self.on_limit, self.cheap_phases = period_s, limit_bytes, on_limit, tuple(cheap_phases)
        self.root = psutil.Process()
        self.tree = ProcessTree(self.root.pid)
        self.shm_base = shmem_bytes()
        self.current = "start"
        self.phases: dict[str, dict] = {}
        self.samples, self.rss_samples, self.busy_s, self.cpu_s = 0, 0, 0.0, 0.0
        self._listed_at = time.monotonic()
        self._procs: dict[int, psutil.Process] = {}
        self._statm: dict[int, int] = {}  # pid -> open /proc/PID/statm
        self._full_at, self._full_cost, self._full_rss, self._full_pss = float("-inf"), 0.0, 0, 0
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # one reading at a time: the thread's, or the driver's catch_up
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)
        self._began = time.perf_counter()

    def start(self) -> "TreeSampler":
        self._began = time.perf_counter()
        self._thread.start()
        return self

    def phase(self, name: str) -> None:
        """Label the samples that follow (no sample here: the driver's timed code must not wait for one).
        Entering a cheap phase waits for a PSS reading under way to end (before the phase's timer starts)."""
        if name not in self.phases:
            self._listed_at = float("-inf")  # workers come and go as new phases begin: list them afresh
        self.current = name
        if name in self.cheap_phases:
            with self._reading:  # the thread reads `current` under this lock: no PSS walk begins after this
                pass

    def catch_up(self, label: str) -> None:
        """A PSS reading for phase `label` now (in the calling thread) if the phase has none yet or one is
        due: how a cheap phase gets its PSS, read just after it (the workers still hold what they held in it)."""
        with self._reading:
            unread = self.phases.get(label, {}).get("pss") is None
            rss = self._rss_sample(label)
            if unread or full_due(time.perf_counter() - self._full_at, self._full_cost, rss > self._full_rss * (1 + RISE), False):
                self._sample(label)

    def _pids(self) -> list[int]:
        if time.monotonic() - self._listed_at > REFRESH_S:
            self.tree.refresh()
            self._listed_at = time.monotonic()
        return self.tree.pids

    def _record(self, label: str, **values) -> dict:
        with self._lock:
            peak = self.phases.setdefault(label, dict.fromkeys(("pss", "rss", "driver_rss", "shm")))
            for key, value in values.items():
                peak[key] = value if peak[key] is None else max(peak[key], value)
            return peak

    def sample(self) -> float:
        """Take one full sample (PSS, RSS, Shmem); returns the CPU time it took."""
        with self._reading:
            return self._sample(self.current)

    def _sample(self, label: str) -> float:
        t0, cpu0 = time.perf_counter(), time.thread_time()
        pss = rss = own = 0
        pids = self._pids()
        for pid in set(self._procs) - set(pids):
            del self._procs[pid]
        for pid in pids:
            try:
                proc = self._procs.get(pid) or self._procs.setdefault(pid, psutil.Process(pid))
                info = proc.memory_full_info()  # reads /proc/PID/smaps_rollup
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue  # a process that ended between listing and reading holds no memory
            pss, rss = pss + info.pss, rss + info.rss
            if pid == self.root.pid:
                own = info.rss
        shm = max(0, shmem_bytes() - self.shm_base)
        self._record(label, pss=pss, rss=rss, driver_rss=own, shm=shm)
        cost, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
        with self._lock:
            self.samples += 1
            self.busy_s += cost
            self.cpu_s += cpu
        self._full_at, self._full_cost, self._full_rss, self._full_pss = t0, cpu, rss, pss
        if self.limit_bytes and pss > self.limit_bytes and self.on_limit:
            on_limit, self.on_limit = self.on_limit, None
            on_limit(pss)
        return cpu

    def rss_sample(self) -> int:
        """Read the tree's RSS from /proc/PID/statm (kept open: a read is one system call); returns it."""
        with self._reading:
            return self._rss_sample(self.current)

    def _rss_sample(self, label: str) -> int:
        t0, cpu0 = time.perf_counter(), time.thread_time()
        rss = own = 0
        pids = self._pids()
        for pid in set(self._statm) - set(pids):
            os.close(self._statm.pop(pid))
        for pid in pids:
            try:
                fd = self._statm.get(pid)
                if fd is None:  # not `or`: 0 is a descriptor (stdin closed)
                    fd = self._statm[pid] = os.open(f"/proc/{pid}/statm", os.O_RDONLY)
                resident = int(os.pread(fd, 256, 0).split()[1]) * PAGE
            except (OSError, IndexError, ValueError):
                continue  # ended meanwhile
            rss += resident
            if pid == self.root.pid:
                own = resident
        self._record(label, rss=rss, driver_rss=own)
        with self._lock:
            self.rss_samples += 1
            self.busy_s += time.perf_counter() - t0
            self.cpu_s += time.thread_time() - cpu0
        return rss

    def _tick(self) -> None:
        with self._reading:
            label = self.current
            rss = self._rss_sample(label)
            phase_unread = self.phases.get(label, {}).get("pss") is None
            # PSS can have passed the limit only by as much as RSS grew since it was read (shared pages
            # count in every process's RSS, so RSS alone above the limit says little).
            over = bool(self.limit_bytes) and self._full_pss + max(0, rss - self._full_rss) > self.limit_bytes
            rising = rss > self._full_rss * (1 + RISE) or phase_unread
            # In a timed batch PSS is read only to check the limit.
            due = over if label in self.cheap_phases else full_due(time.perf_counter() - self._full_at, self._full_cost, rising, over)
            if due:
                self._sample(label)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._tick()

    def stop(self) -> dict:
        """Stop sampling (a sampler read by hand, never started, too: it closes the files it holds); return the
        record's `memory` section."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()
        self.sample()
        for fd in self._statm.values():
            os.close(fd)
        self._statm.clear()
        return self.summary()

    def summary(self) -> dict:
        """The record's `memory` section, from the samples so far."""
        with self._lock:
            phases = {name: dict(p) for name, p in self.phases.items()}
            samples, rss_samples, busy, cpu = self.samples, self.rss_samples, self.busy_s, self.cpu_s
        elapsed = time.perf_counter() - self._began

        def peak(key):
            return max((p[key] for p in phases.values() if p[key] is not None), default=None)  # None: nothing sampled yet

        return {
            "peak_tree_pss_bytes": peak("pss"),
            "peak_tree_rss_bytes": peak("rss"),
            "peak_shm_bytes": peak("shm"),
            "driver_peak_rss_bytes": peak("driver_rss"),
            "phases": {name: {f"peak_{k}_bytes": v for k, v in p.items()} for name, p in phases.items()},
            "samples": samples,
            "rss_samples": rss_samples,
            "period_s": self.period_s,
            "effective_period_s": round(elapsed / samples, 4) if samples else None,
            "sampling_busy_s": round(busy, 4),
            "sampling_cpu_s": round(cpu, 4),
        }


def full_due(since_s: float, cost_s: float, rising: bool, over_limit: bool) -> bool:
    """Whether the sampler takes a full (PSS) sample now: `since_s` after the last one began, which
    cost `cost_s` of CPU; `rising`: RSS rose since then, or the phase has no PSS reading yet."""
    return over_limit or since_s >= cost_s / (RISING_SHARE if rising else MAX_BUSY_SHARE)
