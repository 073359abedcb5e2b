"""The harness that adds nothing (issue 4, part 3): prints figures, passes or fails nothing.

    .venv/bin/python benchmarks/harness.py [--quick] [--parts fidelity,sampler,snakemake]

1. fidelity: the blog's matmul and ner scripts (benchmarks/blog/) beside parbench runs of the same cell, in the
   blog's own framing (its timer) and in steady state.
2. sampler: one serial run with and without the memory sampler.
3. snakemake: a no-op `snakemake` on a finished sweep, and a dry run of a 2,000-run sweep.
What each figure means and how to read it: benchmarks/README.md.
"""

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from parbench.run.supervise import reap, supervise
from parbench.stats import blog_timer

ROOT = Path(__file__).resolve().parents[1]
BLOG = ROOT / "benchmarks" / "blog"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
# ray.init() without an address joins the last `ray start` cluster on the machine; both the blog
# scripts and parbench must start their own, as the blog's did.
os.environ["RAY_ADDRESS"] = "local"
# Backend options the harness's runs need (start methods: the config's defaults).
OPTIONS = {
    "multiprocessing": {"start_method": "forkserver"},
    "multiprocessing-shared": {"start_method": "forkserver"},
    "ray": {"address": None},
}
OFF = 1e6  # sampler.period_s that keeps the memory sampler's thread asleep for a whole run

MODES = {
    "quick": {"n": 1024, "k": 64, "trials": 3, "ner_batches": 4, "repeats": 2, "sampler_n": 1024, "sampler_batches": 10, "sweep": None},
    "full": {
        "n": 10240,
        "k": 128,
        "trials": 5,
        "ner_batches": 10,
        "repeats": 3,
        "sampler_n": 8192,
        "sampler_batches": 40,
        "sweep": "config/tiny.yaml",
    },
}
# --quick's finished sweep: two runs and the whole report chain, in under a minute.
MINI_SWEEP = {
    "backends": ["serial", "multiprocessing"],
    "workers": [1],
    "trials": 1,
    "workloads": {"matmul": {"n": 256, "k": 16, "batches": 2, "warmup_batches": 1}},
}
# The dry run: 6 backends x 2 workloads x 8 worker counts x 21 trials = 2,016 runs.
BIG_SWEEP = {
    "backends": ["serial", "multiprocessing", "multiprocessing-shared", "joblib", "ray", "dask"],
    "workers": list(range(1, 9)),
    "trials": 21,
    "workloads": {"matmul": {}, "ner": {}},
}


def say(*lines) -> None:
    print(*lines, sep="\n", flush=True)


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def med(values) -> float:
    return statistics.median(values)


def retried(fn, *args, **kwargs):
    """fn(...), tried a second time if it fails: on a shared machine other people's runs can break one (say why)."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as error:
        say(f"(failed, trying once more: {str(error).splitlines()[0]})")
        print(error, file=sys.stderr, flush=True)
        return fn(*args, **kwargs)


def parbench_run(backend, workers, params, blas_threads, options=None, period_s=0.05, workload="matmul") -> dict:
    """One parbench run, through the supervisor (a fresh driver process), as the sweep runs it."""
    cell = {
        "workload": workload,
        "backend": backend,
        "workers": workers,
        "trial": 1,
        "params": {"tasks_per_batch": None, **params},
        "settings": {
            "blas_threads": blas_threads,
            "options": options or {},
            "limits": {"timeout_s": 7200, "memory_gb": None},
            "sampler": {"period_s": period_s},
        },
        "code": None,
    }
    with tempfile.TemporaryDirectory(prefix="parbench-harness-") as tmp:
        log = Path(tmp, "run.log")
        try:
            record = supervise(cell, Path(tmp, "record.json"), log)
        except Exception as error:
            raise RuntimeError(f"parbench {backend} run failed: {error}\n{log.read_text()[-3000:]}") from None
        if record["status"] != "ok" or not record["verified"]:
            raise RuntimeError(
                f"parbench {backend} run: {record['status']} {record.get('reason')} {record.get('verification')}\n{log.read_text()[-3000:]}"
            )
    return record


def blog_script(name, *args) -> dict:
    """Run one of the blog's scripts in a fresh process; its printed figures by name (a list where it prints several)."""
    cmd = [sys.executable, str(BLOG / f"{name}.py"), *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if left := reap():  # after supervise() we are a subreaper: what the script left behind is ours to stop
        say(f"({name} script left {left} processes behind; stopped)")
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    figures = {}
    for line in out.stdout.splitlines():
        if line.strip():
            key, *values = line.split()
            figures[key] = [float(v) for v in values] if len(values) > 1 else float(values[0])
    return figures


# Per workload: how the blog's script runs, what its figure is, and how a parbench run gives the same figure.
FIDELITY = {
    "matmul": {
        "figure": "seconds per trial (mean over every trial, the first included)",
        "script": lambda n, k, batches, workers: [f"--n={n}", f"--k={k}", f"--trials={batches}", f"--workers={workers}"],
        "params": lambda n, k, batches: {"n": n, "k": k, "seed": 1234},
        "blog": lambda out: out["seconds_per_trial"],
        "each": lambda out: out["seconds_each_trial"],
        "per_batch": True,
    },
    "ner": {
        "figure": "seconds in all (every batch, and Ray's actor creation and model loads)",
        "script": lambda n, k, batches, workers: [f"--batches={batches}", f"--workers={workers}"],
        "params": lambda n, k, batches: {"model": "en_core_web_sm", "texts": ["Paris is the capital of France."]},
        # The blog's multiprocessing task returned the whole Doc, its Ray actors the entities.
        "backend_params": {"multiprocessing": {"result": "doc"}, "ray": {"result": "entities"}},
        "blog": lambda out: out["seconds_total"],
        "each": lambda out: out["seconds_each_batch"],
        "per_batch": False,
    },
}


def fidelity(workload, n, k, batches, workers, repeats, start_method) -> None:
    """The blog's script and parbench on the same cell, in both framings: the blog's own figure against
    parbench's blog's timer, and the script's median batch after the first against parbench's median
    timed batch (steady state)."""
    how = FIDELITY[workload]
    size = f" n={n} k={k}," if workload == "matmul" else ""
    say(
        f"\n## 1. Fidelity, {workload}: blog scripts vs parbench ({size} {workers} workers, {batches} batches)",
        f"parbench: blas_threads library-default, warmup_batches 1 + batches {batches - 1}, so both do {batches} batches;",
        f"multiprocessing start method {start_method} (the blog script's: {multiprocessing.get_start_method()}). {load()}",
        f"The blog's figure: {how['figure']}.",
        "",
    )
    head = (
        f"{'backend':16} {'rep':>3} {'blog':>9} {'pb timer':>9} {'timer/blog':>10} {'blog med':>9} {'pb med':>9} {'med/med':>8} "
        f"{'busy s':>7}"
    )
    say(head, "-" * len(head))
    rows = {"multiprocessing": [], "ray": []}
    params = {**how["params"](n, k, batches), "batches": max(1, batches - 1), "warmup_batches": 1}

    def line(label, blog, timer, blog_steady, steady, busy):
        say(
            f"{label:20} {blog:>9.4f} {timer:>9.4f} {timer / blog:>10.3f} {blog_steady:>9.4f} {steady:>9.4f} "
            f"{steady / blog_steady:>8.3f} {busy:>7.2f}"
        )

    for rep in range(1, repeats + 1):
        for backend, options in (("multiprocessing", {"start_method": start_method}), ("ray", {"address": None})):
            out = retried(blog_script, f"{workload}_{backend}", *how["script"](n, k, batches, workers))
            cell = {**params, **how.get("backend_params", {}).get(backend, {})}
            record = retried(parbench_run, backend, workers, cell, "library-default", options, workload=workload)
            timer = blog_timer(record["timings"], record["workload_info"]) / (batches if how["per_batch"] else 1)
            rows[backend].append(
                (how["blog"](out), timer, med(how["each"](out)[1:]), med(record["timings"]["batch_s"]), record["memory"]["sampling_busy_s"])
            )
            line(f"{backend:16} {rep:>3}", *rows[backend][-1])
    say("-" * len(head))
    for backend, rs in rows.items():
        line(f"{backend:16} {'med':>3}", *(med(column) for column in zip(*rs)))
    # Each repeat runs the script and parbench back to back: its own ratio cancels the machine's drift, a ratio of medians does not.
    for backend, rs in rows.items():
        timer, steady = med(r[1] / r[0] for r in rs), med(r[3] / r[2] for r in rs)
        say(f"{backend:16} paired: median of each repeat's own timer/blog {timer:.3f}, med/med {steady:.3f}")
    ratio = [med(r[0] for r in rows["multiprocessing"]) / med(r[0] for r in rows["ray"]), None]
    ratio[1] = med(r[1] for r in rows["multiprocessing"]) / med(r[1] for r in rows["ray"])
    say(
        "",
        "blog: the script's own figure; pb timer: parbench's blog's timer (stats.blog_timer: every batch, warm-up included,",
        "plus setup for stateful work), per batch where the blog's figure is; timer/blog: the blog's framing (goal 0.90-1.10).",
        "blog med: the script's median batch after its first; pb med: parbench's median timed batch (the sweep's figure);",
        "med/med: steady state (goal 0.90-1.10). busy s: the memory sampler's wall time in the parbench run.",
        f"multiprocessing / ray in the blog's framing: the scripts {ratio[0]:.2f}x, parbench {ratio[1]:.2f}x. {load()}",
    )


def sampler(n, batches, repeats, backend="serial", workers=1) -> None:
    say(
        f"\n## 2. Memory sampler cost: {backend} matmul n={n} k=128, {workers} worker(s), {batches} batches, blas_threads auto",
        f"off = sampler.period_s 1e6: its thread never wakes during the run (one sample after teardown). {load()}",
        "",
    )
    head = f"{'sampler':8} {'rep':>3} {'median batch':>12} {'timed total':>11} {'samples':>7} {'busy s':>8} {'busy/run':>8}"
    say(head, "-" * len(head))
    medians = {"on": [], "off": []}
    for rep in range(1, repeats + 1):
        for label in ("on", "off") if rep % 2 else ("off", "on"):  # ABBA order cancels a linear drift
            params = {"n": n, "k": 128, "batches": batches, "warmup_batches": 1}
            record = retried(
                parbench_run, backend, workers, params, "auto", period_s=0.05 if label == "on" else OFF, options=OPTIONS.get(backend)
            )
            t, m = record["timings"], record["memory"]
            medians[label].append(med(t["batch_s"]))
            say(
                f"{label:8} {rep:>3} {medians[label][-1]:>12.4f} {sum(t['batch_s']):>11.3f} {m['samples']:>7} "
                f"{m['sampling_busy_s']:>8.3f} {m['sampling_busy_s'] / t['end_to_end_s']:>7.2%}"
            )
    on, off = med(medians["on"]), med(medians["off"])
    say(
        "-" * len(head),
        f"{backend}: median batch with sampler {on:.4f} s, without {off:.4f} s: on/off {on / off:.4f} (goal: within 2 %)",
        "busy s: the sampler's own time in the record (memory.sampling_busy_s), over memory.samples samples;",
        "busy/run: that time over the run's end_to_end_s (an upper bound on what it can steal from the work).",
        load(),
    )


def scratch(config: dict | str | None) -> Path:
    """A copy of the pipeline (and its src/, so concurrent edits in the repo change nothing) in a temp dir."""
    where = Path(tempfile.mkdtemp(prefix="parbench-snakemake-"))
    for name in ("Snakefile", "environment.yml"):  # the rules' conda: directives name environment.yml
        shutil.copy(ROOT / name, where)
    for folder in ("workflow", "config", "profiles", "src"):
        shutil.copytree(ROOT / folder, where / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    if isinstance(config, dict):  # the Snakefile's own configfile, so nothing of config.yaml merges in
        (where / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return where


def snakemake(where: Path, config: str, *extra) -> tuple[float, str]:
    cmd = [str(SNAKEMAKE), "--cores", "8", "--configfile", config, *extra]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=where, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if out.returncode:  # the scratch copy stays for a look
        errors = [line for line in out.stderr.splitlines() if "Error" in line or "error" in line]
        sys.exit(f"{' '.join(cmd)} failed in {where} (kept; logs in .snakemake/log and results/logs):\n" + "\n".join(errors[:20]))
    return elapsed, out.stdout + out.stderr


def snakemake_overhead(sweep: str | None, repeats: int) -> None:
    config = sweep or "config/config.yaml"
    say(f"\n## 3. Snakemake overhead ({config if sweep else 'a 2-run sweep of matmul n=256'}; a scratch copy of the pipeline) {load()}", "")
    where = scratch(sweep or MINI_SWEEP)
    sweep_s, _ = snakemake(where, config)
    runs = len(list((where / "results" / "runs").rglob("*.json")))
    say(f"the sweep itself: {runs} runs and the report, {sweep_s:.1f} s")
    noop = []
    for _ in range(repeats):
        elapsed, log = snakemake(where, config)
        if "Nothing to be done" not in log:
            sys.exit(f"`snakemake` in {where} (kept) was not a no-op:\n{log[-3000:]}")
        noop.append(elapsed)
    shutil.rmtree(where)
    big, dry = scratch(BIG_SWEEP), []
    for _ in range(repeats):
        elapsed, log = snakemake(big, "config/config.yaml", "-n")
        dry.append(elapsed)
    shutil.rmtree(big)
    jobs = next((line.split()[1] for line in log.splitlines() if line.startswith("total ")), "?")
    runs_big = len(BIG_SWEEP["backends"]) * len(BIG_SWEEP["workloads"]) * len(BIG_SWEEP["workers"]) * BIG_SWEEP["trials"]
    say(
        f"no-op `snakemake` on the finished sweep: median {med(noop):.2f} s  (each: {', '.join(f'{s:.2f}' for s in noop)})",
        f"dry run `snakemake -n` of {runs_big} runs ({jobs} jobs): median {med(dry):.2f} s  (each: {', '.join(f'{s:.2f}' for s in dry)})",
        "wall times of the whole command, Python start-up and config validation included.",
        load(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check of the harness, not figures")
    parser.add_argument("--parts", default="fidelity,sampler,snakemake", help="comma-separated parts to run")
    parser.add_argument("--n", type=int, help="fidelity: x is n x n (default 10240; --quick 1024)")
    parser.add_argument("--k", type=int, help="fidelity: each y is n x k (default 128; --quick 64)")
    parser.add_argument("--trials", type=int, help="fidelity, matmul: blog trials = parbench batches incl. warm-up (default 5)")
    parser.add_argument("--ner-batches", type=int, help="fidelity, ner: blog batches = parbench batches incl. warm-up (default 10)")
    parser.add_argument("--workloads", default="matmul,ner", help="fidelity: the blog's workloads to replicate (default matmul,ner)")
    parser.add_argument("--workers", type=int, default=2, help="fidelity: workers (default 2)")
    parser.add_argument(
        "--sampler-backends", default="serial", help="sampler: backends to run with and without the sampler (default serial)"
    )
    parser.add_argument("--repeats", type=int, help="how often each comparison is repeated, interleaved (default 3)")
    parser.add_argument(
        "--start-method",
        default=multiprocessing.get_start_method(),
        help="parbench multiprocessing start method (default: the platform's, which the blog script uses)",
    )
    args = parser.parse_args()
    size = {**MODES["quick" if args.quick else "full"], **{k: v for k, v in vars(args).items() if v is not None}}
    parts = args.parts.split(",")
    say(f"# parbench harness ({'quick' if args.quick else 'full'}): {os.cpu_count()} logical cores, {load()}")
    if "fidelity" in parts:
        for workload in args.workloads.split(","):
            batches = size["trials"] if workload == "matmul" else size["ner_batches"]
            fidelity(workload, size["n"], size["k"], batches, size["workers"], size["repeats"], size["start_method"])
    if "sampler" in parts:
        for backend in args.sampler_backends.split(","):
            sampler(size["sampler_n"], size["sampler_batches"], size["repeats"], backend, 1 if backend == "serial" else size["workers"])
    if "snakemake" in parts:
        snakemake_overhead(size["sweep"], size["repeats"])


if __name__ == "__main__":
    main()
