"""Ctrl-C and its kin: a sweep stopped by a signal to its process group (what a terminal's Ctrl-C
does) ends its run's tree and cleans up as a normal end does: no process, no /dev/shm entry, no
temporary folder. The resumed sweep keeps the runs that finished. SIGINT to Snakemake alone lets
the running run finish, and keeps it."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import SNAKEMAKE, Leftovers, processes_with_token, read_records, scheduled_outputs, scratch_workflow, snakemake_env

pytestmark = pytest.mark.slow


def config(backend: str, trials: int) -> dict:
    """Runs of a few seconds with x (18 MB) shared for the whole run: the issue's reproduction, shorter."""
    matmul = {"n": 1500, "k": 64, "batches": 2, "warmup_batches": 0, "tasks_per_batch": 60}
    return {"backends": [backend], "workers": [2], "trials": trials, "workloads": {"matmul": matmul}, "limits": {"timeout_s": 300}}


class Sweep:
    """`snakemake --cores 2 --until run` in its own process group (as a terminal runs it), with a
    temporary folder of its own so that what its runs leave there is seen."""

    def __init__(self, tmp_path, backend: str, trials: int):
        self.work = scratch_workflow(tmp_path, config(backend, trials))
        self.tmpdir = Path(tmp_path, "tmp")
        self.tmpdir.mkdir()
        self.out = open(self.work / "sweep.log", "w")

    def start(self) -> subprocess.Popen:
        """Start it; call inside `Leftovers()`, whose token its processes must inherit."""
        self.env = {**snakemake_env(), "TMPDIR": str(self.tmpdir)}
        cmd = [str(SNAKEMAKE), "--cores", "2", "--until", "run"]
        self.proc = subprocess.Popen(cmd, cwd=self.work, env=self.env, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)
        return self.proc

    def rerun(self, *args) -> subprocess.CompletedProcess:
        cmd = [str(SNAKEMAKE), "--cores", "2", "--until", "run", *args]
        return subprocess.run(cmd, cwd=self.work, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)

    def output(self) -> str:
        self.out.flush()
        return (self.work / "sweep.log").read_text()

    def records(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.work)): p.read_bytes() for p in (self.work / "results" / "runs").rglob("*.json")}

    def temp_folders(self) -> list[str]:
        """The supervisors' folders, and what the run's libraries make in TMPDIR (a killed driver's pymp-*, Dask's scratch space)."""
        return sorted(p.name for pattern in ("parbench-*", "pymp-*", "dask-scratch-space") for p in self.tmpdir.glob(pattern))


def run_in_batches(sweep: Sweep, left: Leftovers, after_records: int = 0, limit_s: float = 600) -> Path:
    """Wait (a limit, not a measurement) until `after_records` runs have finished and the next one
    is past setup with entries in /dev/shm; returns the path of its record-to-be."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and sweep.proc.poll() is None:
        for proc in processes_with_token(left.token):
            try:
                cmdline = proc.cmdline()
                if "parbench.run.driver" not in " ".join(cmdline) or proc.cwd() != str(sweep.work):
                    continue
                partial = json.loads(Path(cmdline[-1]).read_text())
            except (OSError, ValueError, psutil.Error):  # not there yet, or ended meanwhile
                continue
            if partial["timings"].get("setup_s") is not None and len(sweep.records()) >= after_records and left.shm():
                spec = json.loads(Path(cmdline[-2]).read_text())
                return Path(f"results/runs/{spec['workload']}/{spec['backend']}/workers-{spec['workers']}/trial-{spec['trial']}.json")
        time.sleep(0.1)
    raise AssertionError(f"no run got to its batches: {sweep.output()[-3000:]}")


def assert_nothing_left(sweep: Sweep, left: Leftovers) -> None:
    assert left.processes() == [], "processes of the sweep remain"
    assert left.shm() == [], "the run left entries in /dev/shm"
    assert sweep.temp_folders() == [], "the run left its temporary folders"
    assert left.cgroups() == [], "the run left its cgroups"


@pytest.mark.parametrize(
    "sig,backend,resume",
    [
        ("SIGINT", "multiprocessing-shared", True),
        ("SIGINT", "joblib", False),
        ("SIGINT", "dask", False),
        ("SIGTERM", "multiprocessing-shared", False),
    ],
)
def test_signal_to_the_sweep_leaves_nothing(tmp_path, sig, backend, resume):
    sweep = Sweep(tmp_path, backend, trials=2 if resume else 1)
    with Leftovers() as left:
        proc = sweep.start()
        under_way = run_in_batches(sweep, left, after_records=1 if resume else 0)
        finished = sweep.records()
        os.killpg(proc.pid, getattr(signal, sig))
        proc.wait(timeout=300)  # a limit: Snakemake must end, not wait on
        assert not (sweep.work / under_way).exists(), "the run ended before the signal: nothing was tested"
        assert f"run stopped by {sig}" in sweep.output(), sweep.output()[-3000:]
        assert_nothing_left(sweep, left)
    if resume:
        again = sweep.rerun()
        assert again.returncode == 0, again.stdout[-3000:]
        now = sweep.records()
        assert {p: now[p] for p in finished} == finished, "a finished run was redone"
        assert str(under_way) in now and all(r["status"] == "ok" for r in read_records(sweep.work))


def test_sigint_to_snakemake_alone_keeps_the_run_it_waited_for(tmp_path):
    """Snakemake alone interrupted waits for its running job; the run that then finishes is kept
    (it used to stay marked incomplete, and the next sweep redid it)."""
    sweep = Sweep(tmp_path, "multiprocessing-shared", trials=2)
    with Leftovers() as left:
        proc = sweep.start()
        under_way = run_in_batches(sweep, left)
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=300)
        assert (sweep.work / under_way).exists(), sweep.output()[-3000:]
        assert json.loads((sweep.work / under_way).read_text())["status"] == "ok"
        assert_nothing_left(sweep, left)
    plan = sweep.rerun("-n")
    assert plan.returncode == 0, plan.stdout[-3000:]
    todo = scheduled_outputs(plan.stdout, "run")
    assert len(todo) == 1 and todo != [str(under_way)], todo
