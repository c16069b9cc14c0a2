"""YAML + `a.b=c` overrides -> a validated config, with every problem reported at once.

`resolve(schema, source, overrides)` is the one resolution path for the CLI, job files and
Tune trials (which pass their sampled values as overrides).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rtrain.config.schema import JobConfig
from rtrain.errors import UserError, problems_message

M = TypeVar("M", bound=BaseModel)


class ConfigError(UserError, ValueError):
    """A config that cannot be used; the message lists every problem with its key and the fix."""


def yaml_where(err: yaml.YAMLError) -> str:
    """`:LINE:COLUMN` (1-based) of a YAML syntax error, or '' when PyYAML gives no position."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    return f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""


def yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's reason on one line (its message spans several, with a caret drawing)."""
    parts = [getattr(err, "context", None), getattr(err, "problem", None)]
    text = "; ".join(p for p in parts if p) or str(err).splitlines()[0]
    return f"{text}; check the quoting and indentation there"


def parse_override(text: str) -> tuple[list[str], Any]:
    """`'train.learning_rate=1e-4'` -> (['train', 'learning_rate'], 0.0001). Values are YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key.sub=value (e.g. train.epochs=2)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({yaml_problem(err)})") from None
    return [part for part in key.strip().split(".")], value


def _set(data: dict[str, Any], path: list[str], value: Any, text: str) -> None:
    """Set `value` at `path`, creating sections as needed; a numeric part indexes a list (tasks.0.limit)."""
    node: Any = data
    for i, part in enumerate(path):
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {text!r}: '{where}' is not an index of a list of {len(node)}")
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
        else:
            raise ConfigError(f"override {text!r}: '{'.'.join(path[:i])}' is {node!r}, not a section")
        if i == len(path) - 1:
            node[key] = value
            return
        if isinstance(node, dict) and node.get(key) is None:
            node[key] = {}
        node = node[key]


def apply_overrides(data: dict[str, Any], overrides: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `data` with dotted-key overrides set (strings `a.b=c`, or a mapping `{'a.b': c}`)."""
    out = copy.deepcopy(data)
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            _set(out, key.split("."), value, f"{key}={value!r}")
    else:
        for text in overrides:
            path, value = parse_override(text)
            _set(out, path, value, text)
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file, or a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text ({err.reason}); save the file as UTF-8") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}{yaml_where(err)}: not valid YAML: {yaml_problem(err)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _allowed_keys(schema: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The field names valid at `loc`'s parent (for 'unknown key' messages)."""
    model: Any = schema
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) and hasattr(model, "model_fields") else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return sorted(model.model_fields)


def format_validation_error(err: ValidationError, schema: type[BaseModel], where: str) -> str:
    """One line per problem: key, offending value, what is allowed."""
    lines = []
    for e in err.errors():
        loc = [p for p in e["loc"] if p != "__root__"]
        key = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(schema, loc)
            lines.append(f"{key} = {e['input']!r}: unknown key; allowed here: {', '.join(allowed)}")
        elif e["type"] == "missing":
            lines.append(f"{key}: required key is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            value = "" if e["type"] == "value_error" and not loc else f" = {e['input']!r}"
            lines.append(f"{key}{value}: {msg}")
    return problems_message(where, lines)


def read_source(source: str | Path | Mapping[str, Any], name: str) -> tuple[dict[str, Any], str]:
    """A config's data (a YAML file read, or a copy of a mapping) and how messages name it (the path, or `name`)."""
    if isinstance(source, (str, Path)):
        return load_yaml(source), str(source)
    return copy.deepcopy(dict(source)), name


def resolve(
    schema: type[M],
    source: str | Path | Mapping[str, Any],
    overrides: Sequence[str] | Mapping[str, Any] = (),
    where: str | None = None,
) -> M:
    """Validate a YAML file (or a mapping) plus overrides against `schema`; ConfigError lists all problems.

    `where` names the source in messages (default: the file path, or 'config' for a mapping).
    """
    data, named = read_source(source, "config")
    where = where or named
    data = apply_overrides(data, overrides)
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, schema, where)) from None


def resolve_job(
    source: str | Path | Mapping[str, Any],
    overrides: Sequence[str] | Mapping[str, Any] = (),
    where: str | None = None,
) -> JobConfig:
    """The validated training job from a YAML file (or mapping) and overrides."""
    return resolve(JobConfig, source, overrides, where)


def dump_yaml(cfg: BaseModel) -> str:
    """A config as YAML that `resolve` reads back to the same object."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
