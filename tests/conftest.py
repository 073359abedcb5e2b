"""Shared fixtures and helpers: cells for parbench.run.supervise/runner, scratch copies of the
workflow, and one tiny end-to-end pipeline run per session."""

import compileall
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest
import yaml

from parbench import backends, cgroups, plugins
from parbench.sweep import spec as parbench_spec

REPO = Path(__file__).resolve().parents[1]
# Compiled once, as pip compiles an installed package: otherwise, where PYTHONDONTWRITEBYTECODE is set, every
# run's job and driver compiles parbench from source again (30 ms a driver, 60 ms a Snakemake job).
compileall.compile_dir(REPO / "src" / "parbench", quiet=1)


def _runs_here(backend: str) -> bool:
    try:
        backends.load(backend)
        return True
    except plugins.Unavailable:  # interpreters before 3.13 (test_interpreters.py runs it on interpreters/3.13*)
        return False


# The backends this interpreter can run: the suite's per-backend tests run on these.
BACKENDS = [b for b in backends.names() if _runs_here(b)]
SCHEMA = REPO / "config" / "schema.yaml"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
SHM = Path("/dev/shm")

# Tiny workload parameters: a run takes about a second (Ray's start-up aside).
TEXTS = ["Paris is the capital of France.", "Angela Merkel visited Washington in May."]
TINY = {
    "matmul": {"n": 256, "k": 8, "seed": 1234, "batches": 2, "warmup_batches": 1, "tasks_per_batch": None},
    "ner": {"model": "en_core_web_sm", "texts": TEXTS, "batches": 2, "warmup_batches": 1, "tasks_per_batch": None},
    "primes": {"start": 1000, "span": 300, "batches": 2, "warmup_batches": 1, "tasks_per_batch": None},
    "tinytasks": {"rounds": 10, "batches": 2, "warmup_batches": 1, "tasks_per_batch": 20},
    "http": {"latency_ms": 1, "requests": 2, "response_bytes": 1000, "batches": 2, "warmup_batches": 1, "tasks_per_batch": None},
}
# Every field the contract promises in a run record (docs/record.md).
RECORD_FIELDS = [
    "schema_version",
    "workload",
    "backend",
    "workers",
    "trial",
    "status",
    "reason",
    "params",
    "tasks_per_batch",
    "items_per_task",
    "items_per_batch",
    "gil_enabled",
    "cpu",
    "system",
    "order",
    "timings",
    "memory",
    "verified",
    "blas_threads",
    "started_at",
    "finished_at",
    "environment",
]
TIMING_FIELDS = ["startup_s", "setup_s", "warmup_s", "batch_s", "teardown_s", "end_to_end_s"]
MEMORY_FIELDS = ["peak_tree_pss_bytes", "peak_tree_rss_bytes", "peak_shm_bytes", "driver_peak_rss_bytes"]
EXACT_FIELDS = ["exact_peak_bytes", "exact_source", "exact_unavailable", "exact_file_cache_bytes"]
CPU_FIELDS = ["driver_batch_s", "tree_batch_s", "tree_user_s", "tree_system_s", "tree_totals_source", "tree_source"]
SYSTEM_FIELDS = [
    "loadavg_1m_start",
    "loadavg_1m_end",
    "cpu_steal_s",
    "machine_cpu_s",
    "other_cpu_s",
    "window_s",
    "tree_involuntary_switches",
]
ENVIRONMENT_FIELDS = [
    "host",
    "cpu_model",
    "physical_cores",
    "logical_cores",
    "memory_bytes",
    "python",
    "packages",
    "start_method",
    "git_commit",
]


def missing_fields(record: dict) -> list[str]:
    """The promised record fields that `record` lacks (dotted for nested ones)."""
    missing = [f for f in RECORD_FIELDS if f not in record]
    sections = (
        ("timings", TIMING_FIELDS),
        ("memory", MEMORY_FIELDS + EXACT_FIELDS),
        ("cpu", CPU_FIELDS),
        ("system", SYSTEM_FIELDS),
        ("environment", ENVIRONMENT_FIELDS),
    )
    for section, fields in sections:
        missing += [f"{section}.{f}" for f in fields if f not in (record.get(section) or {})]
    return missing


def overlaps(records: list[dict]) -> list[str]:
    """Pairs of runs whose [started_at, finished_at] intervals overlap, in start order."""
    ordered = sorted(records, key=lambda r: r["started_at"])
    name = lambda r: f"{r['workload']}/{r['backend']}/w{r['workers']}/t{r['trial']}"  # noqa: E731
    return [f"{name(a)} ends after {name(b)} starts" for a, b in zip(ordered, ordered[1:]) if a["finished_at"] > b["started_at"]]


# Marks every process started by a supervised run in the tests (inherited through the environment).
TOKEN_VAR = "PARBENCH_TEST_RUN"


def schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def backend_options(backend: str) -> dict:
    """The defaults of the backend's own config section (`multiprocessing: {start_method}`), as the pipeline fills them."""
    sch = schema()
    section = sch["properties"].get(backend)
    if section is None:
        return {}
    if "$ref" in section:
        section = sch["$defs"][section["$ref"].rsplit("/", 1)[-1]]
    return {k: v["default"] for k, v in section.get("properties", {}).items() if "default" in v}


def make_spec(
    backend: str,
    workload: str,
    workers: int = 2,
    *,
    trial: int = 1,
    blas_threads="auto",
    limits: dict | None = None,
    options: dict | None = None,
    period_s: float = 0.05,
    **params,
) -> dict:
    """The spec dict that parbench.run.supervise.supervise / parbench.run.runner.run take, built by parbench.sweep.spec.run
    (as the rules build it) from a one-cell config; `params` override TINY's."""
    base = copy.deepcopy(TINY.get(workload, {"batches": 2, "warmup_batches": 1, "tasks_per_batch": None}))
    base.update(params)
    config = {
        "workloads": {workload: base},
        "blas_threads": blas_threads,
        backend: backend_options(backend) if options is None else options,
        # A generous time limit, so that a hung run fails the test instead of hanging the suite.
        "limits": {"timeout_s": 300, "memory_gb": None, **(limits or {})},
        "sampler": {"period_s": period_s},
    }
    return parbench_spec.run(config, workload, backend, workers, trial)


@pytest.fixture
def spec_factory():
    return make_spec


# ---------------------------------------------------------------------------------------------
# Scratch workflows: the pipeline in a temporary directory


def scratch_workflow(tmp_path, config: dict) -> Path:
    """A copy of the workflow (Snakefile, rules, scripts, schema, profile, environment.yml) and of
    src/parbench in `tmp_path`/wf, with `config` as its config/config.yaml. Run Snakemake with
    `cwd=` the returned directory.

    The Snakefile puts its own src/ first on the path of every job, so the copy runs the code as it
    was when copied: others may edit the repository while the suite runs, and the pipeline hashes
    its code (an edit would rightly rerun jobs). Outside a git checkout, records say git_commit: null."""
    work = Path(tmp_path) / "wf"
    work.mkdir(parents=True)
    shutil.copy2(REPO / "Snakefile", work / "Snakefile")
    shutil.copy2(REPO / "environment.yml", work / "environment.yml")  # rules' conda: directive points at it
    shutil.copytree(REPO / "workflow", work / "workflow", ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    shutil.copytree(REPO / "profiles", work / "profiles", dirs_exist_ok=True)
    shutil.copytree(REPO / "src" / "parbench", work / "src" / "parbench")  # with its bytecode, valid while the sources' times are kept
    (work / "config").mkdir(exist_ok=True)
    shutil.copy2(SCHEMA, work / "config" / "schema.yaml")
    write_config(work, config)
    return work


def write_config(work: Path, config: dict, name: str = "config/config.yaml") -> Path:
    path = Path(work) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_env() -> dict:
    """The test's environment for Snakemake, without anything that points a run at someone else's cluster."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTEST_CURRENT_TEST")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def snakemake(work, *args, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """Run the venv's snakemake in `work`; stdout and stderr are combined in `.stdout`."""
    return subprocess.run(
        [str(SNAKEMAKE), *map(str, args)],
        cwd=work,
        env=snakemake_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def dry_run_jobs(output: str) -> dict[str, int]:
    """The 'Job stats' table of `snakemake -n` output as {rule: count} (empty if nothing is to be done)."""
    lines = output.splitlines()
    try:
        start = lines.index("Job stats:")
    except ValueError:
        return {}
    jobs = {}
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def scheduled_outputs(output: str, rule: str) -> list[str]:
    """Output paths of the jobs of `rule` in `snakemake -n` output."""
    found, current = [], None
    for line in output.splitlines():
        stripped = line.strip()
        if stripped.startswith("rule ") or stripped.startswith("localrule "):
            current = stripped.split()[1].rstrip(":")
        elif stripped.startswith("output:") and current == rule:
            found += [p.strip() for p in stripped[len("output:") :].split(",")]
    return found


def read_records(work, twins: bool = False) -> list[dict]:
    """The sweep's own run records (with `twins`, the A/A twins' instead)."""
    paths = sorted(Path(work, "results", "runs").rglob("*.json"))
    return [json.loads(p.read_text()) for p in paths if p.name.endswith(".twin.json") == twins]


# ---------------------------------------------------------------------------------------------
# Leftover processes and shared memory


def shm_entries() -> set[str]:
    try:
        return {p.name for p in SHM.iterdir()}
    except OSError:
        return set()


def _inodes(path: Path) -> set[int]:
    """Inodes of a /dev/shm entry (of the files inside, for a directory such as joblib's)."""
    try:
        paths = [path, *path.rglob("*")] if path.is_dir() else [path]
        return {p.stat().st_ino for p in paths if not p.is_dir()}
    except OSError:
        return set()


def _inodes_held(pid: int) -> set[int]:
    """Inodes of /dev/shm files that process `pid` maps or has open. By inode, not name: glibc's
    sem_open maps a temporary file that it then renames, so maps show another (deleted) name."""
    held = set()
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and "/dev/shm/" in fields[5]:
                    held.add(int(fields[4]))
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/dev/shm/"):
                    held.add(os.stat(f"/proc/{pid}/fd/{fd}").st_ino)
            except OSError:
                pass
    except OSError:
        pass
    return held


CREATOR = re.compile(r"^(?:joblib_memmapping_folder_|sem\.loky-|loky-)(\d+)[_-]")


def held_by_others(names: set[str], ours: set[int]) -> set[str]:
    """Those of the /dev/shm `names` that a live process outside `ours` maps or has open, or
    created (joblib and loky name theirs after it): someone else's run on this shared machine,
    not a leftover of ours."""
    if not names:
        return set()
    inodes = {name: _inodes(SHM / name) for name in names}
    held = set()
    for pid in psutil.pids():
        if pid not in ours:
            held |= _inodes_held(pid)
    created = {n for n in names if (m := CREATOR.match(n)) and int(m.group(1)) not in ours and psutil.pid_exists(int(m.group(1)))}
    return created | {name for name, ino in inodes.items() if ino & held}


def processes_with_token(token: str) -> list[psutil.Process]:
    """Live processes whose environment carries TOKEN_VAR=`token`: the test's own runs, wherever they were reparented."""
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if proc.environ().get(TOKEN_VAR) == token:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def live_descendants() -> list[psutil.Process]:
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def describe(procs) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} {p.name()} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            pass
    return out


def run_cgroups() -> set[str]:
    """The run cgroups (parbench-*) under this process's own cgroups (a supervisor here makes its runs' there)."""
    return {str(p) for folder in set(cgroups.hierarchies().values()) for p in folder.iterdir() if cgroups.NAME.match(p.name)}


def offered() -> dict:
    """What the kernel offers a run here: kind ('memory', 'cpu') -> what is read, or None (a probe group made and removed)."""
    probe = cgroups.RunGroups()
    probe.remove()
    return {**{k: g.source for k, g in probe.groups.items()}, **dict.fromkeys(probe.missing)}


OFFERED = offered()


def _pid_of(group: str) -> int:
    return int(cgroups.NAME.match(Path(group).name).group(1))


class Leftovers:
    """What of a run remains after it: processes and /dev/shm entries.

    `with Leftovers() as left: supervise(...)`, then `left.processes()` and `left.shm()` (lists
    that should be empty). Inside the block every new process carries TOKEN_VAR=<token> in its
    environment, so a leftover is found wherever it was reparented."""

    def __enter__(self) -> "Leftovers":
        self.token = uuid.uuid4().hex
        self.saved = os.environ.get(TOKEN_VAR)
        os.environ[TOKEN_VAR] = self.token
        self.children_before = {p.pid for p in live_descendants()}
        self.shm_before = shm_entries()
        self.cgroups_before = run_cgroups()
        return self

    def __exit__(self, *exc) -> None:
        if self.saved is None:
            os.environ.pop(TOKEN_VAR, None)
        else:
            os.environ[TOKEN_VAR] = self.saved

    def processes(self, settle_s: float = 5.0) -> list[str]:
        """Processes of the run still alive (waiting up to `settle_s` for ones that are exiting):
        new descendants of this process, and anywhere on the machine, processes carrying the token
        (raylet, gcs_server, Ray workers, dask nannies, loky and Pool workers inherit it)."""
        deadline = time.monotonic() + settle_s
        while True:
            marked = processes_with_token(self.token)
            children = [p for p in live_descendants() if p.pid not in self.children_before]
            left = {p.pid: p for p in [*marked, *children]}
            if not left or time.monotonic() > deadline:
                return describe(left.values())
            time.sleep(0.2)

    def shm(self) -> list[str]:
        """New /dev/shm entries, except those a live process outside the run holds (someone else's)."""
        new = shm_entries() - self.shm_before
        ours = {os.getpid(), *(p.pid for p in live_descendants()), *(p.pid for p in processes_with_token(self.token))}
        return sorted(new - held_by_others(new, ours))

    def cgroups(self) -> list[str]:
        """Run cgroups (parbench-*) made since and still there, except those of a live supervisor outside the
        test (someone else's run on this shared machine; the group's name carries its supervisor's pid)."""
        ours = {os.getpid(), *(p.pid for p in processes_with_token(self.token))}
        new = run_cgroups() - self.cgroups_before
        return sorted(g for g in new if _pid_of(g) in ours or not psutil.pid_exists(_pid_of(g)))

    def problems(self) -> dict:
        return {k: v for k, v in (("processes", self.processes()), ("shm", self.shm()), ("cgroups", self.cgroups())) if v}


@pytest.fixture(scope="session")
def seed_machine(tmp_path_factory):
    """`seed_machine(work)` puts this session's results/machine.json in `work`: a sweep whose test is not about
    the machine's limits skips the rule (about 4 s, alone on the machine). Measured once, as the rule does."""
    from parbench.run.supervise import run_alone

    measured = tmp_path_factory.mktemp("machine") / "machine.json"
    with open(measured.with_suffix(".log"), "w") as log:
        assert run_alone([sys.executable, "-m", "parbench.run.machine", str(measured)], log) == 0, measured.with_suffix(".log").read_text()

    def seed(work: Path) -> None:
        (work / "results").mkdir(exist_ok=True)
        shutil.copy2(measured, work / "results" / "machine.json")

    return seed


# ---------------------------------------------------------------------------------------------
# The tiny pipeline, run once per session

# A stateless workload with a shared array: the task reads a slice of x, so x must reach the worker.
SUMS = '''
"""Row sums of slices of a shared matrix."""
import numpy as np

def data(params):
    return {"x": np.random.default_rng(params["seed"]).standard_normal((params["rows"], 64))}

def items(params, batch, n):
    return [(batch * n + i) % params["rows"] for i in range(n)]

def task(state, item):
    return state["x"][item : item + 8].sum(axis=1)
'''
# A stateful workload: an expensive-to-build "model" (a lookup table) built once per worker where possible.
TABLE = '''
"""Look words up in a table built from a seed."""
import os
STATEFUL = True

def data(params):
    return {"size": params["size"], "seed": params.get("seed", 1)}

def build(size, seed):
    return {f"w{i}": (i * seed) % 97 for i in range(size)}

def items(params, batch, n):
    return [f"w{(batch * n + i) % params['size']}" for i in range(n)]

def task(state, item):
    return state[item]

def check(item, result, expected):
    return result == expected == int(item[1:]) % 97
'''


# One backend of each kind (in the driver, threads, processes): every run costs about a second here. The
# others run through the supervisor in test_backends.py (Ray's start, 5-7 s a run, would be most of the
# fixture), multiprocessing-shared and Dask through Snakemake in the faulty user files' sweep, Ray in test_clusters.py.
PIPELINE_BACKENDS = ["serial", "threads", "multiprocessing"]
PIPELINE_CONFIG = {
    "backends": PIPELINE_BACKENDS,
    "workers": [2],
    # Two rounds: the least that shows rounds, paired ratios and the A/A twin.
    "trials": 2,
    "workloads": {
        # A workload's own worker counts: matmul's first (1) is its A/A reference cell.
        "matmul": {"n": 256, "k": 8, "batches": 2, "warmup_batches": 1, "workers": [1, 2]},
        "ner": {"model": "en_core_web_sm", "texts": TEXTS, "batches": 2, "warmup_batches": 1},
        # A workload of a user's own, in the sweep's folder, with its own worker counts (tests/test_user_workload.py;
        # the stateful bench/table.py runs on every backend there, through the supervisor).
        "sums": {"module": "bench/sums.py", "rows": 64, "seed": 3, "batches": 2, "warmup_batches": 1, "workers": [2]},
    },
    "limits": {"timeout_s": 300},
    "sentinel": {"n": 256, "k": 8, "tasks_per_batch": 2, "batches": 2},
}
USER_MODULES = {"bench/sums.py": SUMS}


class PipelineRun:
    def __init__(self, work: Path, config: dict, result: subprocess.CompletedProcess, started: float, seconds: float):
        self.work, self.config, self.result, self.started, self.seconds = work, config, result, started, seconds

    @property
    def results(self) -> Path:
        return self.work / "results"

    def records(self, twins: bool = False) -> list[dict]:
        return read_records(self.work, twins=twins)


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> PipelineRun:
    """The whole pipeline on PIPELINE_CONFIG in a temporary directory, `snakemake --cores 8`, once per session.

    Tests must not change its directory; dry runs with another config go through `--configfile`."""
    work = scratch_workflow(tmp_path_factory.mktemp("pipeline"), PIPELINE_CONFIG)
    for name, source in USER_MODULES.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(textwrap.dedent(source))
    started, t0 = time.time(), time.monotonic()
    result = snakemake(work, "--cores", "8", timeout=1200)
    return PipelineRun(work, PIPELINE_CONFIG, result, started, time.monotonic() - t0)


def at_default_and_needed_rounds(default: int, needed: int) -> list:
    """A power test's two cases: the default sweep's rounds (a strict xfail while they are fewer than the
    noise needs) and the rounds it needs (must pass)."""
    reason = f"10 % beyond a 5 % margin, at 5 % process noise, needs about {needed} rounds (docs/method.md)"
    return [
        pytest.param(default, id="default-rounds", marks=pytest.mark.xfail(default < needed, strict=True, reason=reason)),
        pytest.param(needed, id="rounds-the-noise-needs"),
    ]
