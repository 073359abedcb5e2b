"""The sweep's configuration: validated against config/schema.yaml, defaults filled in, and
checked for what a schema cannot see (a spaCy model that is not installed)."""

import copy
import os
import re
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators

from parbench import backends, environment, workloads


class ConfigError(ValueError):
    """A configuration that must not start a sweep; the message names every bad key."""


def _with_defaults(cls):
    """A validator that also fills in `default`s of object properties (the jsonschema FAQ recipe)."""
    check_properties = cls.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                sub = validator._resolver.lookup(sub["$ref"]).contents if "$ref" in sub else sub
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, schema)

    return validators.extend(cls, {"properties": properties})


DefaultingValidator = _with_defaults(Draft202012Validator)


def _where(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(error) -> str:
    key = _where(error.absolute_path)
    path = list(error.absolute_path)
    if error.validator == "required" and len(path) == 2 and path[0] == "workloads" and "'module'" in error.message:
        return (
            f"config key {key}: {path[1]!r} is not a built-in workload ({', '.join(workloads.names())}); "
            "a workload of your own names its `module:` (a .py file or a dotted module name)"
        )
    if "propertyNames" in error.schema_path:
        # A name becomes folders and Snakemake wildcards: refused here, not as a MissingInputException later.
        suggestion = re.sub(r"[^a-z0-9_-]+", "-", str(error.instance).lower()).strip("-") or "mywork"
        return (
            f"config key {key}: the name {error.instance!r} is refused: lower case letters, digits, - and _ only "
            f"(it names folders and Snakemake wildcards), such as {suggestion!r}"
        )
    if error.validator == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"config key {key}: {error.message}; allowed keys: {allowed}"
    allowed = error.schema.get("description")
    if not allowed and error.parent is not None:
        allowed = error.parent.schema.get("description")
    return f"config key {key}: {error.message}" + (f"; allowed: {allowed}" if allowed else "")


# A workload's or a variant's name: it names folders and Snakemake wildcards (workflow/rules/common.smk).
NAME = r"[a-z0-9_-]+"
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", type(None): "null"}


def _types(schema: dict, root: dict) -> set[str]:
    """The JSON types `schema` allows, through $ref, oneOf and anyOf."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    allowed = schema.get("type", [])
    allowed = {allowed} if isinstance(allowed, str) else set(allowed)
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        allowed |= _types(branch, root)
    return allowed


def typed(value, schema: dict, root: dict):
    """`value` with strings turned into the numbers, booleans and nulls its schema asks for.

    Snakemake's --config reads values as YAML without types below the top level, so
    `--config 'workers=[1,2]'` gives ['1', '2']."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if isinstance(value, dict):
        props, others = schema.get("properties", {}), schema.get("additionalProperties")
        rule = {k: props.get(k, others if isinstance(others, dict) else None) for k in value}
        return {k: typed(v, rule[k], root) if rule[k] else v for k, v in value.items()}
    if isinstance(value, list) and "items" in schema:
        return [typed(v, schema["items"], root) for v in value]
    if not isinstance(value, str) or not value.strip():
        return value  # an empty string is not a null: "" stays what it was given as
    allowed = _types(schema, root)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    kind = JSON_TYPES.get(type(parsed))
    fits = kind in allowed or (kind == "integer" and "number" in allowed)
    # A string stays a string where one is allowed ('null' aside: no address or model is called that).
    return parsed if fits and (parsed is None or "string" not in allowed) else value


def complete(schema: dict) -> dict:
    """The config schema with what the plugins define: the backend names, and each built-in
    workload's entry (run keys with its own defaults, then its parameters); and the form of a name."""
    schema = copy.deepcopy(schema)
    for key in ("workloads", "variants"):
        schema["properties"][key]["propertyNames"] = {"pattern": f"^{NAME}$"}
    schema["properties"]["backends"]["items"] = {"enum": backends.names()}
    run_keys = schema["$defs"]["run_keys"]
    entries = schema["properties"]["workloads"]
    entries["properties"] = {}
    for name in workloads.names():
        cls = workloads.load(name)
        keys = {k: {**v, "default": cls.run_defaults[k]} if k in cls.run_defaults else v for k, v in run_keys.items()}
        params = ", ".join(cls.params_schema)
        entries["properties"][name] = {
            "description": f"{name} parameters ({params}) and run keys ({', '.join(run_keys)})",
            "type": "object",
            "additionalProperties": False,
            "properties": {**keys, **cls.params_schema},
        }
    entries["description"] += f"; built-in: {', '.join(workloads.names())}; any other name needs `module:`"
    schema["$defs"]["user_workload"]["properties"].update(run_keys)
    return schema


def validate(config: dict, schema_path) -> dict:
    """Return `config` with defaults filled in, or raise ConfigError listing every problem.

    A user workload (a name that is not built in) is checked too: its module imports, has its
    functions and accepts its parameters (see parbench.workloads._user.problems)."""
    schema = complete(yaml.safe_load(Path(schema_path).read_text()))
    config = typed(copy.deepcopy(dict(config)), schema, schema)
    entries = config.get("workloads") if isinstance(config.get("workloads"), dict) else {}
    # A built-in name with `module:` would fail the schema with a less helpful message.
    problems = [
        f"config key workloads.{name}.module: {name!r} is a built-in workload; give your own workload another name"
        for name, params in entries.items()
        if name in workloads.names() and isinstance(params, dict) and "module" in params
    ]
    clashing = {name for name in entries if name in workloads.names() and "module" in (entries[name] or {})}
    checked = {**config, "workloads": {k: v for k, v in entries.items() if k not in clashing}} if clashing else config
    errors = sorted(DefaultingValidator(schema).iter_errors(checked), key=lambda e: list(map(str, e.absolute_path)))
    problems += [_message(e) for e in errors]
    bad = {e.absolute_path[1] for e in errors if len(e.absolute_path) > 1 and e.absolute_path[0] == "workloads"}
    bad |= {e.instance for e in errors if list(e.absolute_path) == ["workloads"] and "propertyNames" in e.schema_path}
    for name, params in entries.items():
        if name in bad or name in clashing or not isinstance(params, dict):
            continue
        if name in workloads.names():
            problems += workloads.load(name).check_params(params, f"workloads.{name}")
        else:
            from parbench.workloads import _user

            problems += _user.problems(name, params)
    for name, variant in (config.get("variants") or {}).items():
        python = variant.get("python") if isinstance(variant, dict) else None
        if isinstance(python, str) and not os.access(environment.interpreter(python), os.X_OK):
            problems.append(
                f"config key variants.{name}.python: {python!r} is neither an interpreter nor a virtual environment's folder"
                " (`make interpreters` makes interpreters/3.13 and interpreters/3.13t)"
            )
    if config.get("fail_on") and not config.get("compare_with") and len(config.get("variants") or {}) < 2:
        problems.append("config key fail_on: needs something to compare with: compare_with (another sweep's results/) or two variants")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return checked
