# parbench: benchmark parallel-Python backends on real workloads. See README.md.
import os
import sys

from snakemake.utils import min_version

# 9.17: a rule's priority may be a function (the sweep's shuffled order)
min_version("9.17")


# The default sweep; a --configfile replaces it rather than extending it (so a workload left
# out of your file is not run), while --config key=value adjusts it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# The library in src/ is importable here and in every job, whatever environment runs it.
sys.path.insert(0, os.path.join(workflow.basedir, "src"))
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [os.path.join(workflow.basedir, "src"), os.getenv("PYTHONPATH")])
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
