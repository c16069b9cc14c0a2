"""SOURCE_SPEC: which corpora to turn into pair rows, one pydantic model per reader kind.

A spec is `root` (where relative paths point) plus `sources`, a list of readers told apart by `kind`:

| kind          | reads                                                           | default task      |
|---------------|-----------------------------------------------------------------|-------------------|
| `parallel`    | line-aligned files or TSV files joined on an id column          | `bitext`          |
| `squad`       | SQuAD-style QA JSON (question -> its paragraph)                  | `qa`              |
| `monolingual` | sentences (TSV or text) -> inverse cloze and/or crop pairs       | `self_supervised` |
| `pairs`       | existing JSONL/Parquet pair-like files, with a column mapping   | `retrieval`       |
| `hf_dataset`  | a Hugging Face dataset saved on disk, with a column mapping     | `retrieval`       |

Every key is checked (`extra="forbid"`); unknown keys are reported with the keys allowed there.
Paths inside a folder of an evaluation set of the shared data (see `EVAL_FOLDERS`) are refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Discriminator, Field, Tag, model_validator

from rtrain.config.load import resolve
from rtrain.pairs.spec_base import DEFAULT_ROOT, EVAL_FOLDERS, KINDS, ROOT_ENV, StrictModel
from rtrain.pairs.spec_kinds import (
    MAPPABLE,
    HFDatasetSource,
    MappedSource,
    MonolingualSource,
    PairFilesSource,
    ParallelSource,
    SquadSource,
)

__all__ = [
    "EVAL_FOLDERS",
    "MAPPABLE",
    "HFDatasetSource",
    "MappedSource",
    "MonolingualSource",
    "PairFilesSource",
    "PairsSpec",
    "ParallelSource",
    "SquadSource",
    "load_spec",
]


def _kind_of(value: Any) -> str | None:
    return value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)


Source = Annotated[
    Union[
        Annotated[ParallelSource, Tag("parallel")],
        Annotated[SquadSource, Tag("squad")],
        Annotated[MonolingualSource, Tag("monolingual")],
        Annotated[PairFilesSource, Tag("pairs")],
        Annotated[HFDatasetSource, Tag("hf_dataset")],
    ],
    Discriminator(
        _kind_of,
        custom_error_type="invalid_kind",
        custom_error_message=f"a source needs kind: one of {', '.join(KINDS)}",
    ),
]


class PairsSpec(StrictModel):
    """`root` + `sources`; relative paths are under `root`, a relative root is under the current folder."""

    root: str | None = Field(None, description=f"default: ${ROOT_ENV}, else {DEFAULT_ROOT}")
    sources: list[Source] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> PairsSpec:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names {dupes} appear twice; they name output files and row ids: make them unique")
        return self

    def root_path(self) -> Path:
        """The resolved root: `root`, else $RTRAIN_SHARED_DATA, else ../shared/data (relative to the cwd)."""
        raw = self.root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT
        return Path(raw).expanduser().resolve()

    def resolve_path(self, raw: str) -> Path:
        """A spec path as an absolute path: absolute stays, relative is under the root."""
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.root_path() / path


def load_spec(source: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> PairsSpec:
    """A validated spec from a YAML file (or mapping) plus `a.b=c` overrides; ConfigError lists every problem."""
    return resolve(PairsSpec, source, list(overrides), where=None if isinstance(source, (str, Path)) else "pairs spec")
