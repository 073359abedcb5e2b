"""The run's own control groups, where the kernel offers them: the exact peak memory charged to the
run and the CPU time of its whole process tree, exited processes included.

The supervisor makes one memory group and one CPU group per run under its own cgroups (cgroup v2
where the controller is there, else cgroup v1), starts the driver inside them (so everything the
run forks is inside too), and removes them after the run, also when a signal stops it. The driver
reads them through $PARBENCH_CGROUPS. Where nothing can be made, each says why, and the record
holds null with that reason.
"""

import contextlib
import json
import os
import re
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ENV = "PARBENCH_CGROUPS"
PREFIX = "parbench-"
# A group's name carries the supervisor's pid: a group whose supervisor is gone is a leftover.
NAME = re.compile(rf"^{PREFIX}(\d+)-[0-9a-f]+$")
# What each kind of group is read through, in the order tried: (version, file in the group, what the record calls it).
SOURCES = {
    "memory": [("v2", "memory.peak", "cgroup v2 memory.peak"), ("v1", "memory.max_usage_in_bytes", "cgroup v1 memory.max_usage_in_bytes")],
    "cpu": [("v2", "cpu.stat", "cgroup v2 cpu.stat"), ("v1", "cpuacct.usage", "cgroup v1 cpuacct.usage")],
}
V1_CONTROLLER = {"memory": "memory", "cpu": "cpuacct"}


@dataclass(frozen=True)
class Group:
    kind: str  # memory or cpu
    path: str  # the group's folder
    file: str  # the file that is read
    source: str  # what the record calls it


def hierarchies() -> dict[str, Path]:
    """Where this process's cgroups live: 'v2' and each v1 controller ('memory', 'cpuacct') -> its folder."""
    found = {}
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return found
    paths = {}
    for line in own:
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else ["v2"]:
            paths[c] = path
    for line in mountinfo:
        fields, _, tail = line.partition(" - ")
        root, point = fields.split()[3:5]
        fstype, _, options = tail.split()[:3]
        names = ["v2"] if fstype == "cgroup2" else [o for o in options.split(",") if o in paths] if fstype == "cgroup" else []
        for name in names:
            if name in paths and name not in found:
                relative = os.path.relpath(paths[name], root) if paths[name].startswith(root) else paths[name].lstrip("/")
                found[name] = Path(point, relative).resolve()
    return found


def make(kind: str, name: str, where: dict | None = None) -> Group | str:
    """A new group of `kind` ('memory' or 'cpu') named `name` under this process's own, or why there is none."""
    where = hierarchies() if where is None else where
    why = []
    for version, file, source in SOURCES[kind]:
        parent = where.get("v2" if version == "v2" else V1_CONTROLLER[kind])
        if parent is None:
            why.append(f"no cgroup {version} {V1_CONTROLLER[kind] if version == 'v1' else ''}".rstrip() + " hierarchy mounted")
            continue
        path = parent / name
        try:
            # One process is in one v2 group: memory and CPU are read from the same one.
            path.mkdir(exist_ok=version == "v2")
        except OSError as error:
            why.append(f"cannot create a cgroup {version} group under {parent} ({error.strerror})")
            continue
        if (path / file).exists():
            return Group(kind, str(path), file, source)
        why.append(f"cgroup {version} offers no {file} to this process (the {kind} controller is not delegated to it)")
        _rmdir(path)
    return "; ".join(why)


def read(group: Group) -> dict:
    """A group's figure now: memory {'peak_bytes'}, cpu {'usage_s', 'user_s', 'system_s'} (CPU seconds of every process
    that has been in the group, ended ones included; the kernel adds a running process's time at scheduler ticks)."""
    text = Path(group.path, group.file).read_text()
    if group.kind == "memory":
        return {"peak_bytes": int(text)}
    if group.file == "cpu.stat":
        stat = dict(line.split() for line in text.splitlines())
        return {k: int(stat[f"{k[:-2]}_usec"]) / 1e6 for k in ("usage_s", "user_s", "system_s")}
    user, system = (int(Path(group.path, f"cpuacct.usage_{k}").read_text()) / 1e9 for k in ("user", "sys"))
    return {"usage_s": int(text) / 1e9, "user_s": user, "system_s": system}


def exact_memory(group: Group | None, missing: str | None) -> dict:
    """The record's exact memory fields: the peak charged to the run's group so far and what was read, and the
    page cache of files charged to it now; or null and why."""
    if group is None:
        return {"exact_peak_bytes": None, "exact_source": None, "exact_unavailable": missing, "exact_file_cache_bytes": None}
    peak = read(group)["peak_bytes"]
    return {"exact_peak_bytes": peak, "exact_source": group.source, "exact_unavailable": None, "exact_file_cache_bytes": file_cache(group)}


def file_cache(group: Group) -> int | None:
    """Bytes of page cache of files charged to a memory group (tmpfs and shared memory left out: they are the
    run's memory), from memory.stat: v2 `file` less `shmem`, v1 `total_cache` less `total_shmem`. The kernel
    keeps no peak without it; the peak less this is a lower bound of the run's peak of its own memory (cached
    file pages stay charged until reclaimed, so what the run cached is all here at its end)."""
    try:
        stat = dict(line.split() for line in Path(group.path, "memory.stat").read_text().splitlines())
        v1 = "total_cache" in stat
        cache, shmem = (int(stat["total_cache"]), int(stat["total_shmem"])) if v1 else (int(stat["file"]), int(stat["shmem"]))
    except (OSError, KeyError, ValueError):
        return None
    return max(cache - shmem, 0)


def procs(group: Group) -> list[int]:
    try:
        return [int(p) for p in Path(group.path, "cgroup.procs").read_text().split()]
    except OSError:
        return []


def kill_all(group: Group) -> None:
    """SIGKILL whatever is still in the group (its processes are the run's, wherever they were reparented)."""
    for pid in procs(group):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def remove(group: Group, wait_s: float = 5.0) -> bool:
    """Empty the group and remove it; True once it is gone."""
    deadline = time.monotonic() + wait_s
    while True:
        kill_all(group)
        if _rmdir(Path(group.path)) or time.monotonic() > deadline:
            return not Path(group.path).exists()
        time.sleep(0.05)  # killed processes leave the group once they have exited


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


class RunGroups:
    """The groups of one run: made in the supervisor, entered by the driver before it execs, removed at the end."""

    def __init__(self):
        name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        where = hierarchies()
        self.groups, self.missing = {}, {}
        for kind in SOURCES:
            made = make(kind, name, where)
            (self.groups if isinstance(made, Group) else self.missing)[kind] = made

    def enter(self) -> None:
        """Move the calling process into every group: the driver's preexec_fn, after fork and before exec."""
        _join([str(Path(g.path, "cgroup.procs")) for g in self.groups.values()])

    def env(self) -> dict:
        """What the driver is told: each group's file and source, or why there is none."""
        return {ENV: json.dumps({"groups": {k: g.__dict__ for k, g in self.groups.items()}, "missing": self.missing})}

    def give_up(self, why: str) -> None:
        """Remove the groups and run without them, each kind saying why."""
        self.remove()
        self.missing.update(dict.fromkeys(self.groups, why))
        self.groups = {}

    def remove(self) -> list[str]:
        """Remove every group (killing what is left in it); returns the groups that could not be removed."""
        return [g.path for g in self.groups.values() if not remove(g)]


def from_env() -> tuple[dict[str, Group], dict[str, str]]:
    """In the driver: its groups by kind, and why a kind has none."""
    told = os.environ.get(ENV)
    if not told:
        return {}, dict.fromkeys(SOURCES, "the run was not started by parbench's supervisor")
    told = json.loads(told)
    return {k: Group(**g) for k, g in told["groups"].items()}, told["missing"]


def outside_run() -> list[str]:
    """In the driver: the `cgroup.procs` files of the groups its run's groups were made in (the supervisor's own)."""
    groups, _ = from_env()
    return sorted({str(Path(g.path).parent / "cgroup.procs") for g in groups.values()})


# Exit code of `moved` when the process could not join a group.
MOVE_FAILED = 97


def moved(procs_files: list[str], command: list[str]) -> list[str]:
    """`command`, started by a shell that first moves itself into the groups of `procs_files` and then execs it:
    what it allocates and runs is charged there (a v1 or v2 group keeps only what was charged before; the shell's
    own few pages stay). A shell, not a preexec_fn: Python code between fork and exec crashes a process that
    has subinterpreters (CPython 3.13)."""
    join = f'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ >"$1" || exit {MOVE_FAILED}; shift; n=$((n-1)); done; exec "$@"'
    return ["/bin/sh", "-c", join, "sh", str(len(procs_files)), *procs_files, *command]


def _join(procs_files: list[str]) -> None:
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)


def stale(where: dict | None = None) -> list[Path]:
    """Groups of supervisors that are gone, under this process's own cgroups."""
    where = hierarchies() if where is None else where
    found = []
    for parent in {where[k] for k in ("v2", *V1_CONTROLLER.values()) if k in where}:
        try:
            children = list(parent.iterdir())
        except OSError:
            continue
        for path in children:
            m = NAME.match(path.name)
            if m and path.is_dir() and not _alive(int(m.group(1))):
                found.append(path)
    return found


def remove_stale() -> list[str]:
    """Remove the groups that killed supervisors left (their processes are killed first); returns their names."""
    removed = []
    for path in stale():
        kind = "memory" if (path / "memory.max_usage_in_bytes").exists() or (path / "memory.peak").exists() else "cpu"
        if remove(Group(kind, str(path), "", ""), wait_s=1.0):
            removed.append(path.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
