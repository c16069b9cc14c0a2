"""`TransformersBackend`: a local causal LM through the transformers text-generation pipeline.

The prompt goes in as one user message through the tokenizer's chat template when it has one
(instruction-tuned models do), else as plain text. Batches are left-padded; sampling is seeded with
the first seed of each call (transformers samples a batch from one generator), so the same config
gives the same replies on the same hardware. `logits_processors` (constructor argument) are passed
to every `generate` call, e.g. a JSON-constrained decoder such as lm-format-enforcer's processor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rtrain.synth.llm.backends import BackendError, short_model_name
from rtrain.synth.llm.config import BackendConfig


class TransformersBackend:
    """Generates with `transformers.pipeline("text-generation")` on a model loaded once."""

    def __init__(self, cfg: BackendConfig, logits_processors: Sequence[Any] = ()) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

        from rtrain.models.loading import resolve_model_path

        self.cfg = cfg
        self._logits_processors = list(logits_processors)
        try:
            path = resolve_model_path(cfg.model)
            tokenizer = AutoTokenizer.from_pretrained(path)
            device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
            dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(
                cfg.dtype, torch.bfloat16 if device.startswith("cuda") else torch.float32
            )
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        except (OSError, ValueError) as err:
            raise BackendError(
                f"backend.model={cfg.model!r}: cannot load a causal LM and tokenizer ({err}); "
                "point it at a local model folder (config.json, tokenizer files, weights)"
            ) from None
        tokenizer.padding_side = "left"  # decoder-only batches must end at the prompt's last token
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise BackendError(f"backend.model={cfg.model!r}: the tokenizer has neither a pad nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        self._pipe = pipeline("text-generation", model=model, tokenizer=tokenizer, device=device)
        self._counts = {"prompts": 0, "calls": 0}

    @property
    def model_name(self) -> str:
        """The model folder's name (or the hub name)."""
        return short_model_name(self.cfg.model)

    def generate(
        self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float, seeds: Sequence[int]
    ) -> list[str]:
        """Replies in prompt order; only the new text (the prompt is not repeated)."""
        import torch
        from transformers import LogitsProcessorList

        if not prompts:
            return []
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds; give one seed per prompt")
        torch.manual_seed(int(seeds[0]))
        inputs: list[Any] = [[{"role": "user", "content": p}] if self.chat else p for p in prompts]
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": temperature > 0,
            "return_full_text": False,
            "batch_size": self.cfg.batch_size,
        }
        if temperature > 0:
            kwargs["temperature"] = temperature
        if self._logits_processors:
            kwargs["logits_processor"] = LogitsProcessorList(self._logits_processors)
        outputs = self._pipe(inputs, **kwargs)
        self._counts["prompts"] += len(prompts)
        self._counts["calls"] += 1
        return [_reply_text(out) for out in outputs]

    def stats(self) -> dict[str, Any]:
        """Prompts generated and pipeline calls made."""
        return {"kind": "transformers", "chat_template": self.chat, **self._counts}


def _reply_text(output: Any) -> str:
    """The generated text of one pipeline output (a list with one dict per returned sequence)."""
    first = output[0] if isinstance(output, list) else output
    text = first.get("generated_text", "") if isinstance(first, dict) else ""
    if isinstance(text, list):  # chat outputs with return_full_text=True are message lists; take the last
        text = text[-1].get("content", "") if text else ""
    return text if isinstance(text, str) else ""
