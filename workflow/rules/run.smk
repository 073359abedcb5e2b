rule run:
    output:
        RUN,
    params:
        cell=run_params,
    log:
        "results/logs/runs/{workload}/{backend}/workers-{workers}/trial-{trial}.log",
    resources:
        benchmark_slot=1,
    script:
        "../scripts/run.py"


rule machine:
    output:
        "results/machine.json",
    params:
        code=parbench_environment.code_hash("machine"),
    log:
        "results/logs/machine.log",
    resources:
        benchmark_slot=1,
    script:
        "../scripts/machine.py"
