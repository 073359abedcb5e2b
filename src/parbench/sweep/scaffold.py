"""`parbench init FILE.py`: a commented config for a user's workload file, written after the same check the
sweep makes before any job. Its parameters are found from what `data(params)` and `items(params, batch, n)`
read, following `params` into the module's own functions: `params["k"]` (no default: a placeholder to fill)
and `params.get("k", default)`; what cannot be followed (`params[name]`, `**params`) is said in a comment."""

import ast
import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from parbench.sweep import config as parbench_config
from parbench.sweep import workflow_files
from parbench.workloads import _user

NO_DEFAULT = object()


@dataclass(frozen=True)
class Computed:
    """A default the code computes (`params.get("k", len(x))`): left to the code, shown as written."""

    source: str


@dataclass
class Found:
    """The parameters a module's data() and items() read: name -> (default or NO_DEFAULT, where it is read)."""

    params: dict = field(default_factory=dict)
    unknown: list = field(default_factory=list)  # where params is read in a way that cannot be followed


def parameters(source: str) -> Found:
    """What data() and items() read of their first argument, and of it passed on to the module's functions."""
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    found, seen = Found(), set()

    def visit(fn: ast.FunctionDef, position: int, via: str) -> None:
        args = fn.args.posonlyargs + fn.args.args
        if (fn.name, position) in seen or position >= len(args):
            return
        seen.add((fn.name, position))
        name = args[position].arg
        for node in ast.walk(fn):
            where = f"{via}{fn.name}(), line {getattr(node, 'lineno', fn.lineno)}"
            if isinstance(node, ast.Subscript) and _is(node.value, name):
                key = node.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    found.params.setdefault(key.value, (NO_DEFAULT, where))
                elif isinstance(node.ctx, ast.Load):
                    found.unknown.append(f"{where}: {name}[{ast.unparse(key)}]")
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Attribute) and _is(func.value, name) and func.attr == "get" and node.args:
                    key = node.args[0]
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        default = _literal(node.args[1]) if len(node.args) > 1 else None
                        found.params.setdefault(key.value, (default, where))
                    else:
                        found.unknown.append(f"{where}: {ast.unparse(node)}")
                elif isinstance(func, ast.Name) and func.id in functions:
                    for i, arg in enumerate(node.args):
                        if _is(arg, name):
                            visit(functions[func.id], i, f"{via}{fn.name}() -> ")
                for keyword in node.keywords:
                    if keyword.arg is None and _is(keyword.value, name):
                        found.unknown.append(f"{where}: **{name}")

    for fn in ("data", "items"):
        if fn in functions:
            visit(functions[fn], 0, "")
    return found


def _is(node, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _literal(node):
    """A default written as a literal, else Computed (an expression the code evaluates)."""
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return Computed(ast.unparse(node))


def workload_name(path: Path) -> str:
    """The config's name for the file: its stem in the letters config.NAME allows."""
    return re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-") or "mywork"


def config_text(module: str, name: str, found: Found, defaults: dict, checked: list[str]) -> str:
    """The config file: the default sweep's backends, workers and rounds, and the workload with its parameters."""
    today = datetime.date.today().isoformat()
    value = lambda v: yaml.safe_dump(v, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()  # noqa: E731
    head = [
        f"# A parbench sweep of {module}, written by `parbench init` on {today}.",
        "# Run it: parbench run --configfile THIS_FILE (the default file, config/config.yaml, needs no option).",
        "# Every key is described in parbench's config/schema.yaml; a wrong key fails before any run starts.",
    ]
    rows = [
        (f"backends: {value(defaults['backends'])}", "every backend; one this interpreter cannot run is skipped, saying why"),
        (f"workers: {value(defaults['workers'])}", "worker counts; one cell per backend and count"),
        (f"trials: {defaults['trials']}", "rounds: each runs every cell once in a fresh process, in a shuffled order"),
        ("workloads:", ""),
        (f"  {name}:", ""),
        (f"    module: {module}", "relative to the folder you run parbench in"),
        ("    batches: 5", "timed batches per run"),
        ("    warmup_batches: 1", "untimed batches first"),
        ("    min_timed_s: 0.5", "time batches until they took half a second: long enough to judge other load"),
        ("    tasks_per_batch: null", "null: one task per worker"),
    ]
    if not found.params:
        rows.append(("    # data() and items() read no parameter by name that `parbench init` could find", ""))
    for key, (default, where) in found.params.items():
        if default is NO_DEFAULT:
            rows.append((f"    {key}: null", f"TO FILL IN: read as params[{key!r}] in {where}, which gives no default"))
        elif isinstance(default, Computed):
            rows.append((f"    # {key}: ...", f"left to the code's default, {default.source} (in {where}); set it to override"))
        else:
            rows.append((f"    {key}: {value(default)}", f"the default of {where}"))
    rows += [(f"    # also read in a way `parbench init` cannot follow: {u}", "") for u in found.unknown]
    lines = head + [line for code, comment in rows[:3] for line in (f"# {comment}", code)] + _aligned(rows[3:])
    if checked:
        lines.append("# The check before any run (import, data(params), items(params, 0, 2)) failed with the values TO FILL IN unset:")
        lines += [f"#   {problem}" for problem in checked]
    else:
        lines.append("# The check before any run (import, data(params), items(params, 0, 2)) passed with these values.")
    return "\n".join(lines) + "\n"


def _aligned(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(code) for code, comment in rows if comment) + 2
    return [f"{code:<{width}}# {comment}" if comment else code for code, comment in rows]


class InitError(Exception):
    """The file cannot be benchmarked as it is; the message says why, naming the file."""


def init(module_path: str, output: Path, force: bool = False) -> tuple[str, list[str], list[str]]:
    """Write `output` for the user workload `module_path` (relative to the working folder, as in a config); (config
    text, the keys left to fill, the check's problems)."""
    cwd = Path.cwd()
    output = cwd / output
    if output.exists() and not force:
        raise InitError(f"{output} exists; name another file with -o, or --force to replace it")
    try:
        _, _, path = _user.locate(module_path, cwd)
        found = parameters(path.read_text())
    except (LookupError, OSError) as error:
        raise InitError(str(error)) from None
    except SyntaxError as error:
        raise InitError(f"{module_path} does not parse: {error.msg} (line {error.lineno})") from None
    name = workload_name(path)
    values = {k: None if d is NO_DEFAULT else d for k, (d, _) in found.params.items() if not isinstance(d, Computed)}
    to_fill = [k for k, (d, _) in found.params.items() if d is NO_DEFAULT]
    checked = _user.problems(name, {"module": module_path, **values}, cwd)
    # A file that fails the check with every value known, or whose functions are missing, is broken: nothing written.
    if checked and (not to_fill or any(p.startswith(f"config key workloads.{name}.module") for p in checked)):
        raise InitError(f"{module_path} fails the check the sweep makes before any run:\n  " + "\n  ".join(checked))
    defaults = yaml.safe_load((workflow_files.root() / "config" / "config.yaml").read_text())
    text = config_text(module_path, name, found, defaults, checked)
    if not checked:  # what the sweep will read (with placeholders left, its check would fail as it just did)
        parbench_config.validate(yaml.safe_load(text), workflow_files.root() / "config" / "schema.yaml")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return text, to_fill, checked
