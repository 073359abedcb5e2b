# parbench: benchmark parallel-Python backends on real workloads. See README.md.
import os
import sys

from snakemake.utils import min_version

# 9.17: a rule's priority may be a function (the sweep's shuffled order)
min_version("9.17")


# This file's folder: a checkout's top, or the copy an installed parbench carries (parbench.sweep.workflow_files).
PARBENCH_ROOT = workflow.current_basedir


# The default sweep, the working folder's config/config.yaml (else parbench's own); a --configfile replaces
# it rather than extending it (so a workload left out of your file is not run), while --config key=value adjusts it.
DEFAULT_CONFIG = "config/config.yaml"
if not os.path.isfile(DEFAULT_CONFIG):
    DEFAULT_CONFIG = os.path.join(PARBENCH_ROOT, "config", "config.yaml")
if not workflow.overwrite_configfiles:

    configfile: DEFAULT_CONFIG


report: "workflow/report/workflow.rst"


# A checkout's library in src/ is importable here and in every job, whatever environment runs it (an
# installed parbench has no src/: its own is).
if os.path.isdir(os.path.join(PARBENCH_ROOT, "src")):
    sys.path.insert(0, os.path.join(PARBENCH_ROOT, "src"))
    os.environ.update(
        PYTHONPATH=os.pathsep.join(
            filter(None, [os.path.join(PARBENCH_ROOT, "src"), os.getenv("PYTHONPATH")])
        )
    )

# At most one benchmark run at a time, even under --cores 8 or a user's own --resources.
workflow.global_resources.setdefault("benchmark_slot", 1)


include: "workflow/rules/common.smk"
include: "workflow/rules/run.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/compare.smk"


rule all:
    default_target: True
    input:
        all_targets(),
