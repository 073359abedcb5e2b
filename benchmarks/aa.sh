#!/usr/bin/env bash
# A/A comparison: the same setup against itself, and the share of cells the comparison calls faster
# or slower (every one a false verdict; the method promises at most 5 %). Two ways:
#
#   bash benchmarks/aa.sh [CONFIG] [DIR] [sessions|variants]   # defaults: config/tiny.yaml, a new temporary directory, sessions
#
# sessions: the config run twice, the second sweep with compare_with the first (separate sessions:
#   normalised by each sweep's sentinels, still confounded with whatever else changed between them);
# variants: the config run once with two identical variants, a and b, interleaved in the same rounds.
# Sweeps run under DIR (your results/ is left alone); the page is DIR/<last>/results/comparison.html.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
config=$(realpath "${1:-$repo/config/tiny.yaml}")
dir=$(realpath "${2:-$(mktemp -d -t parbench-aa.XXXXXX)}")
mode=${3:-sessions}
snakemake=$repo/.venv/bin/snakemake
python=$repo/.venv/bin/python
run() { "$snakemake" --snakefile "$repo/Snakefile" --directory "$1" --configfile "$2" --cores 8 --quiet "${@:3}"; }

echo "A/A ($mode) of $config in $dir; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
case $mode in
sessions)
    run "$dir/first" "$config"
    echo "first sweep done; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    run "$dir/second" "$config" --config compare_with="$dir/first/results"
    last=$dir/second ;;
variants)
    mkdir -p "$dir/variants"
    "$python" -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1])); c["variants"] = {"a": {}, "b": {}}; yaml.safe_dump(c, open(sys.argv[2], "w"))' \
        "$config" "$dir/variants/aa.yaml"
    run "$dir/variants" "$dir/variants/aa.yaml"
    last=$dir/variants ;;
*) echo "mode: sessions or variants, not $mode" >&2; exit 2 ;;
esac
echo "done; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" - "$last/results/tables/comparison.csv" <<'EOF'
import sys

import pandas as pd

table = pd.read_csv(sys.argv[1])
judged = table[table.verdict.isin(["faster", "slower", "equivalent", "cannot tell"])]
for column, false in (("verdict", ("faster", "slower")), ("memory_verdict", ("more memory", "less memory"))):
    counts = table[column].value_counts()
    share = judged[column].isin(false).mean() if len(judged) else float("nan")
    print(f"{column}: {share:.1%} of {len(judged)} cells called different ({', '.join(f'{v} {n}' for v, n in counts.items())})")
print(f"normalised: {', '.join(table.normalised.dropna().unique()) or 'n/a (variants)'}")
print(f"median detectable difference: {judged.detectable_difference.median():.1%}; median rounds needed: {judged.rounds_needed.median()}")
EOF
echo "page: $last/results/comparison.html"
