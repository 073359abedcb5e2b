"""The `parbench` command: the workflow an installed parbench carries, run in the working folder.

parbench run [snakemake options]      snakemake on parbench's Snakefile (--cores 8 unless given)
parbench init FILE.py [-o CONFIG]     a commented config for a workload file, after the sweep's check
parbench reproduce RESULTS [-o DIR]   the sweep of RESULTS again, in a new folder with its installed set
"""

import argparse
import os
import sys
from pathlib import Path

from parbench.sweep import workflow_files

CORES = ("-c", "--cores", "-j", "--jobs")


def run(args: list[str]) -> None:
    """Replace this process with Snakemake (its signals, its exit status), with the clone's `make run` default of 8 cores."""
    cores = [] if any(a in CORES or a.startswith(("--cores=", "--jobs=")) for a in args) else ["--cores", "8"]
    command = [sys.executable, "-m", "snakemake", "--snakefile", workflow_files.snakefile(), *cores, *args]
    os.execv(sys.executable, command)


def init(args: list[str]) -> int:
    from parbench.sweep import scaffold

    parser = argparse.ArgumentParser(prog="parbench init", description="Write a commented config for a workload file.")
    parser.add_argument("module", help="the workload's .py file, relative to this folder (data, items, task: docs/using.md)")
    parser.add_argument("-o", "--output", default="config/config.yaml", help="the config to write (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace the output if it exists")
    options = parser.parse_args(args)
    try:
        _, to_fill, checked = scaffold.init(options.module, Path(options.output), options.force)
    except scaffold.InitError as error:
        print(f"parbench init: {error}", file=sys.stderr)
        return 1
    print(f"parbench init: wrote {options.output}")
    if to_fill:
        print(f"parbench init: set {', '.join(to_fill)} there (the code gives no default); the check said:")
        print("\n".join(f"  {p}" for p in checked))
    else:
        option = "" if options.output == "config/config.yaml" else f" --configfile {options.output}"
        print(f"parbench init: the check passed; run it: parbench run{option}")
    return 0


def reproduce(args: list[str]) -> int:
    from parbench import reproduce as parbench_reproduce

    parser = argparse.ArgumentParser(
        prog="parbench reproduce",
        description="Rerun a sweep from its results folder: a new virtual environment with the recorded installed set, "
        "the recorded config, into a new folder whose report compares every cell with the original.",
    )
    parser.add_argument("results", help="the results folder of the sweep (holds config.yaml and installed.txt)")
    parser.add_argument("-o", "--output", help="the new working folder (default: RESULTS' folder + '-reproduced')")
    parser.add_argument("--no-run", action="store_true", help="build the folder and its environment only")
    options, snakemake_args = parser.parse_known_args(args)
    try:
        folder = parbench_reproduce.prepare(Path(options.results), Path(options.output) if options.output else None)
    except parbench_reproduce.ReproduceError as error:
        print(f"parbench reproduce: {error}", file=sys.stderr)
        return 1
    python = parbench_reproduce.venv_python(folder)
    print(f"parbench reproduce: {folder} holds the config, {python} the recorded installed set")
    if options.no_run:
        return 0
    os.chdir(folder)
    os.execv(python, [python, "-m", "parbench.cli", "run", *snakemake_args])


COMMANDS = {"run": run, "init": init, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
