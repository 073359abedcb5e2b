"""parbench.sweep.scaffold.parameters: what `parbench init` finds that data() and items() read (the command itself, on
files, is in test_installed.py)."""

import re

from parbench.sweep import scaffold

SOURCE = """
def depth_of(p):
    return p["depth"]

def data(params):
    return {"x": depth_of(params), "n": params.get("n", 5), "f": params.get("f", 2 ** 3)}

def items(params, batch, n):
    k = params["key" + "x"]
    return [params.get("m")] * n

def task(state, item):
    return item["ignored"]
"""


def test_parameters_with_and_without_defaults_followed_into_the_modules_own_functions():
    found = scaffold.parameters(SOURCE)
    got = {k: (d if d is not scaffold.NO_DEFAULT else "none", where) for k, (d, where) in found.params.items()}
    assert got == {
        "depth": ("none", "data() -> depth_of(), line 3"),  # passed on to a function of the module
        "n": (5, "data(), line 6"),
        "f": (scaffold.Computed("2 ** 3"), "data(), line 6"),  # an expression, not a literal: left to the code
        "m": (None, "items(), line 10"),
    }
    assert found.unknown == ["items(), line 9: params['key' + 'x']"], "what cannot be followed is said, not guessed"


def test_a_computed_default_is_left_to_the_code_and_shown():
    text = scaffold.config_text("w.py", "w", scaffold.parameters(SOURCE), {"backends": ["serial"], "workers": [2], "trials": 5}, [])
    assert re.search(r"\n    # f: \.\.\. +# left to the code's default, 2 \*\* 3 \(in data\(\), line 6\)", text), text
    assert "    depth: null" in text and "TO FILL IN" in text and "    n: 5" in text


def test_the_config_name_is_the_file_stem_in_the_letters_a_workload_name_allows():
    from pathlib import Path

    assert scaffold.workload_name(Path("bench/My Work.v2.py")) == "my-work-v2"
