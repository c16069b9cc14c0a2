"""Base anchor: a distillation term that keeps retrofitted embeddings near the frozen base model's.

Contrastive fine-tuning on a narrow mix drifts the embedding space away from what the base model
already did well (retrieval in languages and domains the mix lacks). The anchor pulls every text the
step encodes back toward the base model's embedding of the same text:

    L = weight * mean_i (1 - cos(e_i, b_i))

where e_i is the trainable model's embedding and b_i the base model's (no gradient). On unit vectors
1 - cos(e, b) = ||e - b||^2 / 2, so this is an L2 embedding distillation from the base (teacher =
student at step 0, as in LwF-style forgetting guards). With LoRA the base is the same module with the
adapters bypassed: one extra no-grad forward per text, no second copy of the weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


class BaseAnchorLoss(torch.nn.Module):
    """`weight * mean(1 - cos(embeddings, base))` over the rows of a step.

    Args:
        weight: the term's weight against the contrastive loss (> 0; 0 means "no anchor" and is
            never built).
    """

    def __init__(self, weight: float) -> None:
        super().__init__()
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"base anchor weight must be a finite value > 0, got {weight!r}; use e.g. 0.5")
        self.weight = float(weight)
        self.last_value: float | None = None  # the term's value at the latest call, for the train log

    def extra_repr(self) -> str:
        return f"weight={self.weight}"

    def forward(self, embeddings: Tensor, base: Tensor) -> Tensor:
        """`embeddings` (n, dim) with grad, `base` (n, dim) without -> () weighted mean distance."""
        if embeddings.shape != base.shape:
            raise ValueError(
                f"embeddings {tuple(embeddings.shape)} and base {tuple(base.shape)} differ: "
                "pass the base model's embeddings of the same texts, in the same order"
            )
        cos = (F.normalize(embeddings, dim=-1) * F.normalize(base.detach(), dim=-1)).sum(-1)  # (n,)
        value = self.weight * (1.0 - cos).mean()  # ()
        self.last_value = float(value.detach())
        return value
