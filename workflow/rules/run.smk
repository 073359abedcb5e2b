rule run:
    output:
        RUN,
    log:
        "results/logs/runs/{workload}/{backend}/workers-{workers}/trial-{trial}.log",
    conda:
        "../../environment.yml"
    resources:
        benchmark_slot=1,
    params:
        spec=run_params,
    script:
        "../scripts/run.py"


rule machine:
    output:
        "results/machine.json",
    log:
        "results/logs/machine.log",
    conda:
        "../../environment.yml"
    resources:
        benchmark_slot=1,
    params:
        code=parbench_environment.code_hash("machine"),
    script:
        "../scripts/machine.py"
