"""The sweep's configuration: validated against config/schema.yaml, defaults filled in, and
checked for what a schema cannot see (a spaCy model that is not installed)."""

import copy
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators

from parbench import workloads


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
    if error.validator == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"config key {key}: {error.message}; allowed keys: {allowed}"
    allowed = error.schema.get("description")
    if not allowed and error.parent is not None:
        allowed = error.parent.schema.get("description")
    return f"config key {key}: {error.message}" + (f"; allowed: {allowed}" if allowed else "")


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
        props = schema.get("properties", {})
        return {k: typed(v, props[k], root) if k in props else v for k, v in value.items()}
    if isinstance(value, list) and "items" in schema:
        return [typed(v, schema["items"], root) for v in value]
    if not isinstance(value, str):
        return value
    allowed = _types(schema, root)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    kind = JSON_TYPES.get(type(parsed))
    fits = kind in allowed or (kind == "integer" and "number" in allowed)
    # A string stays a string where one is allowed ('null' aside: no address or model is called that).
    return parsed if fits and (parsed is None or "string" not in allowed) else value


def validate(config: dict, schema_path) -> dict:
    """Return `config` with defaults filled in, or raise ConfigError listing every problem."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    config = typed(copy.deepcopy(dict(config)), schema, schema)
    errors = sorted(DefaultingValidator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_message(e) for e in errors]
    for name, params in (config.get("workloads") or {}).items():
        if name in workloads.names() and isinstance(params, dict):
            problems += workloads.load(name).check_params(params)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config
