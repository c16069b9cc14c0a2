"""`Encoder`: a Hugging Face backbone + pooling + L2 normalisation, optionally LoRA-adapted."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from rtrain.config.schema import LoraConfig, ModelConfig
from rtrain.models.loading import load_backbone
from rtrain.models.lora import apply_lora
from rtrain.models.pooling import pool
from rtrain.models.unpadded import unpadded_error, unpadded_hidden


class Encoder(torch.nn.Module):
    """Texts' token ids -> (batch, dim) embeddings. `backbone` is a plain or PEFT-wrapped model."""

    def __init__(self, backbone: torch.nn.Module, cfg: ModelConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.cfg = cfg

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.cfg.unpadded:
            hidden = unpadded_hidden(self.backbone, input_ids, attention_mask)  # (batch, seq, dim)
        else:
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        emb = pool(hidden, attention_mask, self.cfg.pooling)  # (batch, dim)
        if self.cfg.normalize:
            emb = torch.nn.functional.normalize(emb, p=2, dim=-1)  # (batch, dim)
        return emb

    def encode_base(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, dim) embeddings of the frozen base model: LoRA adapters bypassed, dropout off, no graph.

        The base-anchor loss's teacher. Only a LoRA-wrapped backbone still holds its base weights.
        """
        if not hasattr(self.backbone, "disable_adapter"):
            raise ValueError(
                "the base model is only available under LoRA (full fine-tuning changes its weights): "
                "set lora.enabled=true or loss.base_anchor=0"
            )
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad(), self.backbone.disable_adapter():
                return self(input_ids, attention_mask)  # (batch, dim)
        finally:
            self.train(was_training)


def build_encoder(model_cfg: ModelConfig, lora_cfg: LoraConfig) -> tuple[Encoder, PreTrainedTokenizerBase]:
    """Load the backbone, attach LoRA (or leave every weight trainable) and wrap it as an `Encoder` in train mode."""
    backbone, tokenizer = load_backbone(model_cfg.name_or_path)
    if model_cfg.unpadded and (message := unpadded_error(backbone, model_cfg.name_or_path)) is not None:
        raise ValueError(message)
    if model_cfg.gradient_checkpointing:
        if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5.x name
            backbone.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora_cfg.enabled:
        backbone = apply_lora(backbone, lora_cfg)
    encoder = Encoder(backbone, model_cfg)
    encoder.train()  # from_pretrained returns eval mode: dropout (backbone and LoRA) must be on for training
    return encoder, tokenizer


def prefix_texts(texts: list[str], kind: Literal["query", "document"], cfg: ModelConfig) -> list[str]:
    """Texts with the configured query/passage prefix."""
    prefix = cfg.query_prefix if kind == "query" else cfg.passage_prefix
    return [prefix + t for t in texts] if prefix else list(texts)


class EmbeddingModel:
    """Inference wrapper: `encode(texts, kind)` -> (n, dim) float32, the `TextEncoder` protocol of rtrain.eval."""

    def __init__(self, encoder: Encoder, tokenizer: PreTrainedTokenizerBase, device: str = "cpu") -> None:
        self.encoder = encoder.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device

    @classmethod
    def load(cls, model_cfg: ModelConfig, device: str = "cpu") -> EmbeddingModel:
        encoder, tokenizer = build_encoder(model_cfg, LoraConfig(enabled=False))
        return cls(encoder, tokenizer, device)

    @torch.inference_mode()
    def encode(
        self,
        texts: list[str],
        kind: Literal["query", "document"],
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        cfg = self.encoder.cfg
        max_length = cfg.query_max_length if kind == "query" else cfg.passage_max_length
        texts = prefix_texts(texts, kind, cfg)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first: less padding per batch
        chunks = []
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc=f"encode {kind}", disable=not show_progress):
            idx = order[start : start + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(self.device)
            emb = self.encoder(enc["input_ids"], enc["attention_mask"])  # (batch, dim)
            chunks.append(emb.float().cpu().numpy())
        if not chunks:
            raise ValueError(f"encode() got no {kind} texts: pass at least one")
        stacked = np.concatenate(chunks)  # (n, dim), longest-first order
        out = np.empty_like(stacked)
        out[order] = stacked
        return out
