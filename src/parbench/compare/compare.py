"""Compare runs: every other variant of this sweep with its first variant (paired within rounds,
the method's way), and this sweep with finished sweeps of other sessions (baselines, compare_with,
normalised by both sweeps' sentinels). Per cell, the throughput ratio and the memory ratio with
90 % intervals and the method's words (parbench.compare.judge holds that logic); parbench.compare.facts says what
differs between the sides, parbench.compare.comparison_figure draws them, parbench.compare.comparison_page writes the page.
"""

from pathlib import Path

import pandas as pd

from parbench.compare import comparison_figure, judge
from parbench.compare.comparison_page import page
from parbench.compare.facts import Sweep


def compare(here: Sweep, bases: list[Sweep], margin: float = judge.MARGIN, variants=None) -> pd.DataFrame:
    """comparison.csv: one row per comparison x cell. First every other variant of this sweep against
    its first variant (paired within rounds), then this sweep against each baseline (normalised by the
    sentinels). Ratios are the compared side over the baseline (throughput above 1: faster; memory
    above 1: more memory), with 90 % intervals and the method's words (parbench.compare.judge)."""
    rows = judge.within(here.records, variants, margin)
    for base in bases:
        rows += judge.across(here.records, here.sentinels, base.records, base.sentinels, base.name, margin)
    return pd.DataFrame(rows, columns=judge.COLUMNS)


def write(
    table_csv, page_html, png: list, svg: list, here: Sweep, bases: list[Sweep], margin: float = judge.MARGIN, variants=None
) -> pd.DataFrame:
    """Write comparison.csv, the figures (paths end in `comparison_{workload}.png|svg`) and comparison.html."""
    import matplotlib.pyplot as plt

    table = compare(here, bases, margin=margin, variants=variants)
    table.to_csv(table_csv, index=False)
    figures = {}
    for png_path, svg_path in zip(png, svg):
        workload = Path(png_path).stem.removeprefix("comparison_")
        fig = comparison_figure.figure(table, workload)
        figures[workload] = comparison_figure.png(fig)
        Path(png_path).write_bytes(figures[workload])
        fig.savefig(svg_path, bbox_inches="tight")
        plt.close(fig)
    Path(page_html).write_text(page(here, bases, table, figures), encoding="utf-8")
    return table
