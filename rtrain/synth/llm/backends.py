"""The `GenerationBackend` protocol and `make_backend(config)`.

A backend turns prompts (one user message each) into reply texts, in order. It retries transport
failures itself; a reply that is not the JSON asked for is the generator's business (it re-prompts).

    backend = make_backend(BackendConfig(kind="openai", base_url="http://localhost:8000/v1", model="m"))
    replies = backend.generate(["Write ..."], max_new_tokens=512, temperature=1.0, seeds=[7])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

from rtrain.synth.llm.config import BackendConfig


class BackendError(RuntimeError):
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


def make_backend(cfg: BackendConfig, **kwargs: Any) -> GenerationBackend:
    """The backend for `cfg`; `kwargs` go to its constructor (e.g. `logits_processors` for transformers)."""
    if cfg.kind == "transformers":
        from rtrain.synth.llm.transformers_backend import TransformersBackend

        return TransformersBackend(cfg, **kwargs)
    if cfg.kind == "openai":
        from rtrain.synth.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(cfg, **kwargs)
    raise BackendError(f"backend.kind={cfg.kind!r} is not known; use transformers or openai")
