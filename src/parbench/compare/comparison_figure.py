"""The comparison's figure: per workload, a forest plot of each cell's throughput and memory ratios with
their 90 % intervals, colour by verdict; also the order of cells and the labels of comparisons the page shares."""

import io

import numpy as np
import pandas as pd

from parbench.compare import judge
from parbench.report.decisions import margin_of
from parbench.stats import REFERENCE
from parbench.text import workers_text

COLOURS = {
    "faster": "#0173b2",
    "less memory": "#0173b2",
    "slower": "#d55e00",
    "more memory": "#d55e00",
    "equivalent": "#029e73",
    "cannot tell": "#7f7f7f",
}
MARKERS = ["o", "s", "^", "D", "v"]
TICKS = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 5, 10, 20, 50]


def ticks(reach: float, count: int = 9) -> list[float]:
    """Ticks of a log ratio axis from 1/reach to reach: 1 and others at least 1/count of the axis apart, so labels never touch."""
    gap = 2 * np.log(reach) / count
    kept = [1.0]
    for side in (sorted(t for t in TICKS if 1 < t <= reach), sorted((t for t in TICKS if 1 / reach <= t < 1), reverse=True)):
        last = 1.0
        for t in side:
            if abs(np.log(t / last)) >= gap:
                kept.append(t)
                last = t
    return sorted(kept)


def against(table: pd.DataFrame) -> pd.Series:
    """What each row compares, as a label: 'B ÷ A' for variants, 'this sweep ÷ folder' for a baseline."""
    here = [
        f"{v} ÷ {b}" if k == judge.WITHIN else f"this sweep{f' ({v})' if isinstance(v, str) and v else ''} ÷ {b}"
        for v, b, k in zip(table.variant, table.baseline, table.kind)
    ]
    return pd.Series(here, index=table.index, dtype=object)


def cells(table: pd.DataFrame) -> list[tuple]:
    """Cells top to bottom: the reference backend (serial) first, then backends by name, each by worker count."""
    found = table[["backend", "workers"]].drop_duplicates()
    return sorted(map(tuple, found.values.tolist()), key=lambda c: (c[0] != REFERENCE, c[0], int(c[1])))


def figure(table: pd.DataFrame, workload: str):
    """Forest plot of one workload: per cell, the throughput ratio and the memory ratio with their 90 %
    intervals, a line at 1 and the margin's band around it, colour by verdict; one marker per comparison."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    data = table[table.workload == workload]
    labels = against(data)
    rows, names, margin = cells(data), list(dict.fromkeys(labels)), margin_of(table)
    backends_ = list(dict.fromkeys(b for b, _ in rows))
    height = 1.4 + 0.24 * max(1, len(rows)) * max(1, len(names) * 0.7)
    fig, axes = plt.subplots(1, 2, figsize=(7.2, height), sharey=True)
    panels = (
        ("throughput_ratio", "verdict", "throughput ratio\n(above 1: faster than the baseline)"),
        ("memory_ratio", "memory_verdict", "peak tree PSS ratio\n(above 1: more memory than the baseline)"),
    )
    offsets = np.linspace(-0.22, 0.22, len(names)) if len(names) > 1 else [0.0]
    for ax, (column, verdict, label) in zip(axes, panels):
        values = data[[column, f"{column}_ci_low", f"{column}_ci_high"]].to_numpy(dtype=float)
        finite = values[np.isfinite(values) & (values > 0)]
        reach = max(1.25, float(np.max(np.maximum(finite, 1 / finite))) * 1.15) if finite.size else 1.25
        ax.axvspan(1 / (1 + margin), 1 + margin, color="#029e73", alpha=0.12, lw=0)  # the margin: inside it, equivalent
        ax.axvline(1, color="0.2", lw=0.9)
        for y, (backend, workers) in enumerate(rows):
            if backends_.index(backend) % 2:  # a light band for every other backend, to read across
                ax.axhspan(y - 0.5, y + 0.5, color="0.95", lw=0, zorder=0)
            for offset, name, marker in zip(offsets, names, MARKERS):
                found = data[(data.backend == backend) & (data.workers == workers) & (labels == name)]
                if found.empty:
                    continue
                r = found.iloc[0]
                if not np.isfinite(r[column]):
                    ax.text(1, y + offset, f" {r[verdict]}", va="center", ha="left", fontsize=6.5, color="0.35", style="italic")
                    continue
                colour = COLOURS.get(r[verdict], "0.5")
                ax.plot([r[f"{column}_ci_low"], r[f"{column}_ci_high"]], [y + offset] * 2, color=colour, lw=1.6, solid_capstyle="butt")
                ax.plot(r[column], y + offset, marker=marker, color=colour, ms=4.5, ls="")
        ax.set_xscale("log")
        ax.set_xlim(1 / reach, reach)
        ax.xaxis.set_major_locator(FixedLocator(ticks(reach)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.set_xlabel(label, fontsize=7.5)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", color="0.88", lw=0.6)
        ax.grid(axis="y", visible=False)
        ax.set_axisbelow(True)
    axes[0].set_yticks(range(len(rows)), labels=[f"{b} · {workers_text(w)}" for b, w in rows])
    axes[0].set_ylim(max(len(rows), 1) - 0.5, -0.5)
    line = {"marker": "o", "ms": 4, "lw": 1.6}
    handles = [
        Line2D([], [], color=COLOURS["faster"], label="faster / less memory", **line),
        Line2D([], [], color=COLOURS["slower"], label="slower / more memory", **line),
        Line2D([], [], color=COLOURS["equivalent"], label=f"equivalent (within ±{margin:.0%})", **line),
        Line2D([], [], color=COLOURS["cannot tell"], label="cannot tell", **line),
    ]
    if len(names) > 1:
        handles += [Line2D([], [], color="0.3", marker=m, ls="", ms=4.5, label=n) for n, m in zip(names, MARKERS)]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False, fontsize=7)
    title = names[0] if len(names) == 1 else "each comparison"
    fig.suptitle(f"{workload}: {title}, ratios with 90 % intervals", fontsize=9, x=0.02, ha="left")
    fig.tight_layout()
    return fig


def png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=200, bbox_inches="tight")
    return buffer.getvalue()
