"""What a run may leave on the machine, and the machine-wide lock of timed runs.

A run's libraries create files in /dev/shm (multiprocessing's semaphores and shared memory,
joblib's memory maps, loky's semaphores) and the supervisor a temporary folder and the run's cgroups;
a run that ends normally removes them, a run killed outright does not. The supervisor removes what
its own run left, and before each timed run whatever earlier runs of parbench left and nothing uses
any more.
"""

import contextlib
import fcntl
import json
import multiprocessing.util
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

import psutil

from parbench import cgroups

SHM = Path("/dev/shm")
# One file per machine: /tmp is node-local on a cluster, so each node is its own machine.
LOCK = Path("/tmp/parbench-timed-run.lock")
TEMP_PREFIX = "parbench-"
TEMP_LOCK = ".lock"  # held by the supervisor that owns the temporary folder
# Where the driver notes the folders its libraries make in the machine's temp folder (multiprocessing's
# pymp-*, Dask's scratch space): a run killed outright leaves them, and only the note proves they are the run's.
LEAVES_ENV = "PARBENCH_LEAVES"
LEAVES = "leaves.jsonl"
# A folder for the libraries' own files of one run (Ray's session: its logs, sockets and spill), inside
# the supervisor's temporary folder so that nothing of it outlives the run; a failed run's is kept beside its log.
LIBRARY_ENV = "PARBENCH_LIBRARY_DIR"
DASK_LOCKS = ("global.lock", "purge.lock")  # what a Dask scratch space holds besides its workers' folders

# What the backends' libraries create in /dev/shm: multiprocessing's semaphores (Dask's too) and
# shared memory, joblib's memory-map folders, loky's semaphores. Anything else (an external Ray
# cluster's store, another program's semaphores) is left alone.
OURS = ("sem.mp-", "sem.loky-", "psm_", "joblib_memmapping_folder_", "loky-")
# Names that carry their creator's pid: while it lives the entry is not a leftover, mapped or not.
CREATOR = re.compile(r"^(?:joblib_memmapping_folder_|sem\.loky-|loky-)(\d+)[_-]")


class Abandoned(RuntimeError):
    """Snakemake ended while the run waited for the machine's lock or ran: it is given up (and redone as incomplete)."""


def shm_entries() -> set[str]:
    try:
        return {p.name for p in SHM.iterdir() if p.stat().st_uid == os.getuid()}
    except OSError:
        return set()


def _inodes(name: str) -> set[int]:
    """Inodes of a /dev/shm entry: the file's, or the files' inside a folder (joblib's)."""
    path = SHM / name
    try:
        if path.is_dir():
            return {p.stat().st_ino for p in path.rglob("*") if not p.is_dir()}
        return {path.stat().st_ino}
    except OSError:
        return set()


def in_use(names: set[str]) -> set[str]:
    """Those of `names` (in /dev/shm) that a living process still maps or holds open, or whose
    creator named in it still lives. Matched by inode: glibc maps a named semaphore under the
    temporary name it was created with."""
    by_inode = {ino: name for name in names for ino in _inodes(name)}
    used = {n for n in names if (m := CREATOR.match(n)) and psutil.pid_exists(int(m.group(1)))}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            for line in (proc / "maps").read_text().splitlines():
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].startswith("/dev/shm/"):
                    used.add(by_inode.get(int(fields[4])))
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd).startswith("/dev/shm/"):
                    used.add(by_inode.get(os.stat(fd).st_ino))
        except OSError:
            continue  # ended meanwhile, or not ours to read
    return used & names


def remove_shm(before: set[str] = frozenset()) -> list[str]:
    """Remove the entries of parbench's libraries in /dev/shm that are not in `before` and that
    nobody uses any more; returns their names."""
    removed = []
    candidates = {n for n in shm_entries() - before if n.startswith(OURS)}
    for name in sorted(candidates - in_use(candidates)):
        path = SHM / name
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed.append(name)
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def temp_folder():
    """A temporary folder for one run, locked while its supervisor lives: a supervisor killed
    outright leaves it unlocked, and `remove_stale` removes it."""
    path = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    lock = os.open(path / TEMP_LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(lock)


def stale_temp_folders() -> list[Path]:
    """Temporary folders of supervisors that are gone (folders without our lock file are not ours to judge)."""
    stale = []
    for path in Path(tempfile.gettempdir()).glob(TEMP_PREFIX + "*"):
        try:
            if path.is_symlink() or not path.is_dir() or path.stat().st_uid != os.getuid():
                continue
            fd = os.open(path / TEMP_LOCK, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            stale.append(path)
        except OSError:
            pass  # its supervisor lives
        finally:
            os.close(fd)
    return stale


def note_leaves(kind: str, path, created: bool) -> None:
    """In a run's driver: `path` is a folder of kind 'pymp' (multiprocessing's own temp folder, made by this
    process) or 'dask' (the Dask scratch space its workers use; `created`: this run makes it) that the run
    leaves behind if it is killed outright. Noted in the supervisor's temporary folder; nothing outside a supervisor."""
    if target := os.environ.get(LEAVES_ENV):
        with open(target, "a") as f:
            f.write(json.dumps({"kind": kind, "path": str(path), "created": created}) + "\n")


def library_folder(name: str) -> str | None:
    """In a run's driver: a folder for library `name`'s own files of this run, or None outside a supervisor."""
    if base := os.environ.get(LIBRARY_ENV):
        path = Path(base, name)
        path.mkdir(parents=True, exist_ok=True)
        return str(path)
    return None


def keep_library_files(folder: Path, beside: Path) -> Path | None:
    """Move the libraries' files of a run (`folder`, in its temporary folder) to `beside` (next to its log),
    where they survive the temporary folder; None if the run left none."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    shutil.rmtree(beside, ignore_errors=True)  # a rerun's replaces the last one's
    try:
        os.rename(folder, beside)
    except OSError:  # another filesystem: copy what can be copied (Ray's sockets and fifos cannot)
        special = lambda where, names: [n for n in names if not (Path(where, n).is_file() or Path(where, n).is_dir())]  # noqa: E731
        shutil.copytree(folder, beside, symlinks=True, ignore=special, dirs_exist_ok=True)
    return beside


def driver_temp_dir() -> str:
    """This process's multiprocessing temp folder (pymp-*; forkserver's socket lives there), made now if need be
    and noted (note_leaves): a driver killed outright leaves it."""
    path = multiprocessing.util.get_temp_dir()
    note_leaves("pymp", path, created=True)
    return path


def remove_leaves(folder) -> list[str]:
    """Remove what the ended run of the supervisor's temporary folder `folder` noted (note_leaves): its pymp-*
    folder, the Dask worker folders that no live worker locks (Dask's own test), and the scratch space itself
    if the run made it and nothing else is left in it. Returns what was removed."""
    removed = []
    try:
        notes = [json.loads(line) for line in Path(folder, LEAVES).read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return removed
    for note in notes:
        path = Path(note["path"])
        if path.is_symlink() or not path.is_dir() or path.stat().st_uid != os.getuid():
            continue
        if note["kind"] == "pymp" and path.name.startswith("pymp-"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
        elif note["kind"] == "dask" and path.name == "dask-scratch-space":
            removed += _purge_dask(path, note["created"])
    return removed


def _purge_dask(base: Path, created: bool) -> list[str]:
    """Dask's worker folders in `base` whose `.dirlock` nobody holds (flock, as Dask takes it), removed under
    Dask's global lock of the space; then `base` itself if `created` and only Dask's two lock files remain."""
    removed = []
    try:
        space = os.open(base / DASK_LOCKS[0], os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return removed
    try:
        fcntl.flock(space, fcntl.LOCK_EX | fcntl.LOCK_NB)  # Dask holds it while it makes a worker's folder
    except OSError:
        os.close(space)
        return removed
    try:
        for lock in base.glob("*.dirlock"):
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live worker's
            finally:
                os.close(fd)
            shutil.rmtree(base / lock.stem, ignore_errors=True)
            lock.unlink(missing_ok=True)
            removed.append(str(base / lock.stem))
        if created and set(os.listdir(base)) <= set(DASK_LOCKS):
            for name in DASK_LOCKS:
                (base / name).unlink(missing_ok=True)
            base.rmdir()
            removed.append(str(base))
    except OSError:
        pass
    finally:
        os.close(space)
    return removed


def remove_stale() -> dict:
    """Remove what runs of parbench killed outright left on this machine: their /dev/shm entries
    that no live process uses, their supervisors' temporary folders and what the runs noted there
    (note_leaves), and their cgroups."""
    folders, left = stale_temp_folders(), []
    for path in folders:
        left += remove_leaves(path)
        shutil.rmtree(path, ignore_errors=True)
    return {"shm": remove_shm(), "temp_folders": [p.name for p in folders], "temp_left": left, "cgroups": cgroups.remove_stale()}


def _open_lock() -> int:
    """The lock file, opened for reading and, where we may, writing (another user may own it).
    Never through a symlink: in a world-writable /tmp that could make us write elsewhere."""
    for _ in range(3):  # another run may create it between our tries
        for flags in (os.O_RDWR, os.O_RDONLY):
            try:
                return os.open(LOCK, flags | os.O_NOFOLLOW)
            except FileNotFoundError:
                break
            except OSError:
                continue  # not ours to write, or not a plain file
        else:
            break  # there, but neither way opens it
        try:
            fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        except FileExistsError:
            continue
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)  # every user's runs share it
        return fd
    raise OSError(f"cannot open the machine's lock of timed runs, {LOCK}")


def holder() -> str:
    try:
        return LOCK.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def timed_slot(say=print, give_up=lambda: False, poll_s: float = 0.2):
    """Hold the machine-wide lock of timed runs: no two timed runs overlap on this machine,
    whichever sweep, folder or test started them. Waits for it (telling `say` once, with who holds
    it); raises Abandoned if `give_up()` turns true meanwhile."""
    fd = _open_lock()
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    say(f"parbench: waiting for another timed run on this machine to end (held by {holder()}; lock {LOCK})")
                    told = True
                if give_up():
                    raise Abandoned("Snakemake ended while the run waited for the machine's lock of timed runs") from None
                time.sleep(poll_s)
        if stat.S_ISREG(os.fstat(fd).st_mode):
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} in {os.getcwd()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


# A run's share of its log: a task that printed 50 MB once made a 191 MB log per run.
LOG_CAP_BYTES = 2 * 1024 * 1024


def cap_log(path, start: int, cap: int = LOG_CAP_BYTES) -> int:
    """Cut what a run wrote to its log after byte `start` to its first and last cap / 2 bytes, saying so
    where it was cut; returns the bytes cut (0 when the run's output was within the cap)."""
    with open(path, "r+b") as log:
        size = log.seek(0, os.SEEK_END) - start
        if size <= cap:
            return 0
        log.seek(start)
        head = log.read(cap // 2)
        log.seek(-(cap // 2), os.SEEK_END)
        tail = log.read()
        cut = size - len(head) - len(tail)
        note = f"\n[parbench: {cut:,} bytes of this run's output cut here: a run keeps {cap:,} bytes of its log]\n"
        log.seek(start)
        log.write(head + note.encode() + tail)
        log.truncate()
    return cut
