"""The sweep: its config (validated), the order of its runs (rounds, the A/A twin, the sentinel, variants),
each run's spec, its progress lines, its regression gate, the Snakemake-side guards, and what `parbench init` writes."""
