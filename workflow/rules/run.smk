# Every benchmark job runs `python -m parbench.run.job` (a shell command, so a job imports no Snakemake):
# the spec is its params (what shapes the run), its place in the sweep a resource (reruns nothing).
JOB = "{params.python} -m parbench.run.job {output:q} {log:q} {params.spec:q} {resources.job:q}"


rule run:
    output:
        RUN,
    log:
        "results/logs/runs/{workload}/{backend}/workers-{workers}/trial-{trial}.log",
    priority: run_priority
    conda:
        "../../environment.yml"
    resources:
        benchmark_slot=1,
        job=run_info,
    params:
        spec=run_params,
        python=PYTHON,
    shell:
        JOB


# The reference cell's second run in the same round: the sweep's A/A arm.
use rule run as twin with:
    output:
        TWIN,
    log:
        "results/logs/runs/{workload}/{backend}/workers-{workers}/trial-{trial}.twin.log",
    priority: twin_priority
    resources:
        benchmark_slot=1,
        job=twin_info,


# The variants after the first, interleaved with it in the same rounds.
use rule run as variant with:
    output:
        VARIANT,
    log:
        "results/logs/variants/{variant}/{workload}/{backend}/workers-{workers}/trial-{trial}.log",


# The same small serial run in every round: the sweep's drift as a series.
rule sentinel:
    output:
        SENTINEL,
    log:
        "results/logs/sentinels/round-{trial}.log",
    priority: sentinel_priority
    conda:
        "../../environment.yml"
    resources:
        benchmark_slot=1,
        job=sentinel_info,
    params:
        spec=sentinel_params,
        python=PYTHON,
    shell:
        JOB


rule machine:
    output:
        "results/machine.json",
    log:
        "results/logs/machine.log",
    # Before every run and sentinel.
    priority: len(PRIORITY) + 1
    conda:
        "../../environment.yml"
    resources:
        benchmark_slot=1,
    params:
        code=script_code("machine", "run/machine"),  # it runs python -m parbench.run.machine
    script:
        "../scripts/machine.py"
