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

Each kind is one model in :mod:`rtrain.eval.task_kinds` (its keys, display name, default split,
evaluator and loader), registered in :data:`TASK_KINDS`; :data:`TaskSpec` is their union told apart
by ``kind``. A key of another kind is an error for this one, reported with every other problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Discriminator, Field, Tag, ValidationError, WrapValidator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from rtrain.config.strict import StrictModel, carried_error
from rtrain.eval.task_base import TaskBase
from rtrain.eval.task_kinds import (
    BeirTask,
    FloresBitextTask,
    MLQATask,
    ParallelPair,
    ParallelTask,
    RetrievalPairsTask,
    STS17Task,
    STSBTask,
)

__all__ = ["TASK_KINDS", "ParallelPair", "SuiteConfig", "TaskBase", "TaskSpec"]

# The registry of task kinds: kind -> class. A new kind is one class plus one entry here.
TASK_KINDS: dict[str, type[TaskBase]] = {
    cls.kind_name(): cls
    for cls in (
        RetrievalPairsTask,
        MLQATask,
        BeirTask,
        FloresBitextTask,
        STSBTask,
        STS17Task,
        ParallelTask,
    )
}


def _kind_of(value: Any) -> str | None:
    return value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)


def _key_owners(key: str, kind: str) -> str:
    owners = [k for k, c in TASK_KINDS.items() if k != kind and key in c.model_fields]
    return f"{key!r} is a key of {', '.join(owners)}" if owners else ""


def _task_errors(err: ValidationError, cls: type[TaskBase], data: dict[str, Any]) -> ValidationError:
    """`err` of a task of kind `cls` as suite errors: locations without the kind's tag, unknown keys merged
    into one error that lists the keys this kind allows, required keys as 'a <kind> task needs <key>'."""
    kind = cls.kind_name()
    unknown: list[str] = []
    missing: list[str] = []
    details: list[InitErrorDetails] = []
    for e in err.errors():
        loc = e["loc"][1:] if e["loc"][:1] == (kind,) else e["loc"]
        if e["type"] in ("extra_forbidden", "unknown_key") and len(loc) == 1:  # unknown_key: StrictModel's
            unknown.append(str(loc[0]))
            continue
        if e["type"] == "missing" and len(loc) == 1:
            missing.append(str(loc[0]))
            continue
        details.append(carried_error(e, loc))
    head: list[InitErrorDetails] = []
    if unknown:
        hints = "; ".join(h for h in (_key_owners(k, kind) for k in unknown) if h)
        message = (
            f"unknown key(s) {', '.join(map(repr, unknown))} for a {kind} task{f' ({hints})' if hints else ''}; "
            f"allowed: {', '.join(cls.model_fields)}"
        )
        head.append(InitErrorDetails(type=PydanticCustomError("unknown_task_key", message), loc=(), input=data))
    if missing:
        message = f"a {kind} task needs {', '.join(missing)}"
        head.append(InitErrorDetails(type=PydanticCustomError("missing_task_key", message), loc=(), input=data))
    return ValidationError.from_exception_data(err.title, head + details)


def _validate_task(data: Any, handler: ValidatorFunctionWrapHandler) -> TaskBase:
    """Check `kind` first (naming the known kinds), then the kind's own model; see :func:`_task_errors`."""
    if isinstance(data, TaskBase):
        return handler(data)
    if not isinstance(data, dict):
        raise ValueError(f"a task must be a mapping with a 'kind', got {type(data).__name__}")
    kind = data.get("kind")
    if kind is None:
        raise ValueError(f"task has no 'kind'; choose one of {', '.join(TASK_KINDS)}")
    if not isinstance(kind, str) or kind not in TASK_KINDS:
        raise ValueError(f"kind = {kind!r} is not a task kind; choose one of {', '.join(TASK_KINDS)}")
    try:
        return handler(data)
    except ValidationError as err:
        raise _task_errors(err, TASK_KINDS[kind], data) from None


# One task of a suite: the kind's model, chosen by `kind`.
TaskSpec = Annotated[
    Annotated[
        Union[tuple(Annotated[cls, Tag(kind)] for kind, cls in TASK_KINDS.items())],  # noqa: UP007
        Discriminator(
            _kind_of,
            custom_error_type="invalid_kind",
            custom_error_message=f"a task needs kind: one of {', '.join(TASK_KINDS)}",
        ),
    ],
    WrapValidator(_validate_task),
]


class SuiteConfig(StrictModel):
    """An evaluation suite: shared settings plus a list of tasks."""

    name: str = "suite"
    batch_size: int = Field(64, ge=1)
    query_prefix: str | None = Field(None, description="Replaces each model's query prefix (None keeps it).")
    passage_prefix: str | None = Field(None, description="Replaces each model's passage prefix (None keeps it).")
    k_values: list[int] = Field(default_factory=lambda: [1, 3, 5, 10, 20, 100], description="Retrieval cut-offs.")
    data_root: str | None = Field(
        None, description="Folder of the shared eval sets; default $RTRAIN_SHARED_DATA or <repo>/../shared/data."
    )
    tasks: list[TaskSpec] = Field(min_length=1)

    def path_overrides(self, cwd: Path) -> list[str]:
        """Overrides that make every relative path of the suite absolute against `cwd` (for a process that
        loads the suite elsewhere, e.g. a Ray Train worker of a Tune trial)."""
        found = [("data_root", self.data_root)]
        for i, task in enumerate(self.tasks):
            found += [(f"tasks.{i}.{key}", value) for key, value in task.paths()]
        return [
            f"{key}={json.dumps(str(cwd / value))}"
            for key, value in found
            if value is not None and not Path(value).expanduser().is_absolute()
        ]

    @model_validator(mode="after")
    def _check(self) -> SuiteConfig:
        if 10 not in self.k_values or any(k < 1 for k in self.k_values):
            raise ValueError(f"k_values={self.k_values} must be positive and include 10 (ndcg_at_10 is the main score)")
        names = [t.task_name for t in self.tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"task names {dupes} appear twice; give the tasks distinct 'name' keys")
        return self
