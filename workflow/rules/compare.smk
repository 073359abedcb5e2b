# compare_with is a param of this rule only, so setting or changing it reruns no benchmark.
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
        margin=config["margin"],
        code=parbench_environment.code_hash("compare", "stats", "records"),
    script:
        "../scripts/compare.py"
