# parbench: benchmark parallel-Python backends on real workloads. See README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# At most one benchmark run at a time, even under --cores 8 or a user's own --resources.
workflow.global_resources.setdefault("benchmark_slot", 1)


include: "workflow/rules/common.smk"
include: "workflow/rules/run.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
