"""`make_backend(config)`: the generation backend a `BackendConfig` names.

backend = make_backend(BackendConfig(kind="openai", base_url="http://localhost:8000/v1", model="m"))
replies = backend.generate(["Write ..."], max_new_tokens=512, temperature=1.0, seeds=[7])
"""

from __future__ import annotations

from typing import Any

from rtrain.synth.llm.backends import BackendError, GenerationBackend
from rtrain.synth.llm.config import BackendConfig


def make_backend(cfg: BackendConfig, **kwargs: Any) -> GenerationBackend:
    """The backend for `cfg`; `kwargs` go to its constructor (e.g. `logits_processors` for transformers)."""
    if cfg.kind == "transformers":
        from rtrain.synth.llm.transformers_backend import TransformersBackend

        return TransformersBackend(cfg, **kwargs)
    if cfg.kind == "openai":
        from rtrain.synth.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(cfg, **kwargs)
    raise BackendError(f"backend.kind={cfg.kind!r} is not known; use transformers or openai")
