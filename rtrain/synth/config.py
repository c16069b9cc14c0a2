"""Knobs of the synthetic-data generator (`SynthConfig`) and the lists of what exists.

Resolved form (after validation), e.g.::

    SynthConfig(languages=["en", "de"], tasks=["retrieval", "qa"], examples_per_task_language=1000,
                heldout_examples_per_task_language=100, heldout_fraction=0.2,
                cross_lingual_rate=0.2, negatives_per_row=3, seed=0)

`languages` and `tasks` accept a list of names, an int N (the first N of `available_languages()` /
`available_tasks()`), or a comma-separated string ("en,de"). After validation both are lists.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from rtrain.config.strict import StrictModel
from rtrain.synth.templates import available_template_languages

# Task types this generator writes (a subset of rtrain.data.schema.TASKS), in "first N" order.
TASK_NAMES: tuple[str, ...] = ("retrieval", "qa", "bitext", "paraphrase", "classification", "clustering")
# Tasks whose document may be in another language than the query (bitext always is).
CROSS_LINGUAL_TASKS: frozenset[str] = frozenset({"retrieval", "qa", "classification", "clustering"})
# Classification negatives are labels of other topics; 9 other kinds x 2 labels bounds how many exist.
MAX_NEGATIVES = 8


def available_languages() -> list[str]:
    """Language codes that have a template file, in the documented order (see templates/README.md)."""
    return available_template_languages()


def available_tasks() -> list[str]:
    """Task names `SynthConfig.tasks` accepts, in the order `tasks=N` takes them."""
    return list(TASK_NAMES)


def _resolve_names(value: Any, available: list[str], what: str, field: str) -> list[str]:
    """Turn an int N / list / comma string into a list of known names, or raise a ValueError listing them."""
    if isinstance(value, bool):
        raise ValueError(f"{field}={value!r} is a bool; give a list of {what}s or an int 1..{len(available)}")
    if isinstance(value, int):
        if not 1 <= value <= len(available):
            raise ValueError(
                f"{field}={value} asks for the first {value} {what}s but {len(available)} exist; "
                f"use 1..{len(available)} or a list from {available}"
            )
        return available[:value]
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{field}={value!r}: give a non-empty list of {what}s or an int; available: {available}")
    names: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"{field} item {item!r} is not a string; available {what}s: {available}")
        if item not in names:
            names.append(item)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown} in {field}; available: {available}")
    return names


class SynthConfig(StrictModel):
    """Everything that decides the generated rows; same config + seed give byte-identical files.

    Row counts: every (task, language) shard writes `examples_per_task_language` train rows and
    `heldout_examples_per_task_language` held-out rows, so train.parquet has
    len(tasks) * len(languages) * examples_per_task_language rows (a count, not a fraction; 0 writes an
    empty heldout.parquet). `heldout_fraction` (0.02..0.8) is the share of entities (territories with
    their cities and currencies, languages, dates, times, amounts, ...) reserved for held-out rows;
    train rows never mention them. `cross_lingual_rate` applies to retrieval, qa, classification and
    clustering; bitext rows are always cross-lingual and paraphrase rows never. `negatives_per_row`
    is 0..8 (classification negatives are the other topics' labels).
    """

    languages: list[str] | int = Field(default_factory=available_languages)
    tasks: list[str] | int = Field(default_factory=available_tasks)
    examples_per_task_language: int = Field(default=1000, ge=1)
    heldout_examples_per_task_language: int = Field(default=100, ge=0)
    heldout_fraction: float = Field(default=0.2, ge=0.02, le=0.8)
    cross_lingual_rate: float = Field(default=0.2, ge=0.0, le=1.0)
    negatives_per_row: int = Field(default=3, ge=0, le=MAX_NEGATIVES)
    seed: int = 0

    @field_validator("languages", mode="before")
    @classmethod
    def _check_languages(cls, value: Any) -> list[str]:
        return _resolve_names(value, available_languages(), "language", "languages")

    @field_validator("tasks", mode="before")
    @classmethod
    def _check_tasks(cls, value: Any) -> list[str]:
        return _resolve_names(value, available_tasks(), "task", "tasks")

    @model_validator(mode="after")
    def _check_combination(self) -> SynthConfig:
        if "bitext" in self.tasks and len(self.languages) < 2:
            raise ValueError(
                f"task 'bitext' pairs two languages but languages={self.languages}; "
                "add a second language or drop 'bitext' from tasks"
            )
        return self

    @property
    def language_list(self) -> list[str]:
        """`languages` as a list (always a list after validation; typed for callers)."""
        return list(self.languages) if isinstance(self.languages, list) else available_languages()[: self.languages]

    @property
    def task_list(self) -> list[str]:
        """`tasks` as a list (always a list after validation; typed for callers)."""
        return list(self.tasks) if isinstance(self.tasks, list) else available_tasks()[: self.tasks]

    def total_rows(self) -> int:
        """Rows over both splits."""
        shards = len(self.task_list) * len(self.language_list)
        return shards * (self.examples_per_task_language + self.heldout_examples_per_task_language)
