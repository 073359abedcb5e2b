"""results/report.html: one self-contained page (figures embedded as data URIs) from the tables.

The sentences come from parbench.report.claims (findings and the per-workload summary) and parbench.report.blog
(the blog replicated), each workload adding its own explanation; this module gathers them and
renders templates/report.html.j2 (parbench.report.pages: autoescaping, so no text reaches the page unescaped).
"""

import base64
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from markupsafe import Markup

from parbench import workloads
from parbench.report import blog, claims, decisions, provenance
from parbench.report.figures import FIGURES, split_name
from parbench.report.pages import css, render, table
from parbench.stats import AA_COLUMNS, first_variant, is_clean
from parbench.text import MIB, UNIT, blas_text, commit_text, gib_text, num

INTERPRETERS = "GIL or free-threaded"
SECTIONS = {
    "summary": "Summary by kind of work",
    "findings": "Findings",
    "blog": "The blog, replicated",
    "figures": "Figures",
    "unclean": "Runs that did not run cleanly",
    "method": "Method and environment",
}
DEFINITIONS = {
    "item": "one input of a task (one x @ y_i, one text, one range of integers); a task takes items_per_task of them (1 unless chunked)",
    "startup_s": "bringing the backend up: pool, ray.init, cluster, worker processes ready",
    "setup_s": "placing shared state: ray.put, shared memory, model load in stateful workers",
    "warm-up": "the first batches, run but untimed in throughput (imports, first touches, lazy starts)",
    "throughput": f"{UNIT} over the timed batches only (steady state); one figure per run (its items over the median of its "
    "timed batches), the geometric mean over the cell's clean runs, 90 % t interval over runs (docs/method.md)",
    "speedup_vs_serial": "throughput over serial's at the same worker count, paired within rounds: the geometric mean over "
    "rounds of the cell's run over serial's run of the same round, 90 % t interval; serial runs in-process (BLAS on every core)",
    "verdict_vs_serial": "faster / slower: beyond the margin after Holm's correction over the workload's cells (family); "
    "equivalent: the interval inside ±margin; cannot tell: neither (rounds_needed: how many rounds the spread says would decide it)",
    "detectable_difference": "the smallest true difference these rounds and this spread find with 80 % power (serial: the A/A twin's)",
    "cores busy": "CPU seconds of the driver process over the wall time of the timed batches: for serial and threads, "
    "whose tasks run in the driver, the cores the work kept busy; a thread that spins while it waits counts as busy",
    "cores busy (tree)": "CPU seconds of the whole process tree over the timed batches' wall time: worker processes, and the "
    "library's own daemons (Ray's raylet and GCS, Dask's scheduler and nannies) that run beside the tasks",
    "end_to_end_s": "start-up to teardown, excluding the harness's own input generation and result digests",
    "memory": "peak PSS summed over the driver and all its descendants, RSS followed every {period} ms and PSS read as often as "
    "its cost allows; shared pages counted once. Shared memory: growth of Shmem in /proc/meminfo (Ray's object store, shm "
    "segments, memmaps); that figure is machine-wide, so another program's shared memory would count",
    "exact memory": "where the kernel offers it, the peak of all memory charged to the run's own memory cgroup, from the driver's "
    "start to the end of teardown: every process's private pages, shared memory and tmpfs pages the run first touched, page "
    "cache it read or wrote first, and kernel memory; pages first charged elsewhere (shared libraries already cached) are not in it, "
    "so a run's exact peak can depend on what ran before it. exact_peak_less_cache: the exact peak less the page cache of files "
    "charged to the group at the run's end, a lower bound of the peak of the run's own memory that no longer depends on "
    "what earlier runs cached (the kernel keeps no peak without the page cache)",
    "CPU per item": "CPU seconds (user + system) of the driver and every descendant in the timed batches, over the items they "
    "processed; the memory sampler's own CPU excluded",
    "verified": "every timed result checked against a serial reference after the run",
}
BLAS_POLICY = {
    "auto": "the physical cores are shared among the workers (serial, in the driver, gets them all)",
    "library-default": "each library's own choice, uncontrolled (as in the blog)",
}
EVERY_CELL = [
    "workload", "backend", "workers", "items_per_task", "throughput_median", "throughput_ci_low", "throughput_ci_high",
    "speedup_vs_serial", "speedup_ci_low", "speedup_ci_high", "verdict_vs_serial", "family", "n_rounds",
    "detectable_difference", "rounds_needed", "peak_tree_pss_bytes_median", "peak_shm_bytes_median",
    "startup_s_median", "setup_s_median", "end_to_end_s_median", "driver_cores_busy_median", "cpu_per_item_s_median",
    "tree_cores_busy_median", "exact_peak_bytes_median", "exact_peak_less_cache_bytes_median", "blog_timer_s_median",
    "gflops_median", "blas_threads", "n_runs", "n_clean", "n_busy", "statuses",
]  # fmt: skip


def explanation(name: str, config: dict):
    """The `explain` of workload `name`'s class, if it can be loaded here (a user's module may not be)."""
    params = (config.get("workloads") or {}).get(name) or {}
    try:
        return workloads.load(name, params.get("module")).explain, params
    except Exception:  # noqa: BLE001  (a module that cannot be imported here explains nothing; its runs still count)
        return None, params


def explanations(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, config: dict) -> dict[str, list[str]]:
    """Each workload's own account of its figures (its class's `explain`), made once: the findings and the
    blog's paragraph both show it."""
    out = {}
    for workload, s in stats.groupby("workload", sort=False):
        explain, params = explanation(workload, config)
        out[workload] = explain(s, runs[runs.workload == workload], machine, params) if explain else []
    return out


def findings(stats: pd.DataFrame, runs: pd.DataFrame, explained: dict[str, list[str]]) -> list[dict]:
    stats = stats.merge(decisions.memory_ranges(runs), on=decisions.KEYS, how="left") if len(runs) else stats
    out = []
    for workload, s in stats.groupby("workload", sort=False):
        r = runs[runs.workload == workload]
        found = claims.findings(s, r)
        titles = {
            "per_workers": "By worker count",
            "scaling": "Scaling",
            "cpu": "CPU per item (whole process tree, timed batches)",
            "memory": "Memory",
            "state": "State built in the timed batches",
            "busy": "Busy machine",
            "excluded": "Left out",
        }
        details = [(title, found[key]) for key, title in titles.items() if found[key]]
        why = explained.get(workload, [])
        if why:
            details.insert(0, ("What explains it", why))
        out.append({"name": workload, "advice": found["advice"], "details": details})
    return out


def every_cell(stats: pd.DataFrame) -> Markup:
    shown = stats[[c for c in EVERY_CELL if c in stats]].copy()
    for c in ("peak_tree_pss_bytes_median", "peak_shm_bytes_median", "exact_peak_bytes_median", "exact_peak_less_cache_bytes_median"):
        if c in shown:
            shown[c.replace("_bytes", "_mib")] = shown.pop(c) / MIB
    return table(shown, "num")


def figures(paths: list) -> list[dict]:
    by_workload = {}
    for path in sorted(paths, key=str):
        workload, name = split_name(path)
        by_workload.setdefault(workload, {})[name] = path
    return [
        {
            "name": workload,
            "figures": [
                {"data": base64.b64encode(Path(figs[n]).read_bytes()).decode(), "alt": Path(figs[n]).stem, "caption": FIGURES.get(n, n)}
                for n in [n for n in FIGURES if n in figs] + [n for n in figs if n not in FIGURES]
            ],
        }
        for workload, figs in by_workload.items()
    ]


def unclean(runs: pd.DataFrame) -> Markup | None:
    bad = runs[~is_clean(runs)]
    if bad.empty:
        return None
    shown = bad[["workload", "backend", "workers", "trial", "status", "verified", "reason"]].copy()
    problem = bad.verification_problem if "verification_problem" in bad else pd.Series(None, index=bad.index, dtype=object)
    shown["reason"] = shown.reason.fillna(problem).fillna("not verified")  # an ok run left out names why its check failed
    shown["reason"] = shown.reason.astype(str).str.replace(r"\s+", " ", regex=True)  # tracebacks' newlines
    return table(shown)


def installed_note(runs: pd.DataFrame) -> str:
    """Where the sweep's installed set is, and whether every run had it."""
    sets = runs.installed_sha.dropna().unique() if "installed_sha" in runs else []
    if len(sets) == 0:
        return "The runs' records name no installed set (made before parbench recorded it)."
    same = (
        "every run had the same set" if len(sets) == 1 else f"the runs had {len(sets)} different sets (a package changed during the sweep)"
    )
    return (
        f"results/installed.txt lists every package and version installed for the runs' interpreter ({same}; each "
        "record's environment.installed has its own): python -m venv ENV && ENV/bin/pip install -r results/installed.txt "
        "rebuilds it, and parbench at the git commit above runs the same code."
    )


def machine_facts(machine: dict) -> dict:
    env = machine.get("environment", {})
    spawn = machine.get("process_spawn_s") or {}

    def value(key):
        return num(machine.get(key) if machine.get(key) is not None else np.nan)

    return {
        "host": env.get("host"),
        "CPU": env.get("cpu_model"),
        "cores (physical / logical)": f"{machine.get('physical_cores')} / {machine.get('logical_cores')}",
        "memory": gib_text(env.get("memory_bytes")),
        "Python": env.get("python"),
        "platform": env.get("platform"),
        "git commit": commit_text(env),
        "BLAS": blas_text(env.get("blas")),
        "BLAS GFLOP/s, 1 core / all cores": f"{value('blas_gflops_single')} / {value('blas_gflops_all')}",
        "pickle 100 MiB, dumps / loads": f"{value('pickle_100mib_dumps_s')} s / {value('pickle_100mib_loads_s')} s",
        "process start": ", ".join(f"{m} {num(v)} s" for m, v in spawn.items()) or "not measured",
    }


def gil_text(runs: pd.DataFrame) -> str:
    seen = runs.gil_enabled.dropna().unique() if "gil_enabled" in runs else []
    if len(seen) == 0:
        return "Whether the GIL was enabled was not recorded."
    if len(seen) > 1:
        return "Some runs had the GIL enabled and some not: the interpreter differed between runs."
    if bool(seen[0]):
        return "Every run had the GIL enabled (a standard CPython): threads run Python code one at a time."
    return "No run had the GIL enabled (a free-threaded CPython): threads can run Python code in parallel."


def exact_memory_text(runs: pd.DataFrame) -> str:
    """What the exact peaks were read from, or that the kernel offered none."""
    sources = runs.exact_source.dropna().unique() if "exact_source" in runs else []
    if len(sources) == 0:
        return (
            "No run had a memory cgroup of its own (the kernel offered none to this user, or the records predate it): "
            "the memory figures are the sampler's alone."
        )
    measured = int(runs.exact_source.notna().sum())
    return f"{measured} of {len(runs)} runs ran in a memory cgroup of their own; their exact peak was read from {', '.join(sources)}."


def machine_state(runs: pd.DataFrame, sentinels: pd.DataFrame, config: dict) -> list[str]:
    """The machine during the sweep: the busy rule and what it found, the order of the runs, the drift."""
    out = [f"Busy machine: {claims.BUSY_RULE}."]
    if (n := decisions.busy_count(runs)) is not None:
        out.append(
            f"{n} of {len(runs)} runs were made on a busy machine" + (f"; they are marked{claims.BUSY_MARK} in the findings." if n else ".")
        )
    if "other_cores_tick_noise" in runs and len(short := runs[runs.other_cores_tick_noise.notna() & runs.busy_machine.isna()]):
        names = ", ".join(sorted(short.workload.unique()))
        out.append(f"{len(short)} runs had timed batches too short to judge ({names}): set their min_timed_s to judge them.")
    out.append(
        f"Order: the runs executed one at a time, in rounds: each round ran every cell once (with the reference's A/A twin "
        f"and the sentinel) in its own seeded random order (shuffle_seed {config.get('shuffle_seed', 0)}), and a round began "
        "only after the one before it ended; each record says its round and place (order.position)."
    )
    out.append(claims.drift(sentinels, runs)[0])
    return out


def context(
    runs: pd.DataFrame,
    stats: pd.DataFrame,
    machine: dict,
    figure_paths: list,
    config: dict,
    sentinels: pd.DataFrame | None = None,
    aa: pd.DataFrame | None = None,
) -> dict:
    """Everything the template shows, computed from the tables."""
    sentinels = pd.DataFrame(columns=["sentinel", "status", "throughput"]) if sentinels is None else sentinels
    aa = pd.DataFrame(columns=AA_COLUMNS) if aa is None else aa
    drift_text, drifted = claims.drift(sentinels, runs)
    env = machine.get("environment", {})
    clean = int(is_clean(runs).sum())
    policy = config.get("blas_threads", "auto")
    period = 1000 * ((config.get("sampler") or {}).get("period_s") or 0.05)
    threads = (
        stats.pivot_table(index="backend", columns="workers", values="blas_threads", aggfunc="first")
        if "blas_threads" in stats and stats.blas_threads.notna().any()
        else pd.DataFrame()
    )
    packages = pd.DataFrame([{"package": k, "version": v} for k, v in (env.get("packages") or {}).items() if v])
    replicated = blog.blog_table(stats, runs)
    explained = explanations(stats, runs, machine, config)
    return {
        "css": css(),
        "sections": SECTIONS,
        "where": f"{env.get('host')}, {env.get('cpu_model')}, {machine.get('physical_cores')} physical cores",
        "sweep": f"{runs.workload.nunique()} workloads × {runs.backend.nunique()} backends × worker counts "
        f"{', '.join(map(str, sorted(runs.workers.unique())))}; {len(runs)} runs, {clean} clean",
        "generated": time.strftime("%Y-%m-%d %H:%M"),
        # Records of several hosts, CPU models or commits: said first.
        "warnings": [
            w
            for w in [
                provenance.mixed_provenance_text(runs),
                claims.noise_warning(aa),
                claims.busy_warning(runs),
                drift_text if drifted else None,
            ]
            if w
        ],
        "noise_floor": claims.noise_floor(aa),
        "summary": table(claims.summary(stats, runs), "summary"),
        "findings": findings(stats, runs, explained),
        "unit": UNIT,
        "min_trials": decisions.MIN_TRIALS,
        "cores": machine.get("physical_cores", "?"),
        "every_cell": every_cell(stats),
        "blog_table": table(replicated) if len(replicated) else None,
        "blog_text": [blog.blog_explanation(stats, runs, w, explained.get(w, [])) for w in replicated.workload.unique()]
        if len(replicated)
        else [],
        "figures": figures(figure_paths),
        "unclean": unclean(runs),
        "definitions": {**DEFINITIONS, "memory": DEFINITIONS["memory"].format(period=f"{period:g}")},
        "machine_facts": machine_facts(machine),
        "machine_state": machine_state(runs, sentinels, config),
        "exact_memory": exact_memory_text(runs),
        "blas_policy": policy,
        "blas_policy_text": BLAS_POLICY.get(policy, f"{policy} BLAS threads in every worker"),
        "blas_table": table(threads.reset_index().rename_axis(columns=None)) if len(threads) else None,
        "gil_text": gil_text(runs),
        "interpreters": [],  # write() fills it from every variant's cells
        "packages": table(packages) if len(packages) else None,
        "installed": installed_note(runs),
        "config_yaml": yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
    }


def write(out, runs, stats, machine, figures: list, config: dict, sentinels=None, aa=None) -> None:
    """Write the report to `out` from runs.csv, stats.csv, machine.json, the PNG figures, the config, sentinels.csv and aa.csv."""
    # The sweep's own runs: the first variant's (the comparison page shows the others against them).
    first = next(iter(config.get("variants") or {}), None)
    every_runs, every_stats = pd.read_csv(runs), pd.read_csv(stats)
    runs, stats = first_variant(every_runs, first), first_variant(every_stats, first)
    sentinels = pd.read_csv(sentinels) if sentinels is not None else None
    aa = first_variant(pd.read_csv(aa), first) if aa is not None else None
    machine = json.loads(Path(machine).read_text())
    page = context(runs, stats, machine, figures, config, sentinels, aa)
    # Variants on different interpreters (GIL or free-threaded): their cells side by side, paired within rounds.
    page["interpreters"] = [
        {**w, "table": table(w.pop("rows"))}
        for w in claims.interpreters(
            every_stats.fillna({"variant": ""}), every_runs.fillna({"variant": ""}), list(config.get("variants") or {})
        )
    ]
    page["sections"] = {**SECTIONS, **({"interpreters": INTERPRETERS} if page["interpreters"] else {})}
    page["warnings"] += [w for w in [claims.gil_warning(every_runs)] if w]
    Path(out).write_text(render("report.html.j2", **page), encoding="utf-8")
