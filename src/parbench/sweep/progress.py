"""Where a long sweep is: at its start the runs still to do and an estimate of their time, a line per finished
round with the time left, at its end the report's path.

Nothing here runs inside a timed run. The plan is written by Snakemake's main process before any job; a round's
line is printed by the job that recorded the round's last run, after its record is written and while it still
holds the benchmark slot, so no other run is timed meanwhile (a few file checks, about a millisecond)."""

import json
import time
from pathlib import Path

from parbench import records
from parbench.sweep import order

PLAN = Path(".snakemake", "parbench", "plan.json")
JOB_START_S = 1.0  # a job's own start-up (python -m parbench.run.job) beyond its record's started_at..finished_at


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _seconds_per_run(paths) -> float | None:
    """The mean time a job took, from the records already written (a resumed sweep, or one with some runs kept)."""
    took = []
    for path in paths:
        try:
            record = records.read(path)
            took.append(record["finished_at"] - record["started_at"] + JOB_START_S)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sum(took) / len(took) if took else None


def start(config: dict) -> str:
    """Write the plan (the sweep's runs by round, how many were missing, when it began); the line to show."""
    rounds = {str(trial): order.shuffled_round(config, trial) for trial in order.rounds(config)}
    every = [path for paths in rounds.values() for path in paths]
    missing = [path for path in every if not Path(path).exists()]
    PLAN.parent.mkdir(parents=True, exist_ok=True)
    PLAN.write_text(json.dumps({"started": time.time(), "missing": len(missing), "rounds": rounds}))
    if not missing:
        return f"parbench: all {len(every)} runs of the sweep are recorded; only tables, figures and the report may be redone"
    per_run = _seconds_per_run([path for path in every if Path(path).exists()])
    estimate = (
        f"about {_minutes(per_run * len(missing))} at {per_run:.1f} s per run so far"
        if per_run
        else "an estimate of the time follows the first round"
    )
    done = len(every) - len(missing)
    in_rounds = f"{len(rounds)} round{'s' * (len(rounds) != 1)}"
    return f"parbench: {len(missing)} of {len(every)} runs to do in {in_rounds} ({done} recorded); {estimate}"


def after(path: str, info: dict) -> str | None:
    """The line to show if the run at `path` (its job info: its round) was the last of its round to be recorded."""
    round_ = str(((info or {}).get("order") or {}).get("round"))
    try:
        plan = json.loads(PLAN.read_text())
    except (OSError, ValueError):
        return None  # a job outside a sweep, or a sweep started by an older parbench
    paths = plan["rounds"].get(round_)
    if not paths or path not in paths or not all(Path(p).exists() for p in paths):
        return None
    recorded = {p for ps in plan["rounds"].values() for p in ps if Path(p).exists()}  # each path checked once
    every = [p for ps in plan["rounds"].values() for p in ps]
    left = len(every) - len(recorded)
    done_here = plan["missing"] - left
    rounds_done = sum(set(ps) <= recorded for ps in plan["rounds"].values())
    line = f"parbench: round {round_} done ({rounds_done} of {len(plan['rounds'])} rounds complete)"
    line += f"; {len(every) - left} of {len(every)} runs recorded"
    if left and done_here > 0:
        per_run = (time.time() - plan["started"]) / done_here
        line += f", {left} to go: about {_minutes(per_run * left)} left at {per_run:.1f} s per run"
    return line
