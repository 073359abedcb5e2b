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
        code=parbench_environment.code_hash(
            "compare", "judge", "decide", "stats", "records"
        ),
    script:
        "../scripts/compare.py"
