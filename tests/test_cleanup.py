"""What `parbench.cleanup` may remove and what it must leave: another live program's entries in
/dev/shm and temporary folders stay; the machine's lock is never opened through a symlink."""

import os
import shutil
import subprocess
import tempfile

import pytest

from parbench import cleanup


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def joblib_folder():
    """A joblib memory-map folder in /dev/shm, named after its creator (given), with a file nobody maps."""
    made = []

    def make(creator: int) -> str:
        name = f"joblib_memmapping_folder_{creator}_{os.urandom(4).hex()}_test"
        (cleanup.SHM / name).mkdir()
        (cleanup.SHM / name / "x.pkl").write_bytes(b"\0" * 1024)
        made.append(name)
        return name

    yield make
    for name in made:
        shutil.rmtree(cleanup.SHM / name, ignore_errors=True)


def test_a_live_creators_joblib_folder_stays(joblib_folder):
    """joblib creates its folder before it maps anything in it: unmapped is not enough to be a leftover."""
    live, dead = joblib_folder(os.getpid()), joblib_folder(dead_pid())
    removed = cleanup.remove_shm()
    assert live not in removed and (cleanup.SHM / live).exists()
    assert dead in removed and not (cleanup.SHM / dead).exists()


def test_only_temporary_folders_of_gone_supervisors_go(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = tmp_path / "parbench-gone"
    gone.mkdir()
    (gone / cleanup.TEMP_LOCK).write_text("")  # its supervisor was killed: nobody holds the lock
    foreign = tmp_path / "parbench-foreign"  # made by something else (or older code): not ours to judge
    foreign.mkdir()
    with cleanup.temp_folder() as live:
        assert cleanup.remove_stale()["temp_folders"] == ["parbench-gone"]
        assert live.exists() and foreign.exists() and not gone.exists()
    assert not live.exists()


def test_machine_lock_is_not_opened_through_a_symlink(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    monkeypatch.setattr(cleanup, "LOCK", tmp_path / "lock")
    (tmp_path / "lock").symlink_to(victim)
    with pytest.raises(OSError, match="cannot open"):
        with cleanup.timed_slot():
            pass
    assert victim.read_text() == "precious\n"
    (tmp_path / "lock").unlink()
    with cleanup.timed_slot():
        assert f"pid {os.getpid()}" in cleanup.holder()


def test_what_a_killed_run_noted_goes_with_its_folder(tmp_path, monkeypatch):
    """After kill -9 of a whole sweep, the next run removes the folders its driver noted in the supervisor's
    folder (multiprocessing's pymp-*, Dask's scratch space and its unlocked worker folders), and nothing else."""
    import fcntl
    import json

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = tmp_path / "parbench-gone"
    gone.mkdir()
    (gone / cleanup.TEMP_LOCK).write_text("")  # its supervisor was killed: nobody holds the lock
    pymp, foreign = tmp_path / "pymp-noted", tmp_path / "pymp-foreign"  # the run's, and another program's
    for folder in (pymp, foreign):
        folder.mkdir()
        (folder / "listener-x").write_text("")
    scratch = tmp_path / "dask-scratch-space"
    for worker in ("worker-stale", "worker-live"):
        (scratch / worker).mkdir(parents=True)
        (scratch / f"{worker}.dirlock").write_text("")
    held = os.open(scratch / "worker-live.dirlock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # a live Dask worker's, as Dask locks it
    notes = [{"kind": "pymp", "path": str(pymp), "created": True}, {"kind": "dask", "path": str(scratch), "created": True}]
    (gone / cleanup.LEAVES).write_text("".join(json.dumps(n) + "\n" for n in notes))
    try:
        removed = cleanup.remove_stale()
    finally:
        os.close(held)
    assert sorted(removed["temp_left"]) == sorted([str(pymp), str(scratch / "worker-stale")])
    assert not pymp.exists() and not (scratch / "worker-stale").exists() and not gone.exists()
    assert foreign.exists() and (scratch / "worker-live").exists()

    # Once its last worker's folder is unlocked, a scratch space the run made goes too.
    (tmp_path / "parbench-gone").mkdir()
    (tmp_path / "parbench-gone" / cleanup.TEMP_LOCK).write_text("")
    (tmp_path / "parbench-gone" / cleanup.LEAVES).write_text(json.dumps(notes[1]) + "\n")
    assert cleanup.remove_stale()["temp_left"] == [str(scratch / "worker-live"), str(scratch)]
    assert not scratch.exists()


def test_a_failed_runs_library_files_are_kept_across_filesystems_without_their_sockets(tmp_path, monkeypatch):
    """Ray's session folder holds unix sockets, which a copy cannot take: on another filesystem the rest is kept."""
    import errno
    import socket

    folder = tmp_path / "library"
    (folder / "ray" / "logs").mkdir(parents=True)
    (folder / "ray" / "logs" / "raylet.out").write_text("Ray's own message")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "ray" / "plasma_store"))

    def cross_device(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(cleanup.os, "rename", cross_device)
    try:
        kept = cleanup.keep_library_files(folder, tmp_path / "r.library")
    finally:
        sock.close()
    assert kept == tmp_path / "r.library"
    assert (kept / "ray" / "logs" / "raylet.out").read_text() == "Ray's own message"
    assert not (kept / "ray" / "plasma_store").exists()
    assert cleanup.keep_library_files(tmp_path / "empty", tmp_path / "e.library") is None
