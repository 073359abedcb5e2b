"""The supervisor: runs one run spec in a fresh driver process and makes sure the run ends as a record.

It holds the machine-wide lock of timed runs, enforces the time limit, turns a driver killed
from outside into a `failed` record, and after every run, and when a signal stops it, kills
whatever processes of the run remain and removes the files the run left in /dev/shm, in its
temporary folder and, where the driver noted them (cleanup.note_leaves), in the machine's temp
folder. A driver that reports a bug in parbench (BUG_EXIT) fails loudly instead.
"""

import contextlib
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from parbench import cgroups, cleanup, environment, records, worker
from parbench.run.driver import BUG_EXIT, SUPERVISOR, kill_tree
from parbench.run.measure import proc_stat

PR_SET_CHILD_SUBREAPER = 36
DEFAULT_TIMEOUT_S = 1800
POLL_S = 0.2
HZ = os.sysconf("SC_CLK_TCK")
# Snakemake sets these to a job's threads (1) for every job; parbench sets BLAS threads itself
# (`blas_threads`), and `library-default` must mean each library's own default, as outside Snakemake.
SNAKEMAKE_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
# Ctrl-C reaches the whole foreground process group; SIGTERM and SIGHUP come from kill or a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DriverError(RuntimeError):
    """The driver raised: a bug in parbench, not a result."""


class NotWritable(RuntimeError):
    """The run's record could not be written: found before the run, not after it."""


class Interrupted(BaseException):
    """A signal stopped the supervisor; the run's tree and files are gone, and no record is written."""

    def __init__(self, signum: int):
        super().__init__(f"run stopped by {signal.Signals(signum).name}; its processes and files are removed, the next sweep redoes it")
        self.signum = signum


@contextlib.contextmanager
def stop_signals_raise():
    """Inside, SIGINT, SIGTERM and SIGHUP raise Interrupted (so that cleanup runs); handlers are restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread
        return

    def handler(signum, frame):
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the cleanup short
        raise Interrupted(signum)

    saved = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def become_subreaper() -> None:
    """Orphaned descendants of the driver (Ray's raylet, loky workers) become our children, so none escape."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: leftovers are still found while the driver lives


def check_writable(path) -> None:
    """Raise NotWritable unless a record can be written at `path` (so a run is not wasted)."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{Path(path).name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise NotWritable(f"cannot write the run's record {path}: {error}") from error


def reap(spare: set[int] = frozenset(), grace_s: float = 2.0) -> int:
    """Stop every remaining descendant but those in `spare` (there before the run). Returns how
    many had not ended by themselves within `grace_s` (a Pool's forkserver and resource tracker
    end on their own once the driver is gone)."""
    ours = [p for p in psutil.Process().children(recursive=True) if p.pid not in spare]
    _, procs = psutil.wait_procs(ours, timeout=grace_s)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return len(procs)


def progress_of(record: dict) -> str:
    t = record.get("timings") or {}
    done = [k for k in ("startup_s", "setup_s") if t.get(k) is not None]
    batches = f"{len(t.get('warmup_s', []))} warm-up and {len(t.get('batch_s', []))} timed batches"
    return f"after {', '.join(p[:-2] for p in done) or 'nothing'}, {batches}"


def snakemake_and_below() -> list[psutil.Process]:
    """Our ancestors up to the Snakemake process that runs the job (a shell above it may come and go)."""
    parents = psutil.Process().parents()
    top = next((i for i, p in enumerate(parents) if _is_snakemake(p)), len(parents) - 1)
    return [p for p in parents[: top + 1] if p.pid != 1]


def _is_snakemake(proc: psutil.Process) -> bool:
    """`snakemake ...`, `python .../bin/snakemake ...` or `python -m snakemake ...` (not a job's
    shell, whose command line names a script under .snakemake/)."""
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return any(Path(arg).name == "snakemake" for arg in cmd[:2]) or cmd[1:3] == ["-m", "snakemake"]


def _orphaned(ancestors: list[psutil.Process]) -> bool:
    """True once a process above us (Snakemake) has ended: the run must not outlive the sweep."""
    for proc in ancestors:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
    return False


class Around:
    """The machine around one run, from just before the driver starts to after its last process is
    reaped: load average, the CPU the whole machine and the run's tree used, steal, and the tree's
    involuntary context switches. The tree's CPU comes from the run's CPU cgroup where it has one,
    else from getrusage of reaped children: the supervisor is a subreaper and reaps every process of
    the run, so processes that ended early count, except those whose parent had them reaped
    automatically (SIGCHLD ignored), which no getrusage sees."""

    def __init__(self, group: cgroups.Group | None = None):
        self.group, self.began, self.load = group, time.monotonic(), os.getloadavg()[0]
        self.busy, self.steal = proc_stat()
        self.usage = resource.getrusage(resource.RUSAGE_CHILDREN)

    def end(self) -> dict:
        usage, (busy, steal) = resource.getrusage(resource.RUSAGE_CHILDREN), proc_stat()
        user, system = usage.ru_utime - self.usage.ru_utime, usage.ru_stime - self.usage.ru_stime
        source = "getrusage(RUSAGE_CHILDREN)"
        if self.group is not None:  # a fresh group: its counters began at 0 with the driver
            cpu, source = cgroups.read(self.group), self.group.source
            user, system = cpu["user_s"], cpu["system_s"]
        return {
            "cpu": {"tree_user_s": round(user, 4), "tree_system_s": round(system, 4), "tree_totals_source": source},
            "system": {
                "loadavg_1m_start": self.load,
                "loadavg_1m_end": os.getloadavg()[0],
                "cpu_steal_s": round(steal - self.steal, 3),
                "machine_cpu_s": round(busy - self.busy, 3),
                # What others took meanwhile: other processes, and other guests (steal). Ticks are 10 ms, so it can dip below 0.
                "other_cpu_s": round(busy - self.busy - user - system, 3),
                "window_s": round(time.monotonic() - self.began, 3),
                "tree_involuntary_switches": usage.ru_nivcsw - self.usage.ru_nivcsw,
            },
        }


@contextlib.contextmanager
def run_groups():
    """The run's own cgroups (see parbench.cgroups), removed at the end whatever happens."""
    groups = cgroups.RunGroups()
    try:
        yield groups
    finally:
        if left := groups.remove():
            print(f"parbench: could not remove the run's cgroups {left}", file=sys.stderr)


def supervise(spec: dict, out_path, log_path) -> dict:
    """Run `spec` in a fresh driver process; write and return its record.

    Raises NotWritable before the run if the record could not be written, Interrupted after
    cleaning up if a signal stops it, cleanup.Abandoned if Snakemake ends first, DriverError on
    a bug in parbench."""
    become_subreaper()
    check_writable(out_path)
    ancestors = snakemake_and_below()
    spare = {p.pid for p in psutil.Process().children(recursive=True)}  # not the run's: a caller's own helpers
    timeout = spec["settings"].get("limits", {}).get("timeout_s") or DEFAULT_TIMEOUT_S
    with (
        stop_signals_raise(),
        open(log_path, "a") as log,
        alone(log, ancestors) as before,
        cleanup.temp_folder() as tmp,
        run_groups() as groups,
    ):
        started = time.time()
        log.flush()
        log_start = log.tell()
        spec_path, partial = Path(tmp, "spec.json"), Path(tmp, "record.json")
        spec_path.write_text(json.dumps(spec))
        faults = Path(tmp, "faults")
        faults.mkdir()
        library = Path(tmp, "library")
        leaves = {cleanup.LEAVES_ENV: str(Path(tmp, cleanup.LEAVES)), worker.FAULTS_ENV: str(faults), cleanup.LIBRARY_ENV: str(library)}
        python = environment.interpreter(spec["settings"].get("python"))
        command = [python, "-m", "parbench.run.driver", str(spec_path), str(partial)]
        env = {**(spec["settings"].get("env") or {}), **leaves, **_own_code_for(python, Path(tmp))}
        driver = _start_driver(command, log, groups, env)
        around = Around(groups.groups.get("cpu"))
        code, timed_out = _contained(driver, spare, before, lambda: _wait(driver, timeout, ancestors), tmp)
        stopped = reap(spare)
        machine = around.end()
        removed = cleanup.remove_shm(before)
        left = cleanup.remove_leaves(tmp)  # a driver killed (time or memory limit, signal) leaves its pymp-* folder
        kept = cleanup.keep_library_files(library, Path(log_path).with_suffix(".library"))  # the tree is gone: nothing writes there
        partial_record = records.read(partial) if partial.exists() else None
        dumps = "".join(
            f"parbench: process {f.stem} ended in a fatal error:\n{t}" for f in sorted(faults.iterdir()) if (t := f.read_text())
        )
        if dumps:
            print(dumps, file=log, flush=True)
        exact = cgroups.exact_memory(groups.groups.get("memory"), groups.missing.get("memory"))

    log_cut = cleanup.cap_log(log_path, log_start)
    with open(log_path, errors="replace") as log:
        log.seek(log_start)
        output = log.read()
    record = _final(spec, partial_record, code, timed_out, timeout, started, log_path, output)
    record["cleanup"] = {"processes_stopped": stopped, "shm_removed": removed, "temp_removed": left, "log_cut_bytes": log_cut}
    if kept and record["status"] == "ok":
        shutil.rmtree(kept, ignore_errors=True)
    elif kept:  # a library's own messages in the log point into its files (Ray's into its session folder)
        record["cleanup"]["library_files_kept"] = str(kept)
        with open(log_path, "a") as log:
            print(f"parbench: the run failed; its libraries' own files (their logs) are kept in {kept}", file=log)
    record["system"] = {**record["system"], **machine["system"]}  # the driver's per-batch figures stay
    record["cpu"] = {**record["cpu"], **machine["cpu"]}
    # The driver reads the peak as its sampler stops, before verification; one that did not finish read it
    # earlier or never, so the group's peak over the driver's whole life is taken.
    finished = partial_record is not None and partial_record.get("status") not in ("running", "oom")
    if not finished or record["memory"].get("exact_peak_bytes") is None:
        record["memory"] = {**record["memory"], **exact}
    records.write(out_path, record)
    return record


def _own_code_for(python: str, tmp: Path) -> dict:
    """PYTHONPATH for a driver run by another interpreter (a variant's `python`): this parbench, and nothing
    else of ours (our site-packages holds extensions built for our interpreter), through a folder holding a
    link to the package."""
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return {}
    folder = tmp / "parbench-only"
    folder.mkdir()
    (folder / "parbench").symlink_to(Path(__file__).resolve().parents[1])
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def _start_driver(command: list[str], log, groups: cgroups.RunGroups, env: dict) -> subprocess.Popen:
    """Start the driver in its own session, inside the run's groups (before exec: all its memory is charged
    to them); if it cannot be moved into them, without groups, the record saying why."""

    def start():
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**driver_env(), **env, **groups.env()},
            preexec_fn=groups.enter if groups.groups else None,
        )

    try:
        return start()
    except subprocess.SubprocessError as error:  # raised in the child by groups.enter, before exec
        if not groups.groups:
            raise
        groups.give_up(f"the driver could not be moved into its group ({error})")
        return start()


def driver_env() -> dict:
    """The environment a run's driver starts with: ours, without Snakemake's thread variables, and
    naming this supervisor (the driver ends if we do)."""
    return {**{k: v for k, v in os.environ.items() if k not in SNAKEMAKE_THREAD_VARS}, SUPERVISOR: str(os.getpid())}


def run_alone(command: list[str], log) -> int:
    """Run `command` as a timed run is run (alone on the machine, cleaned up after, also when a
    signal stops it: then Interrupted is raised); returns its exit code. For the machine's measurement."""
    become_subreaper()
    ancestors = snakemake_and_below()
    spare = {p.pid for p in psutil.Process().children(recursive=True)}
    with stop_signals_raise(), alone(log, ancestors) as before:
        proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True, env=driver_env())
        code = _contained(proc, spare, before, proc.wait)
        reap(spare)
        cleanup.remove_shm(before)
    return code


@contextlib.contextmanager
def alone(log, ancestors):
    """Hold the machine's lock of timed runs, remove what killed runs left, and yield the /dev/shm
    entries there before this run (the rest is the run's). Waiting is said in the log and on the terminal."""

    def say(message: str) -> None:
        print(message, file=log, flush=True)
        if sys.__stderr__ is not None and sys.__stderr__ is not log:
            print(message, file=sys.__stderr__, flush=True)  # the terminal, where Snakemake's own output goes

    with cleanup.timed_slot(say, give_up=lambda: _orphaned(ancestors)):
        earlier = cleanup.remove_stale()
        if any(earlier.values()):
            print(f"parbench: removed what earlier, killed runs left: {earlier}", file=log, flush=True)
        yield cleanup.shm_entries()


def _contained(proc: subprocess.Popen, spare: set[int], before: set[str], wait, tmp=None):
    """`wait()`; if it raises (a signal, Snakemake gone), nothing of `proc`'s tree may remain (nor what it noted in `tmp`)."""
    try:
        return wait()
    except BaseException:
        _kill(proc)
        reap(spare, grace_s=0)
        cleanup.remove_shm(before)
        if tmp is not None:
            cleanup.remove_leaves(tmp)
        raise


def _wait(driver: subprocess.Popen, timeout: float, ancestors) -> tuple[int, bool]:
    """The driver's exit code, and whether it passed the time limit (then it is killed)."""
    deadline = time.monotonic() + timeout
    with _exit_notice(driver) as ended:
        while (code := driver.poll()) is None:
            if _orphaned(ancestors):
                raise cleanup.Abandoned("Snakemake ended; run abandoned (it will be redone as incomplete)")
            if time.monotonic() > deadline:
                _kill(driver)
                return driver.wait(), True
            ended(POLL_S)
    return code, False


@contextlib.contextmanager
def _exit_notice(proc: subprocess.Popen):
    """A function that waits up to its argument's seconds for `proc` to end and returns as it does: through a pidfd,
    at once (Popen.wait's timeout polls with sleeps of up to 50 ms: about 25 ms late on every run)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux 5.3+: Popen's polling
        yield lambda seconds: _wait_polling(proc, seconds)
        return
    try:
        exited = select.poll()  # not select.select: a process with 1024 files open has pidfds it cannot watch
        exited.register(pidfd, select.POLLIN)
        yield lambda seconds: exited.poll(seconds * 1000)
    finally:
        os.close(pidfd)


def _wait_polling(proc: subprocess.Popen, seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=seconds)


def _kill(driver: subprocess.Popen) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        kill_tree(psutil.Process(driver.pid))
    with contextlib.suppress(ProcessLookupError):  # the driver leads its group: a Pool worker forked after the listing
        os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()


def _final(spec, record, code, timed_out, timeout, started, log_path, output: str) -> dict:
    """The run's record, whatever its end; raises DriverError if parbench itself failed (the
    driver says so by exiting with BUG_EXIT). A driver that exits otherwise was ended by a
    library beneath it (Ray exits the process when it loses its GCS): a failed run."""
    base = record or records.new(spec, environment.of_run(spec), started_at=started)
    if timed_out:
        record = {**base, "status": "timeout", "reason": f"passed limits.timeout_s = {timeout} s {progress_of(base)}"}
    elif record and (record["status"] == "oom" or (code == 0 and record["status"] != "running")):
        pass  # finished (ok, or failed with the backend's reason), or stopped itself at the memory limit
    elif code < 0:
        name = signal.Signals(-code).name
        hint = " (SIGKILL from outside: often the kernel's OOM killer)" if name == "SIGKILL" else ""
        record = {**base, "status": "failed", "reason": f"driver killed by {name}{hint} {progress_of(base)}"}
    elif code == BUG_EXIT:
        raise DriverError(f"the parbench driver exited with code {code} (a bug in parbench); its traceback is in {log_path}")
    else:
        last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
        record = {**base, "status": "failed", "reason": f"driver exited with code {code} {progress_of(base)}: {last[-300:]}"}
    if record["status"] == "failed" and (place := worker.fault_place(output)) and place not in record["reason"]:
        record = {**record, "reason": f"{record['reason']} (a fatal error at {place})"}
    if record.get("finished_at") is None:
        record["finished_at"] = time.time()
    return record
