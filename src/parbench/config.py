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


def validate(config: dict, schema_path) -> dict:
    """Return `config` with defaults filled in, or raise ConfigError listing every problem."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    config = copy.deepcopy(dict(config))
    errors = sorted(DefaultingValidator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_message(e) for e in errors]
    for name, params in (config.get("workloads") or {}).items():
        if name in workloads.names() and isinstance(params, dict):
            problems += workloads.load(name).check_params(params)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config
