"""An installed parbench in a user's own project: a wheel built from this tree, installed into a fresh virtual
environment, run in a temporary folder that holds no clone, through `parbench run` and through a `module`
directive in the user's own Snakefile; `parbench init` on a good, an incomplete and a broken file.

The fresh environment gets parbench from the wheel alone; its dependencies (Snakemake, numpy, ...) come from
the suite's environment through a path file, so that the test installs nothing from the network. A path
file's folder has its own path files ignored, so the suite's editable parbench stays out of it (checked)."""

import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, snakemake_env

pytestmark = pytest.mark.slow

WORKLOAD = '''
"""A user's workload: plain functions, no parbench import."""


def data(params):
    return {"values": list(range(params.get("size", 2000)))}


def items(params, batch, n):
    return [(batch, i, params.get("scale", 3)) for i in range(n)]


def task(state, item):
    batch, i, scale = item
    return sum(v * (batch + i + scale) % 7 for v in state["values"])
'''

# Not part of a clone's tree: left out of the copy the wheel is built from.
UNTRACKED = (".git", ".venv", "interpreters", "results", ".snakemake", "build", "*.egg-info", "__pycache__", ".pytest_cache")

TINY_SWEEP = {
    "backends": ["serial", "threads"],
    "workers": [2],
    "trials": 1,
    "sentinel": None,
    "workloads": {"mywork": {"module": "bench/mywork.py", "batches": 2, "warmup_batches": 1, "tasks_per_batch": 4, "size": 3000}},
}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """(the fresh environment's python, its bin folder): parbench from a wheel of this tree, nothing else of it."""
    root = tmp_path_factory.mktemp("installed")
    tree = root / "tree"  # built from a copy: setuptools writes build/ and *.egg-info beside the sources
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(*UNTRACKED))
    wheels = root / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", wheels, tree],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("parbench-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", wheel], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True, check=True
    )
    Path(purelib.stdout.strip(), "suite-dependencies.pth").write_text(site.getsitepackages()[0] + "\n")
    return python, venv / "bin"


def in_project(tmp_path) -> Path:
    project = tmp_path / "project"
    (project / "bench").mkdir(parents=True)
    (project / "bench" / "mywork.py").write_text(WORKLOAD)
    return project


def run(command, cwd, timeout=600):
    env = {k: v for k, v in snakemake_env().items() if k != "PYTHONPATH"}  # nothing of the clone on the path
    return subprocess.run(
        list(map(str, command)), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )


def test_the_wheel_carries_the_workflow_and_nothing_of_the_clone_is_used(fresh, tmp_path):
    python, _ = fresh
    out = run(
        [python, "-c", "import json, parbench, parbench.sweep.workflow_files as w; print(json.dumps([parbench.__file__, str(w.root())]))"],
        tmp_path,
    )
    package, root = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(package).is_relative_to(python.parents[1]), package
    assert Path(root) == Path(package).parent / "_workflow"
    for name in ("Snakefile", "config/config.yaml", "config/schema.yaml", "profiles/default/config.yaml", "workflow/rules/run.smk"):
        assert (Path(root) / name).is_file(), name


def sweep_ok(project: Path, out: subprocess.CompletedProcess) -> list[dict]:
    assert out.returncode == 0, out.stdout[-4000:]
    records = [json.loads(p.read_text()) for p in sorted((project / "results" / "runs").rglob("*.json"))]
    assert {(r["backend"], r["status"], r["verified"]) for r in records} == {("serial", "ok", True), ("threads", "ok", True)}
    assert (project / "results" / "report.html").stat().st_size > 0
    return records


@pytest.fixture(scope="module")
def swept(fresh, tmp_path_factory):
    """A project swept by `parbench run` from the fresh environment: (project, Snakemake's output)."""
    _, bin = fresh
    project = in_project(tmp_path_factory.mktemp("swept"))
    (project / "config").mkdir()
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(TINY_SWEEP))
    return project, run([bin / "parbench", "run"], project)


def test_parbench_run_sweeps_a_user_workload_in_a_folder_without_a_clone(fresh, swept):
    python, bin = fresh
    project, out = swept
    records = sweep_ok(project, out)
    assert all(r["environment"]["python_executable"].startswith(str(python.parent)) for r in records)
    assert "parbench/_workflow/profiles/default" in out.stdout  # the workflow profile came with it (rerun-incomplete, keep-going)
    # Where the sweep is: the plan, the round's line from its last job, the report's path (parbench.sweep.progress).
    assert "parbench: 3 of 3 runs to do in 1 round (0 recorded)" in out.stdout
    assert "parbench: round 1 done (1 of 1 rounds complete); 3 of 3 runs recorded" in out.stdout
    assert f"parbench: the report is {project / 'results' / 'report.html'}" in out.stdout
    kept = yaml.safe_load((project / "results" / "config.yaml").read_text())
    assert kept["workloads"]["mywork"]["size"] == 3000 and kept["trials"] == 1 and "margin" in kept  # as validated
    again = run([bin / "parbench", "run", "-n"], project)  # a rerun runs nothing, as in a clone
    assert again.returncode == 0 and "Nothing to be done" in again.stdout, again.stdout[-2000:]


def test_reproduce_rebuilds_the_installed_set_and_compares_the_rerun_with_the_original(fresh, swept, tmp_path):
    _, bin = fresh
    project, out = swept
    assert out.returncode == 0
    folder = tmp_path / "again"
    redo = run([bin / "parbench", "reproduce", project / "results", "-o", folder], tmp_path, timeout=900)
    assert redo.returncode == 0, redo.stdout[-4000:]
    recorded = [line for line in (project / "results" / "installed.txt").read_text().splitlines() if not line.startswith("#")]
    from parbench import reproduce

    assert reproduce.installed(str(folder / ".venv" / "bin" / "python")) == recorded
    rerun = [json.loads(p.read_text()) for p in sorted((folder / "results" / "runs").rglob("*.json"))]
    assert {r["environment"]["python_executable"] for r in rerun} == {str(folder / ".venv" / "bin" / "python")}
    assert all(r["status"] == "ok" and r["verified"] for r in rerun)
    table = pd.read_csv(folder / "results" / "tables" / "comparison.csv")
    assert set(table.backend) == {"serial", "threads"} and "not comparable" not in set(table.verdict), table.to_string()
    assert table.baseline.unique().tolist() == [str(project / "results")]
    assert "nothing recorded differs" in (folder / "results" / "comparison.html").read_text()  # the same config, code and set


def test_a_module_directive_in_the_users_snakefile_runs_the_same_sweep(fresh, tmp_path, seed_machine):
    python, _ = fresh
    project = in_project(tmp_path)
    seed_machine(project)  # `parbench run` above measured the machine: here the rules of the module are the point
    (project / "sweep.yaml").write_text(yaml.safe_dump(TINY_SWEEP))
    (project / "Snakefile").write_text(
        textwrap.dedent(
            """\
            import parbench.sweep.workflow_files

            configfile: "sweep.yaml"

            module parbench:
                snakefile: parbench.sweep.workflow_files.snakefile()
                config: config

            use rule * from parbench
            """
        )
    )
    sweep_ok(project, run([python, "-m", "snakemake", "--cores", "8"], project))


def test_parbench_init_writes_a_config_that_the_sweep_accepts(fresh, tmp_path):
    _, bin = fresh
    project = in_project(tmp_path)
    out = run([bin / "parbench", "init", "bench/mywork.py"], project)
    assert out.returncode == 0 and "the check passed" in out.stdout, out.stdout
    config = yaml.safe_load((project / "config" / "config.yaml").read_text())
    assert config["workloads"]["mywork"]["module"] == "bench/mywork.py"
    assert config["workloads"]["mywork"]["size"] == 2000 and config["workloads"]["mywork"]["scale"] == 3  # the code's defaults
    plan = run([bin / "parbench", "run", "-n"], project)  # the sweep's own check accepts it and plans its runs
    assert plan.returncode == 0 and "run" in plan.stdout, plan.stdout[-3000:]
    again = run([bin / "parbench", "init", "bench/mywork.py"], project)
    assert again.returncode == 1 and "exists" in again.stdout


def test_parbench_init_marks_parameters_without_a_default(fresh, tmp_path):
    _, bin = fresh
    project = in_project(tmp_path)
    (project / "bench" / "mywork.py").write_text(WORKLOAD.replace('params.get("size", 2000)', 'params["size"]'))
    out = run([bin / "parbench", "init", "bench/mywork.py"], project)
    assert out.returncode == 0 and "set size there" in out.stdout, out.stdout
    text = (project / "config" / "config.yaml").read_text()
    assert "size: null" in text and "TO FILL IN" in text and "failed with the values TO FILL IN unset" in text


@pytest.mark.parametrize(
    "broken, says",
    [
        ("def data(params):\n    return {}\n", "has no function items()"),
        ("import not_a_module_anywhere\n" + WORKLOAD, "No module named 'not_a_module_anywhere'"),
        ("def data(params:\n", "does not parse"),
        (WORKLOAD.replace("list(range(", "list(range(1 / 0 + "), "ZeroDivisionError"),
    ],
    ids=["missing-function", "import-error", "syntax-error", "data-raises"],
)
def test_parbench_init_refuses_a_broken_file_and_writes_nothing(fresh, tmp_path, broken, says):
    _, bin = fresh
    project = in_project(tmp_path)
    (project / "bench" / "mywork.py").write_text(broken)
    out = run([bin / "parbench", "init", "bench/mywork.py"], project)
    assert out.returncode == 1 and says in out.stdout and "bench/mywork.py" in out.stdout, out.stdout
    assert not (project / "config").exists()
    assert os.listdir(project) == ["bench"] or set(os.listdir(project)) <= {"bench", ".snakemake"}
