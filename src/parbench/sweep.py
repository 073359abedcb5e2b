"""Sweep-level care: a sweep killed with SIGKILL leaves Snakemake's lock behind; the next plain
`snakemake` must resume it instead of asking for --unlock."""

from pathlib import Path

import psutil


def other_snakemake_here(workdir) -> bool:
    """True if a Snakemake process (or one of its jobs) other than ours works in `workdir`."""
    workdir = str(Path(workdir).resolve())
    me = psutil.Process()
    ours = {me.pid, *(p.pid for p in me.parents()), *(c.pid for c in me.children(recursive=True))}
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        if proc.info["pid"] in ours or not proc.info["cmdline"]:
            continue
        if "snakemake" in " ".join(proc.info["cmdline"]) and proc.info["cwd"] == workdir:
            return True
    return False


def clear_stale_locks(workdir) -> list[str]:
    """Remove Snakemake's lock files if no other Snakemake process works in `workdir`; returns their names."""
    locks = sorted(Path(workdir, ".snakemake", "locks").glob("*.lock"))
    if not locks or other_snakemake_here(workdir):
        return []
    for lock in locks:
        lock.unlink(missing_ok=True)
    return [lock.name for lock in locks]
