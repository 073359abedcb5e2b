"""A sweep killed with SIGKILL (Snakemake's whole process group) resumes with the same plain
command: finished runs are kept as they are, the rest are done, nothing of the killed sweep lingers:
no process, and after the resume no /dev/shm entry and no temporary folder of the killed run."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import OFFERED, SNAKEMAKE, TEXTS, Leftovers, overlaps, processes_with_token, read_records, scratch_workflow, snakemake_env

pytestmark = pytest.mark.slow

# Runs of a few seconds each: the blog's ner loads the model in every multiprocessing task.
CONFIG = {
    "backends": ["serial", "multiprocessing"],
    "workers": [1, 2],
    "trials": 1,  # the plan's order: serial at 1 and 2 workers, then multiprocessing (killed there), the twin last
    "workloads": {"ner": {"texts": TEXTS, "batches": 2, "warmup_batches": 1}},
    "limits": {"timeout_s": 300},
}
N_RUNS = 2 * 2
N_JOBS = N_RUNS + 1  # and the round's A/A twin, under results/runs/ too


def drivers(token: str, work, backend: str | None = None) -> dict:
    """The sweep's live driver processes (of `backend` with its workers up, if given), each with
    the path of its partial record (its last argument)."""
    found = {}
    for proc in processes_with_token(token):
        try:
            cmdline = proc.cmdline()
            if "parbench.run.driver" not in " ".join(cmdline) or proc.cwd() != str(work):
                continue
            if backend is None:
                found[proc] = cmdline[-1]
            elif json.loads(Path(cmdline[-2]).read_text())["backend"] == backend and _started(cmdline[-1]):
                found[proc] = cmdline[-1]
        except (psutil.Error, OSError, ValueError):
            pass
    return found


def snapshot(work) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (work / "results" / "runs").rglob("*.json")}


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, seed_machine):
    work = scratch_workflow(tmp_path_factory.mktemp("resume"), CONFIG)
    seed_machine(work)  # the sweep's runs are what is killed and resumed, not the machine's measurement
    tmpdir = work.parent / "tmp"  # the sweeps' own temporary folder, so that what their runs leave there is seen
    tmpdir.mkdir()
    log = open(work / "first.log", "w")
    with Leftovers() as left:
        env = {**snakemake_env(), "TMPDIR": str(tmpdir)}
        first = subprocess.Popen(
            [str(SNAKEMAKE), "--cores", "2"], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        # Kill once two runs have finished and a multiprocessing Pool (its semaphores in /dev/shm) is up.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and first.poll() is None:
            if len(snapshot(work)) >= 2 and drivers(left.token, work, "multiprocessing") and left.shm():
                break
            time.sleep(0.1)
        assert first.poll() is None, "the sweep ended before it could be killed"
        under_way = drivers(left.token, work)
        shm_at_kill, cgroups_at_kill = left.shm(), left.cgroups()
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        finished = snapshot(work)
        # A driver abandoned with the sweep ends unfinished; one that runs on finishes its run. Wait
        # (a limit, not a measurement) for the drivers to end either way, then read their partial records.
        _, still = psutil.wait_procs(list(under_way), timeout=180)
        ran_on = {p.pid: _status(path) for p, path in under_way.items() if _status(path) not in ("running", None)}
        ran_on.update({p.pid: "still running after 180 s" for p in still})
        lingering = left.processes(settle_s=15)
        for proc in processes_with_token(left.token):  # do not let them disturb the resumed sweep
            proc.kill()
        log.close()
        second = subprocess.run(
            [str(SNAKEMAKE), "--cores", "2"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900
        )
        (work / "second.log").write_text(second.stdout)
        shm_after, cgroups_after = left.shm(), left.cgroups()
    return {
        "work": work,
        "finished": finished,
        "in_progress": len(under_way),
        "ran_on": ran_on,
        "lingering": lingering,
        "second": second,
        "shm_at_kill": shm_at_kill,
        "shm_after": shm_after,
        "cgroups_at_kill": cgroups_at_kill,
        "cgroups_after": cgroups_after,
        "temp_folders_after": sorted(p.name for p in tmpdir.glob("parbench-*")),
    }


def _started(path) -> bool:
    return json.loads(Path(path).read_text())["timings"]["startup_s"] is not None


def _status(path):
    try:
        return json.loads(Path(path).read_text()).get("status")
    except (OSError, ValueError):
        return None


def test_kill_happened_mid_sweep(resumed):
    assert 2 <= len(resumed["finished"]) < N_JOBS
    assert resumed["in_progress"] >= 1


def test_run_under_way_is_abandoned(resumed):
    """The run under way when Snakemake died must not go on by itself: its driver must end
    unfinished, not complete a measurement that overlaps the resumed sweep (and, without its
    supervisor, has no time limit)."""
    assert resumed["ran_on"] == {}


def test_killed_sweep_leaves_no_run_processes(resumed):
    assert resumed["lingering"] == []


def test_resume_removes_what_the_killed_run_left(resumed):
    """The killed Pool's semaphores, the killed supervisor's temporary folder and its run's cgroups
    (where this machine offers them): the resumed sweep removes them (nothing of its own remains either)."""
    assert resumed["shm_at_kill"], "the killed run had nothing in /dev/shm: nothing was tested"
    assert resumed["shm_after"] == []
    assert resumed["temp_folders_after"] == []
    if any(OFFERED.values()):
        assert resumed["cgroups_at_kill"], "the killed run had no cgroups: nothing was tested"
    assert resumed["cgroups_after"] == [], "the killed run's cgroups remain"


def test_same_command_completes_the_sweep(resumed):
    second = resumed["second"]
    assert second.returncode == 0, second.stdout[-5000:]
    recs = read_records(resumed["work"])
    assert len(recs) == N_RUNS
    assert all(r["status"] == "ok" and r["verified"] for r in recs)
    assert (resumed["work"] / "results" / "report.html").exists()


def test_finished_records_are_not_rewritten(resumed):
    now = snapshot(resumed["work"])
    for path, (content, mtime) in resumed["finished"].items():
        assert now[path] == (content, mtime), f"{path} was rewritten"


def test_only_unfinished_runs_were_redone(resumed):
    second = resumed["second"].stdout
    redone = [line.split("output:", 1)[1].strip() for line in second.splitlines() if line.strip().startswith("output: results/runs/")]
    assert len(redone) == N_JOBS - len(resumed["finished"]), redone
    assert not {str(p.relative_to(resumed["work"])) for p in resumed["finished"]} & set(redone)


def test_resumed_runs_do_not_overlap(resumed):
    assert overlaps(read_records(resumed["work"])) == []
