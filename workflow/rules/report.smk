rule aggregate:
    input:
        runs=run_records(),
        twins=twin_records(),
        variants=variant_records(),
        sentinels=sentinel_records(),
    output:
        runs="results/tables/runs.csv",
        batches="results/tables/batches.csv",
        stats="results/tables/stats.csv",
        sentinels="results/tables/sentinels.csv",
        aa="results/tables/aa.csv",
        installed="results/installed.txt",
    log:
        "results/logs/aggregate.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        margin=config["margin"],
        # The sweep's own runs come first in installed.txt: the first variant's.
        first=next(iter(config.get("variants") or {}), ""),
        code=script_code("aggregate"),
    script:
        "../scripts/aggregate.py"


# The config as the sweep ran it, beside installed.txt and machine.json: what `parbench reproduce` reruns.
rule config:
    output:
        "results/config.yaml",
    log:
        "results/logs/config.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        config=json.dumps(config),  # in the config's order: the first variant stays first
    script:
        "../scripts/config.py"


rule plot:
    input:
        runs="results/tables/runs.csv",
        stats="results/tables/stats.csv",
        machine="results/machine.json",
    output:
        png=[
            report(
                f"results/figures/{{workload}}_{figure}.png",
                caption=f"../report/{figure}.rst",
                category="{workload}",
                labels={"workload": "{workload}", "figure": figure},
            )
            for figure in FIGURES
        ],
        svg=[f"results/figures/{{workload}}_{figure}.svg" for figure in FIGURES],
    log:
        "results/logs/plot_{workload}.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        variant=VARIANTS[0] if VARIANTS else None,
        code=script_code("plot"),
    script:
        "../scripts/plot.py"


rule report:
    input:
        runs="results/tables/runs.csv",
        stats="results/tables/stats.csv",
        sentinels="results/tables/sentinels.csv",
        aa="results/tables/aa.csv",
        machine="results/machine.json",
        figures=figures(list(config["workloads"])),
    output:
        report(
            "results/report.html",
            caption="../report/report.rst",
            category="report",
        ),
    log:
        "results/logs/report.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        config=json.dumps(config),  # in the config's order: the first variant is what the others are compared with
        code=script_code("report", "templates/report.html.j2", "templates/report.css"),
    script:
        "../scripts/report.py"
