#!/usr/bin/env bash
# A/A comparison: run one config twice on this machine, compare the second sweep with the first,
# and print the share of cells judged "no clear difference" (every other verdict is a false
# positive, or the machine changed between the two sweeps).
#
#   bash benchmarks/aa.sh [CONFIG] [DIR]    # defaults: config/tiny.yaml, a new temporary directory
#
# Both sweeps run in DIR/first and DIR/second (your results/ is left alone); the page is
# DIR/second/results/comparison.html.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
config=$(realpath "${1:-$repo/config/tiny.yaml}")
dir=$(realpath "${2:-$(mktemp -d -t parbench-aa.XXXXXX)}")
snakemake=$repo/.venv/bin/snakemake

echo "A/A of $config in $dir; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$snakemake" --snakefile "$repo/Snakefile" --directory "$dir/first" --configfile "$config" --cores 8 --quiet
echo "first sweep done; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$snakemake" --snakefile "$repo/Snakefile" --directory "$dir/second" --configfile "$config" --cores 8 --quiet \
    --config compare_with="$dir/first/results"
echo "second sweep done; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$repo/.venv/bin/python" - "$dir/second/results/tables/comparison.csv" <<'EOF'
import sys

import pandas as pd

table = pd.read_csv(sys.argv[1])
for column in ("verdict", "memory_verdict"):
    counts = table[column].value_counts()
    share = counts.get("no clear difference", 0) / len(table)
    print(f"{column}: {share:.0%} of {len(table)} cells no clear difference ({', '.join(f'{v} {n}' for v, n in counts.items())})")
EOF
echo "page: $dir/second/results/comparison.html"
