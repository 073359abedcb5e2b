"""Figures: short functions over the long-form tables, one per figure name, sized for a paper
column (3.5 in wide), the same colour for a backend in every figure."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from parbench import backends  # noqa: E402
from parbench.report import decisions  # noqa: E402
from parbench.stats import REFERENCE, clean, first_variant  # noqa: E402
from parbench.text import UNIT, workers_text  # noqa: E402

MIB = 1024**2
COLUMN_IN = 3.5  # a paper column; the report shows the PNGs at about this size too
DPI = 200
# A fixed colour per backend, whatever subset a sweep runs.
PALETTE = dict(zip(backends.names(), sns.color_palette("colorblind", len(backends.names()))))
PHASES = {"startup_s": "startup", "setup_s": "setup", "warmup_s": "warm-up", "batch_s_total": "timed batches", "teardown_s": "teardown"}
# Greys, never a backend's colour; the timed batches (what throughput measures) darkest, teardown hatched.
PHASE_STYLE = {
    "startup": ("#d4d4d4", ""),
    "setup": ("#a3a3a3", ""),
    "warm-up": ("#6e6e6e", ""),
    "timed batches": ("#1f1f1f", ""),
    "teardown": ("#d4d4d4", "/////"),
}

sns.set_theme(context="paper", style="whitegrid", font_scale=0.95, rc={"axes.titlesize": 9, "legend.fontsize": 7.5})


def _order(data: pd.DataFrame) -> list[str]:
    return [b for b in PALETTE if b in set(data.backend)]


def _plain_numbers(axis) -> None:
    """0.3, 2, 40 rather than 3x10^-1 on a log axis (minor ticks carry labels there too)."""
    for set_formatter in (axis.set_major_formatter, axis.set_minor_formatter):
        set_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _workers_axis(ax, workers) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(workers, labels=[str(w) for w in workers])
    ax.minorticks_off()
    ax.set_xlabel("workers (log scale)")
    if len(workers) == 1:
        ax.set_xlim(workers[0] / 1.5, workers[0] * 1.5)


def _lines(data: pd.DataFrame, y: str, low: str, high: str, ylabel: str, title: str, extra=()):
    """One line per backend over workers (log2), its 90 % band (stats' t interval), and a cross on cells not all clean."""
    data = data.dropna(subset=[y]).sort_values("workers")
    order = _order(data)
    grid = sns.relplot(
        data=data,
        x="workers",
        y=y,
        hue="backend",
        hue_order=order,
        palette=PALETTE,
        kind="line",
        marker="o",
        markersize=4,
        linewidth=1.3,
        legend=False,
        height=2.5,
        aspect=COLUMN_IN / 2.5,
    )
    ax = grid.ax
    for backend, s in data.groupby("backend"):
        ax.fill_between(s.workers, s[low], s[high], color=PALETTE[backend], alpha=0.18, lw=0)
    handles = [Line2D([], [], color=PALETTE[b], marker="o", markersize=4, label=b) for b in order]
    if "all_clean" in data and not data.all_clean.astype(bool).all():
        bad = data[~data.all_clean.astype(bool)]
        ax.scatter(bad.workers, bad[y], marker="x", color="black", s=25, zorder=5)
        handles.append(Line2D([], [], color="black", marker="x", ls="", label="not all runs clean"))
    _workers_axis(ax, sorted(data.workers.unique()) or [1])
    ax.set_yscale("log")
    _plain_numbers(ax.yaxis)
    ax.set(ylabel=ylabel, title=title)
    handles += [*extra, Patch(color="0.5", alpha=0.3, label="90 % interval")]
    grid.figure.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    return grid, ax


def throughput(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, workload: str):
    """Items per second in the timed batches (log-log: ideal scaling is a straight line)."""
    ideal, label = _ideal(stats, runs, machine)
    extra = [Line2D([], [], color="0.3", ls="--", lw=1, label=label)] if ideal is not None else []
    grid, ax = _lines(
        stats,
        "throughput_median",
        "throughput_ci_low",
        "throughput_ci_high",
        UNIT.replace("/s", " per second"),
        f"{workload}: throughput, steady state",
        extra,
    )
    if ideal is not None:
        ax.plot(ideal.index, ideal.values, ls="--", color="0.3", lw=1)
    return grid.figure


def _ideal(stats, runs, machine) -> tuple[pd.Series | None, str]:
    """Ideal throughput and its legend label: linear in workers up to the physical cores, flat after.
    Per core: the machine's single-core GEMM rate where an item's FLOP count is known (matmul), else
    serial's throughput (items one at a time). Work that mostly waits is not bounded by the cores."""
    workers = np.array(sorted(stats.workers.unique()))
    cores = machine.get("physical_cores") or 1
    flops = runs.flops_per_item.dropna() if "flops_per_item" in runs else pd.Series(dtype=float)
    serial = stats[stats.backend == REFERENCE]
    if len(flops) and machine.get("blas_gflops_single"):
        per_core = machine["blas_gflops_single"] * 1e9 / flops.median()
    elif serial.throughput_median.notna().any() and len(workers):
        per_core = serial.throughput_median.median()
    else:
        return None, ""
    busy = serial.driver_cores_busy_median.median() if "driver_cores_busy_median" in serial else np.nan
    if busy < decisions.BUSY_WAITS:
        return pd.Series(per_core * workers, index=workers), "ideal (serial × workers: the work waits)"
    return pd.Series(per_core * np.minimum(workers, cores), index=workers), f"ideal ({cores} cores)"


def speedup(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, workload: str):
    """Throughput over serial's at the same worker count (same batches); serial is the line at 1."""
    extra = [Line2D([], [], color="0.3", ls="--", lw=1, label="serial (= 1)")]
    grid, ax = _lines(
        stats[stats.backend != REFERENCE],
        "speedup_vs_serial",
        "speedup_ci_low",
        "speedup_ci_high",
        "speedup over serial",
        f"{workload}: speedup over serial",
        extra,
    )
    ax.axhline(1, color="0.3", lw=1, ls="--")
    return grid.figure


def _facets(workers: list, rows_per_facet: int, xlabel: str):
    """One horizontal-bar panel per worker count, stacked, sharing the x axis."""
    height = 0.45 + 0.2 * rows_per_facet
    fig, axes = plt.subplots(len(workers), 1, figsize=(COLUMN_IN, height * len(workers) + 0.5), sharex=True, squeeze=False)
    for ax, w in zip(axes[:, 0], workers):
        ax.set_title(workers_text(w), loc="left", fontsize=8)
        ax.grid(axis="y", visible=False)
    axes[-1, 0].set_xlabel(xlabel)
    return fig, axes[:, 0]


def _backend_ticks(ax, order: list) -> None:
    """Backend names on the y axis, each with its colour swatch, fastest-to-read top to bottom."""
    ax.set_yticks(range(len(order)), labels=order)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.tick_params(axis="y", pad=9, length=0)
    ax.scatter(
        [-0.025] * len(order),
        range(len(order)),
        marker="s",
        s=22,
        c=[PALETTE[b] for b in order],
        transform=ax.get_yaxis_transform(),
        clip_on=False,
    )


def memory(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, workload: str):
    """Peak PSS of the whole process tree (median of clean trials); hatched: growth of shared memory."""
    data = stats.dropna(subset=["peak_tree_pss_bytes_median"])
    order, workers = _order(data), sorted(data.workers.unique())
    fig, axes = _facets(workers or [0], len(order), "peak memory, MiB (PSS of the process tree)")
    for ax, w in zip(axes, workers):
        s = data[data.workers == w].set_index("backend").reindex(order)
        pss, shm = s.peak_tree_pss_bytes_median / MIB, s.peak_shm_bytes_median.fillna(0).clip(lower=0) / MIB
        y = np.arange(len(order))
        ax.barh(y, pss, color=[PALETTE[b] for b in order], height=0.7)
        ax.barh(y, np.minimum(shm, pss), color="none", edgecolor="white", hatch="////", lw=0, height=0.7)
        for yi, v in zip(y, pss):
            if np.isfinite(v):
                ax.text(v, yi, f" {v:.0f}", va="center", fontsize=7)
        _backend_ticks(ax, order)
    axes[0].figure.legend(
        handles=[Patch(facecolor="0.55", edgecolor="white", hatch="////", label="of which shared memory (Shmem growth)")],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        frameon=False,
    )
    axes[0].set_xlim(right=axes[0].get_xlim()[1] * 1.12)  # room for the value labels
    fig.suptitle(f"{workload}: peak memory", fontsize=9, x=0.02, ha="left")
    fig.tight_layout()
    return fig


def time_breakdown(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, workload: str):
    """Where a run's time goes, median over clean trials: start-up, setup, warm-up, timed batches, teardown."""
    table = clean(runs).groupby(["workers", "backend"])[list(PHASES)].median().rename(columns=PHASES)
    workers = sorted(table.index.get_level_values(0).unique())
    order = _order(table.reset_index())
    fig, axes = _facets(workers or [0], len(order), "seconds per run (median of clean trials)")
    for ax, w in zip(axes, workers):
        part = table.loc[w].reindex(order)
        left = np.zeros(len(order))
        for phase in PHASES.values():
            values = part[phase].fillna(0).to_numpy()
            colour, hatch = PHASE_STYLE[phase]
            ax.barh(range(len(order)), values, left=left, color=colour, hatch=hatch, edgecolor="white", height=0.7, lw=0)
            left += values
        for yi, total in enumerate(left):
            ax.text(total, yi, f" {total:.2g} s", va="center", fontsize=7)
        _backend_ticks(ax, order)
    axes[0].set_xlim(right=axes[0].get_xlim()[1] * 1.15)
    handles = [Patch(facecolor=c, hatch=h, edgecolor="white", label=p) for p, (c, h) in PHASE_STYLE.items()]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    fig.suptitle(f"{workload}: where the time of a run goes", fontsize=9, x=0.02, ha="left")
    fig.tight_layout()
    return fig


DRAW = {"throughput": throughput, "speedup": speedup, "memory": memory, "time_breakdown": time_breakdown}


def visible_labels(fig) -> list[list]:
    """Per axis of every panel, the window extents of the tick labels that show (after a draw)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [
        [label.get_window_extent(renderer) for label in axis.get_ticklabels(minor=minor) if label.get_visible() and label.get_text()]
        for ax in fig.axes
        for axis in (ax.xaxis, ax.yaxis)
        for minor in (False, True)
    ]


def declutter(fig) -> None:
    """Label only the ticks that fit: hide each minor tick label that would touch a label already kept
    (major labels first). Log axes label minor ticks so that a span under a decade still has numbers."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            kept = [label.get_window_extent(renderer) for label in axis.get_ticklabels() if label.get_visible() and label.get_text()]
            for label in axis.get_ticklabels(minor=True):
                if not (label.get_visible() and label.get_text()):
                    continue
                box = label.get_window_extent(renderer)
                padded = box.expanded(1.15, 1.3)  # a little air between neighbours
                if any(padded.overlaps(other) for other in kept):
                    label.set_visible(False)
                else:
                    kept.append(box)


def figure(name: str, stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, workload: str):
    """Figure `name` of one workload, ready to save."""
    fig = DRAW[name](stats, runs, machine, workload)
    declutter(fig)
    return fig


def draw_all(workload: str, runs_csv, stats_csv, machine_json, png: list, svg: list, variant: str | None = None) -> None:
    """Draw every figure of `workload` for the sweep's own runs (the first variant's, `variant`; None: no
    variants); output paths end in `{workload}_{figure}.png|svg`."""
    runs = first_variant(pd.read_csv(runs_csv), variant).query("workload == @workload")
    stats = first_variant(pd.read_csv(stats_csv), variant).query("workload == @workload")
    with open(machine_json) as f:
        machine = json.load(f)
    for png_path, svg_path in zip(png, svg):
        name = str(png_path).rsplit(f"{workload}_", 1)[1].removesuffix(".png")
        fig = figure(name, stats, runs, machine, workload)
        fig.savefig(png_path, dpi=DPI, bbox_inches="tight")
        fig.savefig(svg_path, bbox_inches="tight")
        plt.close(fig)
