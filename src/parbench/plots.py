"""Figures: short functions over the long-form tables, one per figure name, the same colour
for a backend in every figure."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from parbench import backends  # noqa: E402

GIB = 1024**3
# A fixed colour per backend, whatever subset a sweep runs.
PALETTE = dict(zip(backends.names(), sns.color_palette("colorblind", len(backends.names()))))
PHASES = {"startup_s": "startup", "setup_s": "setup", "warmup_s": "warm-up", "batches_s": "timed batches", "teardown_s": "teardown"}

sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def _lines(data: pd.DataFrame, y: str, ylabel: str, title: str):
    grid = sns.relplot(data=data, x="workers", y=y, hue="backend", kind="line", marker="o",
                       palette=PALETTE, height=3.4, aspect=1.35, facet_kws={"legend_out": True})
    ax = grid.ax
    ax.set(xscale="log", xlabel="workers", ylabel=ylabel, title=title)
    ax.set_xticks(sorted(data.workers.unique()), labels=sorted(data.workers.unique()))
    ax.minorticks_off()
    return grid, ax


def throughput(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, workload: str):
    grid, ax = _lines(stats, "throughput_median", "tasks per second (median)", f"{workload}: throughput (steady state)")
    for backend, s in stats.groupby("backend"):
        ax.fill_between(s.workers, s.throughput_ci_low, s.throughput_ci_high, color=PALETTE[backend], alpha=0.2, lw=0)
    ideal = _ideal(stats, runs, machine)
    if ideal is not None:
        ax.plot(ideal.index, ideal.values, ls="--", color="0.3", lw=1, label="ideal")
        ax.text(ideal.index[-1], ideal.values[-1], " ideal", va="bottom", ha="right", color="0.3", fontsize=8)
    return grid.figure


def _ideal(stats, runs, machine) -> pd.Series | None:
    """Ideal throughput: linear in workers up to the physical cores, flat after. Per core: the
    machine's single-core GEMM rate where a task's FLOP count is known (matmul), else serial's
    throughput (tasks run one at a time on one core)."""
    workers = np.array(sorted(stats.workers.unique()))
    cores = machine.get("physical_cores") or 1
    flops = runs.flops_per_task.dropna()
    if len(flops):
        per_core = machine["blas_gflops_single"] * 1e9 / flops.median()
    else:
        serial = stats.loc[stats.backend == "serial", "throughput_median"].dropna()
        if serial.empty:
            return None
        per_core = serial.median()
    return pd.Series(per_core * np.minimum(workers, cores), index=workers)


def speedup(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, workload: str):
    grid, ax = _lines(stats, "speedup_vs_serial", "speedup over serial", f"{workload}: speedup over serial (same batches)")
    for backend, s in stats.groupby("backend"):
        ax.fill_between(s.workers, s.speedup_ci_low, s.speedup_ci_high, color=PALETTE[backend], alpha=0.2, lw=0)
    ax.axhline(1, color="0.3", lw=1, ls="--")
    return grid.figure


def memory(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, workload: str):
    """Peak PSS of the whole process tree per backend; the hatched part is shared memory (Shmem growth)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    order = [b for b in PALETTE if b in set(stats.backend)]
    workers = sorted(stats.workers.unique())
    width = 0.8 / len(order)
    for i, backend in enumerate(order):
        s = stats[stats.backend == backend].set_index("workers").reindex(workers)
        x = np.arange(len(workers)) + (i - (len(order) - 1) / 2) * width
        ax.bar(x, s.peak_tree_pss_bytes_median / GIB, width, color=PALETTE[backend], label=backend)
        ax.bar(x, s.peak_shm_bytes_median / GIB, width, color="none", edgecolor="white", hatch="///", lw=0)
    ax.bar([0], [0], color="0.6", hatch="///", edgecolor="white", label="of which shared memory")
    ax.set(xticks=np.arange(len(workers)), xticklabels=workers, xlabel="workers", ylabel="GiB (median of trials)",
           title=f"{workload}: peak memory of the process tree (PSS)")
    ax.legend(frameon=False, fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def time_breakdown(stats: pd.DataFrame, runs: pd.DataFrame, machine: dict, workload: str):
    """Where a run's time goes, median over trials: start-up, setup, warm-up, timed batches, teardown."""
    clean = runs[(runs.status == "ok") & runs.verified]
    table = clean.groupby(["workers", "backend"])[list(PHASES)].median().rename(columns=PHASES)
    workers = sorted(table.index.get_level_values(0).unique())
    fig, axes = plt.subplots(1, len(workers), figsize=(2.2 * len(workers) + 1.5, 3.4), sharey=True, squeeze=False)
    colors = sns.color_palette("Greys", len(PHASES))
    for ax, w in zip(axes[0], workers):
        part = table.loc[w].reindex([b for b in PALETTE if b in table.loc[w].index])
        part.plot.bar(stacked=True, ax=ax, color=colors, legend=False, width=0.75)
        ax.set(title=f"{w} workers", xlabel="", ylabel="seconds per run (median)")
    axes[0][-1].legend(frameon=False, fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.suptitle(f"{workload}: where the time of a run goes")
    fig.tight_layout()
    return fig


DRAW = {"throughput": throughput, "speedup": speedup, "memory": memory, "time_breakdown": time_breakdown}


def draw_all(workload: str, runs_csv, stats_csv, machine_json, png: list, svg: list) -> None:
    """Draw every figure of `workload`; output paths end in `{workload}_{figure}.png|svg`."""
    runs = pd.read_csv(runs_csv).query("workload == @workload")
    stats = pd.read_csv(stats_csv).query("workload == @workload")
    with open(machine_json) as f:
        machine = json.load(f)
    for png_path, svg_path in zip(png, svg):
        name = str(png_path).rsplit(f"{workload}_", 1)[1].removesuffix(".png")
        fig = DRAW[name](stats, runs, machine, workload)
        fig.savefig(png_path, dpi=150, bbox_inches="tight")
        fig.savefig(svg_path, bbox_inches="tight")
        plt.close(fig)
