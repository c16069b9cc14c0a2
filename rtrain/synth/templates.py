"""Loading and checking the per-language template files `templates/<lang>.yaml`.

File shape (see templates/README.md)::

    language: de
    kinds:
      currency:
        labels:    [Währungen, Landeswährungen]
        questions: ["Welche Währung gilt im Land {territory}?", ...]
        passages:  ["Die offizielle Währung im Land {territory} ist {currency}.", ...]
        answers:   ["{currency}.", ...]
      ...one block per kind in spec.KINDS

Loaded form: `LangTemplates = {kind: {section: (phrasing, ...)}}`.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import yaml

from rtrain.errors import UserError
from rtrain.synth.spec import KINDS, MIN_PHRASINGS, SECTIONS, section_rules

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
# Order of `available_languages()` (so languages=N takes these first); files not listed come after, sorted.
LANGUAGE_ORDER: tuple[str, ...] = (
    "en", "de", "fr", "es", "pt", "it", "nl", "pl", "ru", "uk", "ar",
    "hi", "bn", "zh", "ja", "ko", "th", "tr", "sw", "id", "vi",
)  # fmt: skip

LangTemplates = dict[str, dict[str, tuple[str, ...]]]
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TemplateError(UserError, ValueError):
    """A template file is malformed; the message names the file, the key and the slot."""


def available_template_languages(template_dir: str | Path | None = None) -> list[str]:
    """Language codes with a `<code>.yaml` in `template_dir` (default: the packaged templates)."""
    folder = Path(template_dir) if template_dir is not None else TEMPLATE_DIR
    codes = {p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_")}
    ordered = [c for c in LANGUAGE_ORDER if c in codes]
    return ordered + sorted(codes - set(ordered))


def template_slots(text: str) -> list[str]:
    """Slot names used in one phrasing, e.g. "In {city} on {date}" -> ["city", "date"]."""
    names = []
    for _literal, field, spec, conversion in string.Formatter().parse(text):
        if field is None:
            continue
        if not field or not field.isidentifier() or spec or conversion:
            raise ValueError(f"slot {{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}")
        names.append(field)
    return names


def _check_phrasing(path: Path, key: str, text: Any, kind: str, section: str) -> str:
    """One phrasing checked against its kind's slot rules; returns it stripped."""
    if not isinstance(text, str) or not text.strip():
        raise TemplateError(f"{path}: template '{key}' is {text!r}; expected a non-empty string")
    try:
        used = template_slots(text)
    except ValueError as err:
        raise TemplateError(
            f"{path}: template '{key}' ({text!r}) has a malformed {err}; use named slots like {{city}} "
            "and write a literal brace as {{ or }}"
        ) from None
    required, allowed = section_rules(KINDS[kind], section)
    for slot in required:
        if slot not in used:
            raise TemplateError(
                f"{path}: template '{key}' ({text!r}) is missing slot {{{slot}}}; every {section} phrasing "
                f"of kind '{kind}' must use {['{' + s + '}' for s in required]}"
            )
    for slot in used:
        if slot not in allowed:
            hint = (
                "questions must not contain the answer"
                if slot in KINDS[kind].answer
                else f"allowed here: {['{' + s + '}' for s in allowed] or 'no slots'}"
            )
            raise TemplateError(f"{path}: template '{key}' ({text!r}) uses slot {{{slot}}} it may not use; {hint}")
    return text.strip()


def load_language(lang: str, template_dir: str | Path | None = None) -> LangTemplates:
    """Parse and check `<template_dir>/<lang>.yaml`; raises TemplateError naming file, key and slot."""
    folder = Path(template_dir) if template_dir is not None else TEMPLATE_DIR
    path = folder / f"{lang}.yaml"
    if not path.is_file():
        raise TemplateError(
            f"no template file {path}; languages with templates: {available_template_languages(folder)}"
        )
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    if not isinstance(data, dict) or not isinstance(data.get("kinds"), dict):
        raise TemplateError(f"{path}: expected a mapping with 'language: {lang}' and 'kinds: {{kind: ...}}'")
    if data.get("language") != lang:
        raise TemplateError(f"{path}: 'language' is {data.get('language')!r}; it must equal the file name, {lang!r}")
    kinds = data["kinds"]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise TemplateError(f"{path}: unknown kind(s) {unknown} under 'kinds'; known kinds: {list(KINDS)}")
    out: LangTemplates = {}
    for kind in KINDS:
        block = kinds.get(kind)
        if not isinstance(block, dict):
            raise TemplateError(f"{path}: missing 'kinds.{kind}' (a mapping with {list(SECTIONS)})")
        extra = sorted(set(block) - set(SECTIONS))
        if extra:
            raise TemplateError(f"{path}: 'kinds.{kind}' has unknown key(s) {extra}; allowed: {list(SECTIONS)}")
        out[kind] = {}
        for section in SECTIONS:
            items = block.get(section)
            key = f"kinds.{kind}.{section}"
            if not isinstance(items, list) or len(items) < MIN_PHRASINGS[section]:
                raise TemplateError(
                    f"{path}: '{key}' must be a list of at least {MIN_PHRASINGS[section]} phrasings, got {items!r}"
                )
            phrasings = tuple(_check_phrasing(path, f"{key}[{i}]", text, kind, section) for i, text in enumerate(items))
            if len(set(phrasings)) != len(phrasings):
                raise TemplateError(f"{path}: '{key}' repeats a phrasing; each must differ")
            out[kind][section] = phrasings
    seen: dict[str, str] = {}
    for kind in KINDS:
        for label in out[kind]["labels"]:
            if label in seen:
                raise TemplateError(
                    f"{path}: label {label!r} appears under 'kinds.{seen[label]}.labels' and "
                    f"'kinds.{kind}.labels'; topic labels must differ so classification negatives are wrong labels"
                )
            seen[label] = kind
    return out


def load_templates(languages: list[str], template_dir: str | Path | None = None) -> dict[str, LangTemplates]:
    """Templates of each language, checked; {lang: {kind: {section: phrasings}}}."""
    available = available_template_languages(template_dir)
    unknown = [lang for lang in languages if lang not in available]
    if unknown:
        raise TemplateError(f"no templates for language(s) {unknown}; available: {available}")
    return {lang: load_language(lang, template_dir) for lang in languages}
