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
    params:
        spec=run_params,
    script:
        "../scripts/run.py"


# The same small serial run at the start, in the middle and at the end of a sweep: its drift figure.
rule sentinel:
    output:
        SENTINEL,
    log:
        "results/logs/sentinels/{at}.log",
    priority: sentinel_priority
    conda:
        "../../environment.yml"
    resources:
        benchmark_slot=1,
    params:
        spec=sentinel_params,
    script:
        "../scripts/run.py"


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
        code=parbench_environment.code_hash("machine"),
    script:
        "../scripts/machine.py"
