"""Rule config: the sweep's config as validated (defaults filled in, in its order) -> results/config.yaml, which
`parbench reproduce` reruns."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")

import yaml

with open(snakemake.output[0], "w") as out:
    out.write("# The config this sweep ran, validated and with defaults filled in; paths are relative to the folder above results/.\n")
    yaml.safe_dump(json.loads(snakemake.params.config), out, sort_keys=False)
