"""A sweep as a comparison reads it (its run records, machine.json and sentinel runs) and what it ran on
and with: the facts of each side, side by side, and what a ratio between two sides can mean given the
facts that differ.

A baseline is a finished sweep's results/ folder, copied anywhere: tables/runs.csv names the runs
that make the sweep, runs/ holds their records, sentinels/ its sentinel runs, machine.json the
machine's limits. Both sides are read from their records by this parbench, so they are treated alike.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from parbench import records
from parbench.compare import judge
from parbench.compare.baseline import listed_records, sentinel_files
from parbench.text import blas_text, commit_text, gib_text, num


@dataclass
class Sweep:
    """One sweep: its name (a folder, or 'this sweep'), its run records, machine.json and its sentinel runs."""

    name: str
    records: list[dict]
    machine: dict = field(default_factory=dict)
    sentinels: list[dict] = field(default_factory=list)


def load(name: str, record_paths, machine_path, sentinel_paths=()) -> Sweep:
    machine = json.loads(Path(machine_path).read_text()) if machine_path and Path(machine_path).exists() else {}
    return Sweep(name, [records.read(p) for p in record_paths], machine, [records.read(p) for p in sentinel_paths])


def load_baseline(folder) -> Sweep:
    path = Path(folder).expanduser().resolve()
    return load(str(folder), listed_records(path), path / "machine.json", sentinel_files(path))


# ---------------------------------------------------------------- what differs between sweeps

MACHINE_FACTS = ("host", "CPU model", "cores (physical / logical)", "memory")


def _distinct(values) -> str:
    """One value, or each distinct value with its number of runs: a mixed sweep shows as such."""
    values = ["–" if v is None or v == "" else str(v) for v in values]
    counts = pd.Series(values, dtype=object).value_counts()
    if len(counts) <= 1:
        return counts.index[0] if len(counts) else "–"
    return " | ".join(f"{v} ({n} runs)" for v, n in counts.items()) + " (mixed)"


def facts(sweep: Sweep) -> dict[tuple[str, str], str]:
    """What a sweep ran on and with, as {(group, fact): text}, from its records and machine.json."""
    recs, machine = sweep.records, sweep.machine
    env = [r.get("environment") or {} for r in recs]
    settings = [r.get("settings") or {} for r in recs]
    out = {
        ("machine", "host"): _distinct(e.get("host") for e in env),
        ("machine", "CPU model"): _distinct(e.get("cpu_model") for e in env),
        ("machine", "cores (physical / logical)"): _distinct(f"{e.get('physical_cores')} / {e.get('logical_cores')}" for e in env),
        ("machine", "memory"): _distinct(gib_text(e.get("memory_bytes")) for e in env),
        ("machine", "platform"): _distinct(e.get("platform") for e in env),
        ("machine", "GEMM GFLOP/s, 1 core / all cores (machine.json)"): (
            f"{num(machine.get('blas_gflops_single'))} / {num(machine.get('blas_gflops_all'))}" if machine else "–"
        ),
        ("machine", "pickle 100 MiB, dumps / loads s (machine.json)"): (
            f"{num(machine.get('pickle_100mib_dumps_s'))} / {num(machine.get('pickle_100mib_loads_s'))}" if machine else "–"
        ),
        ("software", "Python"): _distinct(f"{e.get('python_implementation') or ''} {e.get('python')}".strip() for e in env),
        ("software", "BLAS"): _distinct(blas_text(e.get("blas")) for e in env),
        ("software", "thread variables"): _distinct(
            " ".join(f"{k}={v}" for k, v in sorted((e.get("env") or {}).items())) or "none set" for e in env
        ),
    }
    packages = sorted({p for e in env for p in e.get("packages") or {}})
    for p in packages:
        out[("software", p)] = _distinct((e.get("packages") or {}).get(p) or "not installed" for e in env)
    out[("software", "record schema_version")] = _distinct(r.get("schema_version") for r in recs)
    out[("config", "backends")] = ", ".join(sorted({r["backend"] for r in recs}))
    out[("config", "worker counts")] = ", ".join(map(str, sorted({int(r["workers"]) for r in recs})))
    out[("config", "trials per cell")] = _distinct(
        # A/A twins are no cells (judge.cells): a baseline read from its runs.csv lists them, this sweep's rule does not.
        pd.Series([(r["workload"], r["backend"], r["workers"]) for r in recs if not r.get("twin")]).value_counts().sort_index().to_list()
    )
    out[("config", "blas_threads")] = _distinct(s.get("blas_threads") for s in settings)
    out[("config", "limits")] = _distinct(json.dumps(s.get("limits"), sort_keys=True) for s in settings)
    out[("config", "sampler")] = _distinct(json.dumps(s.get("sampler"), sort_keys=True) for s in settings)
    for workload in sorted({r["workload"] for r in recs}):
        out[("config", f"{workload} parameters")] = _distinct(
            json.dumps(r.get("params"), sort_keys=True) for r in recs if r["workload"] == workload
        )
    for backend in sorted({r["backend"] for r in recs}):
        options = [json.dumps(s.get("options"), sort_keys=True) for r, s in zip(recs, settings) if r["backend"] == backend]
        if any(o not in ("{}", "null") for o in options):
            out[("config", f"{backend} options")] = _distinct(options)
    out[("code", "commit")] = _distinct(commit_text(e, digits=12) for e in env)
    out[("code", "run code hashes")] = ", ".join(sorted({str(e.get("code_hash"))[:8] for e in env}))
    load = [(r.get("system") or {}).get("loadavg_1m_start") for r in recs]
    if any(v is not None for v in load):  # recorded by newer parbench: how busy the machine was
        out[("machine", "load average at run starts, median (records)")] = num(float(np.median([v for v in load if v is not None])))
    return out


def differences(sweeps: list[Sweep]) -> pd.DataFrame:
    """Every fact of every sweep side by side (columns: group, fact, one per sweep, differs), differing facts first."""
    found = [facts(s) for s in sweeps]
    keys = list(dict.fromkeys(k for f in found for k in f))
    rows = []
    for group, name in keys:
        values = [f.get((group, name), "–") for f in found]
        rows.append({"group": group, "fact": name, **{s.name: v for s, v in zip(sweeps, values)}, "differs": len(set(values)) > 1})
    out = pd.DataFrame(rows)
    return out.sort_values("differs", ascending=False, kind="stable").reset_index(drop=True)


def framing(diff: pd.DataFrame, here: Sweep, base: Sweep) -> str:
    """What a ratio between `here` and `base` can mean, given what differs between them."""
    differs = diff[diff.differs]
    machine = [f for f in MACHINE_FACTS if f in set(differs.fact)]
    # Measurements (machine.json) differ between any two sweeps; settings, versions and code are what a ratio is about.
    other = [f for f in differs.fact if f not in MACHINE_FACTS and not f.endswith(("(machine.json)", "(records)"))]
    other_text = ", ".join(other)
    gemm = [_gemm_all(s) for s in (base, here)]
    gemm_text = (
        f" The machine's measured GEMM peak (all cores) was {num(gemm[0])} GFLOP/s there and {num(gemm[1])} here." if all(gemm) else ""
    )
    if machine and not other:
        return (
            f"Different machines ({', '.join(machine)} differ) and nothing else recorded differs: the ratios compare the machines, "
            "for this code and config." + gemm_text
        )
    if machine:
        return (
            f"Different machines ({', '.join(machine)} differ). A ratio here mixes the machine with everything else that differs "
            f"({other_text}): it says how this sweep's whole setup compares with the baseline's, not which difference caused it."
            + gemm_text
        )
    moved = all(gemm) and abs(gemm[1] / gemm[0] - 1) > 0.1
    moved_text = " That peak moved by more than 10 %: the machine itself was not the same." if moved else ""
    if not other:
        return (
            "Same machine, and nothing recorded differs (an A/A comparison): a verdict of faster or slower is a false "
            "positive or a change of the machine's state between the sweeps (other load, temperature)." + gemm_text + moved_text
        )
    return (
        f"Same machine (host, CPU model, cores and memory agree). What differs: {other_text}. Ratios reflect those differences "
        "plus any change of the machine's state between the sweeps (other load, temperature, kernel) beyond what the sentinels "
        "cancel where both sweeps ran one in every round (a change that slows some workloads more than others; the opening "
        "says whether they did), which the intervals do not cover." + gemm_text + moved_text
    )


def _gemm_all(sweep: Sweep):
    return sweep.machine.get("blas_gflops_all")


def variant_sweeps(here: Sweep, table: pd.DataFrame) -> list[tuple[Sweep, Sweep]]:
    """(first variant, other variant) as sweeps of their records, for what differs between them."""
    within = table[table.kind == judge.WITHIN]
    pairs = within[["baseline", "variant"]].drop_duplicates().itertuples(index=False)

    def part(name):
        return Sweep(name, [r for r in here.records if (r.get("variant") or "") == name], here.machine)

    return [(part(first), part(other)) for first, other in pairs]


def variant_framing(diff: pd.DataFrame) -> str:
    other = [f for f in diff[diff.differs].fact if not f.endswith(("(machine.json)", "(records)"))]
    if not other:
        return (
            "Nothing recorded differs between these variants (an A/A comparison): a verdict of faster or slower is a false "
            "positive; equivalent or cannot tell is what it should say."
        )
    return f"Same session, same machine. What differs: {', '.join(other)}. Paired within rounds, the ratios measure those differences."
