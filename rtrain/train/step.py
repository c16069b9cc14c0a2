"""One training micro-batch: the loss's forward and backward, (maybe) an optimizer step. Plain torch, no Ray."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rtrain.config.schema import LossConfig
from rtrain.losses import BaseAnchorLoss, TrainingLoss
from rtrain.models.length_aware import length_aware
from rtrain.train.engine import Engine


def build_anchor(cfg: LossConfig) -> BaseAnchorLoss | None:
    """The base-anchor term when `loss.base_anchor` > 0, else None."""
    return BaseAnchorLoss(cfg.base_anchor) if cfg.base_anchor > 0 else None


@dataclass
class StepOutput:
    loss: float  # the whole loss: contrastive + anchor
    stepped: bool
    anchor: float | None = None  # the base-anchor term alone, when on


def train_step(
    engine: Engine,
    loss_fn: TrainingLoss,
    batch: dict[str, torch.Tensor],
    anchor: BaseAnchorLoss | None = None,
    token_budget: int | None = None,
) -> StepOutput:
    """Run one micro-batch on `engine`; the engine decides when the optimizer steps.

    With `anchor`, every text of the batch is also embedded by the frozen base (`Encoder.encode_base`)
    and the anchor term joins the loss. With `token_budget`, texts are encoded length-aware
    (`rtrain.models.length_aware`): the same loss on fewer padded positions.
    """
    batch = {k: v.to(engine.device, non_blocking=True) for k, v in batch.items()}
    stepped = False

    def backward(loss: torch.Tensor) -> None:
        nonlocal stepped
        engine.backward(loss)
        stepped = engine.step()

    encode, encode_base = engine.module, engine.raw.encode_base if anchor is not None else None
    if token_budget is not None:
        encode = length_aware(encode, token_budget)
        encode_base = None if encode_base is None else length_aware(encode_base, token_budget)
    loss = loss_fn.forward_backward(
        encode, batch, backward, anchor=anchor, encode_base=encode_base, autocast=engine.autocast
    )
    return StepOutput(float(loss), stepped, None if anchor is None else anchor.last_value)
