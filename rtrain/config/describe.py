"""A validated config as commented YAML: every key with its value (defaults included) and its description.

`rtrain config show JOB [key=value ...]` prints `describe(resolve_job(JOB, overrides))`; the output
is itself a valid job file. `sections(JobConfig)` is the one-line-per-section list `rtrain train --help`
shows.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

COMMENT_COLUMN = 44


def first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _scalar(value: Any) -> str:
    """One YAML line for a JSON-like value (lists and dicts in flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _line(indent: str, text: str, comment: str) -> str:
    if not comment:
        return f"{indent}{text}"
    return f"{indent}{text}".ljust(COMMENT_COLUMN - 1) + f" # {comment}"


def _lines(model: BaseModel, indent: str) -> list[str]:
    out: list[str] = []
    fields = type(model).model_fields
    dumped = model.model_dump(mode="json")
    for name, info in fields.items():
        value = getattr(model, name)
        comment = first_line(info.description)
        if isinstance(value, BaseModel):
            out.append(_line(indent, f"{name}:", comment or first_line(type(value).__doc__)))
            out.extend(_lines(value, indent + "  "))
        elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            out.append(_line(indent, f"{name}:", comment or first_line(type(value[0]).__doc__)))
            for item in value:
                body = _lines(item, indent + "    ")
                out.append(f"{indent}  - {body[0].lstrip()}")
                out.extend(body[1:])
        else:
            out.append(_line(indent, f"{name}: {_scalar(dumped[name])}", comment))
    return out


def describe(model: BaseModel) -> str:
    """`model` as YAML, one key per line, each with its field's one-line description as a comment."""
    head = first_line(type(model).__doc__)
    return "\n".join(([f"# {type(model).__name__}: {head}"] if head else []) + _lines(model, "")) + "\n"


def section_model(info: FieldInfo) -> type[BaseModel] | None:
    """The model a field holds when it is a section (`LossConfig`, `EvalConfig | None`), else None."""
    kinds = [t for t in getattr(info.annotation, "__args__", (info.annotation,)) if isinstance(t, type)]
    return next((t for t in kinds if issubclass(t, BaseModel)), None)


def sections(schema: type[BaseModel]) -> str:
    """`name  description` for each section (a field whose type is a model) of `schema`."""
    rows = []
    for name, info in schema.model_fields.items():
        model = section_model(info)
        if model is not None:
            rows.append(f"  {name:<11} {first_line(model.__doc__)}")
    return "\n".join(rows)
