"""What every eval task kind shares: the common suite keys, the class-level facts a kind declares, a built task.

A kind (see :mod:`rtrain.eval.task_kinds`) is one :class:`TaskBase` subclass with ``kind: Literal[...]``,
its own keys as fields, and these class-level facts:

* ``display_name``: the task name in results when the suite gives no ``name``;
* ``default_split``: the split label (and, where the kind reads splits, the split read) without ``split``;
* ``evaluator``: the evaluator class it runs, which declares ``primary_metric`` and ``greater_is_better``;
* ``build(suite)``: read the data and return a :class:`BuiltTask`.

It is registered in :data:`rtrain.eval.suite_schema.TASK_KINDS`, which makes it part of the suite schema.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, get_args

from pydantic import Field

from rtrain.config.strict import StrictModel
from rtrain.eval.protocol import Evaluator, TextEncoder
from rtrain.eval.readers import default_data_root

Subsets = dict[str, dict[str, float]]


class SuiteSettings(Protocol):
    """What a task reads from its suite (a :class:`rtrain.eval.suite_schema.SuiteConfig`)."""

    batch_size: int
    k_values: list[int]
    data_root: str | None


@dataclass
class BuiltTask:
    """A task with its data loaded: ``run(encoder)`` returns ``{hf_subset: metrics with main_score}``."""

    spec: TaskBase
    main_metric: str
    run: Callable[[TextEncoder], Subsets]
    subsets: list[str]
    revision: str
    stats: dict[str, Any] = field(default_factory=dict)  # subset -> sizes; "warnings" -> skipped-row reports

    @property
    def name(self) -> str:
        return self.spec.task_name


class TaskBase(StrictModel):
    """Keys every task kind has; a subclass per kind adds its own (see :mod:`rtrain.eval.task_kinds`)."""

    display_name: ClassVar[str]
    default_split: ClassVar[str] = "test"
    evaluator: ClassVar[type[Evaluator]]

    kind: str
    name: str | None = Field(None, description="Task name in results; default Local<Kind>.")
    limit: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1, description="Overrides the suite's batch_size.")
    query_prefix: str | None = Field(None, description="Overrides the suite's / model's query prefix.")
    passage_prefix: str | None = Field(None, description="Overrides the suite's / model's passage prefix.")

    @classmethod
    def kind_name(cls) -> str:
        """The ``kind`` value of this class (its ``Literal``)."""
        return str(get_args(cls.model_fields["kind"].annotation)[0])

    @classmethod
    def required_keys(cls) -> list[str]:
        """Keys a task of this kind must give."""
        return [key for key, info in cls.model_fields.items() if info.is_required() and key != "kind"]

    @property
    def task_name(self) -> str:
        """The name in results: ``name``, else the kind's display name."""
        return self.name or self.display_name

    @property
    def split_name(self) -> str:
        """The split label: ``split`` where the kind has that key and it is set, else the kind's default."""
        return getattr(self, "split", None) or self.default_split

    @property
    def primary_metric(self) -> str:
        """The evaluator's main metric (the results' ``main_score``)."""
        return self.evaluator.primary_metric

    @property
    def greater_is_better(self) -> bool:
        """Whether a higher ``main_score`` is better."""
        return self.evaluator.greater_is_better

    def paths(self) -> list[tuple[str, str | None]]:
        """``(key, value)`` of every file or folder key, keys relative to the task (e.g. ``pairs.0.src``)."""
        return [(key, getattr(self, key)) for key in ("root", "path") if key in type(self).model_fields]

    def batch(self, suite: SuiteSettings) -> int:
        """The encoder batch size: the task's, else the suite's."""
        return self.batch_size or suite.batch_size

    def data_folder(self, suite: SuiteSettings, folder: str) -> Path:
        """The task's ``root`` if it has one, else ``folder`` under the suite's (or the default) data root."""
        root = getattr(self, "root", None)
        if root:
            return Path(root)
        return Path(suite.data_root) / folder if suite.data_root else default_data_root() / folder

    @abstractmethod
    def build(self, suite: SuiteSettings) -> BuiltTask:
        """Read the task's data (limits applied) and return it ready to run."""
