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

from pathlib import Path
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, model_validator

from rtrain.config.load import resolve
from rtrain.config.strict import StrictModel
from rtrain.data.shared import DEFAULT_SHARED_DATA, SHARED_DATA_ENV, shared_data_root
from rtrain.pairs.spec_base import EVAL_FOLDERS, KINDS
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
    (
        Annotated[ParallelSource, Tag("parallel")]
        | Annotated[SquadSource, Tag("squad")]
        | Annotated[MonolingualSource, Tag("monolingual")]
        | Annotated[PairFilesSource, Tag("pairs")]
        | Annotated[HFDatasetSource, Tag("hf_dataset")]
    ),
    Discriminator(
        _kind_of,
        custom_error_type="invalid_kind",
        custom_error_message=f"a source needs kind: one of {', '.join(KINDS)}",
    ),
]


class PairsSpec(StrictModel):
    """`root` + `sources`; relative paths are under `root`, a relative root is under the current folder."""

    root: str | None = Field(None, description=f"default: ${SHARED_DATA_ENV}, else {DEFAULT_SHARED_DATA}")
    sources: list[Source] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> PairsSpec:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names {dupes} appear twice; they name output files and row ids: make them unique")
        return self

    def root_path(self) -> Path:
        """The resolved root: `root` (a relative one is under the current folder), else the shared-data folder."""
        return Path(self.root).expanduser().resolve() if self.root else shared_data_root()

    def resolve_path(self, raw: str) -> Path:
        """A spec path as an absolute path: absolute stays, relative is under the root."""
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.root_path() / path


def load_spec(source: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> PairsSpec:
    """A validated spec from a YAML file (or mapping) plus `a.b=c` overrides; ConfigError lists every problem."""
    return resolve(PairsSpec, source, list(overrides), where=None if isinstance(source, (str, Path)) else "pairs spec")
