"""results/report.html: one self-contained page (figures embedded) from the tables."""

import base64
import html
import json
from pathlib import Path

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}figure{margin:1em 0}
figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.bad{color:#a00}.note{font-size:.9em;color:#444}code{background:#f4f4f4;padding:0 .2em}
"""


def esc(value) -> str:
    return html.escape(str(value))


def image(path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{esc(Path(path).stem)}">'


def table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, float_format=lambda v: f"{v:.3g}", na_rep="–")


def figures_section(paths: list) -> str:
    parts = []
    for path in sorted(paths, key=str):
        parts.append(f"<figure>{image(path)}<figcaption>{esc(Path(path).name)}</figcaption></figure>")
    return "<h2>Figures</h2>" + "".join(parts)


def stats_section(stats: pd.DataFrame) -> str:
    cols = ["workload", "backend", "workers", "throughput_median", "throughput_ci_low", "throughput_ci_high",
            "speedup_vs_serial", "efficiency", "peak_tree_pss_bytes_median", "peak_shm_bytes_median",
            "startup_s_median", "setup_s_median", "n_runs", "all_clean"]
    shown = stats[[c for c in cols if c in stats]].copy()
    for c in ("peak_tree_pss_bytes_median", "peak_shm_bytes_median"):
        shown[c.replace("_bytes", "_gib")] = shown.pop(c) / 2**30
    return "<h2>Statistics</h2>" + table(shown)


def unclean_section(runs: pd.DataFrame) -> str:
    bad = runs[(runs.status != "ok") | ~runs.verified]
    if bad.empty:
        return "<h2>Cells that did not run cleanly</h2><p>None: every run finished and every result was verified.</p>"
    cols = ["workload", "backend", "workers", "trial", "status", "verified", "reason"]
    return "<h2>Cells that did not run cleanly</h2>" + table(bad[cols])


def environment_section(runs: pd.DataFrame, machine: dict, config: dict) -> str:
    env = machine.get("environment", {})
    facts = {
        "host": env.get("host"), "CPU": env.get("cpu_model"),
        "cores (physical / logical)": f"{env.get('physical_cores')} / {env.get('logical_cores')}",
        "memory": f"{(env.get('memory_bytes') or 0) / 2**30:.1f} GiB", "Python": env.get("python"),
        "git commit": f"{env.get('git_commit')}{' (dirty)' if env.get('git_dirty') else ''}",
        "BLAS": ", ".join(f"{b['internal_api']} {b['version']} ({b['threading_layer']})" for b in env.get("blas", [])),
        "BLAS GFLOP/s, 1 core / all": f"{machine.get('blas_gflops_single', 0):.1f} / {machine.get('blas_gflops_all', 0):.1f}",
        "pickle 100 MiB (dumps / loads)": f"{machine.get('pickle_100mib_dumps_s', 0):.3f} s / {machine.get('pickle_100mib_loads_s', 0):.3f} s",
        "ray.init": f"{machine.get('ray_init_s') or float('nan'):.2f} s",
    }
    packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts.items())
    return (
        "<h2>Method and environment</h2>"
        f"<table>{rows}</table><p class=note>Packages: {esc(packages)}</p>"
        f"<details><summary>Configuration</summary><pre>{esc(json.dumps(config, indent=1))}</pre></details>"
    )


def write(out, runs, stats, machine, figures: list, config: dict) -> None:
    runs, stats = pd.read_csv(runs), pd.read_csv(stats)
    machine = json.loads(Path(machine).read_text())
    body = "".join([
        "<h1>parbench report</h1>",
        stats_section(stats),
        figures_section(figures),
        unclean_section(runs),
        environment_section(runs, machine, config),
    ])
    page = f"<!doctype html><html lang=en><head><meta charset=utf-8><title>parbench report</title><style>{CSS}</style></head><body>{body}</body></html>"
    Path(out).write_text(page)
