#!/usr/bin/env bash
# A/A comparisons on this machine: the same config against itself, and the share of cells the
# method's rule calls different (faster or slower): its real false-verdict rate.
#
#   bash benchmarks/aa.sh variants [CONFIG] [DIR]   # one sweep, two identical variants in the same rounds
#   bash benchmarks/aa.sh sessions [CONFIG] [DIR]   # two sweeps one after the other, the second with compare_with
#
# Defaults: config/tiny.yaml and a new temporary directory; your results/ is left alone. The page
# is DIR/*/results/comparison.html. Run it on a quiet machine: nothing else timed beside it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:?"usage: aa.sh variants|sessions [CONFIG] [DIR]"}
config=$(realpath "${2:-$repo/config/tiny.yaml}")
dir=$(realpath "${3:-$(mktemp -d -t parbench-aa.XXXXXX)}")
snakemake=$repo/.venv/bin/snakemake
sweep() { "$snakemake" --snakefile "$repo/Snakefile" --directory "$1" --configfile "$config" --cores 8 --quiet "${@:2}"; }

echo "A/A ($mode) of $config in $dir; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
case $mode in
variants)
    sweep "$dir/variants" --config 'variants={"a": {}, "b": {}}'
    table=$dir/variants/results/tables/comparison.csv ;;
sessions)
    sweep "$dir/first"
    echo "first sweep done after $(($(date +%s) - start)) s; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    sweep "$dir/second" --config compare_with="$dir/first/results"
    table=$dir/second/results/tables/comparison.csv ;;
*) echo "unknown mode $mode: variants or sessions" >&2; exit 2 ;;
esac
echo "done after $(($(date +%s) - start)) s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$repo/.venv/bin/python" - "$table" <<'EOF'
import sys

import pandas as pd
from scipy.stats import binomtest

table = pd.read_csv(sys.argv[1])
for column, different in (("verdict", ("faster", "slower")), ("memory_verdict", ("more memory", "less memory"))):
    counts = table[column].value_counts()
    judged = int(counts[[v for v in counts.index if v not in ("only here", "only in baseline", "not comparable")]].sum())
    false = int(counts[[v for v in counts.index if v in different]].sum())
    low, high = binomtest(false, judged).proportion_ci(0.95, method="exact") if judged else (float("nan"), float("nan"))
    words = ", ".join(f"{v} {n}" for v, n in counts.items())
    print(f"{column}: {false} of {judged} cells called different, {false / max(judged, 1):.1%} [95 % CI {low:.1%}–{high:.1%}] ({words})")
EOF
echo "page: $(dirname "$(dirname "$table")")/comparison.html"
