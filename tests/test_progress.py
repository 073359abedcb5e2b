"""parbench.sweep.progress: the plan line at a sweep's start (with an estimate only from runs already recorded), one line
by the job that records a round's last run, none by the others."""

import json
from pathlib import Path

import pytest

from parbench.sweep import order, progress

CONFIG = {
    "backends": ["serial", "threads"],
    "workers": [2],
    "trials": 2,
    "sentinel": None,
    "workloads": {"primes": {"span": 100}},
}


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def record(path: str, seconds: float) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"started_at": 100.0, "finished_at": 100.0 + seconds}))


def test_a_fresh_sweep_plans_every_run_and_promises_an_estimate_after_a_round(here):
    line = progress.start(CONFIG)
    assert line == "parbench: 6 of 6 runs to do in 2 rounds (0 recorded); an estimate of the time follows the first round"
    plan = json.loads(progress.PLAN.read_text())
    assert plan["missing"] == 6 and [len(p) for p in plan["rounds"].values()] == [3, 3]


def test_a_resumed_sweep_estimates_from_its_recorded_runs(here):
    first, *rest = order.shuffled_round(CONFIG, 1)
    for path in [first, *rest]:
        record(path, 2.0)  # 2 s each, plus the job's own start-up
    line = progress.start(CONFIG)
    assert "3 of 6 runs to do in 2 rounds (3 recorded)" in line and f"{2.0 + progress.JOB_START_S:.1f} s per run so far" in line


def test_only_the_job_that_completes_a_round_says_so(here):
    progress.start(CONFIG)
    jobs = order.shuffled_round(CONFIG, 1)
    info = {"order": {"round": 1}}
    for path in jobs[:-1]:
        record(path, 1.0)
        assert progress.after(path, info) is None, "the round is not done yet"
    record(jobs[-1], 1.0)
    line = progress.after(jobs[-1], info)
    assert line.startswith("parbench: round 1 done (1 of 2 rounds complete); 3 of 6 runs recorded, 3 to go: about ")
    assert progress.after(jobs[-1], {"order": {"round": 2}}) is None, "a path outside the round says nothing"


def test_a_job_outside_a_sweep_says_nothing(here):
    assert progress.after("results/runs/x.json", {"order": None}) is None
