"""The code hash of a non-benchmark rule comes from its script's imports (environment.script_code_hash): a module
the code uses cannot be left out of the hash, as the hand-written lists left some out."""

import ast
import re

from conftest import REPO

from parbench import environment

SCRIPTS = REPO / "workflow" / "scripts"


def test_the_closure_follows_imports_through_modules_and_functions():
    found = environment.imported("compare/compare")
    # compare imports baseline, whose edits the old hand-written list (compare, judge, decide, stats, records, gate) missed
    assert {"compare/compare", "compare/baseline", "compare/judge", "decide", "stats", "records"} <= set(found), found
    assert "records" in environment.imported("run/machine"), "an import inside a function counts too (machine imports records lazily)"


def test_a_plugin_package_counts_every_plugin_and_another_package_only_what_is_imported():
    found = set(environment.imported("report/plots"))
    plugins = {f"backends/{p.stem}" for p in (environment.SOURCE / "backends").glob("*.py")}
    assert plugins <= found, plugins - found
    assert "report/__init__" in found and "report/report" not in found, "of its own package, plots imports claims: not the page"


def test_every_rule_with_a_script_hashes_what_its_script_imports():
    for script in sorted(SCRIPTS.glob("*.py")):
        text = script.read_text()
        modules = {m.strip() for line in re.findall(r"^from parbench import ([\w, ]+)", text, re.M) for m in line.split(",")}
        for dotted, names in re.findall(r"^from parbench\.([\w.]+) import ([\w, ]+)", text, re.M):  # a module, or a package and its modules
            package = dotted.replace(".", "/")
            folder = (environment.SOURCE / package).is_dir()
            modules |= {package, *(f"{package}/{m.strip()}" for m in names.split(",") if folder)}
        assert environment.script_code_hash(script) == environment.code_hash(*environment.imported(*modules)), script.name
    rules = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    assert not re.search(r"\bcode_hash\(", rules), "a rule's code param is script_code(...): derived, not listed by hand"


def whole_source_imports(source: str) -> list[str]:
    """What environment._imports gives, from a parse of the whole source (as it was found before only the import
    statements were parsed): the reference the fast path must match."""
    return environment.imported_names(ast.parse(source))


# Statements the pattern must take whole: a list with parbench second, parenthesised names, a backslash, a function's.
CONTINUED = """
import os, parbench.stats
from parbench.report import (
    claims,
    decisions,
)
from parbench.run import \\
    runner


def later():
    from parbench import records as r
"""

# A match that is no statement, and a statement the pattern cuts short: the whole source is parsed instead.
MISLEADING = '''
"""A docstring that says
from parbench import nothing, in so many words."""
from parbench.report import (
    claims,  # the words (not the page)
    decisions,
)
'''


def test_the_import_statements_alone_give_what_the_whole_source_gives():
    sources = [*environment.SOURCE.rglob("*.py"), *SCRIPTS.glob("*.py")]
    for path in sources:
        assert sorted(environment._imports(path.read_text())) == sorted(whole_source_imports(path.read_text())), path
    for source in (CONTINUED, MISLEADING):
        assert sorted(environment._imports(source)) == sorted(whole_source_imports(source)), source
    # CONTINUED on the fast path: its statements alone parse and give the same names.
    alone = "\n".join(m.group(0).strip() for m in environment.PARBENCH_IMPORT.finditer(CONTINUED))
    assert sorted(whole_source_imports(alone)) == sorted(whole_source_imports(CONTINUED)), alone
