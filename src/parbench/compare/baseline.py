"""A finished sweep's results folder as a baseline to compare with: what makes one usable, and its files.

Light on purpose: Snakemake checks compare_with when it parses the workflow, and importing
parbench.compare.compare there (pandas, scipy: 900 more modules) mapped their libraries into Snakemake's own
process, which then shares pages with every run's driver: beside such a process a serial ner run's
PSS was 3.9 MiB (2.7 %) lower, in 3 of 3 paired runs.
"""

import csv
from pathlib import Path

from parbench import records

FINISHED = ("runs/", "tables/runs.csv", "machine.json")


class BaselineError(ValueError):
    """A compare_with folder that cannot serve as a baseline; the message names the folder."""


# ---------------------------------------------------------------- a finished sweep on disk


def _key(workload, backend, workers, trial, variant=None, twin=None) -> tuple:
    """What names one run, from a record's fields or from a runs.csv row's strings."""
    return str(workload), str(backend), int(float(workers)), int(float(trial)), str(variant or ""), str(twin).lower() in ("true", "1")


def listed_records(folder) -> list[Path]:
    """The record of each run a finished sweep's tables/runs.csv lists: at its plain path, else (a
    variant's run or an A/A twin, or another layout) found among runs/ by its fields; a missing one
    at the path it would have."""
    path = Path(folder).expanduser()
    with open(path / "tables" / "runs.csv", newline="") as f:
        listed = list(csv.DictReader(f))
    out, index = [], None
    for r in listed:
        plain = records.path(path, r["workload"], r["backend"], r["workers"], r["trial"])
        key = _key(r["workload"], r["backend"], r["workers"], r["trial"], r.get("variant"), r.get("twin"))
        if plain.is_file() and not key[4] and not key[5]:
            out.append(plain)
            continue
        if index is None:  # read every record once, only for a sweep that needs it
            index = {}
            for p in sorted((path / "runs").rglob("*.json")):
                try:
                    rec = records.read(p)
                    index.setdefault(
                        _key(rec["workload"], rec["backend"], rec["workers"], rec["trial"], rec.get("variant"), rec.get("twin")), p
                    )
                except (OSError, ValueError, KeyError, TypeError):
                    continue
        out.append(index.get(key, plain))
    return out


def sentinel_files(folder) -> list[Path]:
    """A finished sweep's sentinel runs (none in a sweep run without sentinels)."""
    return sorted((Path(folder).expanduser() / "sentinels").glob("*.json"))


def baseline_problems(folder, here="results") -> list[str]:
    """Why `folder` cannot serve as a baseline (empty if it can): not there, this sweep's own results,
    not a finished parbench results folder, records missing or unreadable, or of a newer schema_version."""
    name = f"compare_with: {folder}"
    path = Path(folder).expanduser()
    if not path.is_dir():
        where = f" (looked for {path.resolve()})" if str(path.resolve()) != str(folder) else ""
        return [f"{name} is not a folder{where}"]
    if path.resolve() == Path(here).resolve():
        return [f"{name} is this sweep's own results folder; copy a finished sweep's results/ elsewhere and name the copy"]
    absent = [part for part in FINISHED if not (path / part).exists()]
    if absent:
        return [
            f"{name} is not a parbench results folder: it has no {', '.join(absent)} "
            f"(a finished sweep's results/ folder holds {', '.join(FINISHED)}; copy the whole folder)"
        ]
    with open(path / "tables" / "runs.csv", newline="") as f:
        listed = list(csv.DictReader(f))
    if not listed or not {"workload", "backend", "workers", "trial"} <= set(listed[0]):
        return [f"{name} is not a parbench results folder: its tables/runs.csv lists no runs (workload, backend, workers, trial)"]
    paths = listed_records(path)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        return [
            f"{name} misses {len(missing)} of the {len(paths)} records its tables/runs.csv lists, "
            f"e.g. {missing[0].relative_to(path)}; copy the whole results/ folder of that sweep"
        ]
    problems = []
    for p in paths:
        try:
            version = records.read(p).get("schema_version")
        except (OSError, ValueError) as error:
            problems.append(f"{name}: {p.relative_to(path)} is not a readable run record ({error})")
            continue
        if not isinstance(version, int):
            problems.append(f"{name}: {p.relative_to(path)} is not a parbench run record (no schema_version)")
        elif version > records.SCHEMA_VERSION:
            problems.append(
                f"{name} holds records of schema_version {version} (e.g. {p.relative_to(path)}), newer than this "
                f"parbench reads ({records.SCHEMA_VERSION}); compare with the parbench that wrote them"
            )
        if len(problems) >= 3:  # enough to say what is wrong
            break
    return problems


def baseline_files(folder) -> list[Path]:
    """Every file of a checked baseline that the comparison reads: its listed records, its sentinels, runs.csv and machine.json."""
    path = Path(folder).expanduser().resolve()
    return [*listed_records(path), *sentinel_files(path), path / "tables" / "runs.csv", path / "machine.json"]


def baselines(value, here="results") -> dict[str, list[Path]]:
    """compare_with (a folder or a list of folders) as {folder as given: its files}, or BaselineError naming every problem."""
    folders = [value] if isinstance(value, str) else list(value or [])
    problems = [p for folder in folders for p in baseline_problems(folder, here)]
    if problems:
        raise BaselineError("cannot compare with a baseline:\n  " + "\n  ".join(problems))
    return {folder: baseline_files(folder) for folder in folders}
