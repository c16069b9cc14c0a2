"""The `GenerationBackend` protocol, `BackendError` and `short_model_name`; `make.py` builds a backend.

A backend turns prompts (one user message each) into reply texts, in order. It retries transport
failures itself; a reply that is not the JSON asked for is the generator's business (it re-prompts).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rtrain.errors import UserError


class BackendError(UserError, RuntimeError):
    """The backend cannot produce replies (server down after retries, bad model path, 4xx); names the fix."""


@runtime_checkable
class GenerationBackend(Protocol):
    """Anything that maps prompts to replies; `seeds` has one seed per prompt."""

    @property
    def model_name(self) -> str:
        """Short model name for the rows' `source` (`llm:<model_name>`)."""
        ...

    def generate(
        self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float, seeds: Sequence[int]
    ) -> list[str]:
        """One reply per prompt, in order. temperature 0 means greedy decoding."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for the manifest (requests, transport retries, tokens, ...)."""
        ...


def short_model_name(model: str) -> str:
    """`/models/Qwen2.5-7B-Instruct` -> `Qwen2.5-7B-Instruct`; hub names and served names stay as they are."""
    path = Path(model).expanduser()
    return path.name if (model.startswith(("/", ".", "~", "pkg://")) or path.exists()) and path.name else model
