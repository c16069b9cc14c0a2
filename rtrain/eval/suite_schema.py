"""The eval-suite YAML schema: which local tasks to run, on which languages, with which limits.

Resolve a suite with ``rtrain.config.load.resolve(SuiteConfig, path, overrides)`` (or
:func:`rtrain.eval.suite.load_suite`); every problem comes back as one ``ConfigError`` naming the key.

A task is one mapping with a ``kind`` and the keys that kind accepts::

    kind            keys (besides kind, name, limit, batch_size, query_prefix, passage_prefix)
    retrieval_pairs path (pairs .parquet/.jsonl), split
    mlqa            languages, mode (mono | cross | both), target, corpus_limit, root, split (dev)
    beir            path (BEIR folder), split
    flores_bitext   languages (FLORES codes), target, split (train | dev | test), both_directions, root
    sts_b           languages, split (dev | test), root
    sts17           languages (tracks: ar-ar en-ar es-es es-en en-es-wmt en-en en-tr), root
    parallel        pairs: [{name: src-tgt, src: FILE, tgt: FILE} or {name, tsv: FILE}], both_directions, split

``limit`` caps queries per language (mlqa, beir), rows (retrieval_pairs), sentences per pair
(bitext) or pairs per track (STS), always keeping the first ones in file order;
``languages`` defaults to every language found. Relative paths are relative to the working directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TaskKind = Literal["retrieval_pairs", "mlqa", "beir", "flores_bitext", "sts_b", "sts17", "parallel"]

COMMON_KEYS = ("kind", "name", "limit", "batch_size", "query_prefix", "passage_prefix")
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "retrieval_pairs": ("path", "split"),
    "mlqa": ("languages", "mode", "target", "corpus_limit", "root", "split"),
    "beir": ("path", "split"),
    "flores_bitext": ("languages", "target", "split", "both_directions", "root"),
    "sts_b": ("languages", "split", "root"),
    "sts17": ("languages", "root"),
    "parallel": ("pairs", "both_directions", "split"),
}
DEFAULT_NAMES = {
    "retrieval_pairs": "LocalPairsRetrieval",
    "mlqa": "LocalMLQARetrieval",
    "beir": "LocalBEIRRetrieval",
    "flores_bitext": "LocalFloresBitextMining",
    "sts_b": "LocalSTSBMultiMT",
    "sts17": "LocalSTS17",
    "parallel": "LocalParallelBitextMining",
}
DEFAULT_SPLITS = {"mlqa": "dev", "flores_bitext": "dev", "sts_b": "test", "sts17": "test"}
REQUIRED_KEYS = {"retrieval_pairs": ("path",), "beir": ("path",), "parallel": ("pairs",)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParallelPair(_Strict):
    """Two line-aligned files (``src`` + ``tgt``) or one two-column TSV (``tsv``) for a ``src-tgt`` pair."""

    name: str = Field(description="Pair name, e.g. 'de-en' (source first).")
    src: str | None = None
    tgt: str | None = None
    tsv: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ParallelPair:
        if (self.tsv is None) == (self.src is None or self.tgt is None) or (self.tsv and (self.src or self.tgt)):
            raise ValueError(f"pair {self.name!r}: give either src and tgt (two line-aligned files) or tsv, not both")
        return self


class TaskSpec(_Strict):
    """One task of a suite; see the module docstring for the keys each kind accepts."""

    kind: TaskKind
    name: str | None = Field(None, description="Task name in results; default Local<Kind>.")
    limit: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1, description="Overrides the suite's batch_size.")
    query_prefix: str | None = Field(None, description="Overrides the suite's / model's query prefix.")
    passage_prefix: str | None = Field(None, description="Overrides the suite's / model's passage prefix.")
    languages: list[str] | None = Field(None, min_length=1)
    split: str | None = None
    root: str | None = Field(None, description="Data folder; default under the suite's data_root.")
    path: str | None = None
    mode: Literal["mono", "cross", "both"] = "mono"
    target: str | None = Field(None, description="mlqa cross: corpus language (en); flores: eng_Latn.")
    corpus_limit: int | None = Field(None, ge=1)
    both_directions: bool = False
    pairs: list[ParallelPair] | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _keys_fit_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"a task must be a mapping with a 'kind', got {type(data).__name__}")
        kind = data.get("kind")
        if kind is None:
            raise ValueError(f"task has no 'kind'; choose one of {', '.join(KIND_KEYS)}")
        if kind not in KIND_KEYS:
            raise ValueError(f"kind = {kind!r} is not a task kind; choose one of {', '.join(KIND_KEYS)}")
        allowed = (*COMMON_KEYS, *KIND_KEYS[kind])
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))} for a {kind} task; "
                             f"allowed: {', '.join(allowed)}")
        missing = [k for k in REQUIRED_KEYS.get(kind, ()) if data.get(k) is None]
        if missing:
            raise ValueError(f"a {kind} task needs {', '.join(missing)}")
        return data

    @property
    def task_name(self) -> str:
        return self.name or DEFAULT_NAMES[self.kind]

    @property
    def split_name(self) -> str:
        return self.split or DEFAULT_SPLITS.get(self.kind, "test")


class SuiteConfig(_Strict):
    """An evaluation suite: shared settings plus a list of tasks."""

    name: str = "suite"
    batch_size: int = Field(64, ge=1)
    query_prefix: str | None = Field(None, description="Replaces each model's query prefix (None keeps it).")
    passage_prefix: str | None = Field(None, description="Replaces each model's passage prefix (None keeps it).")
    k_values: list[int] = Field(default_factory=lambda: [1, 3, 5, 10, 20, 100], description="Retrieval cut-offs.")
    data_root: str | None = Field(None, description="Folder of the shared eval sets; default $RTRAIN_EVAL_DATA "
                                  "or <repo>/../shared/data.")
    tasks: list[TaskSpec] = Field(min_length=1)

    def path_overrides(self, cwd: Path) -> list[str]:
        """Overrides that make every relative path of the suite absolute against `cwd` (for a process that
        loads the suite elsewhere, e.g. a Ray Train worker of a Tune trial)."""
        found = [("data_root", self.data_root)]
        for i, task in enumerate(self.tasks):
            found += [(f"tasks.{i}.root", task.root), (f"tasks.{i}.path", task.path)]
            for j, pair in enumerate(task.pairs or []):
                found += [(f"tasks.{i}.pairs.{j}.{key}", getattr(pair, key)) for key in ("src", "tgt", "tsv")]
        return [f"{key}={json.dumps(str(cwd / value))}" for key, value in found
                if value is not None and not Path(value).expanduser().is_absolute()]

    @model_validator(mode="after")
    def _check(self) -> SuiteConfig:
        if 10 not in self.k_values or any(k < 1 for k in self.k_values):
            raise ValueError(f"k_values={self.k_values} must be positive and include 10 (ndcg_at_10 is the main score)")
        names = [t.task_name for t in self.tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"task names {dupes} appear twice; give the tasks distinct 'name' keys")
        return self
