"""Token states -> one vector per text."""

from __future__ import annotations

from typing import Literal

import torch

Pooling = Literal["mean", "cls", "last_token"]


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: Pooling) -> torch.Tensor:
    """Pool `hidden` (batch, seq, dim) under `attention_mask` (batch, seq) into (batch, dim)."""
    if mode == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
        summed = (hidden * mask).sum(dim=1)  # (batch, dim)
        return summed / mask.sum(dim=1).clamp(min=1e-9)  # (batch, dim)
    if mode == "cls":
        return hidden[:, 0]  # (batch, dim)
    if mode == "last_token":
        left_padded = bool(attention_mask[:, -1].all())
        if left_padded:
            return hidden[:, -1]  # (batch, dim)
        last = attention_mask.sum(dim=1) - 1  # (batch,)
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]  # (batch, dim)
    raise ValueError(f"pooling {mode!r} is not one of mean, cls, last_token")
