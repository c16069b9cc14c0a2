"""Shared pieces of a SOURCE_SPEC: the common source keys and the eval guard.

Paths inside a folder of an evaluation set of the shared data (`EVAL_FOLDERS`) are refused, both
when the spec is validated (the path as written) and when it is resolved (`rtrain.pairs.textio`).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

from pydantic import Field

from rtrain.config.strict import StrictModel

# Folders of ../shared/data whose role is "eval": never build training pairs from them.
EVAL_FOLDERS = ("sib200_flores_subset", "mlqa_r_dev", "stsb_multi_mt", "sts17_semeval")
KINDS = ("parallel", "squad", "monolingual", "pairs", "hf_dataset")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def eval_folder_in(path: str | Path) -> str | None:
    """The eval-set folder name `path` lies in (any component), or None."""
    parts = Path(path).parts
    return next((part for part in parts if part in EVAL_FOLDERS), None)


def eval_guard_message(path: str | Path, folder: str) -> str:
    """Why a path inside an eval set is refused, and what to use instead."""
    return (
        f"{path} lies inside the evaluation set folder '{folder}' (role 'eval' in ../shared/data/README.md); "
        f"never train on it: use a train-role corpus (ud_pud, ntrex128_subset, ud_mono, qa_native) instead"
    )


def not_eval(value: Any) -> Any:
    """A field validator: refuse any path (a string, or strings in a list/dict) inside an eval set."""
    items = value.values() if isinstance(value, dict) else [value]
    for item in items:
        for path in [item] if isinstance(item, str) else list(item or []):
            folder = eval_folder_in(path)
            if folder is not None:
                raise ValueError(eval_guard_message(path, folder))
    return value


class SourceBase(StrictModel):
    """Keys every reader has."""

    name: str = Field(pattern=NAME_PATTERN, description="The rows' `source` field and the output file <name>.parquet.")
    task: str = Field("retrieval", min_length=1, description="The rows' `task` (each kind has its own default).")
    max_rows: int | None = Field(None, ge=1, description="Keep a seeded random sample of at most this many rows.")
    heldout_rows: int = Field(
        0,
        ge=0,
        description="Also write up to this many rows to _heldout/<name>.parquet for model selection, drawn from "
        "the candidates max_rows leaves out that share no query or positive text with a training row.",
    )
    seed: int = Field(0, description="Seeds sampling, shuffling and the self-supervised choices.")
    shuffle: bool = Field(True, description="Write the rows in a seeded random order (else reading order).")

    @abstractmethod
    def input_paths(self) -> list[str]:
        """Every path the source reads, as written in the spec."""


def as_paths(value: str | list[str]) -> list[str]:
    """One path or a list of paths, as a list."""
    return [value] if isinstance(value, str) else list(value)
