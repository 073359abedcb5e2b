"""Rule aggregate: run records -> runs.csv, batches.csv, stats.csv, sentinels.csv and aa.csv (the A/A arm)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from parbench import environment, records, stats  # noqa: E402

try:
    found = records.read_all([*snakemake.input.runs, *snakemake.input.twins, *snakemake.input.variants])
    sentinels = records.read_all(snakemake.input.sentinels)
except records.RecordError as error:
    sys.exit(f"parbench: {error}")
runs, batches = stats.tables(found)
runs.to_csv(snakemake.output.runs, index=False)
batches.to_csv(snakemake.output.batches, index=False)
stats.stats(runs, batches, margin=snakemake.params.margin).to_csv(snakemake.output.stats, index=False)
stats.aa(runs, margin=snakemake.params.margin).to_csv(snakemake.output.aa, index=False)
stats.sentinels(sentinels).to_csv(snakemake.output.sentinels, index=False)
own = sorted(found, key=lambda r: (r.get("variant") or "") != snakemake.params.first)  # the sweep's own runs first
with open(snakemake.output.installed, "w") as f:
    f.write(environment.installed_text(own))
