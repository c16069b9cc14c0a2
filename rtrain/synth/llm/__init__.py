"""LLM-written synthetic pairs (E5-style two-step prompting) through a pluggable backend.

    from rtrain.synth.llm import LLMSynthConfig, generate_llm
    cfg = LLMSynthConfig.model_validate({"backend": {"kind": "openai", "base_url": "http://localhost:8000/v1",
                                                     "model": "Qwen/Qwen2.5-7B-Instruct"}, "languages": ["en", "de"]})
    manifest = generate_llm(cfg, "data/llm")   # -> data/llm/train.parquet (pair schema), manifest.json

Backends: `transformers` (a local model through the text-generation pipeline) and `openai` (any
OpenAI-compatible chat-completions server, e.g. vLLM). CLI: `rtrain synth-llm`.
"""

from rtrain.synth.llm.backends import BackendError, GenerationBackend
from rtrain.synth.llm.config import LLMSynthConfig
from rtrain.synth.llm.generate import generate_llm
from rtrain.synth.llm.make import make_backend

__all__ = ["BackendError", "GenerationBackend", "LLMSynthConfig", "generate_llm", "make_backend"]
