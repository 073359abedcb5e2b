# compare_with, margin and the variants' order are params of this rule only: changing them reruns no benchmark.
rule compare:
    input:
        records=run_records(),
        variants=variant_records(),
        sentinels=sentinel_records(),
        machine="results/machine.json",
        baselines=[str(path) for paths in BASELINES.values() for path in paths],
    output:
        table="results/tables/comparison.csv",
        verdicts="results/tables/verdicts.json",
        page="results/comparison.html",
        png=comparison_figures("png"),
        svg=comparison_figures("svg"),
    log:
        "results/logs/compare.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        baselines=list(BASELINES),
        margin=config.get("margin", 0.05),
        variants=list(config.get("variants") or {}),
        fail_on=config.get("fail_on", []),
        code=script_code(
            "compare", "templates/comparison.html.j2", "templates/report.css"
        ),
    script:
        "../scripts/compare.py"


# The regression gate (fail_on): after the report and the comparison are written, fails the sweep
# (Snakemake exits with an error) when verdicts.json lists a tripped cell; results/tables/gate.txt otherwise.
rule gate:
    input:
        verdicts="results/tables/verdicts.json",
        report="results/report.html",
        page="results/comparison.html",
    output:
        "results/tables/gate.txt",
    log:
        "results/logs/gate.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        code=script_code("gate"),
    script:
        "../scripts/gate.py"
