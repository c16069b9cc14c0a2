"""PEFT LoRA adapters with target modules detected per model family."""

from __future__ import annotations

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model
from transformers import PreTrainedModel

from rtrain.config.schema import LoraConfig

# Leaf names of the attention and MLP projections, per family.
ENCODER_TARGETS = ("query", "key", "value", "dense")  # BERT, RoBERTa, XLM-R, MiniLM, ELECTRA
DECODER_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # Llama, Qwen, Mistral
SKIP = ("pooler", "classifier", "lm_head", "score")
SKIP_PATTERN = r".*\b(" + "|".join(SKIP) + r")\b.*"


def linear_leaf_names(model: torch.nn.Module) -> set[str]:
    """Last name component of every nn.Linear (or Conv1D-like) module, outside task heads."""
    names = set()
    for full, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D":
            if not any(part in SKIP for part in full.split(".")):
                names.add(full.rsplit(".", 1)[-1])
    return names


def detect_target_modules(model: torch.nn.Module) -> list[str]:
    """The projections LoRA should adapt: a known family's set, else every linear layer."""
    present = linear_leaf_names(model)
    if not present:
        raise ValueError(f"{type(model).__name__} has no linear layers for LoRA: set lora.enabled=false")
    for family in (ENCODER_TARGETS, DECODER_TARGETS):
        found = [name for name in family if name in present]
        if found:
            return found
    return sorted(present)


def apply_lora(model: PreTrainedModel, cfg: LoraConfig) -> PeftModel:
    """Wrap `model` with LoRA adapters; only adapter weights stay trainable."""
    if cfg.target_modules == "auto":
        targets = detect_target_modules(model)
    else:
        present = linear_leaf_names(model)
        missing = [t for t in cfg.target_modules if t not in present]
        if missing:
            raise ValueError(
                f"lora.target_modules {missing} not found in {type(model).__name__}; "
                f"its linear layers are: {sorted(present)}"
            )
        targets = list(cfg.target_modules)
    peft_cfg = PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        exclude_modules=SKIP_PATTERN,  # e.g. BERT's pooler.dense: unused, it would never get a gradient
    )
    return get_peft_model(model, peft_cfg)
